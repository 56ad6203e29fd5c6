"""Values that cross layers: what screening one image produced."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Decision(str, enum.Enum):
    BENIGN = "benign"
    SUSPICIOUS = "suspicious"
    UNCERTAIN = "uncertain"

    @property
    def needs_review(self) -> bool:
        return self is not Decision.BENIGN


@dataclass(frozen=True)
class QualityReport:
    """Image quality measures; any flag sends the image to `uncertain`."""

    sharpness: float  # variance of the Laplacian at working resolution
    brightness: float  # mean of grey levels, 0..255
    dark_fraction: float  # share of pixels <= 10
    bright_fraction: float  # share of pixels >= 245
    flags: tuple[str, ...] = ()  # e.g. ("blurred", "overexposed")


@dataclass(frozen=True)
class Prediction:
    """The ensemble's output for one image, before the gate."""

    p_melanoma: float  # mean of the members' calibrated p(melanoma)
    member_p: tuple[float, ...]  # each member's calibrated p(melanoma)
    spread: float  # standard deviation of member_p
    class_probs: dict[str, float]  # ensemble mean of calibrated class probabilities
    cam: np.ndarray | None = field(default=None, compare=False, repr=False)
    # cam: float32 HxW in original image coordinates, 0..1, for the melanoma class


@dataclass(frozen=True)
class GateOutcome:
    decision: Decision
    reason: str


@dataclass(frozen=True)
class ScreeningResult:
    """One file of a batch: a prediction and a decision, or an error with its reason."""

    path: str
    sha256: str | None  # hash of the file's bytes; None when the file could not be read at all
    status: str  # "ok" or "error"
    decision: Decision | None = None
    reason: str = ""
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

    @property
    def ok(self) -> bool:
        return self.status == "ok"
