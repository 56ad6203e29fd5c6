"""How outcomes look on screen: words first, colour second (never colour alone).

The words, colours and order come from core.decision.vocabulary, the one vocabulary table; this module only
turns them into Qt colours and style sheets.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

from core import (
    ALL_OUTCOMES,
    BAND_CODES,
    NOT_DERMOSCOPY,
    NOT_SCREENED,
    Decision,
    Outcome,
    ScreeningResult,
    band,
    outcome,
)
from core import result_words as _core_result_words

# Filter buttons and counters, most urgent first; NOT_SCREENED's code ("error") = not screened, NOT_DERMOSCOPY's =
# check the file.
NOT_SCREENED_KEY = NOT_SCREENED.code
DECISION_ORDER: tuple[str, ...] = tuple(o.code for o in sorted(ALL_OUTCOMES, key=lambda o: o.rank))
DECISION_LOOKS: dict[str, Outcome] = {
    code: outcome(None if code == NOT_SCREENED_KEY else code) for code in DECISION_ORDER
}
REVIEW_KEY = Decision.REVIEW.value  # a review takes its risk band's shade and words when it has one
# Outcomes that are not a patient's case: listed apart ("Images to check", "Files that could not be screened").
NOT_CASES: tuple[str, ...] = (NOT_DERMOSCOPY.code, NOT_SCREENED.code)


def decision_key(result: ScreeningResult) -> str:
    """The outcome code of a row: the decision, NOT_DERMOSCOPY's, or NOT_SCREENED_KEY when the file was not
    screened."""
    return result.outcome_code


def result_words(result: ScreeningResult) -> str:
    """ "suspicious for basal cell carcinoma", "review (high risk)", "no cancer suspected", "not screened",
    "not a dermoscopy image: check the file" (core.records.report.result_words: the same words as every export)."""
    return _core_result_words(result)


def result_short_words(result: ScreeningResult) -> str:
    """For narrow table columns: "high risk", "suspicious", "no cancer suspected", "check file", "not screened"
    (full words in the tooltip); an unfamiliar picture says so first."""
    key = decision_key(result)
    if key in NOT_CASES:
        return DECISION_LOOKS[key].short
    words = f"{result.band} risk" if key == REVIEW_KEY and result.band in BAND_CODES else DECISION_LOOKS[key].short
    return f"unfamiliar, {words}" if result.intake == "unfamiliar" and key == REVIEW_KEY else words


def qcolor(hex_colour: str) -> QColor:
    return QColor(hex_colour)


def badge_css(key: str, band_code: str | None = None) -> str:
    """The badge of an outcome; "review" takes its risk band's shade when it has one."""
    look = DECISION_LOOKS[key]
    colour = band(band_code).colour if (key == REVIEW_KEY and band_code in BAND_CODES) else look.colour
    return f"background:{colour}; color:{look.text_colour}; border-radius:4px; padding:3px 10px; font-weight:bold;"


DISCLAIMER_SHORT = "Research tool — not a medical device. Results are not a diagnosis."
