"""One file made ready for the engine: decoded, quality-checked, preprocessed (the path training uses too),
with its thumbnail and the intake check's picture statistics. A file that cannot be used becomes an
error result with its reason; nothing here raises on bad input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.common.errors import ImageReadError
from core.common.resizing import resize_longest_side
from core.decision.results import QualityReport, ScreeningResult
from core.files.image_file import ImageLimits
from core.files.images import read_image
from core.files.scan import IMAGE_EXTENSIONS
from core.imaging.model_input import InputSpec, model_input
from core.imaging.picture_statistics import image_statistics
from core.imaging.quality import assess_quality
from core.inference.digests import sha256_file
from core.inference.manifest import Manifest

THUMBNAIL_SIZE = 160


def thumbnail_jpeg(rgb: np.ndarray, size: int = THUMBNAIL_SIZE) -> bytes:
    small = resize_longest_side(rgb, size, enlarge_with=cv2.INTER_AREA)  # the stored thumbnails, as they always were
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


@dataclass(frozen=True)
class PreparedImage:
    """One decoded, checked and preprocessed image, ready for the engine (the pixels are not kept)."""

    path: str
    sha256: str
    width: int
    height: int
    quality: QualityReport
    model_input: np.ndarray  # 3 x S x S, normalised
    thumbnail: bytes
    timings: dict[str, float]
    statistics: np.ndarray | None = None  # the intake check's picture statistics, when the bundle has them


def error_result(path: str, reason: str, sha: str | None = None) -> ScreeningResult:
    """A file that could not be screened, with its reason (and its hash when it is a readable file)."""
    if sha is None and Path(path).is_file():  # never open a pipe or device: it can wait forever
        try:
            sha = sha256_file(Path(path))
        except OSError:
            sha = None
    return ScreeningResult(path=path, sha256=sha, status="error", reason=reason)


def prepare_image(
    manifest: Manifest, path: str, limits: ImageLimits = ImageLimits()
) -> PreparedImage | ScreeningResult:
    """Decode, check quality, preprocess (thread-safe). Image problems give an error result."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        if Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
            raise ImageReadError(path, f"not an image file (extension '{Path(path).suffix or 'none'}')")
        image = read_image(path, limits)
    except ImageReadError as exc:
        return error_result(path, exc.reason)
    timings["decode"] = time.perf_counter() - t0
    try:
        t = time.perf_counter()
        quality = assess_quality(image.rgb, damage=image.damage)  # weak signs of damage -> review
        timings["quality"] = time.perf_counter() - t
        t = time.perf_counter()
        x = model_input(image.rgb, InputSpec.from_manifest(manifest))  # the path training uses too
        timings["preprocess"] = time.perf_counter() - t
        thumbnail = thumbnail_jpeg(image.rgb)
        check = manifest.ood
        statistics = image_statistics(image.rgb) if check is not None and check.has_image_part else None
    except (cv2.error, ValueError, MemoryError) as exc:
        return error_result(path, f"could not be analysed ({type(exc).__name__}: {exc})", image.sha256)
    return PreparedImage(path, image.sha256, image.width, image.height, quality, x, thumbnail, timings, statistics)
