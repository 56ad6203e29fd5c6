"""The one vocabulary table: what a clinician reads for each stored code."""

import pytest

from core.decision.results import Decision
from core.decision.vocabulary import (
    BANDS,
    LEGACY_REVIEW_CODES,
    OUTCOME_CODES,
    REVIEW_CHOICES,
    STORED_REVIEW_CODES,
    class_name,
    outcome,
    outcome_label,
    outcome_words,
    review_choice,
    review_words,
    risk_rank,
)


def test_stored_codes_stay_and_words_say_what_they_mean():
    assert OUTCOME_CODES == ("suspicious", "uncertain", "benign")  # database values never change
    assert {d.value for d in Decision} == set(OUTCOME_CODES)
    assert outcome_words("benign") == "no cancer suspected"
    assert outcome_words(Decision.REVIEW) == "review"
    assert outcome_words("suspicious", "bcc") == "suspicious for basal cell carcinoma"
    assert outcome_words("suspicious") == "suspicious for cancer"
    assert outcome_words(None) == "not screened"
    assert outcome_label("uncertain", band_code="high") == "review (high risk)"
    assert outcome_label("benign", band_code="high") == "no cancer suspected"
    with pytest.raises(ValueError, match="unknown outcome"):
        outcome("malignant")


def test_risk_rank_orders_suspicious_then_review_bands_then_clear():
    ranks = [
        risk_rank("suspicious"),
        risk_rank("uncertain", "high"),
        risk_rank("uncertain", "moderate"),
        risk_rank("uncertain", "low"),
        risk_rank("uncertain"),
        risk_rank("benign"),
        risk_rank(None),
    ]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert [b.code for b in BANDS] == ["high", "moderate", "low"]


def test_five_review_choices_on_keys_one_to_five_and_old_codes_shown_as_new():
    assert [(c.key, c.code) for c in REVIEW_CHOICES] == [
        (1, "no_action"),
        (2, "monitor"),
        (3, "excise"),
        (4, "refer"),
        (5, "retake"),
    ]
    assert [c.code for c in REVIEW_CHOICES if c.asks_months] == ["monitor"]
    assert set(LEGACY_REVIEW_CODES) == {"benign", "refer", "biopsy", "unclear_image"}
    assert set(STORED_REVIEW_CODES) >= set(LEGACY_REVIEW_CODES)
    assert review_choice("biopsy").code == "excise" and review_choice("unclear_image").code == "retake"
    assert review_words("benign") == "no action (benign)"
    assert review_words("monitor", 6) == "monitor (follow up in 6 months)"
    assert review_words("monitor", 1) == "monitor (follow up in 1 month)"
    assert review_words("monitor", 6, short=True) == "monitor, 6 mo" and review_words("biopsy", short=True) == "excise"
    with pytest.raises(ValueError, match="unknown review decision"):
        review_choice("maybe")


def test_class_names_in_words():
    assert class_name("akiec") == "actinic keratosis / intraepithelial carcinoma"
    assert class_name("mel") == "melanoma" and class_name("nv") == "melanocytic nevus"
    assert class_name("xyz") == "xyz" and class_name("") == ""
