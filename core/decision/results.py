"""Values that cross layers: what screening one image produced."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from core.decision.vocabulary import GateReason, ReasonCode, outcome, outcome_code_of


class Decision(str, enum.Enum):
    # Named as users read them (core.decision.vocabulary); the values are the stored codes, unchanged.
    NO_CANCER_SUSPECTED = "benign"
    SUSPICIOUS = "suspicious"
    REVIEW = "uncertain"

    @property
    def needs_review(self) -> bool:
        return outcome(self.value).needs_review  # the vocabulary table says which outcomes a clinician sees


@dataclass(frozen=True)
class QualityReport:
    """Image quality measures; any flag sends the image to `uncertain`."""

    sharpness: float  # variance of the Laplacian at working resolution
    brightness: float  # mean of grey levels, 0..255
    dark_fraction: float  # share of pixels <= 10
    bright_fraction: float  # share of pixels >= 245
    flags: tuple[str, ...] = ()  # e.g. ("blurred", "overexposed")


def named_class(result: ScreeningResult, positive_class: str = "mel") -> str:
    """The class the outcome names: the malignant class of a suspicious result, else the most likely class
    (the reason names it); the positive class when nothing is named."""
    if result.decision is Decision.SUSPICIOUS and result.malignant_class:
        return result.malignant_class
    return result.likely_class or result.malignant_class or positive_class


@dataclass(frozen=True)
class Prediction:
    """The ensemble's output for one image, before the gate.

    p_malignant is the sum of the malignant classes' calibrated probabilities (Manifest.malignant_classes);
    for a bundle written before malignancy triage (melanoma-only gate) it equals p_melanoma.
    """

    p_melanoma: float  # mean of the members' calibrated p(melanoma)
    member_p: tuple[float, ...]  # each member's calibrated p(melanoma)
    spread: float  # standard deviation of member_p
    class_probs: dict[str, float]  # ensemble mean of calibrated class probabilities
    cam: np.ndarray | None = field(default=None, compare=False, repr=False)
    # cam: float32 HxW in original image coordinates, 0..1, for the melanoma class
    p_malignant: float | None = None  # None: taken as p_melanoma (a melanoma-only model)
    likely_class: str = ""  # the most probable class overall
    malignant_class: str = ""  # the most probable malignant class
    member_p_malignant: tuple[float, ...] = ()  # each member's p(malignant); empty: as member_p
    ood_score: float | None = None  # the intake check's score (decision.intake_check); None: the bundle has none

    def __post_init__(self):
        # Frozen: fill the derived default once, so every reader sees a complete value.
        if self.p_malignant is None:
            object.__setattr__(self, "p_malignant", float(self.p_melanoma))

    @property
    def malignant_spread(self) -> float:
        """Standard deviation of the members' p(malignant): how much the models disagree."""
        m = self.member_p_malignant
        return float(np.std(m)) if m else float(self.spread)


def summarise_classes(class_probs: dict[str, float], malignant_classes) -> tuple[float, str, str]:
    """(p_malignant, likely_class, malignant_class) from calibrated class probabilities.

    Ties go to the class listed first, so the result does not depend on dict order in the store.
    """
    malignant = [c for c in malignant_classes if c in class_probs]
    p_mal = float(sum(class_probs[c] for c in malignant))
    likely = max(class_probs, key=lambda c: class_probs[c]) if class_probs else ""
    mal_class = max(malignant, key=lambda c: class_probs[c]) if malignant else ""
    return p_mal, likely, mal_class


@dataclass(frozen=True)
class GateOutcome:
    decision: Decision
    reason: str  # in words, for the clinician (core.decision.vocabulary.reason_text of `why`)
    band: str | None = None  # "high" / "moderate" / "low" inside review (core.decision.vocabulary.BANDS)
    details: str = ""  # the numbers behind the decision, for a "details" click
    why: GateReason | None = field(default=None, compare=False)  # the reason as a code and its numbers

    @property
    def reason_code(self) -> ReasonCode | None:
        """Which of the gate's rules decided (to filter and count by); None for an outcome not made by it."""
        return self.why.code if self.why is not None else None


@dataclass(frozen=True)
class ScreeningResult:
    """One file of a batch: a prediction and a decision, or an error with its reason."""

    path: str
    sha256: str | None  # hash of the file's bytes; None when the file could not be read at all
    status: str  # "ok" or "error"
    decision: Decision | None = None
    reason: str = ""  # in words
    p_melanoma: float | None = None
    member_p: tuple[float, ...] = ()
    spread: float | None = None
    class_probs: dict[str, float] = field(default_factory=dict)
    quality: QualityReport | None = None
    width: int | None = None
    height: int | None = None
    cam: np.ndarray | None = field(default=None, compare=False, repr=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    from_store: bool = False  # True when an earlier run's stored result was reused
    p_malignant: float | None = None  # sum of the malignant classes' calibrated probabilities
    likely_class: str = ""  # most probable class overall
    malignant_class: str = ""  # most probable malignant class
    band: str | None = None  # risk band inside review: "high" / "moderate" / "low"
    details: str = ""  # the gate's numbers (thresholds, spread), shown on demand
    ood_score: float | None = None  # the intake check's score (decision.intake_check); None: none (or an old result)
    intake: str | None = None  # "familiar", "unfamiliar" or "not_dermoscopy"; None: no intake check
    confidence: float | None = None  # the gate's confidence that made the decision; None: not known here
    trial: bool = False  # decided at a trial confidence, on screen only: never what the record shows
    # The heat map of the class the outcome names (core.inference.class_cam.named_class), composed from the same model
    # run once the gate had decided; `cam` stays the positive class's. "" / None: an older result, or one
    # re-decided to name another class since: only `cam` (melanoma's) is known.
    named_cam: np.ndarray | None = field(default=None, compare=False, repr=False)
    named_cam_class: str = field(default="", compare=False)
    # The cascade (core/decision/cascade.py): "stopped" (stage 1 settled the outcome), "full" (the cascade ran and the
    # whole ensemble decided), "" (no cascade in this run, or a stored result: its details say "decided after
    # stage 1" when it stopped early)
    cascade: str = field(default="", compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def heat_map(self, positive_class: str = "mel") -> tuple[np.ndarray | None, str]:
        """(the map to show, its class): the named class's map when it was kept, else `cam` (the positive
        class's, as every result written before named maps has)."""
        if self.named_cam is not None and self.named_cam_class:
            return self.named_cam, self.named_cam_class
        return self.cam, positive_class

    @property
    def outcome_code(self) -> str:
        """What a user reads (core.decision.vocabulary): the decision, "not_dermoscopy" or "error"."""
        return outcome_code_of(self.decision, self.intake, self.ok)

    @property
    def is_case(self) -> bool:
        """A patient's case: screened, and a picture the intake check accepts as dermoscopy."""
        return self.ok and self.intake != "not_dermoscopy"


def risk_probability(item) -> float | None:
    """p(malignant), or p(melanoma) for a row a melanoma-only bundle stored before malignancy triage.

    The one place that picks the probability a result is ranked and shown by (results, queue items,
    visits: anything with `p_malignant` and `p_melanoma`); None when neither is known (an error row)."""
    p = getattr(item, "p_malignant", None)
    return p if p is not None else getattr(item, "p_melanoma", None)
