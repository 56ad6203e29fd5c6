"""How decisions look on screen: words first, colour second (never colour alone)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

from core.results import ScreeningResult


@dataclass(frozen=True)
class DecisionLook:
    key: str  # benign / uncertain / suspicious / error
    label: str  # what the table says
    hint: str  # one line of what to do
    background: str  # hex colour of the badge
    foreground: str


DECISION_LOOKS = {
    "suspicious": DecisionLook("suspicious", "SUSPICIOUS", "Refer: the melanoma score is above the referral threshold", "#c62828", "#ffffff"),
    "uncertain": DecisionLook("uncertain", "UNCERTAIN", "Needs a clinician's review: the models are not confident either way, or the image is unsuitable", "#f9a825", "#000000"),
    "benign": DecisionLook("benign", "BENIGN", "Below the low threshold: the models are confident this is not melanoma", "#2e7d32", "#ffffff"),
    "error": DecisionLook("error", "NOT SCREENED", "The file could not be screened; see the reason", "#616161", "#ffffff"),
}
DECISION_ORDER = ("suspicious", "uncertain", "benign", "error")

REVIEW_LABELS = {
    "benign": "Benign",
    "refer": "Refer to dermatologist",
    "biopsy": "Biopsy",
    "unclear_image": "Unclear image (retake)",
}


def decision_key(result: ScreeningResult) -> str:
    if not result.ok or result.decision is None:
        return "error"
    return result.decision.value


def look_for(key: str) -> DecisionLook:
    return DECISION_LOOKS[key]


def qcolor(hex_colour: str) -> QColor:
    return QColor(hex_colour)


def badge_css(key: str) -> str:
    look = DECISION_LOOKS[key]
    return (
        f"background:{look.background}; color:{look.foreground}; border-radius:4px;"
        " padding:3px 10px; font-weight:bold;"
    )


DISCLAIMER_SHORT = "Research tool — not a medical device. Results are not a diagnosis."

# HAM10000 class codes in words; unknown codes are shown as they are.
CLASS_WORDS = {
    "akiec": "Actinic keratosis / Bowen's",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevus",
    "vasc": "Vascular lesion",
}
