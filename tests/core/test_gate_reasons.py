"""Gate reasons as codes plus numbers (issue 27): decide() says which rule decided (`reason_code`) and the
words come from one vocabulary function, the same text the store has always kept."""

from __future__ import annotations

from collections import Counter

import pytest

from core.decision.gate import MALIGNANCY, MELANOMA_ONLY, Thresholds, decide
from core.decision.intake_check import IntakeFinding
from core.decision.results import Decision, Prediction, QualityReport
from core.decision.vocabulary import NOT_DERMOSCOPY_REASON, UNFAMILIAR_REASON, GateReason, ReasonCode, reason_text
from tests.support.predictions import pred

T = Thresholds(low=0.03, high=0.8, moderate_from=0.1, high_risk_from=0.4)
BLURRED = QualityReport(sharpness=1, brightness=120, dark_fraction=0, bright_fraction=0, flags=("blurred",))


NEVUS = pred({"nv": 0.98, "mel": 0.01, "bcc": 0.01})
UNSURE = pred({"nv": 0.6, "mel": 0.4})


@pytest.mark.parametrize(
    "kwargs, code, decision, band, reason",
    [
        (dict(prediction=NEVUS, intake=IntakeFinding(80.0, "not_dermoscopy")), ReasonCode.NOT_DERMOSCOPY,
         Decision.REVIEW, None, NOT_DERMOSCOPY_REASON),
        (dict(prediction=NEVUS, quality=BLURRED, intake=IntakeFinding(80.0, "not_dermoscopy")),
         ReasonCode.NOT_DERMOSCOPY, Decision.REVIEW, None, f"{NOT_DERMOSCOPY_REASON}; image blurred"),
        (dict(prediction=NEVUS, quality=BLURRED), ReasonCode.QUALITY, Decision.REVIEW, "low",
         "image blurred; melanocytic nevus most likely (98%)"),
        (dict(prediction=NEVUS, quality=BLURRED, intake=IntakeFinding(3.0, "unfamiliar")), ReasonCode.QUALITY,
         Decision.REVIEW, "low", f"image blurred; {UNFAMILIAR_REASON}"),
        (dict(prediction=NEVUS, intake=IntakeFinding(3.0, "unfamiliar")), ReasonCode.UNFAMILIAR, Decision.REVIEW,
         "low", f"{UNFAMILIAR_REASON}; melanocytic nevus most likely (98%)"),
        (dict(prediction=pred({"nv": 0.98, "mel": 0.02}, members=(0.0, 0.9))), ReasonCode.DISAGREE,
         Decision.REVIEW, "low", "the models disagree; melanocytic nevus most likely (98%)"),
        (dict(prediction=pred({"bcc": 0.86, "mel": 0.02, "nv": 0.12})), ReasonCode.SUSPICIOUS_CLASS,
         Decision.SUSPICIOUS, None, "basal cell carcinoma most likely (86%)"),
        (dict(prediction=pred({"nv": 0.15, "mel": 0.4, "bcc": 0.45})), ReasonCode.SUSPICIOUS_CLASS,
         Decision.SUSPICIOUS, None, "basal cell carcinoma most likely (45%)"),
        (dict(prediction=pred({"nv": 0.1, "mel": 0.3, "bcc": 0.25, "akiec": 0.35}, malignant=("mel", "bcc"))),
         ReasonCode.NOT_RULED_OUT, Decision.REVIEW, "high", "actinic keratosis / intraepithelial carcinoma "
         "most likely (35%); skin cancer not ruled out (55%)"),
        (dict(prediction=pred({"nv": 0.05, "mel": 0.85, "bcc": 0.1}), scope=MELANOMA_ONLY),
         ReasonCode.SUSPICIOUS_CLASS, Decision.SUSPICIOUS, None, "melanoma most likely (85%)"),
        (dict(prediction=NEVUS), ReasonCode.CLEARED, Decision.NO_CANCER_SUSPECTED, None,
         "melanocytic nevus most likely (98%); malignant 2%"),
        (dict(prediction=UNSURE), ReasonCode.NOT_RULED_OUT, Decision.REVIEW, "high",
         "melanocytic nevus most likely (60%); skin cancer not ruled out (40%)"),
        (dict(prediction=UNSURE, scope=MELANOMA_ONLY), ReasonCode.NOT_RULED_OUT, Decision.REVIEW, "high",
         "melanocytic nevus most likely (60%); melanoma not ruled out (40%)"),
    ],
)  # fmt: skip
def test_each_rule_has_its_code_and_todays_words(kwargs, code, decision, band, reason):
    out = decide(thresholds=T, **kwargs)
    assert (out.reason_code, out.decision, out.band, out.reason) == (code, decision, band, reason)
    assert reason_text(out.why) == out.reason  # the stored text is the code and numbers, in words


def test_a_malignant_class_that_is_not_the_likeliest_is_named_as_possible():
    # Over `high` while a benign class is the most likely one: the malignant class is named, with the risk.
    bcc = pred({"nv": 0.45, "bcc": 0.4, "mel": 0.15})
    out = decide(bcc, Thresholds(low=0.03, high=0.5))
    assert out.reason_code is ReasonCode.POSSIBLE_CLASS and out.decision is Decision.SUSPICIOUS
    assert out.reason == "basal cell carcinoma possible; malignant 55%"
    no_class = Prediction(p_melanoma=0.9, member_p=(0.9,), spread=0.0, class_probs={})
    out = decide(no_class, T, scope=MELANOMA_ONLY)
    assert (out.reason_code, out.reason) == (ReasonCode.SUSPICIOUS_RISK, "melanoma 90%")


def test_reasons_can_be_counted_by_code_whatever_the_words():
    outs = [decide(p, T) for p in (NEVUS, NEVUS, UNSURE, pred({"bcc": 0.9, "nv": 0.1}))]
    counts = Counter(o.reason_code for o in outs)
    assert counts == {ReasonCode.CLEARED: 2, ReasonCode.NOT_RULED_OUT: 1, ReasonCode.SUSPICIOUS_CLASS: 1}
    # The code travels beside the words; outcomes still compare by what is stored.
    assert outs[0] == outs[1] and outs[0].why == GateReason(
        ReasonCode.CLEARED, outs[0].why.p, "malignant", "skin cancer", "nv", 0.98, "bcc"
    )


def test_the_scope_gives_the_words_and_the_numbers_their_name():
    old = pred({"nv": 0.5, "bcc": 0.48, "mel": 0.02}, malignant=("mel",))
    melanoma = decide(old, T, scope=MELANOMA_ONLY)
    assert melanoma.reason == "melanocytic nevus most likely (50%); melanoma 2%"
    assert melanoma.details.startswith("p(melanoma)=0.020; no cancer suspected below 0.030")
    assert melanoma.details.endswith(MELANOMA_ONLY.note) and "p(malignant)" not in melanoma.details
    current = decide(old, T, scope=MALIGNANCY)
    assert current.details.startswith("p(malignant)=0.020; p(melanoma)=0.020;")
    assert current.reason == "melanocytic nevus most likely (50%); malignant 2%"
