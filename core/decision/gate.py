"""The confidence gate: calibrated p(malignant) and quality flags -> no cancer suspected / review / suspicious.

p(malignant) is the sum of the malignant classes' calibrated probabilities (the bundle's
`malignant_classes`, e.g. mel + bcc + akiec). A bundle written before malignancy triage declares
no malignant classes: its p(malignant) is p(melanoma) and the gate says so ("melanoma-only gate").

Each outcome carries its reason as a code (which rule decided, `GateOutcome.reason_code`) with the numbers
its words need; the words a clinician reads (and the store keeps) come from core.decision.vocabulary. The
numbers behind the decision go to `GateOutcome.details`.

The intake check (core/decision/intake_check.py) comes before any outcome: an image unlike the training
images is never cleared and never called suspicious on the models' word alone; it goes to review with the
reason first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.common.schema import json_keys, json_number
from core.decision.intake_check import IntakeCheck, IntakeFinding
from core.decision.results import Decision, GateOutcome, Prediction, QualityReport
from core.decision.vocabulary import (
    BAND_CODES,
    NOT_DERMOSCOPY_IMAGE,
    GateReason,
    ReasonCode,
    intake_level,
    quality_words,
    reason_text,
)

DEFAULT_CONFIDENCE = 0.99
DEFAULT_MAX_MEMBER_SPREAD = 0.25  # members disagreeing more than this -> review
MELANOMA_ONLY_NOTE = "melanoma-only gate (bundle written before malignancy triage)"


@dataclass(frozen=True)
class RiskScope:
    """What the gate's probability is a probability of, in the words its reasons use. Every bundle since
    malignancy triage: malignancy; an older bundle (upgraded at load, core.inference) declares only
    melanoma, and its reasons and legends say so."""

    probability: str = "p(malignant)"  # the number's name in details and legends
    risk_word: str = "malignant"  # "malignant 3%"
    cancer: str = "skin cancer"  # "skin cancer not ruled out"
    note: str = ""  # said after the numbers (empty for current bundles)
    shows_melanoma: bool = True  # p(melanoma) listed beside it (for a melanoma-only bundle it is the same number)


MALIGNANCY = RiskScope()
MELANOMA_ONLY = RiskScope("p(melanoma)", "melanoma", "melanoma", MELANOMA_ONLY_NOTE, False)

# A gate read from a bundle must be able to hold a case (issue 26): it never clears a p(malignant) of
# CLEAR_BELOW_MAX or more (the models then call malignant more likely than not), and its review range
# [low, high) is at least MIN_REVIEW_WIDTH wide (or low is 0: it clears nothing).
CLEAR_BELOW_MAX = 0.5
MIN_REVIEW_WIDTH = 0.05
_LEVEL_KEY = re.compile(r"0\.[0-9]{1,12}")  # how to_dict writes a confidence level ("0.99"): ASCII digits only
# The one range of a gate confidence (settings, --threshold, fitted levels, the export's fits): [0.5, 1).
CONFIDENCE_RANGE = (0.5, 1.0)


def check_confidence(value, what: str = "confidence") -> float:
    """`value` as a float in CONFIDENCE_RANGE (NaN refused), else ValueError naming `what`."""
    lo, hi = CONFIDENCE_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) < hi:
        raise ValueError(f"{what} must be in [{lo:g}, {hi:g}), got {value}")
    return float(value)


def level_of_key(key, where: str) -> float:
    """A confidence level as a manifest writes it as a key ("0.99", ASCII digits only), else ValueError:
    `where` names the object ('gate: fitted key "x" is not a confidence level such as "0.99"')."""
    if not isinstance(key, str) or not _LEVEL_KEY.fullmatch(key):
        raise ValueError(f'{where} {str(key)[:20]!r} is not a confidence level such as "0.99"')
    return float(key)


@dataclass(frozen=True)
class Thresholds:
    """p(malignant) below `low`: no cancer suspected; at or above `high`: suspicious; between: review.

    Inside review, `moderate_from` and `high_risk_from` (low <= moderate_from <= high_risk_from <= high)
    split the range into risk bands: low below moderate_from, high at or above high_risk_from,
    moderate between. None: no bands fitted for this level (old bundles, unfitted levels).
    """

    low: float
    high: float
    moderate_from: float | None = None
    high_risk_from: float | None = None

    def __post_init__(self):
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ValueError(f"gate thresholds must satisfy 0 <= low <= high <= 1, got {self.low}, {self.high}")
        if (self.moderate_from is None) != (self.high_risk_from is None):
            raise ValueError(
                "gate band cut points come in pairs: give both moderate_from and high_risk_from, or neither"
            )
        if self.moderate_from is not None and not (self.low <= self.moderate_from <= self.high_risk_from <= self.high):  # type: ignore[operator]  # the cut points come in pairs (checked above)
            raise ValueError(
                "gate band cut points must satisfy low <= moderate_from <= high_risk_from <= high, got "
                f"{self.low}, {self.moderate_from}, {self.high_risk_from}, {self.high}"
            )

    @property
    def has_bands(self) -> bool:
        return self.moderate_from is not None

    def band(self, p: float) -> str | None:
        """The risk band of a p(malignant) inside review, or None without fitted bands."""
        if not self.has_bands:
            return None
        if p >= self.high_risk_from:  # type: ignore[operator]  # has_bands: both band edges are set
            return "high"
        if p >= self.moderate_from:  # type: ignore[operator]  # has_bands: both band edges are set
            return "moderate"
        return "low"

    def to_dict(self) -> dict:
        d: dict[str, object] = {"low": self.low, "high": self.high}
        if self.has_bands:
            d["bands"] = {"moderate": self.moderate_from, "high": self.high_risk_from}
        return d

    @classmethod
    def from_dict(cls, data, where: str = "thresholds") -> Thresholds:
        json_keys(data, {"low", "high", "bands"}, {"low", "high"}, where, "gate")
        low = json_number(data["low"], f"gate: {where}.low")
        high = json_number(data["high"], f"gate: {where}.high")
        moderate_from = high_risk_from = None
        if "bands" in data:
            b = data["bands"]
            json_keys(b, {"moderate", "high"}, {"moderate", "high"}, f"{where}.bands", "gate")
            moderate_from = json_number(b["moderate"], f"gate: {where}.bands.moderate")
            high_risk_from = json_number(b["high"], f"gate: {where}.bands.high")
        try:
            return cls(low, high, moderate_from, high_risk_from)
        except ValueError as exc:
            raise ValueError(f"gate: {where}: {exc}") from None


@dataclass(frozen=True)
class GateSettings:
    """What the bundle says about the gate.

    `fitted` maps a confidence level (e.g. 0.99) to thresholds fitted on validation data for it
    (export.calibrate.fit_malignancy_gate): below `low` fall at most 1 - confidence of all validation
    malignancies AND of all validation melanomas; at or above `high`, at least `confidence` of the
    cases are malignant; band cut points split review by its validation malignancy rate. A
    confidence with no fitted entry uses the calibrated probability itself: low = 1 - confidence,
    high = confidence, no bands.
    """

    default_confidence: float = DEFAULT_CONFIDENCE
    fitted: dict[float, Thresholds] = field(default_factory=dict)
    max_member_spread: float = DEFAULT_MAX_MEMBER_SPREAD  # members disagreeing more than this -> review

    def __post_init__(self):
        check_confidence(self.default_confidence, "gate: default_confidence")
        for level in self.fitted:
            check_confidence(level, "gate: fitted confidence levels")
        if not 0.0 <= self.max_member_spread <= 1.0:
            raise ValueError(f"gate: max_member_spread must be in [0, 1], got {self.max_member_spread}")

    def thresholds(self, confidence: float | None = None) -> Thresholds:
        c = check_confidence(self.default_confidence if confidence is None else float(confidence))
        for level, t in self.fitted.items():
            if abs(level - c) < 1e-9:
                return t
        # Unfitted: the probability itself, with review kept MIN_REVIEW_WIDTH wide (c near 0.5 would clear
        # everything below c and leave nothing to hold).
        return Thresholds(low=max(0.0, min(1.0 - c, c - MIN_REVIEW_WIDTH)), high=c)

    def to_dict(self) -> dict:
        return {
            "default_confidence": self.default_confidence,
            "max_member_spread": self.max_member_spread,
            "fitted": {f"{k:g}": v.to_dict() for k, v in sorted(self.fitted.items())},
        }

    @classmethod
    def from_dict(cls, data) -> GateSettings:
        """Strict: every key known, every number finite and in range; ValueError says which and why.

        Keys may be left out (their defaults apply: a bundle with no fitted gate is valid), but an
        unknown key is refused: a misspelt "max_member_spead" must not silently become 0.25.
        """
        json_keys(data, {"default_confidence", "fitted", "max_member_spread"}, set(), "the gate section", "gate")
        fitted_raw = data.get("fitted", {})
        if not isinstance(fitted_raw, dict):
            raise ValueError(f"gate: fitted must be a JSON object of confidence -> thresholds, got {fitted_raw!r}")
        fitted = {}
        for key, value in fitted_raw.items():
            level = level_of_key(key, "gate: fitted key")
            lo, hi = CONFIDENCE_RANGE
            if not lo <= level < hi:
                raise ValueError(f"gate: fitted confidence level {key!r} must be in [{lo:g}, {hi:g})")
            if level in fitted:  # "0.990" and "0.99": one level, two sets of thresholds
                raise ValueError(f"gate: fitted confidence level {key!r} is given twice (as {level:g})")
            fitted[level] = Thresholds.from_dict(value, f"fitted[{key}]")
        settings = cls(
            default_confidence=json_number(
                data.get("default_confidence", DEFAULT_CONFIDENCE), "gate: default_confidence", *CONFIDENCE_RANGE
            ),
            fitted=fitted,
            max_member_spread=json_number(
                data.get("max_member_spread", DEFAULT_MAX_MEMBER_SPREAD), "gate: max_member_spread"
            ),
        )
        settings.check_can_hold()
        return settings

    def check_can_hold(self) -> None:
        """ValueError unless every fitted level, and the default confidence, gives a gate that can hold a
        case: low < CLEAR_BELOW_MAX, high - low >= MIN_REVIEW_WIDTH unless low is 0 (nothing cleared), and a
        stricter level never clears more nor calls suspicious more than a looser one. (Band cut points lie
        in [low, high] by Thresholds' own rule; a cut at high is an empty high band.)"""
        for level, t in sorted(self.fitted.items()):
            where = f"fitted[{level:g}]"
            if not t.low < CLEAR_BELOW_MAX:
                raise ValueError(
                    f"gate: {where}.low {t.low:g} would clear cases the models call more likely malignant than "
                    f"not; it must be below {CLEAR_BELOW_MAX:g}"
                )
            if t.low > 0 and t.high - t.low < MIN_REVIEW_WIDTH - 1e-12:  # low 0: nothing is cleared
                raise ValueError(
                    f"gate: {where}: low {t.low:g} and high {t.high:g} leave review narrower than "
                    f"{MIN_REVIEW_WIDTH:g}; review must be able to hold the cases between"
                )
        levels = sorted(self.fitted)
        for loose, strict in zip(levels, levels[1:]):
            a, b = self.fitted[loose], self.fitted[strict]
            if b.low > a.low + 1e-12 or b.high < a.high - 1e-12:
                raise ValueError(
                    f"gate: fitted level {strict:g} clears more or calls suspicious more than level {loose:g} "
                    f"(low {b.low:g} vs {a.low:g}, high {b.high:g} vs {a.high:g}); levels must be monotonic"
                )
        c = self.default_confidence
        if not any(abs(level - c) < 1e-9 for level in self.fitted) and 2 * c - 1 < MIN_REVIEW_WIDTH - 1e-12:
            raise ValueError(
                f"gate: default_confidence {c:g} has no fitted thresholds, and 1 - {c:g} .. {c:g} leaves review "
                f"narrower than {MIN_REVIEW_WIDTH:g}; use at least {0.5 + MIN_REVIEW_WIDTH / 2:g}"
            )


# The outcome each reason leads to; every other reason holds the image for review.
_DECISION_OF = {
    ReasonCode.SUSPICIOUS_CLASS: Decision.SUSPICIOUS,
    ReasonCode.POSSIBLE_CLASS: Decision.SUSPICIOUS,
    ReasonCode.SUSPICIOUS_RISK: Decision.SUSPICIOUS,
    ReasonCode.CLEARED: Decision.NO_CANCER_SUSPECTED,
}


def decide(
    prediction: Prediction,
    thresholds: Thresholds,
    quality: QualityReport | None = None,
    max_member_spread: float = DEFAULT_MAX_MEMBER_SPREAD,
    scope: RiskScope = MALIGNANCY,
    intake: IntakeFinding | None = None,
    intake_check: IntakeCheck | None = None,
) -> GateOutcome:
    """A confident call needs a usable image the models know. In this order: not a dermoscopy image,
    quality flags, unlike the training images, member disagreement, then the thresholds. Every image
    stopped before the thresholds goes to review, its band still computed from p(malignant) so the
    worklist order holds.

    scope: what p(malignant) is a probability of, in words (the manifest's `risk_scope`; MELANOMA_ONLY for
    a bundle written before malignancy triage: its p(malignant) is p(melanoma), and the reason says so).
    intake: the intake check's finding (None: the bundle has no check); intake_check: its thresholds,
    only for the details.
    """
    p = float(prediction.p_malignant)  # type: ignore[arg-type]  # Prediction.__post_init__ sets p_malignant
    flags = quality.flags if quality is not None else ()
    code = _reason_code(prediction, p, thresholds, flags, max_member_spread, intake)
    likely = prediction.likely_class
    why = GateReason(
        code,
        p,
        scope.risk_word,
        scope.cancer,
        likely_class=likely,
        likely_p=prediction.class_probs.get(likely, 0.0) if likely else 0.0,
        malignant_class=prediction.malignant_class,
        quality_flags=flags,
        unfamiliar=intake is not None and intake.flagged,
    )
    decision = _DECISION_OF.get(code, Decision.REVIEW)
    # Review keeps its risk band (the worklist order); a picture that is not dermoscopy is not a case: none.
    band = thresholds.band(p) if decision is Decision.REVIEW and code is not ReasonCode.NOT_DERMOSCOPY else None
    details = gate_details(prediction, thresholds, quality, max_member_spread, scope, intake, intake_check)
    return GateOutcome(decision, reason_text(why), band if band in BAND_CODES else None, details, why)


def _reason_code(
    prediction: Prediction,
    p: float,
    thresholds: Thresholds,
    flags: tuple[str, ...],
    max_member_spread: float,
    intake: IntakeFinding | None,
) -> ReasonCode:
    """The gate's rules, first match wins (decide's order)."""
    if intake is not None and intake.level == NOT_DERMOSCOPY_IMAGE.code:
        return ReasonCode.NOT_DERMOSCOPY
    if quality_words(flags):
        return ReasonCode.QUALITY
    if intake is not None and intake.flagged:
        return ReasonCode.UNFAMILIAR
    if prediction.malignant_spread > max_member_spread:
        return ReasonCode.DISAGREE
    if p >= thresholds.high:
        mal = prediction.malignant_class
        if mal and mal == prediction.likely_class:
            return ReasonCode.SUSPICIOUS_CLASS
        return ReasonCode.POSSIBLE_CLASS if mal else ReasonCode.SUSPICIOUS_RISK
    if p < thresholds.low:
        return ReasonCode.CLEARED
    return ReasonCode.NOT_RULED_OUT


def gate_details(
    prediction: Prediction,
    thresholds: Thresholds,
    quality: QualityReport | None,
    max_member_spread: float,
    scope: RiskScope,
    intake: IntakeFinding | None,
    intake_check: IntakeCheck | None,
) -> str:
    """The numbers behind a decision, for a "details" click (stored with the result)."""
    p = float(prediction.p_malignant)  # type: ignore[arg-type]  # Prediction.__post_init__ sets p_malignant
    numbers = [
        f"{scope.probability}={p:.3f}",
        f"p(melanoma)={prediction.p_melanoma:.3f}" if scope.shows_melanoma else "",
        f"no cancer suspected below {thresholds.low:.3f}",
        f"suspicious from {thresholds.high:.3f}",
    ]
    if thresholds.has_bands:
        numbers.append(
            f"review bands: moderate from {thresholds.moderate_from:.3f}, high from {thresholds.high_risk_from:.3f}"
        )
    numbers.append(f"member spread {prediction.malignant_spread:.3f} (limit {max_member_spread:.2f})")
    if quality is not None and quality.flags:
        numbers.append(f"quality flags: {', '.join(quality.flags)}")
    if intake is not None:
        numbers += _intake_numbers(intake, intake_check)
    numbers.append(scope.note)
    return "; ".join(n for n in numbers if n)


def _intake_numbers(intake: IntakeFinding, check: IntakeCheck | None) -> list[str]:
    limits = (
        f"; unfamiliar above {check.threshold:.3g}, not dermoscopy above {check.clear_threshold:.3g}"
        if check is not None
        else ""
    )
    numbers = [f"intake score {intake.score:.3g} ({intake_level(intake.level).name}{limits})"]
    if intake.image_score is not None and check is not None and check.has_image_part:
        numbers.append(
            f"picture statistics score {intake.image_score:.3g} (unfamiliar above "
            f"{check.image_threshold:.3g}, not dermoscopy above {check.image_clear_threshold:.3g})"
        )
    return numbers
