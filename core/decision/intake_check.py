"""The intake check: is this an image like the dermoscopy images the models were trained on?

Each member of a bundle that has the check returns a third output, `ood`: the class-conditional
Mahalanobis distance of its pooled features from the training images, divided by its median on
training images (written by export/ood.py). The ensemble's score is the mean over members. The
bundle's manifest carries two thresholds fitted on validation images: above `threshold` (about 1%
of validation images) an image is "unfamiliar" and never cleared; above `clear_threshold` (far
beyond any validation image) it is not a dermoscopy image at all (a photo, a screenshot, a page).

Deep features alone miss images with little structure (flat colours, text, gradients: their
features sit near the training mean), so the check has a second part on the decoded picture
itself: 13 colour and texture statistics (core.imaging.picture_statistics), scored by Mahalanobis distance
from the training images' statistics (mean and precision travel in the manifest). Either part
over its threshold flags the image; `image_clear_threshold` (beyond every training image) marks
it as not dermoscopy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.common.schema import json_keys, json_number
from core.decision.vocabulary import FAMILIAR, NOT_DERMOSCOPY_IMAGE, UNFAMILIAR, intake_level

OOD_OUTPUT = "ood"
_FIELDS = (
    "method", "threshold", "clear_threshold", "validation_flagged", "fitted_on",
    "image_mean", "image_precision", "image_threshold", "image_clear_threshold",
)  # fmt: skip
IMAGE_STATISTICS = 13
# Limits past which a check could never flag what it is for (issue 26): the feature score is a distance
# divided by its median on training images, so 100 is a hundred times a typical training image's; the
# picture score is a squared Mahalanobis distance over 13 statistics (about 13 for a typical one).
MAX_FEATURE_THRESHOLD = 100.0
MAX_IMAGE_THRESHOLD = 1e4


def _finite(name: str, value) -> float:
    return json_number(value, f"ood.{name}", -math.inf, math.inf)


@dataclass(frozen=True)
class IntakeCheck:
    """The manifest's `ood` section."""

    threshold: float
    clear_threshold: float
    method: str = "mahalanobis"
    validation_flagged: float = 0.0  # share of validation images the whole check flagged when fitted
    fitted_on: str = ""  # which images the statistics and thresholds came from, in words
    # The picture-statistics part (None: the bundle's check has only the feature part).
    image_mean: tuple[float, ...] | None = None
    image_precision: tuple[tuple[float, ...], ...] | None = None
    image_threshold: float | None = None
    image_clear_threshold: float | None = None

    def __post_init__(self):
        self._check_feature_part()
        image_part = (self.image_mean, self.image_precision, self.image_threshold, self.image_clear_threshold)
        if any(v is None for v in image_part) and not all(v is None for v in image_part):
            raise ValueError("ood: image_mean, image_precision, image_threshold and image_clear_threshold go together")
        if self.image_mean is not None:
            self._check_image_part()

    def _check_feature_part(self) -> None:
        for name in ("threshold", "clear_threshold", "validation_flagged"):
            _finite(name, getattr(self, name))
        if not 0 < self.threshold <= self.clear_threshold <= 1e9:
            raise ValueError("ood thresholds must satisfy 0 < threshold <= clear_threshold <= 1e9")
        if self.threshold > MAX_FEATURE_THRESHOLD:
            raise ValueError(
                f"ood.threshold {self.threshold:g} is above {MAX_FEATURE_THRESHOLD:g} (times the training median): "
                "the check would flag nothing"
            )
        if not 0 <= self.validation_flagged <= 1:
            raise ValueError("ood.validation_flagged must be a share between 0 and 1")
        if self.method != "mahalanobis":
            raise ValueError(f"ood.method {self.method!r} is not known; this MelaScreen knows 'mahalanobis'")
        if not isinstance(self.fitted_on, str) or len(self.fitted_on) > 500:
            raise ValueError("ood.fitted_on must be a short text")

    def _check_image_part(self) -> None:
        """The picture-statistics part, given whole: finite statistics, a usable precision and thresholds;
        stored as tuples of floats."""
        mean = [_finite("image_mean", v) for v in self.image_mean]  # type: ignore[union-attr]  # checked by the caller
        rows = self.image_precision
        if len(mean) != IMAGE_STATISTICS or len(rows) != IMAGE_STATISTICS:  # type: ignore[arg-type]  # the image part comes whole
            raise ValueError(f"ood.image_mean and image_precision need {IMAGE_STATISTICS} statistics")
        for row in rows:  # type: ignore[union-attr]  # the image part comes whole
            if not isinstance(row, (list, tuple)) or len(row) != IMAGE_STATISTICS:
                raise ValueError(f"ood.image_precision must be {IMAGE_STATISTICS} x {IMAGE_STATISTICS}")
            for v in row:
                _finite("image_precision", v)
        lo, hi = (
            _finite("image_threshold", self.image_threshold),
            _finite("image_clear_threshold", self.image_clear_threshold),
        )
        if not 0 < lo <= hi <= 1e9:
            raise ValueError("ood image thresholds must satisfy 0 < image_threshold <= image_clear_threshold <= 1e9")
        if lo > MAX_IMAGE_THRESHOLD:
            raise ValueError(
                f"ood.image_threshold {lo:g} is above {MAX_IMAGE_THRESHOLD:g}: the picture check would flag nothing"
            )
        precision = np.asarray(rows, dtype=np.float64)
        # A distance needs a symmetric positive definite precision: with zeros or a negative direction the
        # score of any picture can be 0 or below, and the check would never flag it.
        if not np.allclose(precision, precision.T, rtol=1e-6, atol=1e-9) or not (
            np.linalg.eigvalsh((precision + precision.T) / 2).min() > 0
        ):
            raise ValueError("ood.image_precision must be symmetric positive definite (an inverse covariance)")
        object.__setattr__(self, "image_mean", tuple(mean))
        object.__setattr__(self, "image_precision", tuple(tuple(float(v) for v in row) for row in rows))  # type: ignore[union-attr]  # the image part comes whole

    @property
    def has_image_part(self) -> bool:
        return self.image_mean is not None

    def image_score(self, statistics: np.ndarray) -> float:
        """Squared Mahalanobis distance of a picture's statistics from the training images'."""
        d = np.asarray(statistics, np.float64) - np.asarray(self.image_mean)
        return float(d @ np.asarray(self.image_precision) @ d)

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in _FIELDS}
        if not self.has_image_part:
            for name in _FIELDS[5:]:
                del out[name]
        else:
            out["image_mean"] = list(self.image_mean)  # type: ignore[arg-type]  # has_image_part: the image statistics are set
            out["image_precision"] = [list(r) for r in self.image_precision]  # type: ignore[union-attr]  # has_image_part: the image statistics are set
        return out

    @classmethod
    def from_dict(cls, data) -> IntakeCheck:
        json_keys(data, set(_FIELDS), {"threshold", "clear_threshold"}, "the ood section", "ood")
        if not isinstance(data.get("image_precision", []), list):
            raise ValueError("ood.image_precision must be a list of rows")
        return cls(**data)


@dataclass(frozen=True)
class IntakeFinding:
    """What the check found for one image."""

    score: float  # the feature part's score (ensemble mean of the members' `ood` outputs)
    level: str  # "familiar", "unfamiliar" or "not_dermoscopy"
    image_score: float | None = None  # the picture-statistics part's score, when the check has it

    @property
    def flagged(self) -> bool:
        return self.level != FAMILIAR.code

    @property
    def reason(self) -> str:
        """The words said first in a flagged image's reason (core.decision.vocabulary); "" when familiar."""
        try:
            return intake_level(self.level).reason
        except ValueError:  # a level this version does not know says nothing, as it always did
            return ""


def ensemble_score(member_scores: np.ndarray) -> float:
    """member_scores: one normalised score per member (id view) -> the ensemble's score."""
    scores = np.asarray(member_scores, dtype=np.float64)
    return float(scores.mean()) if scores.size and np.all(np.isfinite(scores)) else math.inf


def assess(score: float, check: IntakeCheck, statistics: np.ndarray | None = None) -> IntakeFinding:
    """Either part over its threshold flags the image; a score that is not finite (NaN from a broken
    input) counts as unfamiliar, never as familiar."""
    image = check.image_score(statistics) if check.has_image_part and statistics is not None else None
    if not math.isfinite(score) or (image is not None and not math.isfinite(image)):
        return IntakeFinding(score=score, level=UNFAMILIAR.code, image_score=image)
    if score > check.clear_threshold or (image is not None and image > check.image_clear_threshold):  # type: ignore[operator]  # image is scored only with the image part
        return IntakeFinding(score=score, level=NOT_DERMOSCOPY_IMAGE.code, image_score=image)
    if score > check.threshold or (image is not None and image > check.image_threshold):  # type: ignore[operator]  # image is scored only with the image part
        return IntakeFinding(score=score, level=UNFAMILIAR.code, image_score=image)
    return IntakeFinding(score=score, level=FAMILIAR.code, image_score=image)
