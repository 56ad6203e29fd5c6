"""Temperature scaling and gate thresholds fitted on (synthetic) validation data."""

import math

import numpy as np
import pytest

from core.decision.gate import Thresholds
from core.inference.calibration import softmax
from core.inference.manifest import Manifest, Member
from export.calibrate import (
    CONFIDENCES,
    ensemble_probability,
    fit_gate,
    fit_temperature,
    fit_temperatures,
    fit_thresholds,
    nll,
)


def overconfident_logits(n: int, k: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the 'model' reports z * temperature, so T recovers z exactly."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, k))
    probs = softmax(z)
    labels = np.array([rng.choice(k, p=row) for row in probs])
    return z * temperature, labels


@pytest.mark.parametrize("true_t", [0.6, 2.5])
def test_fit_recovers_a_known_temperature(true_t):
    logits, labels = overconfident_logits(20000, 7, true_t, seed=int(true_t * 10))
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.05)
    assert fit.nll_after < fit.nll_before
    # It is the minimum: nudging T either way does not help.
    assert nll(logits, labels, fit.temperature) <= nll(logits, labels, fit.temperature * 1.05)
    assert nll(logits, labels, fit.temperature) <= nll(logits, labels, fit.temperature / 1.05)


def test_one_temperature_per_member():
    a, labels = overconfident_logits(5000, 3, 2.0, seed=1)
    member_logits = np.stack([a, a / 2.0])  # the second member is already calibrated
    fits = fit_temperatures(member_logits, labels)
    assert [round(f.temperature, 1) for f in fits] == [pytest.approx(2.0, abs=0.15), pytest.approx(1.0, abs=0.1)]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((4, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((3, 3)), np.array([0, 1, 5]))
    with pytest.raises(ValueError):
        fit_temperatures(np.zeros((4, 3)), np.array([0, 1, 2, 0]))


def test_ensemble_probability_is_the_mean_of_calibrated_member_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 10, 7)).astype(np.float32)
    temps = [1.0, 2.0, 0.5]
    p = ensemble_probability(logits, temps, positive_index=4)
    by_hand = np.mean([softmax(logits[m] / t)[:, 4] for m, t in enumerate(temps)], axis=0)
    np.testing.assert_allclose(p, by_hand, rtol=1e-6)


def _rate_below(p, y, t):
    sel = p < t
    return y[sel].mean() if sel.any() else 0.0


def _rate_at_or_above(p, y, t):
    sel = p >= t
    return y[sel].mean() if sel.any() else None


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_thresholds_follow_their_definition(confidence):
    rng = np.random.default_rng(42)
    n = 3000
    y = rng.random(n) < 0.12
    # A useful but imperfect score: melanomas sit higher.
    p = np.clip(rng.beta(1.2, 6.0, n) + y * rng.beta(4.0, 2.0, n) * 0.8, 0.0, 0.999)
    fit = fit_thresholds(p, y, confidence)
    low, high = fit.thresholds.low, fit.thresholds.high
    assert 0.0 <= low <= high <= 1.0
    assert _rate_below(p, y, low) <= 1 - confidence + 1e-12
    # At most 1 - confidence of ALL melanomas are cleared as benign.
    assert y[p < low].sum() <= (1 - confidence) * y.sum() + 1e-9
    assert fit.n_benign == int((p < low).sum()) and fit.melanoma_below_low == int(y[p < low].sum())

    def clean(t):
        return _rate_below(p, y, t) <= 1 - confidence and y[p < t].sum() <= (1 - confidence) * y.sum()

    larger_clean = [t for t in np.append(np.unique(p), 1.0) if t > low and clean(t)]
    if fit.low_clamped:  # the benign rule reached past high; low stops at high
        assert low == high and larger_clean
    else:  # no larger threshold keeps the benign side that clean (brute force over every candidate)
        assert not larger_clean
    if fit.high_found:
        assert _rate_at_or_above(p, y, high) >= confidence - 1e-12
        for t in np.unique(p):
            if t < high:
                assert _rate_at_or_above(p, y, t) < confidence
    else:
        assert high == 1.0


def test_unreachable_confidence_means_nothing_is_called_suspicious():
    p = np.linspace(0.01, 0.9, 200)
    y = np.zeros(200, bool)
    y[::2] = True  # half melanoma everywhere: no threshold gives 99 % melanoma above it
    fit = fit_thresholds(p, y, 0.99)
    assert not fit.high_found and fit.thresholds.high == 1.0
    assert fit.thresholds.low <= p.min()  # nor can anything be called benign
    assert fit.n_benign == 0


def test_a_perfect_score_separates_cleanly():
    p = np.array([0.01, 0.02, 0.03, 0.2, 0.8, 0.9])
    y = np.array([0, 0, 0, 0, 1, 1], bool)
    fit = fit_thresholds(p, y, 0.99)
    # 0.8 and up melanoma; low stays below 0.5 so that the gate can hold a case (issue 26): the same 4 cleared.
    assert fit.thresholds == Thresholds(low=math.nextafter(0.5, 0.0), high=0.8) and fit.low_clamped
    assert (fit.n_benign, fit.n_suspicious) == (4, 2)


def test_fitted_gate_travels_in_the_manifest():
    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.2
    p = np.clip(0.1 + 0.7 * y + rng.normal(0, 0.15, 500), 0, 1)
    gate, fits = fit_gate(p, y)
    assert set(gate.fitted) == set(CONFIDENCES) and len(fits) == len(CONFIDENCES)
    manifest = Manifest(
        name="t",
        version="1",
        class_names=("mel", "nv"),
        positive_class="mel",
        input_size=64,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        members=(Member("m.onnx", "0" * 64, "a", 0),),
        gate=gate,
    )
    back = Manifest.from_dict(manifest.to_dict())
    for c in CONFIDENCES:
        assert back.gate.thresholds(c) == gate.fitted[c]
    # Stricter confidence never makes the benign side larger (unless a lower level was clamped).
    unclamped = [f.thresholds.low for f in fits if not f.low_clamped]
    assert unclamped == sorted(unclamped, reverse=True)


# -- the malignancy gate ------------------------------------------------------------------------

from core.decision.gate import GateSettings, decide  # noqa: E402
from core.decision.results import Decision, Prediction  # noqa: E402
from export.calibrate import ensemble_malignancy, fit_malignancy_gate, fit_malignancy_thresholds  # noqa: E402


def calibrated_cases(n: int, seed: int):
    """Synthetic validation cases with calibrated p(malignant): a case is malignant with probability p.
    A third of the malignancies are melanomas."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.4, 1.6, size=n)
    mal = rng.random(n) < p
    mel = mal & (rng.random(n) < 1 / 3)
    return p, mal, mel


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_malignancy_gate_clears_at_most_the_allowed_share_of_malignancies_and_melanomas(confidence):
    p, mal, mel = calibrated_cases(4000, seed=int(confidence * 100))
    fit = fit_malignancy_thresholds(p, mal, mel, confidence)
    t = fit.thresholds
    cleared = p < t.low
    assert mal[cleared].sum() <= (1 - confidence) * mal.sum() + 1e-9
    assert mel[cleared].sum() <= (1 - confidence) * mel.sum() + 1e-9
    assert mal[cleared].mean() <= 1 - confidence + 1e-9
    assert (fit.n_cleared, fit.malignant_cleared, fit.melanoma_cleared) == (
        cleared.sum(),
        mal[cleared].sum(),
        mel[cleared].sum(),
    )
    suspicious = p >= t.high
    if fit.high_found:
        assert mal[suspicious].mean() >= confidence - 1e-9
    # Bands split review in order, and say what they promise on validation.
    assert t.low <= t.moderate_from <= t.high_risk_from <= t.high
    review = (p >= t.low) & (p < t.high)
    high_band = review & (p >= t.high_risk_from)
    low_band = review & (p < t.moderate_from)
    if high_band.any():
        assert mal[high_band].mean() >= 0.5 - 1e-9
    if low_band.any():
        assert mal[low_band].mean() <= 0.05 + 1e-9
    counted = fit.band_counts
    assert counted["high"] == (high_band.sum(), mal[high_band].sum())
    assert counted["low"] == (low_band.sum(), mal[low_band].sum())
    assert sum(v[0] for v in counted.values()) == review.sum()
    # The gate puts each validation case in the band the fit counted it in.
    bands = [
        decide(Prediction(p_melanoma=0.0, member_p=(0.0,), spread=0.0, class_probs={}, p_malignant=float(x)), t).band
        for x in p[review]
    ]
    assert bands.count("high") == counted["high"][0] and bands.count("low") == counted["low"][0]


def test_malignancy_gate_is_larger_when_melanomas_alone_would_be_bounded():
    """A basal cell carcinoma at low p(melanoma) but high p(malignant) is no longer cleared."""
    p, mal, mel = calibrated_cases(3000, seed=5)
    settings, fits = fit_malignancy_gate(p, mal, mel)
    assert sorted(settings.fitted) == sorted(CONFIDENCES)
    assert GateSettings.from_dict(settings.to_dict()) == settings  # bands survive the manifest
    lows = [settings.fitted[c].low for c in CONFIDENCES]
    assert lows == sorted(lows, reverse=True)  # higher confidence, fewer cleared
    assert [f.to_dict()["confidence"] for f in fits] == list(CONFIDENCES)
    bcc = Prediction(
        p_melanoma=0.01,
        member_p=(0.01,),
        spread=0.0,
        class_probs={"bcc": 0.86, "mel": 0.01, "nv": 0.13},
        p_malignant=0.87,
        likely_class="bcc",
        malignant_class="bcc",
    )
    out = decide(bcc, settings.thresholds(0.99))
    assert out.decision is not Decision.NO_CANCER_SUSPECTED
    assert "basal cell carcinoma" in out.reason


def test_malignancy_fit_refuses_bad_input():
    with pytest.raises(ValueError, match="one p"):
        fit_malignancy_thresholds(np.zeros(3), np.zeros(2), np.zeros(3), 0.99)
    with pytest.raises(ValueError, match="melanoma must also be marked malignant"):
        fit_malignancy_thresholds(np.zeros(2), np.array([0, 0]), np.array([1, 0]), 0.99)
    with pytest.raises(ValueError, match="probabilities"):
        fit_malignancy_thresholds(np.array([0.1, np.nan]), np.zeros(2), np.zeros(2), 0.99)
    with pytest.raises(ValueError, match="confidence"):
        fit_malignancy_thresholds(np.zeros(2), np.zeros(2), np.zeros(2), 1.0)


def test_ensemble_malignancy_sums_the_malignant_classes():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 5, 4)).astype(np.float32)
    p = ensemble_malignancy(logits, [1.0, 2.0], [0, 2])
    probs = (softmax(logits[0]) + softmax(logits[1] / 2.0)) / 2
    np.testing.assert_allclose(p, probs[:, 0] + probs[:, 2], rtol=1e-5)


def test_the_export_fits_on_the_numbers_the_app_computes(synthetic_bundle):
    """Calibration is computed in one place (core.inference.calibration): the export's p(melanoma) and
    p(malignant) are the app's Ensemble's, to the bit, for the same raw member logits."""
    from core.inference.bundle import load_bundle
    from core.inference.ensemble import Ensemble, RawOutputs

    ensemble = Ensemble(load_bundle(synthetic_bundle))
    m = ensemble.manifest
    logits = np.random.default_rng(5).normal(0, 3, (len(m.members), 40, len(m.class_names))).astype(np.float32)
    app = ensemble.to_predictions(RawOutputs(member_logits=logits, cams=None))
    temps = [mem.temperature for mem in m.members]
    assert [p.p_melanoma for p in app] == ensemble_probability(logits, temps, m.positive_index).tolist()
    assert [p.p_malignant for p in app] == ensemble_malignancy(logits, temps, m.malignant_indices).tolist()
