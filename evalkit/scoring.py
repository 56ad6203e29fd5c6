"""Scoring: images -> TTA-averaged member logits, the intake check's scores and the picture statistics (the
report's cache), through core exactly as the app screens (core.screening.preparing.prepare_image, then the
ensemble), or read from a raw-outputs file computed elsewhere (--raw-npz)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.common.errors import ImageReadError, MelaScreenError
from core.decision.results import QualityReport
from core.files.images import read_image
from core.imaging.model_input import InputSpec, model_input
from core.imaging.quality import assess_quality
from core.inference.bundle import Bundle
from core.inference.ensemble import Ensemble
from core.inference.manifest import Manifest
from core.screening.preparing import PreparedImage, prepare_image
from evalkit.labelled import LabelledCase, image_path

CACHE_FILE = "raw_outputs.npz"
# 2: "identity" (the bundle identity) instead of "fingerprint"; 3: the intake check's scores and picture statistics
# (a format-2 cache is still read: its images are gated without the intake finding, and the run says so).
CACHE_FORMAT = 3
READABLE_FORMATS = (2, 3)


class EvaluationError(MelaScreenError):
    """The labelled set, the images or the cache cannot be used as asked."""


def bundle_identity(bundle: Bundle) -> str:
    """What identifies the bundle's outputs: core.inference.bundle's identity (a hash over every file)."""
    return str(bundle.identity)


def sample_cases(cases: list[LabelledCase], limit: int | None, seed: int = 0) -> list[LabelledCase]:
    """A seeded random subset in the original order: label files are often sorted by diagnosis,
    so the first N rows could hold a single class."""
    if limit is None or limit >= len(cases):
        return list(cases)
    keep = np.sort(np.random.default_rng(seed).choice(len(cases), size=limit, replace=False))
    return [cases[i] for i in keep]


@dataclass(frozen=True)
class ScoredSet:
    """What the ensemble said about each image, before calibration: the report's cache."""

    image_ids: tuple[str, ...]
    member_logits: np.ndarray  # M x N x K, TTA-averaged, before temperature
    quality: tuple[QualityReport, ...]
    failed: dict[str, str] = field(default_factory=dict)  # image_id -> why it could not be scored
    identity: str = ""
    ood: np.ndarray | None = None  # M x N intake scores of the id view; None: no intake check (or not cached)
    statistics: np.ndarray | None = None  # N x d picture statistics; None: the check has no picture part

    def merged(self, other: ScoredSet) -> ScoredSet:
        return ScoredSet(
            self.image_ids + other.image_ids,
            np.concatenate([self.member_logits, other.member_logits], axis=1),
            self.quality + other.quality,
            {**self.failed, **other.failed},
            self.identity or other.identity,
            _joined(self.ood, len(self.image_ids), other.ood, len(other.image_ids), axis=1),
            _joined(self.statistics, len(self.image_ids), other.statistics, len(other.image_ids), axis=0),
        )

    def subset(self, image_ids: Sequence[str]) -> ScoredSet:
        """The scored images among `image_ids`, in that order, and their failures."""
        where = {iid: i for i, iid in enumerate(self.image_ids)}
        idx = [where[i] for i in image_ids if i in where]
        return ScoredSet(
            tuple(self.image_ids[i] for i in idx),
            self.member_logits[:, idx],
            tuple(self.quality[i] for i in idx),
            {i: self.failed[i] for i in image_ids if i in self.failed},
            self.identity,
            None if self.ood is None else self.ood[:, idx],
            None if self.statistics is None else self.statistics[idx],
        )


def _joined(a: np.ndarray | None, na: int, b: np.ndarray | None, nb: int, axis: int) -> np.ndarray | None:
    """Two parts of an optional per-image array; a part of no image takes the other's, a missing one drops both."""
    if a is None and na == 0:
        return b
    if b is None and nb == 0:
        return a
    if a is None or b is None:
        return None
    return np.concatenate([a, b], axis=axis)


def empty_scored(n_members: int, n_classes: int, identity: str) -> ScoredSet:
    return ScoredSet((), np.zeros((n_members, 0, n_classes), np.float32), (), {}, identity)


def save_scored(path: str | Path, scored: ScoredSet) -> None:
    """Atomic write (temp file, then rename), so an interrupted run never leaves a broken cache."""
    path = Path(path)
    q = scored.quality
    tmp = path.with_name(path.name + ".tmp")
    intake: dict[str, Any] = {}  # the intake check's parts, when scored
    if scored.ood is not None:
        intake["ood"] = scored.ood.astype(np.float64)
    if scored.statistics is not None:
        intake["statistics"] = scored.statistics.astype(np.float64)
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            format=np.array(CACHE_FORMAT),
            identity=np.array(scored.identity),
            image_ids=np.array(scored.image_ids, dtype=str),
            member_logits=scored.member_logits.astype(np.float32),
            quality_measures=np.array(
                [[r.sharpness, r.brightness, r.dark_fraction, r.bright_fraction] for r in q], dtype=np.float64
            ).reshape(len(q), 4),
            quality_flags=np.array([";".join(r.flags) for r in q], dtype=str),
            failed_ids=np.array(list(scored.failed), dtype=str),
            failed_reasons=np.array(list(scored.failed.values()), dtype=str),
            **intake,
        )
    os.replace(tmp, path)


def load_scored(path: str | Path) -> ScoredSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) not in READABLE_FORMATS:
                raise EvaluationError(
                    f"{path}: cache format {int(z['format'])} is not {CACHE_FORMAT}; run without --reuse"
                )
            quality = tuple(
                QualityReport(float(a), float(b), float(c), float(d), tuple(f for f in str(flags).split(";") if f))
                for (a, b, c, d), flags in zip(z["quality_measures"], z["quality_flags"])
            )
            return ScoredSet(
                tuple(str(i) for i in z["image_ids"]),
                z["member_logits"].astype(np.float32),
                quality,
                {str(i): str(r) for i, r in zip(z["failed_ids"], z["failed_reasons"])},
                str(z["identity"]),
                z["ood"] if "ood" in z.files else None,
                z["statistics"] if "statistics" in z.files else None,
            )
    except (OSError, KeyError, ValueError) as exc:
        raise EvaluationError(f"{path}: the cached outputs cannot be read ({exc}); run without --reuse") from None


def load_raw_npz(path: str | Path, bundle: Bundle) -> ScoredSet:
    """Raw outputs computed elsewhere: arrays `ids` (N), `logits` (N x members x classes, TTA-averaged,
    before temperature) and optionally `dx`; no quality report travels with them, so every image
    counts as of good quality (the gate's quality branch is not exercised). An evaluation's own
    raw_outputs.npz is read too, quality included, whatever bundle made it (same members assumed)."""
    m = bundle.manifest
    try:
        with np.load(path, allow_pickle=False) as z:
            ours = "member_logits" in z.files and "image_ids" in z.files
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: not a raw-outputs file ({exc})") from None
    if ours:  # an evaluation's own cache (quality reports included), e.g. to score a re-fitted gate
        scored = load_scored(path)
        expected = (len(m.members), len(scored.image_ids), len(m.class_names))
        if scored.member_logits.shape != expected:
            raise EvaluationError(
                f"{path}: outputs of {scored.member_logits.shape[0]} members x "
                f"{scored.member_logits.shape[2]} classes do not fit this bundle"
            )
        return replace(scored, identity=bundle_identity(bundle))
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = tuple(str(i) for i in z["ids"])
            logits = np.asarray(z["logits"], dtype=np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise EvaluationError(f"{path}: not a raw-outputs file with arrays ids and logits ({exc})") from None
    expected = (len(ids), len(m.members), len(m.class_names))
    if logits.shape != expected:
        raise EvaluationError(
            f"{path}: logits have shape {logits.shape}; this bundle needs {expected} (images x members x classes)"
        )
    if len(set(ids)) != len(ids):
        raise EvaluationError(f"{path}: an image id appears more than once")
    quality = tuple(QualityReport(float("nan"), float("nan"), float("nan"), float("nan")) for _ in ids)
    return ScoredSet(ids, np.ascontiguousarray(logits.transpose(1, 0, 2)), quality, {}, bundle_identity(bundle))


def check_raw_labels(path: str | Path, scored: ScoredSet, cases: Sequence[LabelledCase]) -> ScoredSet:
    """The raw file's `dx` (when it has one) must agree with the labels; labelled images the file
    lacks are reported as not scored instead of silently leaving the set smaller."""
    try:
        with np.load(path, allow_pickle=False) as z:
            dx = dict(zip((str(i) for i in z["ids"]), (str(d) for d in z["dx"]))) if "dx" in z.files else {}
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc})") from None
    wrong = [c.image_id for c in cases if c.image_id in dx and c.dx and dx[c.image_id] != c.dx]
    if wrong:
        raise EvaluationError(
            f"{path}: {len(wrong)} images have another diagnosis than in the labels (e.g. {wrong[0]}: "
            f"{dx[wrong[0]]!r} vs the labels' {next(c.dx for c in cases if c.image_id == wrong[0])!r}); wrong file?"
        )
    have = set(scored.image_ids)
    missing = {c.image_id: f"no raw output in {Path(path).name}" for c in cases if c.image_id not in have}
    return replace(scored, failed={**scored.failed, **missing})


def load_case(path: Path, spec: InputSpec) -> tuple[np.ndarray, QualityReport]:
    """One file -> (model input 3 x S x S, quality), through core.imaging.model_input as the app does."""
    image = read_image(path)
    quality = assess_quality(image.rgb)
    try:
        x = model_input(image.rgb, spec)
    except (cv2.error, ValueError, MemoryError) as exc:
        raise ImageReadError(str(path), f"could not be analysed ({type(exc).__name__}: {exc})") from None
    return x, quality


def _prepare(manifest: Manifest, path: Path) -> PreparedImage | str:
    """One file through the app's own preparation (decode, damage and quality checks, model input, picture
    statistics); the reason when it cannot be used."""
    prepared = prepare_image(manifest, str(path))
    return prepared if isinstance(prepared, PreparedImage) else prepared.reason


def _scored_part(bundle: Bundle, ensemble: Ensemble, batch: list[str], prepared: list) -> ScoredSet:
    """The ensemble's outputs (no heat maps) for the images of a batch that could be prepared."""
    m = bundle.manifest
    ok = [(iid, p) for iid, p in zip(batch, prepared) if not isinstance(p, str)]
    failed = {iid: p for iid, p in zip(batch, prepared) if isinstance(p, str)}
    if ok:
        raw = ensemble.run(np.stack([p.model_input for _, p in ok]), with_cam=False)
        logits, ood = raw.member_logits, raw.ood
    else:
        logits = np.zeros((len(m.members), 0, len(m.class_names)), np.float32)
        ood = None if m.ood is None else np.zeros((len(m.members), 0))
    with_statistics = m.ood is not None and m.ood.has_image_part
    statistics = np.array([p.statistics for _, p in ok], np.float64).reshape(len(ok), -1) if with_statistics else None
    return ScoredSet(
        tuple(i for i, _ in ok),
        logits,
        tuple(p.quality for _, p in ok),
        failed,
        bundle_identity(bundle),
        ood,
        statistics,
    )


def score_images(
    bundle: Bundle,
    ensemble: Ensemble,
    image_ids: Sequence[str],
    images_dir: Path,
    batch_size: int = 8,
    threads: int = 2,
    on_batch: Callable[[ScoredSet, int], None] | None = None,
) -> ScoredSet:
    """Run the ensemble (no heat maps) over the images, `batch_size` per session run, each image prepared as the
    app prepares it (core.screening.preparing.prepare_image).

    Decoding and preprocessing run on `threads` threads (OpenCV releases the GIL), one batch
    ahead of the ensemble. `on_batch(scored_so_far, n_done)` is called after each batch.
    """
    m = bundle.manifest
    result = empty_scored(len(m.members), len(m.class_names), bundle_identity(bundle))
    batches = [list(image_ids[i : i + batch_size]) for i in range(0, len(image_ids), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:

        def submit(batch):
            return [pool.submit(_prepare, m, image_path(images_dir, iid)) for iid in batch]

        pending = submit(batches[0]) if batches else []
        for b, batch in enumerate(batches):
            prepared = [f.result() for f in pending]
            pending = submit(batches[b + 1]) if b + 1 < len(batches) else []
            result = result.merged(_scored_part(bundle, ensemble, batch, prepared))
            if on_batch is not None:
                on_batch(result, sum(len(x) for x in batches[: b + 1]))
    return result
