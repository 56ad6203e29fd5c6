"""The one vocabulary table: outcomes, risk bands, review choices and class names, in words.

Everything a user reads about a decision comes from here (the gate's reasons, the store's checks,
the CLI, the reports, the evaluation and the app). Stored codes never change meaning: "benign",
"uncertain" and "suspicious" stay the database values of the three outcomes (files written by
earlier versions stay readable), while the words shown are "no cancer suspected", "review" and
"suspicious for <class>". Adding an outcome, a band or a review choice is one row here plus the
few places that really behave differently.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    code: str  # stored value (database, CSV "decision" column)
    name: str  # what a user reads; "{cls}" is filled with the malignant class in words
    short: str  # one word for badges and counters
    rank: int  # sort order, most urgent first (0)
    colour: str  # badge background (hex); words always accompany it
    text_colour: str  # badge foreground
    hint: str  # one line on what it means and what to do
    needs_review: bool


OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        "suspicious",
        "suspicious for {cls}",
        "suspicious",
        0,
        "#c62828",
        "#ffffff",
        "The models are confident of a malignancy: refer or excise",
        True,
    ),
    Outcome(
        "uncertain",
        "review",
        "review",
        1,
        "#f9a825",
        "#000000",
        "Needs a clinician's review: the models are not confident either way, or the image is unsuitable",
        True,
    ),
    Outcome(
        "benign",
        "no cancer suspected",
        "no cancer suspected",  # one wording on every surface (issue 24): never "clear" in one place only
        2,
        "#2e7d32",
        "#ffffff",
        "Below the low threshold: the models are confident this is not a skin cancer",
        False,
    ),
)
# A picture the intake check calls not dermoscopy (a photo, a page, a screenshot) is not a patient's case:
# its own outcome, with no diagnosis, probability or band anywhere. Stored as the gate's "uncertain"
# row with intake "not_dermoscopy" (the database's decision values never change meaning), shown as this.
NOT_DERMOSCOPY = Outcome(
    "not_dermoscopy",
    "not a dermoscopy image: check the file",
    "check file",
    3,
    "#546e7a",
    "#ffffff",
    "The picture does not look like a dermoscopy image of skin: check that the right file was chosen",
    False,
)
# A file that could not be screened: not an outcome of the gate, but shown beside them.
NOT_SCREENED = Outcome(
    "error",
    "not screened",
    "not screened",
    4,
    "#616161",
    "#ffffff",
    "The file could not be screened; see the reason",
    False,
)
OUTCOME_CODES: tuple[str, ...] = tuple(o.code for o in OUTCOMES)
_OUTCOMES = {o.code: o for o in (*OUTCOMES, NOT_DERMOSCOPY, NOT_SCREENED)}
# Every outcome a user can meet, most urgent first: the legend and counters list them in this order.
ALL_OUTCOMES: tuple[Outcome, ...] = (*OUTCOMES, NOT_DERMOSCOPY, NOT_SCREENED)


def outcome_code_of(decision, intake: str | None = None, ok: bool = True) -> str:
    """The outcome a user reads for a stored (decision, intake level): "not_dermoscopy" for a picture the
    intake check calls not dermoscopy, "error" for a file that could not be screened, else the decision."""
    if not ok or decision is None:
        return NOT_SCREENED.code
    if intake == "not_dermoscopy":
        return NOT_DERMOSCOPY.code
    return getattr(decision, "value", decision)


def is_not_dermoscopy(code) -> bool:
    return getattr(code, "value", code) == NOT_DERMOSCOPY.code


def outcome(code: str | None) -> Outcome:
    """The table row of a stored outcome code; None (or "error") is "not screened"."""
    if code is None:
        return NOT_SCREENED
    code = getattr(code, "value", code)  # a core.decision.results.Decision is a str enum
    try:
        return _OUTCOMES[code]
    except KeyError:
        raise ValueError(f"unknown outcome code {code!r}; known: {', '.join(_OUTCOMES)}") from None


def outcome_words(code: str | None, malignant_class: str | None = None) -> str:
    """What a user reads: "no cancer suspected", "review", "suspicious for basal cell carcinoma"."""
    o = outcome(code)
    if "{cls}" in o.name:
        return o.name.format(cls=class_name(malignant_class) if malignant_class else "cancer")
    return o.name


# -- risk bands inside "review" ----------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    code: str  # stored value
    name: str  # what a user reads
    rank: int  # 0 = open first
    colour: str


BANDS: tuple[Band, ...] = (
    Band("high", "high risk", 0, "#e65100"),
    Band("moderate", "moderate risk", 1, "#f9a825"),
    Band("low", "low risk", 2, "#fdd835"),
)
BAND_CODES: tuple[str, ...] = tuple(b.code for b in BANDS)
_BANDS = {b.code: b for b in BANDS}
UNFAMILIAR_PREFIX = "unfamiliar picture, "  # said before an unfamiliar image's outcome


def band(code: str) -> Band:
    try:
        return _BANDS[code]
    except KeyError:
        raise ValueError(f"unknown risk band {code!r}; known: {', '.join(BAND_CODES)}") from None


def outcome_label(
    code: str | None, malignant_class: str | None = None, band_code: str | None = None, intake: str | None = None
) -> str:
    """Outcome words with the band when there is one: "review (high risk)"; with `intake` given, a picture
    that is not dermoscopy reads "not a dermoscopy image: check the file" and an unfamiliar one says so first."""
    if intake == "not_dermoscopy" and code is not None:
        return NOT_DERMOSCOPY.name
    words = outcome_words(code, malignant_class)
    if band_code and getattr(code, "value", code) == "uncertain":
        words = f"{words} ({band(band_code).name})"
    if intake == "unfamiliar" and getattr(code, "value", code) == "uncertain":
        return f"{UNFAMILIAR_PREFIX}{words}"
    return words


def risk_rank(code: str | None, band_code: str | None = None) -> int:
    """One integer for "most urgent first": suspicious, review high/moderate/low, clear, not screened."""
    o = outcome(code)
    base = o.rank * (len(BANDS) + 1)  # not dermoscopy and not screened: after every case
    if o.code == "uncertain":
        base += _BANDS[band_code].rank if band_code in _BANDS else len(BANDS)
    return base


def risk_order(code: str | None, band_code: str | None, p: float | None) -> tuple[int, float]:
    """Sort key, most urgent first: the outcome's rank (with its band), then the higher probability."""
    return (risk_rank(code, band_code), -(p if p is not None else -1.0))


# -- the intake check (core/decision/intake_check.py) ---------------------------------------------------------------


@dataclass(frozen=True)
class IntakeLevel:
    code: str  # stored value (results.intake, CSV "intake" column)
    name: str  # what a user reads
    short: str  # a marker for narrow table columns ("" when nothing needs saying)
    reason: str  # the gate's reason, first in a flagged image's reason text ("" when not flagged)


UNFAMILIAR_REASON = "does not look like the dermoscopy images the models were trained on"
NOT_DERMOSCOPY_REASON = (
    "does not look like a dermoscopy image of skin (a photo, a screenshot or a document?): "
    "check that the right file was chosen"
)
FAMILIAR = IntakeLevel("familiar", "like the training images", "", "")
UNFAMILIAR = IntakeLevel("unfamiliar", "unlike the training images", "unfamiliar", UNFAMILIAR_REASON)
# Stored with the same code as the outcome it leads to (NOT_DERMOSCOPY.code).
NOT_DERMOSCOPY_IMAGE = IntakeLevel(
    NOT_DERMOSCOPY.code, "not a dermoscopy image", "not dermoscopy", NOT_DERMOSCOPY_REASON
)
INTAKE_LEVELS: tuple[IntakeLevel, ...] = (FAMILIAR, UNFAMILIAR, NOT_DERMOSCOPY_IMAGE)
INTAKE_CODES: tuple[str, ...] = tuple(level.code for level in INTAKE_LEVELS)
NO_INTAKE_CHECK = "no intake check (bundle written before it)"
_INTAKE = {level.code: level for level in INTAKE_LEVELS}


def intake_level(code: str) -> IntakeLevel:
    try:
        return _INTAKE[code]
    except KeyError:
        raise ValueError(f"unknown intake level {code!r}; known: {', '.join(INTAKE_CODES)}") from None


# -- the gate's reasons ------------------------------------------------------------------------


def percent(p: float) -> str:
    """A probability as a clinician reads it: "86%", "<1%", ">99%"."""
    if p < 0.01:
        return "<1%"
    if p > 0.99:
        return ">99%"
    return f"{100 * p:.0f}%"


# Quality flags (core.files.images.assess_quality) in words; an unknown flag is shown as it is.
QUALITY_WORDS = {"blurred": "image blurred", "underexposed": "image too dark", "overexposed": "image too bright"}
DISAGREE_WORDS = "the models disagree"


def quality_words(flags: tuple[str, ...]) -> str:
    """ "image blurred, image too dark"; "" without flags."""
    return ", ".join(QUALITY_WORDS.get(f, f) for f in flags)


class ReasonCode(str, enum.Enum):
    """Why the gate decided as it did (core.decision.gate.decide), one code per rule, in the rules' order;
    something to filter and count by. The words are `reason_text`'s."""

    NOT_DERMOSCOPY = "not_dermoscopy"  # the intake check: not a dermoscopy image (review, no band)
    QUALITY = "quality"  # quality flags (review)
    UNFAMILIAR = "unfamiliar"  # the intake check: unlike the training images (review)
    DISAGREE = "disagree"  # the members' spread is over the limit (review)
    SUSPICIOUS_CLASS = "suspicious_class"  # over high, the most likely class is malignant: named
    POSSIBLE_CLASS = "possible_class"  # over high, a malignant class possible but another more likely
    SUSPICIOUS_RISK = "suspicious_risk"  # over high, no malignant class to name
    CLEARED = "cleared"  # under low: no cancer suspected
    NOT_RULED_OUT = "not_ruled_out"  # between low and high (review)


@dataclass(frozen=True)
class GateReason:
    """A gate decision's reason as a code and the numbers its words need (`reason_text` writes them)."""

    code: ReasonCode
    p: float  # the gate's probability: p(malignant), or p(melanoma) for a melanoma-only bundle
    risk_word: str  # the risk scope's words (core.decision.gate.RiskScope): "malignant 3%"
    cancer: str  # "skin cancer not ruled out"
    likely_class: str = ""  # the most probable class; "" when there are no class probabilities
    likely_p: float = 0.0  # its probability
    malignant_class: str = ""  # the most probable malignant class
    quality_flags: tuple[str, ...] = ()  # said with QUALITY and NOT_DERMOSCOPY
    unfamiliar: bool = False  # QUALITY: the intake check also found the image unlike the training images


def reason_text(why: GateReason) -> str:
    """The reason a clinician reads (and the store keeps): "basal cell carcinoma most likely (86%)",
    "image blurred; melanocytic nevus most likely (98%)", "skin cancer not ruled out (40%)"."""
    likely = f"{class_name(why.likely_class)} most likely ({percent(why.likely_p)})" if why.likely_class else ""
    risk = f"{why.risk_word} {percent(why.p)}"
    quality = quality_words(why.quality_flags)
    parts = {
        ReasonCode.NOT_DERMOSCOPY: (NOT_DERMOSCOPY_REASON, quality),
        ReasonCode.QUALITY: (quality, UNFAMILIAR_REASON if why.unfamiliar else likely),
        ReasonCode.UNFAMILIAR: (UNFAMILIAR_REASON, likely),
        ReasonCode.DISAGREE: (DISAGREE_WORDS, likely),
        ReasonCode.SUSPICIOUS_CLASS: (likely,),
        ReasonCode.POSSIBLE_CLASS: (f"{class_name(why.malignant_class)} possible", risk),
        ReasonCode.SUSPICIOUS_RISK: (risk,),
        ReasonCode.CLEARED: (likely, risk),
        ReasonCode.NOT_RULED_OUT: (likely, f"{why.cancer} not ruled out ({percent(why.p)})"),
    }[why.code]
    return "; ".join(part for part in parts if part)


# -- review choices ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewChoice:
    key: int  # keyboard key 1..5 in the app
    code: str  # stored value
    label: str  # what a user reads
    short: str  # one or two words, for narrow table columns
    colour: str
    asks_months: bool = False  # "monitor" takes a follow-up interval


REVIEW_CHOICES: tuple[ReviewChoice, ...] = (
    ReviewChoice(1, "no_action", "no action (benign)", "no action", "#2e7d32"),
    ReviewChoice(2, "monitor", "monitor", "monitor", "#1565c0", asks_months=True),
    ReviewChoice(3, "excise", "excise / biopsy", "excise", "#c62828"),
    ReviewChoice(4, "refer", "refer to a specialist", "refer", "#6a1b9a"),
    ReviewChoice(5, "retake", "image unusable (retake)", "retake", "#616161"),
)
REVIEW_CODES: tuple[str, ...] = tuple(c.code for c in REVIEW_CHOICES)
# Codes written by MelaScreen before the clinic's choices (store schema 1) -> today's choice.
LEGACY_REVIEW_CODES: dict[str, str] = {
    "benign": "no_action",
    "refer": "refer",
    "biopsy": "excise",
    "unclear_image": "retake",
}
# Every value the store accepts (old files keep their rows; new reviews use REVIEW_CODES).
STORED_REVIEW_CODES: tuple[str, ...] = REVIEW_CODES + tuple(c for c in LEGACY_REVIEW_CODES if c not in REVIEW_CODES)
DEFAULT_FOLLOW_UP_MONTHS = 6
MAX_FOLLOW_UP_MONTHS = 120
_CHOICES = {c.code: c for c in REVIEW_CHOICES}


def review_choice(code: str) -> ReviewChoice:
    """The choice of a stored review code, old codes mapped to today's choices."""
    code = LEGACY_REVIEW_CODES.get(code, code) if code not in _CHOICES else code
    try:
        return _CHOICES[code]
    except KeyError:
        raise ValueError(f"unknown review decision {code!r}; known: {', '.join(REVIEW_CODES)}") from None


def review_words(code: str, follow_up_months: int | None = None, short: bool = False) -> str:
    """ "monitor (follow up in 6 months)", "excise / biopsy", ...; short: "monitor, 6 mo", "excise"."""
    choice = review_choice(code)
    if short:
        return f"{choice.short}, {follow_up_months} mo" if (choice.asks_months and follow_up_months) else choice.short
    if choice.asks_months and follow_up_months:
        unit = "month" if follow_up_months == 1 else "months"
        return f"{choice.label} (follow up in {follow_up_months} {unit})"
    return choice.label


# -- classes -----------------------------------------------------------------------------------

# HAM10000 class codes in words; unknown codes are shown as they are.
CLASS_NAMES: dict[str, str] = {
    "mel": "melanoma",
    "bcc": "basal cell carcinoma",
    "akiec": "actinic keratosis / intraepithelial carcinoma",
    "nv": "melanocytic nevus",
    "bkl": "benign keratosis",
    "df": "dermatofibroma",
    "vasc": "vascular lesion",
}


def class_name(code: str | None) -> str:
    if not code:
        return ""
    return CLASS_NAMES.get(code, code)
