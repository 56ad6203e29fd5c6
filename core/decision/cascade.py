"""The cascade: a small part of the ensemble first, the whole ensemble only where the outcome is not settled.

Stage 1 runs some members on some TTA views (`CascadeMargins.members` x `views`). An image stops there when
the bundle's margins say its outcome is settled: no quality flag, the intake check's picture statistics not
flagged and stage 1's intake score at most `max_intake_score`, stage 1's member spread at most `max_spread`,
and stage 1's p(malignant) below `clear_below` (no cancer suspected) or at least `suspicious_from`
(suspicious) or inside one of its `review` intervals (review; its risk band is stage 1's) of the confidence
level in use. Every other image runs the rest of
the ensemble, re-using stage 1's passes, and the full ensemble's gate decides exactly as without the cascade.

The margins are fitted on validation outputs (configs/recipes/cascade-2026.12.07.yaml) and travel in the
manifest's `cascade` section (signed with the bundle). A confidence level without margins, or a bundle
without the section, runs the full ensemble. The margins can only stop an image the gate itself would
decide the same way from stage 1's numbers: clear_below <= the level's `low`, suspicious_from >= its `high`,
review intervals inside [low, high), max_spread <= the gate's member spread limit,
max_intake_score <= the intake check's threshold.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from core.common.schema import json_keys, json_number
from core.decision.gate import level_of_key
from core.decision.results import Prediction, QualityReport

MAX_STAGE1_MEMBERS = 64
STOPPED = "stopped"  # ScreeningResult.cascade: stage 1 settled the outcome
ESCALATED = "full"  # the cascade ran, stage 1 did not settle it: the whole ensemble decided
STOP_NOTE = "cascade: decided after stage 1"


@dataclass(frozen=True)
class StopMargins:
    """One confidence level's stage-1 stops. suspicious_from None: stage 1 never stops as suspicious. review:
    [from, to) intervals of stage 1's p(malignant) where it stops as review."""

    clear_below: float
    suspicious_from: float | None = None
    review: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict:
        d: dict[str, object] = {"clear_below": self.clear_below, "suspicious_from": self.suspicious_from}
        if self.review:
            d["review"] = [list(r) for r in self.review]
        return d

    def stops_at(self, p: float) -> bool:
        if p < self.clear_below or (self.suspicious_from is not None and p >= self.suspicious_from):
            return True
        return any(lo <= p < hi for lo, hi in self.review)


@dataclass(frozen=True)
class CascadeMargins:
    """The manifest's `cascade` section: which part of the ensemble is stage 1 and when it may stop."""

    members: tuple[int, ...]  # indices into the manifest's members
    views: tuple[str, ...]  # a subset of the manifest's tta_views, in the manifest's order
    max_spread: float
    levels: dict[float, StopMargins] = field(default_factory=dict)
    max_intake_score: float | None = None  # required when the bundle has an intake check
    fitted_on: str = ""
    # `fingerprint` of the manifest the margins were fitted for; "" (hand-made, tests): not checked. A bundle
    # re-fitted or merged from this one keeps the section but not the fingerprint: its margins are not used.
    fitted_for: str = ""

    def applies_to(self, manifest) -> bool:
        return not self.fitted_for or self.fitted_for == fingerprint(manifest)

    def margins(self, confidence: float) -> StopMargins | None:
        for level, m in self.levels.items():
            if abs(level - confidence) < 1e-9:
                return m
        return None

    def to_dict(self) -> dict:
        d: dict[str, object] = {
            "members": list(self.members),
            "views": list(self.views),
            "max_spread": self.max_spread,
            "levels": {f"{k:g}": v.to_dict() for k, v in sorted(self.levels.items())},
            "fitted_on": self.fitted_on,
        }
        if self.max_intake_score is not None:
            d["max_intake_score"] = self.max_intake_score
        if self.fitted_for:
            d["fitted_for"] = self.fitted_for
        return d

    @classmethod
    def from_dict(cls, data) -> CascadeMargins:
        """Strict: unknown keys, wrong types and out-of-range numbers are refused (ValueError says which).
        Rules against the rest of the manifest (member indices, views, the gate) are `check_against`."""
        keys = {"members", "views", "max_spread", "levels", "max_intake_score", "fitted_on", "fitted_for"}
        json_keys(data, keys, {"members", "views", "max_spread", "levels"}, "the cascade section", "cascade")
        members = data["members"]
        if (
            not isinstance(members, list)
            or not 1 <= len(members) <= MAX_STAGE1_MEMBERS
            or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in members)
            or len(set(members)) != len(members)
        ):
            raise ValueError("cascade: members must be a list of distinct member indices (0, 1, ...)")
        views = data["views"]
        if (
            not isinstance(views, list)
            or not views
            or any(not isinstance(v, str) or len(v) > 32 for v in views)
            or len(set(views)) != len(views)
        ):
            raise ValueError("cascade: views must be a list of distinct TTA view names")
        levels_raw = data["levels"]
        if not isinstance(levels_raw, dict) or len(levels_raw) > 32:
            raise ValueError("cascade: levels must be an object of confidence level -> margins")
        levels = {}
        for key, value in levels_raw.items():
            level = level_of_key(key, "cascade: levels key")
            json_keys(value, {"clear_below", "suspicious_from", "review"}, {"clear_below"}, f"levels[{key}]", "cascade")
            sus = value.get("suspicious_from")
            levels[level] = StopMargins(
                clear_below=_number(value["clear_below"], f"levels[{key}].clear_below"),
                suspicious_from=None if sus is None else _number(sus, f"levels[{key}].suspicious_from"),
                review=_intervals(value.get("review", []), f"levels[{key}].review"),
            )
        intake = data.get("max_intake_score")
        fitted_on = data.get("fitted_on", "")
        if not isinstance(fitted_on, str) or len(fitted_on) > 500:
            raise ValueError("cascade: fitted_on must be a short text")
        fitted_for = data.get("fitted_for", "")
        if not isinstance(fitted_for, str) or not re.fullmatch(r"([0-9a-f]{64})?", fitted_for):
            raise ValueError("cascade: fitted_for must be a SHA-256 in hex (the manifest the margins were fitted for)")
        return cls(
            fitted_for=fitted_for,
            members=tuple(members),
            views=tuple(views),
            max_spread=_number(data["max_spread"], "max_spread"),
            levels=levels,
            max_intake_score=None if intake is None else _number(intake, "max_intake_score", 0.0, 1e9),
            fitted_on=fitted_on,
        )

    def check_against(self, manifest) -> list[str]:
        """Problems between this section and the rest of the manifest (core.inference.bundle.Manifest): stage 1 may only
        stop an image the gate would decide the same way from stage 1's numbers."""
        problems = []
        n = len(manifest.members)
        if any(i >= n for i in self.members):
            problems.append(f"cascade.members {list(self.members)} name members beyond the bundle's {n}")
        unknown = [v for v in self.views if v not in manifest.tta_views]
        if unknown:
            problems.append(f"cascade.views {unknown} are not among the bundle's tta_views")
        elif list(self.views) != [v for v in manifest.tta_views if v in self.views]:
            problems.append("cascade.views must be in the order of the bundle's tta_views")
        gate = manifest.gate
        if self.max_spread > gate.max_member_spread:
            problems.append(
                f"cascade.max_spread {self.max_spread:g} is above the gate's member spread limit "
                f"{gate.max_member_spread:g}"
            )
        if manifest.ood is not None:
            if self.max_intake_score is None:
                problems.append("cascade.max_intake_score is required: the bundle has an intake check")
            elif self.max_intake_score > manifest.ood.threshold:
                problems.append(
                    f"cascade.max_intake_score {self.max_intake_score:g} is above the intake check's threshold "
                    f"{manifest.ood.threshold:g}"
                )
            if "id" in manifest.tta_views and "id" not in self.views:
                problems.append("cascade.views must include 'id': the intake check is scored on it")
        for level, m in sorted(self.levels.items()):
            fitted = next((t for lv, t in gate.fitted.items() if abs(lv - level) < 1e-9), None)
            if fitted is None:
                problems.append(f"cascade.levels[{level:g}]: the gate has no fitted thresholds at this level")
                continue
            if m.clear_below > fitted.low:
                problems.append(
                    f"cascade.levels[{level:g}].clear_below {m.clear_below:g} is above the gate's low {fitted.low:g}"
                )
            if m.suspicious_from is not None and m.suspicious_from < fitted.high:
                problems.append(
                    f"cascade.levels[{level:g}].suspicious_from {m.suspicious_from:g} is below the gate's high "
                    f"{fitted.high:g}"
                )
            problems.extend(_review_problems(m.review, fitted, f"cascade.levels[{level:g}].review"))
        return problems


def fingerprint(manifest) -> str:
    """What the margins depend on (core.inference.bundle.Manifest): the members' files and temperatures, the views, the
    malignant classes, the gate and the intake check's thresholds."""
    ood = manifest.ood
    what = {
        "members": [[m.sha256, m.temperature] for m in manifest.members],
        "views": list(manifest.tta_views),
        "malignant": list(manifest.malignant_classes),
        "gate": manifest.gate.to_dict(),
        "ood": None if ood is None else [ood.threshold, ood.clear_threshold, ood.image_threshold],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _number(value, what: str, lo: float = 0.0, hi: float = 1.0) -> float:
    """A margin read as strictly as the gate's numbers, named "cascade" in the message."""
    return json_number(value, f"cascade: {what}", lo, hi)


def _intervals(value, what: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or len(value) > 16:
        raise ValueError(f"cascade: {what} must be a list of at most 16 [from, to] intervals")
    out = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"cascade: {what}[{i}] must be a [from, to] pair")
        lo, hi = _number(pair[0], f"{what}[{i}][0]"), _number(pair[1], f"{what}[{i}][1]")
        if not lo < hi:
            raise ValueError(f"cascade: {what}[{i}] must satisfy from < to, got {lo:g}, {hi:g}")
        out.append((lo, hi))
    return tuple(out)


def _review_problems(review, thresholds, where: str) -> list[str]:
    """Each review interval lies in [low, high): stage 1 stops there only with the outcome the gate gives it."""
    problems = []
    for lo, hi in review:
        if lo < thresholds.low or hi > thresholds.high:
            problems.append(
                f"{where} [{lo:g}, {hi:g}) is not inside the gate's review range [{thresholds.low:g}, "
                f"{thresholds.high:g})"
            )
    return problems


def settled(
    margins: CascadeMargins,
    stop: StopMargins,
    stage1: Prediction,
    quality: QualityReport | None,
    image_flagged: bool,
) -> bool:
    """True when stage 1's prediction settles the outcome under `stop` (one confidence level's margins).
    image_flagged: the intake check's picture statistics flag the image (decided without the models)."""
    if quality is not None and quality.flags:
        return False
    if image_flagged:
        return False
    if margins.max_intake_score is not None:
        score = stage1.ood_score
        if score is None or not math.isfinite(score) or score > margins.max_intake_score:
            return False
    if stage1.malignant_spread > margins.max_spread:
        return False
    return stop.stops_at(float(stage1.p_malignant))  # type: ignore[arg-type]  # set by Prediction.__post_init__
