"""Screening one image or a batch: files -> images -> preprocessing -> ensemble -> gate -> store.

`Screener.screen` is a generator: each step yields a `Progress` with the result of one file, so a
command line or a GUI worker can draw progress and stop between images. A file that cannot be
used becomes an error result with its reason; the batch goes on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from .bundle import Bundle, sha256_file
from .ensemble import Ensemble, EnsembleSettings
from .errors import ImageReadError
from .gate import decide
from .images import IMAGE_EXTENSIONS, ImageLimits, assess_quality, read_image, scan_candidates
from .preprocess import preprocess, to_model_input
from .results import ScreeningResult

THUMBNAIL_SIZE = 160


@dataclass(frozen=True)
class ScreeningSettings:
    confidence: float | None = None  # None: the bundle's default (0.99)
    provider: str = "auto"
    threads: int = 0
    recursive: bool = False
    with_cam: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)


RATE_MIN_ELAPSED_S = 1.0  # below this a files-per-second figure says more about the first file than the run


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    result: ScreeningResult
    elapsed_s: float

    @property
    def rate(self) -> float | None:
        """Files per second so far; None while too little time has passed to tell (a first file that
        fails fast would otherwise show as thousands of images per second)."""
        if self.elapsed_s <= 0 or (self.elapsed_s < RATE_MIN_ELAPSED_S and self.done < self.total):
            return None
        return self.done / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate else None


@dataclass(frozen=True)
class RunSummary:
    run_id: int | None
    total: int
    errors: int
    counts: dict[str, int]  # decision -> number of files
    reused: int  # results taken from earlier runs instead of screened again
    cancelled: bool
    elapsed_s: float


def thumbnail_jpeg(rgb: np.ndarray, size: int = THUMBNAIL_SIZE) -> bytes:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


class Screener:
    """Holds the ensemble (sessions made once) and the gate thresholds for a batch."""

    def __init__(self, bundle: Bundle, settings: ScreeningSettings = ScreeningSettings()):
        self.bundle = bundle
        self.settings = settings
        self.ensemble = Ensemble(bundle, EnsembleSettings(provider=settings.provider, threads=settings.threads))
        gate = bundle.manifest.gate
        self.thresholds = gate.thresholds(settings.confidence)
        self.max_member_spread = gate.max_member_spread

    @property
    def provider_in_use(self) -> str:
        return self.ensemble.provider_in_use

    @property
    def result_key(self) -> str:
        """Stored results are reused only for the same models AND the same gate, so changing the
        confidence setting re-decides images instead of showing their old decision."""
        t = self.thresholds
        gate = f"{t.low:.6g}:{t.high:.6g}:{self.max_member_spread:.6g}"
        return hashlib.sha256(f"{self.bundle.fingerprint}|{gate}".encode()).hexdigest()[:16]

    def screen_image(self, path: str | Path) -> tuple[ScreeningResult, bytes]:
        """One file -> (result, thumbnail JPEG bytes). Image problems give an error result, never raise."""
        path = str(path)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            if Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
                raise ImageReadError(path, f"not an image file (extension '{Path(path).suffix or 'none'}')")
            image = read_image(path, self.settings.limits)
        except ImageReadError as exc:
            return self._error(path, exc.reason), b""
        timings["decode"] = time.perf_counter() - t0
        m = self.bundle.manifest
        try:
            t = time.perf_counter()
            quality = assess_quality(image.rgb)
            timings["quality"] = time.perf_counter() - t
            t = time.perf_counter()
            x = to_model_input(preprocess(image.rgb, m.preprocessing), m.input_size, m.mean, m.std)
            timings["preprocess"] = time.perf_counter() - t
            t = time.perf_counter()
            raw = self.ensemble.run(x[None], with_cam=self.settings.with_cam)
            timings["inference"] = time.perf_counter() - t
            t = time.perf_counter()
            pred = self.ensemble.to_predictions(raw, [(image.height, image.width)])[0]
            timings["cam"] = time.perf_counter() - t
        except (cv2.error, ValueError, MemoryError) as exc:
            return self._error(path, f"could not be analysed ({type(exc).__name__}: {exc})", image.sha256), b""
        outcome = decide(pred, self.thresholds, quality, self.max_member_spread)
        result = ScreeningResult(
            path=path,
            sha256=image.sha256,
            status="ok",
            decision=outcome.decision,
            reason=outcome.reason,
            p_melanoma=pred.p_melanoma,
            member_p=pred.member_p,
            spread=pred.spread,
            class_probs=pred.class_probs,
            quality=quality,
            width=image.width,
            height=image.height,
            cam=pred.cam,
            timings=timings,
        )
        return result, thumbnail_jpeg(image.rgb)

    @staticmethod
    def _error(path: str, reason: str, sha: str | None = None) -> ScreeningResult:
        if sha is None:
            try:
                sha = sha256_file(Path(path))
            except OSError:
                sha = None
        return ScreeningResult(path=path, sha256=sha, status="error", reason=reason)

    def screen(
        self,
        paths: Iterable[str | Path],
        store=None,
        run_id: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Progress]:
        """Screen files one by one. With a store, each result is committed before it is yielded,
        and an image already screened with this bundle is taken from the store, not recomputed."""
        paths = [str(p) for p in paths]
        fingerprint = self.result_key
        start = time.perf_counter()
        for i, path in enumerate(paths, start=1):
            if should_stop is not None and should_stop():
                return
            result = None
            if store is not None:
                try:
                    sha = sha256_file(Path(path))
                except OSError:
                    sha = None
                cached = store.find_result(sha, fingerprint) if sha else None
                if cached is not None:
                    result = replace(cached, path=path, from_store=True)
                    store.add_result(run_id, result, fingerprint)
            if result is None:
                result, thumb = self.screen_image(path)
                if store is not None:
                    store.add_result(run_id, result, fingerprint, thumbnail=thumb or None)
            yield Progress(done=i, total=len(paths), result=result, elapsed_s=time.perf_counter() - start)


def screen_folder(
    screener: Screener,
    folder: str | Path,
    store=None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[list[ScreeningResult], RunSummary]:
    """Screen every file in a folder as one run; returns the results and a summary.

    Every file found is reported, including files that are not images, so nothing in the folder
    goes unmentioned. The run is marked finished or cancelled in the store even on an exception.
    """
    paths = scan_candidates(folder, recursive=screener.settings.recursive)
    run_id = None
    if store is not None:
        m = screener.bundle.manifest
        run_id = store.start_run(
            str(Path(folder).resolve()),
            m.name,
            m.version,
            screener.result_key,
            {
                "confidence": screener.settings.confidence or m.gate.default_confidence,
                "provider": screener.provider_in_use,
                "recursive": screener.settings.recursive,
            },
        )
    results: list[ScreeningResult] = []
    start = time.perf_counter()
    status = "failed"
    try:
        for progress in screener.screen(paths, store, run_id, should_stop):
            results.append(progress.result)
            if on_progress is not None:
                on_progress(progress)
        status = "cancelled" if len(results) < len(paths) else "finished"
    finally:
        summary = summarize(results, run_id, cancelled=status != "finished", elapsed_s=time.perf_counter() - start)
        if store is not None:
            store.finish_run(run_id, status, summary_dict(summary))
    return results, summary


def summarize(results: list[ScreeningResult], run_id=None, cancelled=False, elapsed_s=0.0) -> RunSummary:
    counts = {"benign": 0, "suspicious": 0, "uncertain": 0}
    for r in results:
        if r.ok and r.decision is not None:
            counts[r.decision.value] += 1
    return RunSummary(
        run_id=run_id,
        total=len(results),
        errors=sum(1 for r in results if not r.ok),
        counts=counts,
        reused=sum(1 for r in results if r.from_store),
        cancelled=cancelled,
        elapsed_s=elapsed_s,
    )


def summary_dict(s: RunSummary) -> dict:
    return {
        "total": s.total,
        "errors": s.errors,
        "reused": s.reused,
        "elapsed_s": round(s.elapsed_s, 2),
        **s.counts,
    }
