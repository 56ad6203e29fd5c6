"""The malignancy gate: decisions on p(malignant), reasons in words, strict settings."""

import math

import pytest

from core.decision.gate import DEFAULT_MAX_MEMBER_SPREAD, MELANOMA_ONLY, GateSettings, Thresholds, decide
from core.decision.results import Decision, QualityReport
from tests.support.predictions import pred

BANDED = Thresholds(low=0.03, high=0.8, moderate_from=0.1, high_risk_from=0.4)


def test_a_basal_cell_carcinoma_is_not_cleared_and_is_named():
    """The issue's case: p(BCC) 0.86 with a low p(melanoma) was called benign by the melanoma gate."""
    bcc = pred({"bcc": 0.86, "mel": 0.02, "nv": 0.12})
    out = decide(bcc, BANDED)
    assert out.decision is Decision.SUSPICIOUS
    assert out.reason == "basal cell carcinoma most likely (86%)"
    assert "p(malignant)=0.880" in out.details and "p(melanoma)=0.020" in out.details
    assert bcc.p_malignant == pytest.approx(0.88) and bcc.malignant_class == "bcc"


def test_three_levels_and_bands_inside_review():
    clear = decide(pred({"nv": 0.98, "mel": 0.01, "bcc": 0.01}), BANDED)
    assert clear.decision is Decision.NO_CANCER_SUSPECTED and clear.band is None
    assert clear.reason.startswith("melanocytic nevus most likely (98%)")
    bands = {p: decide(pred({"nv": 1 - p, "mel": p}), BANDED) for p in (0.05, 0.2, 0.5)}
    assert [o.decision for o in bands.values()] == [Decision.REVIEW] * 3
    assert [o.band for o in bands.values()] == ["low", "moderate", "high"]
    assert "skin cancer not ruled out (50%)" in bands[0.5].reason
    # Without fitted bands (an unfitted level, an old bundle) review has no band.
    assert decide(pred({"nv": 0.8, "mel": 0.2}), Thresholds(0.03, 0.8)).band is None


def test_quality_and_disagreement_come_first_in_words():
    q = QualityReport(sharpness=1, brightness=10, dark_fraction=0.9, bright_fraction=0, flags=("underexposed",))
    dark = decide(pred({"nv": 0.99, "mel": 0.01}), BANDED, quality=q)
    assert dark.decision is Decision.REVIEW and dark.reason.startswith("image too dark")
    disagree = decide(pred({"nv": 0.99, "mel": 0.01}, members=(0.0, 0.9)), BANDED)
    assert disagree.decision is Decision.REVIEW and disagree.reason.startswith("the models disagree")
    # decide's default spread limit is the bundle default: one constant.
    assert GateSettings().max_member_spread == DEFAULT_MAX_MEMBER_SPREAD
    barely = decide(pred({"nv": 0.99, "mel": 0.01}, members=(0.0, 0.4)), BANDED)  # spread 0.2
    assert barely.decision is Decision.NO_CANCER_SUSPECTED


def test_melanoma_only_bundles_gate_on_melanoma_and_say_so():
    old = pred({"nv": 0.5, "bcc": 0.48, "mel": 0.02}, malignant=("mel",))
    assert old.p_malignant == pytest.approx(0.02)
    out = decide(old, BANDED, scope=MELANOMA_ONLY)
    assert out.decision is Decision.NO_CANCER_SUSPECTED
    assert "melanoma-only gate" in out.details and "p(melanoma)=0.020" in out.details


def test_gate_settings_round_trip_with_bands():
    g = GateSettings(fitted={0.99: BANDED, 0.95: Thresholds(0.05, 0.7)}, max_member_spread=0.3)
    assert GateSettings.from_dict(g.to_dict()) == g
    assert g.thresholds(0.99).band(0.5) == "high" and g.thresholds(0.95).band(0.5) is None
    assert GateSettings.from_dict({}) == GateSettings()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"max_member_spead": 0.3}, "unknown key"),
        ({"default_confidence": "0.99"}, "must be a number"),
        ({"default_confidence": True}, "must be a number"),
        ({"default_confidence": 1.0}, r"\[0.5, 1\)"),
        ({"max_member_spread": math.nan}, "finite"),
        ({"max_member_spread": math.inf}, "finite"),
        ({"fitted": []}, "JSON object"),
        ({"fitted": {"high": {"low": 0.1, "high": 0.9}}}, "confidence level"),
        ({"fitted": {"0.3": {"low": 0.1, "high": 0.9}}}, r"\[0.5, 1\)"),
        ({"fitted": {"0.99": {"low": 0.1}}}, "lacks high"),
        ({"fitted": {"0.99": {"low": 0.9, "high": 0.1}}}, "low <= high"),
        ({"fitted": {"0.99": {"low": 0.1, "high": 0.9, "extra": 1}}}, "unknown key"),
        ({"fitted": {"0.99": {"low": 0.1, "high": 0.9, "bands": {"moderate": 0.5, "high": 0.2}}}}, "moderate_from"),
        ({"fitted": {"0.99": {"low": 0.1, "high": 0.9, "bands": {"moderate": 0.2}}}}, "lacks high"),
        ("not a dict", "JSON object"),
    ],
)
def test_gate_settings_from_dict_is_strict(data, message):
    with pytest.raises(ValueError, match=message):
        GateSettings.from_dict(data)


def test_confidence_meanings_say_what_each_level_did_on_validation():
    from core.decision.confidence_meanings import confidence_meanings

    fit = {"n": 1698, "n_malignant": 333, "n_cleared": 744, "malignant_cleared": 10}
    provenance = {
        "gate_refit": {
            "fits": [
                {"confidence": 0.95, **fit, "n_suspicious": 84, "malignant_suspicious": 80},
                {"confidence": 0.99, "n": 1698, "n_malignant": 333, "n_cleared": 591, "malignant_cleared": 2},
                {"confidence": 0.9},  # no figures: left out, not guessed
            ]
        }
    }
    meanings = confidence_meanings(provenance)
    assert [m.confidence for m in meanings] == [0.99, 0.95]
    assert meanings[1].words == (
        "at 0.95: 3.0% of validation malignancies cleared (10 of 333), 53.8% of benign lesions cleared "
        "(734 of 1365); 84 called suspicious, 95.2% malignant"
    )
    assert confidence_meanings({}) == [] and confidence_meanings(None) == []
