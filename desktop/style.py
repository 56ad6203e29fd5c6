"""How outcomes look on screen: words first, colour second (never colour alone).

The words, colours and order come from core.outcomes, the one vocabulary table; this module only
turns them into Qt colours and style sheets.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

from core.outcomes import BAND_CODES, NOT_SCREENED, OUTCOMES, Outcome, band, outcome, outcome_label
from core.results import ScreeningResult

# Filter buttons and counters, most urgent first; "error" = not screened.
DECISION_ORDER: tuple[str, ...] = tuple(o.code for o in sorted((*OUTCOMES, NOT_SCREENED), key=lambda o: o.rank))
DECISION_LOOKS: dict[str, Outcome] = {code: outcome(None if code == "error" else code) for code in DECISION_ORDER}


def decision_key(result: ScreeningResult) -> str:
    """The outcome code of a row; "error" when the file was not screened."""
    if not result.ok or result.decision is None:
        return "error"
    return result.decision.value


def result_words(result: ScreeningResult) -> str:
    """ "suspicious for basal cell carcinoma", "review (high risk)", "no cancer suspected", "not screened"."""
    if decision_key(result) == "error":
        return NOT_SCREENED.name
    return outcome_label(result.decision, result.malignant_class, result.band)


def result_short_words(result: ScreeningResult) -> str:
    """For narrow table columns: "high risk", "suspicious", "no cancer", "not screened" (full words in the tooltip)."""
    key = decision_key(result)
    if key == "error":
        return NOT_SCREENED.name
    if key == "uncertain" and result.band in BAND_CODES:
        return f"{result.band} risk"
    return DECISION_LOOKS[key].short


def qcolor(hex_colour: str) -> QColor:
    return QColor(hex_colour)


def badge_css(key: str, band_code: str | None = None) -> str:
    """The badge of an outcome; "review" takes its risk band's shade when it has one."""
    look = DECISION_LOOKS[key]
    colour = band(band_code).colour if (key == "uncertain" and band_code in BAND_CODES) else look.colour
    return f"background:{colour}; color:{look.text_colour}; border-radius:4px; padding:3px 10px; font-weight:bold;"


DISCLAIMER_SHORT = "Research tool — not a medical device. Results are not a diagnosis."
