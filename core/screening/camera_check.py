"""The camera check: do a run's pictures, taken together, look like the training images?

The intake check (core/decision/intake_check.py) judges one picture at a time and lets through most pictures of a
new dermoscope: each one alone is plausible. Taken together they are not: their average colour and
texture sit away from the training images'. This check uses only what the bundle already carries
(the intake check's 13 picture statistics, their training mean and precision, and the per-image
threshold) and decoded pixels: no model runs.

The measure is the squared Mahalanobis distance of the run's mean statistics from the training
mean, less the part that sampling noise alone gives a batch of n pictures (trace(P S) / n, S the
batch's own covariance): an estimate of how far the run's average picture sits from the training
images' average, roughly independent of the run's size. It fires above SHIFT_LIMIT, or when more
than UNFAMILIAR_SHARE_LIMIT of the pictures are over the per-image threshold.

SHIFT_LIMIT was set on batches of 50 from the training sources (benchmarks/bench_camera_check.py
--calibration): the largest in a first draw of 500 batches each from the HAM10000 validation split,
ISIC 2017 training and ISIC 2017 validation images was 3.64 (ISIC 2017 validation); the limit is
1.25 times that. The
training mean mixes HAM10000 and ISIC 2017, so a source of the training data alone sits at 0.2
(HAM10000) to 2 (ISIC 2017). The factor was chosen with the held-out sets' rates in view (README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common.errors import ImageReadError
from core.decision.intake_check import IMAGE_STATISTICS, IntakeCheck
from core.files.images import read_image
from core.imaging.picture_statistics import image_statistics

SHIFT_LIMIT = 4.5
UNFAMILIAR_SHARE_LIMIT = 0.20
MIN_IMAGES = 30  # fewer pictures: the average is too noisy to judge a camera by
MAX_IMAGES = 100  # a run's check decodes at most this many pictures (seeded sample): 5-6 s (README)
MENTION_Z = 0.5  # a statistic is named when the run's average moves it this many training SDs
# Each statistic of core.imaging.picture_statistics.image_statistics, in order:
# (name, words when higher, words when lower).
STATISTIC_WORDS: tuple[tuple[str, str, str], ...] = (
    ("lightness", "brighter", "darker"),
    ("red-green", "redder", "greener"),
    ("yellow-blue", "yellower", "bluer"),
    ("lightness contrast", "more contrast", "less contrast"),
    ("red-green spread", "more varied red-green colour", "more even red-green colour"),
    ("yellow-blue spread", "more varied yellow-blue colour", "more even yellow-blue colour"),
    ("sharpness", "sharper", "blurrier"),
    ("edge strength", "more fine texture", "smoother"),
    ("grey share", "more colourless area", "less colourless area"),
    ("skin-colour share", "more skin-coloured area", "less skin-coloured area"),
    ("dominant-colour share", "more plain background", "less plain background (closer crops)"),
    ("grey-level entropy", "a wider range of grey levels", "a narrower range of grey levels"),
    ("saturated share", "more saturated colour", "less saturated colour"),
)
assert len(STATISTIC_WORDS) == IMAGE_STATISTICS
# The statistics in four kinds, so the words name each way the pictures differ, not six ways of one:
# colour cast, texture and sharpness, colour variety, framing.
STATISTIC_GROUPS: tuple[tuple[int, ...], ...] = ((0, 1, 2), (3, 6, 7, 11), (4, 5, 8, 12), (9, 10))
WORDS_PER_GROUP = 2
CONSEQUENCE = "expect more reviews and weaker ranking"


@dataclass(frozen=True)
class CameraCheck:
    """The verdict on one run's pictures, with the measures behind it."""

    n_images: int  # pictures measured
    shift: float  # noise-corrected squared Mahalanobis distance of the run's average picture
    unfamiliar_share: float  # share of pictures over the intake check's per-image threshold
    deviations: tuple[tuple[int, float], ...]  # (statistic index, shift in training SDs), largest first
    shift_limit: float = SHIFT_LIMIT
    share_limit: float = UNFAMILIAR_SHARE_LIMIT
    min_images: int = MIN_IMAGES

    @property
    def enough(self) -> bool:
        return self.n_images >= self.min_images

    @property
    def fired(self) -> bool:
        return self.enough and (self.shift > self.shift_limit or self.unfamiliar_share > self.share_limit)

    @property
    def differences(self) -> str:
        """ "more contrast, sharper, yellower, greener, ...": in each kind of statistic, the ones that moved
        most (at least MENTION_Z training SDs), the kind that moved most first."""
        z = dict(self.deviations)
        groups = []
        for group in STATISTIC_GROUPS:
            moved = sorted((i for i in group if abs(z.get(i, 0.0)) >= MENTION_Z), key=lambda i: -abs(z[i]))
            if moved:
                groups.append((abs(z[moved[0]]), moved[:WORDS_PER_GROUP]))
        groups.sort(key=lambda g: -g[0])
        words = [STATISTIC_WORDS[i][1 if z[i] > 0 else 2] for _, moved in groups for i in moved]
        return ", ".join(words) or "in no single measure, but in their combination"

    @property
    def measures(self) -> str:
        moved = "; ".join(f"{STATISTIC_WORDS[i][0]} {z:+.1f} SD" for i, z in self.deviations[:6])
        return (
            f"{self.n_images} pictures; shift {self.shift:.2f} (limit {self.shift_limit:g}); "
            f"{100 * self.unfamiliar_share:.0f}% unlike the training images one by one "
            f"(limit {100 * self.share_limit:.0f}%); average picture vs training: {moved}"
        )

    @property
    def words(self) -> str:
        if not self.enough:
            return (
                f"camera check not done: {self.n_images} pictures could be measured, it needs at least "
                f"{self.min_images} to judge a camera"
            )
        if self.fired:
            return f"these images differ from the training images ({self.differences}): {CONSEQUENCE}"
        return "these images look like the training images taken together (camera check passed)"

    def to_dict(self) -> dict:
        return {
            "n_images": self.n_images,
            "shift": round(self.shift, 4),
            "unfamiliar_share": round(self.unfamiliar_share, 4),
            "deviations": [[i, round(z, 3)] for i, z in self.deviations],
            "shift_limit": self.shift_limit,
            "share_limit": self.share_limit,
            "min_images": self.min_images,
            "fired": self.fired,
            "words": self.words,
            "measures": self.measures,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CameraCheck:
        return cls(
            int(d["n_images"]),
            float(d["shift"]),
            float(d["unfamiliar_share"]),
            tuple((int(i), float(z)) for i, z in d["deviations"]),
            float(d.get("shift_limit", SHIFT_LIMIT)),
            float(d.get("share_limit", UNFAMILIAR_SHARE_LIMIT)),
            int(d.get("min_images", MIN_IMAGES)),
        )


def check_statistics(statistics: np.ndarray, check: IntakeCheck) -> CameraCheck:
    """statistics: N x 13 (core.imaging.picture_statistics.image_statistics of each picture) -> the run's verdict."""
    if not check.has_image_part:
        raise ValueError("the bundle's intake check has no picture statistics: the camera check needs them")
    x = np.asarray(statistics, dtype=np.float64).reshape(-1, IMAGE_STATISTICS)
    x = x[np.all(np.isfinite(x), axis=1)]
    n = len(x)
    if n == 0:
        return CameraCheck(0, 0.0, 0.0, ())
    mean, precision = np.asarray(check.image_mean), np.asarray(check.image_precision)
    d = x.mean(axis=0) - mean
    noise = float(np.trace(precision @ np.cov(x.T))) / n if n > 1 else 0.0
    shift = float(d @ precision @ d) - noise
    scores = np.einsum("ij,jk,ik->i", x - mean, precision, x - mean)
    sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    z = d / sd
    order = np.argsort(-np.abs(z), kind="stable")
    return CameraCheck(
        n_images=n,
        shift=shift,
        unfamiliar_share=float(np.mean(scores > check.image_threshold)),
        deviations=tuple((int(i), float(z[i])) for i in order),
    )


def sample_paths(paths: Sequence, limit: int = MAX_IMAGES, seed: int = 0) -> list:
    """At most `limit` of the paths, a seeded sample in their order (a folder is often sorted by date)."""
    if len(paths) <= limit:
        return list(paths)
    keep = np.sort(np.random.default_rng(seed).choice(len(paths), size=limit, replace=False))
    return [paths[i] for i in keep]


def statistics_of_files(paths: Sequence, limit: int = MAX_IMAGES) -> np.ndarray:
    """The picture statistics of a sample of the files (unreadable files and non-images skipped:
    the run reports them itself)."""
    rows = []
    for p in sample_paths(list(paths), limit):
        try:
            rows.append(image_statistics(read_image(p).rgb))
        except (ImageReadError, ValueError, MemoryError, OSError):
            continue
    return np.array(rows, dtype=np.float64).reshape(-1, IMAGE_STATISTICS)


def check_files(paths: Sequence, check: IntakeCheck | None) -> CameraCheck | None:
    """The camera check of a run's files; None when the bundle's intake check has no picture statistics."""
    if check is None or not check.has_image_part:
        return None
    from core.files.scan import IMAGE_EXTENSIONS

    images = [
        p
        for p in paths
        if Path(p).suffix.lower() in IMAGE_EXTENSIONS and Path(p).suffix.lower() not in (".dcm", ".dicom")
    ]
    return check_statistics(statistics_of_files(images), check)
