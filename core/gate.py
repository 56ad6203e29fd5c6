"""The confidence gate: a calibrated p(melanoma) and quality flags -> benign / suspicious / uncertain."""

from __future__ import annotations

from dataclasses import dataclass, field

from .results import Decision, GateOutcome, Prediction, QualityReport

DEFAULT_CONFIDENCE = 0.99


@dataclass(frozen=True)
class Thresholds:
    """p(melanoma) below `low` is benign, at or above `high` is suspicious, between is uncertain."""

    low: float
    high: float

    def __post_init__(self):
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ValueError(f"gate thresholds must satisfy 0 <= low <= high <= 1, got {self.low}, {self.high}")


@dataclass(frozen=True)
class GateSettings:
    """What the bundle says about the gate.

    `fitted` maps a confidence level (e.g. 0.99) to thresholds fitted on validation data for it:
    below `low`, at most 1 - confidence of validation cases were melanoma and at most 1 - confidence
    of all validation melanomas fell; at or above `high`, at least `confidence` were melanoma. A confidence with no fitted entry uses the calibrated probability
    itself: low = 1 - confidence, high = confidence.
    """

    default_confidence: float = DEFAULT_CONFIDENCE
    fitted: dict[float, Thresholds] = field(default_factory=dict)
    max_member_spread: float = 0.25  # members disagreeing more than this -> uncertain

    def thresholds(self, confidence: float | None = None) -> Thresholds:
        c = self.default_confidence if confidence is None else float(confidence)
        if not 0.5 <= c < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {c}")
        for level, t in self.fitted.items():
            if abs(level - c) < 1e-9:
                return t
        return Thresholds(low=1.0 - c, high=c)

    def to_dict(self) -> dict:
        return {
            "default_confidence": self.default_confidence,
            "max_member_spread": self.max_member_spread,
            "fitted": {f"{k:g}": {"low": v.low, "high": v.high} for k, v in sorted(self.fitted.items())},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "GateSettings":
        fitted = {float(k): Thresholds(float(v["low"]), float(v["high"])) for k, v in data.get("fitted", {}).items()}
        return cls(
            default_confidence=float(data.get("default_confidence", DEFAULT_CONFIDENCE)),
            fitted=fitted,
            max_member_spread=float(data.get("max_member_spread", 0.25)),
        )


def decide(
    prediction: Prediction,
    thresholds: Thresholds,
    quality: QualityReport | None = None,
    max_member_spread: float = 1.0,
) -> GateOutcome:
    """Quality problems and member disagreement come first: a confident call needs a usable image."""
    p = prediction.p_melanoma
    if quality is not None and quality.flags:
        return GateOutcome(Decision.UNCERTAIN, f"image quality: {', '.join(quality.flags)} (p={p:.3f})")
    if prediction.spread > max_member_spread:
        return GateOutcome(
            Decision.UNCERTAIN,
            f"models disagree (spread {prediction.spread:.2f} > {max_member_spread:.2f}, p={p:.3f})",
        )
    if p >= thresholds.high:
        return GateOutcome(Decision.SUSPICIOUS, f"p(melanoma)={p:.3f} >= {thresholds.high:.3f}: refer")
    if p < thresholds.low:
        return GateOutcome(Decision.BENIGN, f"p(melanoma)={p:.3f} < {thresholds.low:.3f}")
    return GateOutcome(
        Decision.UNCERTAIN, f"p(melanoma)={p:.3f} between {thresholds.low:.3f} and {thresholds.high:.3f}"
    )
