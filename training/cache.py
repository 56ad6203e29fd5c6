"""The preprocessed-image cache (no torch).

Every image goes through core.imaging.model_input once (the app's decoder and preprocessing), is resized to
the model's square input and is stored as uint8 in one .npy file keyed by a hash of what produced
it. Training augments these squares and normalises them with core too (training.data).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from core.imaging.model_input import square_from_file
from core.imaging.preprocess import PreprocessParams
from evalkit.labelled import image_path

log = logging.getLogger(__name__)

# Bump when the cache layout, the decoder or the resize changes. 2: decoded by core.files.images.read_image
# (EXIF orientation, alpha, 16-bit, CMYK) instead of cv2.imread.
CACHE_FORMAT = 2


def _square_job(job: tuple[str, dict | None, int]) -> np.ndarray:
    """One file -> the square uint8 image a member sees before augmentation and normalisation."""
    path, params, size = job
    return square_from_file(path, PreprocessParams.from_dict(params) if params is not None else None, size)


def cache_key(params: PreprocessParams | None, input_size: int, image_ids: list[str]) -> str:
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "params": params.to_dict() if params is not None else None,
            "size": input_size,
            "images": image_ids,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def image_cache(
    image_ids: list[str],
    images_dir: str | Path,
    params: PreprocessParams | None,
    input_size: int,
    cache_root: str | Path,
    workers: int = 2,
) -> np.ndarray:
    """uint8 [N, S, S, 3] array of the preprocessed images, built once, then memory-mapped."""
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(params, input_size, image_ids)
    target = root / f"images-{input_size}-{key}.npy"
    if target.exists():
        return np.load(target, mmap_mode="r")
    partial = root / f"images-{input_size}-{key}.partial.npy"
    out = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.uint8, shape=(len(image_ids), input_size, input_size, 3)
    )
    pdict = params.to_dict() if params is not None else None
    jobs = [(str(image_path(images_dir, i)), pdict, input_size) for i in image_ids]
    start = time.time()
    log.info("building image cache %s: %d images at %d px, %d workers", target.name, len(jobs), input_size, workers)
    if workers > 1:
        with Pool(workers) as pool:
            for n, arr in enumerate(pool.imap(_square_job, jobs, chunksize=8)):
                out[n] = arr
                if (n + 1) % 1000 == 0:
                    log.info("  %d/%d images, %.1f images/s", n + 1, len(jobs), (n + 1) / (time.time() - start))
    else:
        for n, job in enumerate(jobs):
            out[n] = _square_job(job)
    out.flush()
    del out
    os.replace(partial, target)
    log.info("image cache ready in %.0f s", time.time() - start)
    # Also record what produced it, for people browsing the cache folder.
    (root / f"images-{input_size}-{key}.json").write_text(
        json.dumps({"params": pdict, "size": input_size, "n": len(image_ids), "format": CACHE_FORMAT}, indent=1)
    )
    return np.load(target, mmap_mode="r")
