"""Pooled features of a frozen backbone for a named image set, computed once and cached as npz.

The cache key is (backbone, resolution, preprocessing); images go through core's one image ->
model-input path (`core.imaging.model_input`), so an exported member sees in the app exactly these pixels.
Work is saved in chunks (resumable); a failed image is recorded with its reason and skipped.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.common.errors import ImageReadError
from core.imaging.model_input import InputSpec, model_input_from_file
from core.imaging.preprocess import PreprocessParams
from evalkit.labelled import image_path

from .backbones import MEAN, STD, backbone, native_size, pooled_features
from .sets import ImageSet, load_set

log = logging.getLogger(__name__)
PREPROCESSINGS = ("raw", "seed")  # raw: none; seed: the shipped bundles' corners + hair + CLAHE
CHUNK = 256


def preprocessing_params(name: str) -> PreprocessParams | None:
    if name not in PREPROCESSINGS:
        raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}, got {name!r}")
    return None if name == "raw" else PreprocessParams()


@dataclass(frozen=True)
class FeatureKey:
    backbone: str
    size: int
    preprocessing: str

    @property
    def tag(self) -> str:
        return f"{self.backbone}-{self.size}-{self.preprocessing}"

    def spec(self) -> InputSpec:
        return InputSpec(preprocessing_params(self.preprocessing), self.size, MEAN, STD)


def default_key(name: str = "lite0", preprocessing: str = "raw", size: int | None = None) -> FeatureKey:
    return FeatureKey(name, size or native_size(name), preprocessing)


@dataclass(frozen=True)
class Features:
    image_ids: tuple[str, ...]
    values: np.ndarray  # N x D float32
    failed: dict  # image_id -> reason


def cache_path(cache: Path, key: FeatureKey, set_name: str) -> Path:
    return Path(cache) / "features" / key.tag / f"{set_name}.npz"


def load_features(cache: Path, key: FeatureKey, set_name: str) -> Features:
    with np.load(cache_path(cache, key, set_name), allow_pickle=False) as z:
        return Features(
            tuple(str(i) for i in z["ids"]),
            z["features"].astype(np.float32),
            dict(zip((str(i) for i in z["failed_ids"]), (str(r) for r in z["failed_reasons"]))),
        )


def _save(path: Path, ids, feats, failed: dict) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        tmp,
        ids=np.array(ids, dtype=str),
        features=np.asarray(feats, np.float32),
        failed_ids=np.array(list(failed), dtype=str),
        failed_reasons=np.array(list(failed.values()), dtype=str),
    )
    os.replace(tmp, path)


def _inputs(image_set: ImageSet, ids, spec: InputSpec):
    ok, xs, failed = [], [], {}
    for iid in ids:
        try:
            xs.append(model_input_from_file(image_path(image_set.images_dir, iid), spec))
            ok.append(iid)
        except ImageReadError as exc:
            failed[iid] = exc.reason
    return ok, xs, failed


def extract(cache: Path, key: FeatureKey, image_set: ImageSet, model=None, batch: int = 32) -> Features:
    """Features of every image of the set (cached; chunk files make an interrupted run resume)."""
    final = cache_path(cache, key, image_set.name)
    if final.exists():
        return load_features(cache, key, image_set.name)
    parts = final.with_suffix("")
    parts.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else backbone(key.backbone)
    spec = key.spec()
    all_ids, all_feats, all_failed = [], [], {}
    start = time.time()
    for c, lo in enumerate(range(0, len(image_set.image_ids), CHUNK)):
        part = parts / f"chunk-{c:04d}.npz"
        if not part.exists():
            chunk_ids, chunk_feats, chunk_failed = [], [], {}
            ids = image_set.image_ids[lo : lo + CHUNK]
            for b in range(0, len(ids), batch):
                ok, xs, failed = _inputs(image_set, ids[b : b + batch], spec)
                chunk_failed.update(failed)
                if ok:
                    chunk_feats.append(pooled_features(model, torch.from_numpy(np.stack(xs))).numpy())
                    chunk_ids += ok
            feats = np.concatenate(chunk_feats) if chunk_feats else np.zeros((0, 0), np.float32)
            _save(part, chunk_ids, feats, chunk_failed)
            done = min(lo + CHUNK, len(image_set.image_ids))
            log.info(
                "%s %s: %d/%d images, %.1f images/s",
                key.tag,
                image_set.name,
                done,
                len(image_set.image_ids),
                (done - lo) / max(time.time() - start, 1e-9),
            )
            start = time.time()
        with np.load(part, allow_pickle=False) as z:
            all_ids += [str(i) for i in z["ids"]]
            if len(z["features"]):
                all_feats.append(z["features"])
            all_failed.update(zip((str(i) for i in z["failed_ids"]), (str(r) for r in z["failed_reasons"])))
    _save(final, all_ids, np.concatenate(all_feats), all_failed)
    for p in parts.iterdir():
        p.unlink()
    parts.rmdir()
    return load_features(cache, key, image_set.name)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Cache a frozen backbone's pooled features per image set.")
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--backbone", default="lite0")
    ap.add_argument("--size", type=int, default=None, help="input size (default: the backbone's native one)")
    ap.add_argument("--preprocessing", default="raw", choices=PREPROCESSINGS)
    ap.add_argument("--sets", required=True, help="comma-separated set names (training.generalist.sets)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    key = default_key(args.backbone, args.preprocessing, args.size)
    model = backbone(key.backbone)
    for name in args.sets.split(","):
        f = extract(args.cache, key, load_set(name), model)
        log.info(
            "%s %s: %d images, %d failed -> %s",
            key.tag,
            name,
            len(f.image_ids),
            len(f.failed),
            cache_path(args.cache, key, name),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
