"""Screening one image or a batch: files -> images -> preprocessing -> ensemble -> gate -> store.

`Screener.screen` is a generator: each step yields a `Progress` with the result of one file, in input
order, so a command line or a GUI worker can draw progress and stop between images. A file that
cannot be used becomes an error result with its reason; the batch goes on.

The batch is a pipeline: worker threads decode, quality-check and preprocess the next files while the
engine runs on the current ones. Work ahead is bounded (`RunSettings.batch_images` and `workers`), so
memory stays flat on a folder of any size, and the store is only touched from the caller's thread.

Settings come in three lifetimes: session settings (`EnsembleSettings`: engine, provider, precision,
threads) build the engines once per `Screener`; gate settings (`GateChoice`: the confidence) and run
settings (`RunSettings`: recursion, limits, heat maps, batching) are passed to each run.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from core.common.errors import ImageReadError
from core.decision.cascade import ESCALATED, STOP_NOTE, STOPPED, StopMargins, settled
from core.decision.gate import Thresholds, decide
from core.decision.intake_check import IntakeFinding, assess, image_statistics
from core.decision.results import Prediction, QualityReport, ScreeningResult
from core.files.identity import IdentityIssue, IdentitySettings
from core.files.image_file import ImageLimits
from core.files.images import read_image
from core.files.scan import IMAGE_EXTENSIONS, scan_candidates
from core.imaging.model_input import InputSpec, model_input
from core.imaging.quality import assess_quality
from core.inference.bundle import Bundle, sha256_file
from core.inference.engines import EngineInfo
from core.inference.ensemble import Ensemble, EnsembleSettings, RawOutputs
from core.records.patients import PatientFiling
from core.records.runs import owner_stamp

THUMBNAIL_SIZE = 160
# Part of every stored result's key: a result stored before the image checks changed (e.g. the damage
# checks of core/files/damage.py) is never reused, so a damaged file cleared by an older build is screened again.
IMAGE_CHECKS_VERSION = "checks-2"


@dataclass(frozen=True)
class GateChoice:
    """Gate settings, chosen per run: changing them re-decides images, never rebuilds the engines."""

    confidence: float | None = None  # None: the bundle's default (0.99)
    auto_clearing: bool = True  # False: no image is "no cancer suspected" (core/screening/auto_clearing.py)
    held_reason: str = ""  # why clearing is off, said on each image it holds back
    # The cascade (core/decision/cascade.py): stage 1 settles the clear cases when the bundle has margins for this
    # confidence; False (and any bundle without margins): every image runs the whole ensemble.
    cascade: bool = False


@dataclass(frozen=True)
class RunSettings:
    """Settings of one run."""

    recursive: bool = False
    with_cam: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)
    batch_images: int = 1  # images per engine call (each with all its TTA views)
    workers: int = 1  # threads decoding, checking and preprocessing ahead of the engine
    intake: IdentitySettings = field(default_factory=IdentitySettings)  # patient identities (sidecar, layout)


RATE_MIN_ELAPSED_S = 1.0  # below this a files-per-second figure says more about the first file than the run


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None  # None: screening an iterable of unknown length
    result: ScreeningResult
    elapsed_s: float

    @property
    def rate(self) -> float | None:
        """Files per second so far; None while too little time has passed to tell (a first file that
        fails fast would otherwise show as thousands of images per second)."""
        finished = self.total is not None and self.done >= self.total
        if self.elapsed_s <= 0 or (self.elapsed_s < RATE_MIN_ELAPSED_S and not finished):
            return None
        return self.done / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate and self.total is not None else None


@dataclass(frozen=True)
class RunSummary:
    run_id: int | None
    total: int
    errors: int
    counts: dict[str, int]  # decision -> number of files
    reused: int  # results taken from earlier runs instead of screened again
    cancelled: bool
    elapsed_s: float
    intake_issues: tuple[IdentityIssue, ...] = ()  # bad sidecar rows, filing conflicts: reported, never dropped
    intake_flagged: int = 0  # images the intake check found unlike the training images (all sent to review)
    clearing: dict | None = None  # the camera check and whether the run could clear (core/screening/auto_clearing.py)


def thumbnail_jpeg(rgb: np.ndarray, size: int = THUMBNAIL_SIZE) -> bytes:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
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


@dataclass(frozen=True)
class _Ran:
    """One image's prediction, the raw outputs it came from (image `index` of `raw`) and the cascade's word
    on it: "" (no cascade), STOPPED or ESCALATED."""

    prediction: Prediction
    raw: RawOutputs
    index: int
    cascade: str


@dataclass
class _Pending:
    """A file in the pipeline's window: a stored result, a preparation under way, or a duplicate of a
    file ahead of it (looked up in the store once that one is stored)."""

    path: str
    sha256: str | None = None
    stored: ScreeningResult | None = None
    prepared: Future | None = None


def result_key(bundle: Bundle, gate: GateChoice = GateChoice()) -> str:
    """Stored results are reused only for the same models AND the same gate, so changing the
    confidence setting re-decides images instead of showing their old decision. The intake check's
    thresholds live in the manifest, which the bundle's identity covers (like every file of it)."""
    gate_settings = bundle.manifest.gate
    t = gate_settings.thresholds(gate.confidence)
    gate_text = f"{t.low:.6g}:{t.high:.6g}:{gate_settings.max_member_spread:.6g}"
    if t.has_bands:  # bands are part of what a stored result says
        gate_text += f":{t.moderate_from:.6g}:{t.high_risk_from:.6g}"
    if not gate.auto_clearing:  # a held result is not a cleared one: never reused for the other
        gate_text += ":held"
    if cascade_margins(bundle, gate) is not None:  # stage-1 results are not the full ensemble's numbers
        gate_text += ":cascade"
    return hashlib.sha256(f"{bundle.identity}|{gate_text}|{IMAGE_CHECKS_VERSION}".encode()).hexdigest()[:16]


def cascade_margins(bundle: Bundle, gate: GateChoice = GateChoice()) -> StopMargins | None:
    """The stage-1 margins a run with `gate` uses; None: the whole ensemble runs for every image."""
    section = bundle.manifest.cascade
    if not gate.cascade or section is None or not section.applies_to(bundle.manifest):
        return None
    confidence = gate.confidence if gate.confidence is not None else bundle.manifest.gate.default_confidence
    return section.margins(confidence)


def cascade_status(bundle: Bundle, gate: GateChoice = GateChoice()) -> str:
    """In words, for the command line and the app: whether the cascade runs, and why not."""
    m = bundle.manifest
    if not gate.cascade:
        return "cascade off: the whole ensemble screens every image"
    if m.cascade is None:
        return "cascade on, but this bundle has no cascade margins: the whole ensemble screens every image"
    if not m.cascade.applies_to(m):
        return (
            "cascade on, but this bundle's cascade margins were fitted for other members or another gate: the "
            "whole ensemble screens every image"
        )
    if cascade_margins(bundle, gate) is None:
        return (
            "cascade on, but this bundle has no cascade margins at this confidence: the whole ensemble screens "
            "every image"
        )
    return (
        f"cascade on: stage 1 runs {len(m.cascade.members)} of {len(m.members)} members x {len(m.cascade.views)} "
        f"of {len(m.tta_views)} views; the whole ensemble runs where stage 1 does not settle the outcome"
    )


class Screener:
    """Holds the ensemble (engines made once); gate and run settings come with each call."""

    def __init__(self, bundle: Bundle, session: EnsembleSettings = EnsembleSettings()):
        self.bundle = bundle
        self.session = session
        self.ensemble = Ensemble(bundle, session)
        self.max_member_spread = bundle.manifest.gate.max_member_spread

    @property
    def engine(self) -> EngineInfo:
        return self.ensemble.engine

    @property
    def engine_in_use(self) -> str:
        """What really runs, e.g. "OpenVINO 2026.4.1 CPU f32"."""
        return self.ensemble.engine_in_use

    @property
    def provider_in_use(self) -> str:
        return self.ensemble.provider_in_use

    def thresholds(self, gate: GateChoice = GateChoice()) -> Thresholds:
        return self.bundle.manifest.gate.thresholds(gate.confidence)

    def intake_finding(self, prediction: Prediction, statistics: np.ndarray | None = None) -> IntakeFinding | None:
        """What the bundle's intake check says of one image; None when the bundle has no check."""
        check = self.bundle.manifest.ood
        if check is None or prediction.ood_score is None:
            return None
        return assess(prediction.ood_score, check, statistics)

    def result_key(self, gate: GateChoice = GateChoice()) -> str:
        return result_key(self.bundle, gate)

    # -- one image, in steps ------------------------------------------------------------------

    def prepare(self, path: str, limits: ImageLimits = ImageLimits()) -> PreparedImage | ScreeningResult:
        """Decode, check quality, preprocess (thread-safe). Image problems give an error result."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            if Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
                raise ImageReadError(path, f"not an image file (extension '{Path(path).suffix or 'none'}')")
            image = read_image(path, limits)
        except ImageReadError as exc:
            return self._error(path, exc.reason)
        timings["decode"] = time.perf_counter() - t0
        m = self.bundle.manifest
        try:
            t = time.perf_counter()
            quality = assess_quality(image.rgb, damage=image.damage)  # weak signs of damage -> review
            timings["quality"] = time.perf_counter() - t
            t = time.perf_counter()
            x = model_input(image.rgb, InputSpec.from_manifest(m))  # the path training uses too
            timings["preprocess"] = time.perf_counter() - t
            thumbnail = thumbnail_jpeg(image.rgb)
            check = m.ood
            statistics = image_statistics(image.rgb) if check is not None and check.has_image_part else None
        except (cv2.error, ValueError, MemoryError) as exc:
            return self._error(path, f"could not be analysed ({type(exc).__name__}: {exc})", image.sha256)
        return PreparedImage(path, image.sha256, image.width, image.height, quality, x, thumbnail, timings, statistics)

    def _picture_flagged(self, statistics: np.ndarray | None) -> bool:
        """The intake check's picture statistics flag the image (no model involved)."""
        check = self.bundle.manifest.ood
        if check is None or not check.has_image_part or statistics is None:
            return False
        score = check.image_score(statistics)
        return not np.isfinite(score) or score > check.image_threshold  # type: ignore[operator]  # image part: set

    def _run(self, images: list[PreparedImage], with_cam: bool, stop: StopMargins | None) -> list[_Ran]:
        """The models' part of `infer`: each image's prediction and the raw outputs it came from. With `stop`
        (the cascade's margins), stage 1 runs first and only the images it does not settle run the rest."""
        inputs = np.stack([p.model_input for p in images])
        sizes = [(p.height, p.width) for p in images]
        ens = self.ensemble
        if stop is None or self.bundle.manifest.cascade is None:
            raw = ens.run(inputs, with_cam=with_cam)
            return [_Ran(pred, raw, i, "") for i, pred in enumerate(ens.to_predictions(raw, sizes))]
        section = self.bundle.manifest.cascade
        first = ens.passes(inputs, with_cam, section.members, section.views)
        numbers = ens.to_predictions(replace(ens.raw_outputs(first), cams=None))  # no heat maps yet
        done = [
            i
            for i, (p, pred) in enumerate(zip(images, numbers))
            if settled(section, stop, pred, p.quality, self._picture_flagged(p.statistics))
        ]
        rest = [i for i in range(len(images)) if i not in done]
        ran: dict[int, _Ran] = {}
        for index, passes, state in (
            (done, first.rows(done) if done else None, STOPPED),
            (rest, ens.complete(inputs[rest], first.rows(rest), with_cam) if rest else None, ESCALATED),
        ):
            if passes is None:
                continue
            raw = ens.raw_outputs(passes)
            for j, pred in enumerate(ens.to_predictions(raw, [sizes[i] for i in index])):
                ran[index[j]] = _Ran(pred, raw, j, state)
        return [ran[i] for i in range(len(images))]

    def infer(
        self,
        images: list[PreparedImage],
        thresholds: Thresholds,
        with_cam: bool = True,
        stop: StopMargins | None = None,
    ) -> list[tuple[ScreeningResult, bytes]]:
        """Run the engine once on several prepared images, then decide each: (result, thumbnail) in order.
        stop: the cascade's margins at this confidence (`cascade_margins`); None: the whole ensemble."""
        try:
            t = time.perf_counter()
            ran = self._run(images, with_cam, stop)
            inference = (time.perf_counter() - t) / len(images)
            cam = 0.0  # heat maps are composed with the predictions (inside the time above)
        except (cv2.error, ValueError, MemoryError) as exc:
            if len(images) > 1:  # one image's problem must not cost the others their result
                return [r for p in images for r in self.infer([p], thresholds, with_cam, stop)]
            p = images[0]
            return [(self._error(p.path, f"could not be analysed ({type(exc).__name__}: {exc})", p.sha256), b"")]
        m = self.bundle.manifest
        melanoma_only = bool(getattr(m, "melanoma_only_gate", False))
        out = []
        for p, r in zip(images, ran):
            pred = r.prediction
            intake = self.intake_finding(pred, p.statistics)
            outcome = decide(pred, thresholds, p.quality, self.max_member_spread, melanoma_only, intake, m.ood)
            details = outcome.details
            if r.cascade == STOPPED and m.cascade is not None:
                details += (
                    f"; {STOP_NOTE} ({len(m.cascade.members)} of {len(m.members)} members x "
                    f"{len(m.cascade.views)} of {len(m.tta_views)} views)"
                )
            result = ScreeningResult(
                path=p.path,
                sha256=p.sha256,
                status="ok",
                decision=outcome.decision,
                reason=outcome.reason,
                p_melanoma=pred.p_melanoma,
                member_p=pred.member_p,
                spread=pred.spread,
                class_probs=pred.class_probs,
                quality=p.quality,
                width=p.width,
                height=p.height,
                cam=pred.cam,
                timings={**p.timings, "inference": inference, "cam": cam},
                p_malignant=pred.p_malignant,
                likely_class=pred.likely_class,
                malignant_class=pred.malignant_class,
                band=outcome.band,
                details=details,
                ood_score=pred.ood_score,
                intake=None if intake is None else intake.level,
                cascade=r.cascade,
            )
            out.append((self._with_named_cam(result, r.raw, r.index, (p.height, p.width)), p.thumbnail))
        return out

    def _with_named_cam(self, result: ScreeningResult, raw, i: int, image_hw: tuple[int, int]) -> ScreeningResult:
        """The result with the heat map of the class its outcome names (core.inference.class_cam.named_class), composed
        from the maps of every class this run kept (no model run); the positive class's is `cam` itself."""
        if result.cam is None or raw.class_cams is None or result.intake == "not_dermoscopy":
            return result
        from core.decision.results import named_class

        positive = self.bundle.manifest.positive_class
        named = named_class(result, positive)
        if named not in self.bundle.manifest.class_names:
            return result
        cam = result.cam if named == positive else self.ensemble.class_cam(raw, i, named, image_hw)
        return replace(result, named_cam=cam, named_cam_class=named)

    def screen_image(
        self, path: str | Path, gate: GateChoice = GateChoice(), run: RunSettings = RunSettings()
    ) -> tuple[ScreeningResult, bytes]:
        """One file -> (result, thumbnail JPEG bytes). Image problems give an error result, never raise."""
        prepared = self.prepare(str(path), run.limits)
        if isinstance(prepared, ScreeningResult):
            return prepared, b""
        return self.infer([prepared], self.thresholds(gate), run.with_cam, cascade_margins(self.bundle, gate))[0]

    @staticmethod
    def _error(path: str, reason: str, sha: str | None = None) -> ScreeningResult:
        if sha is None and Path(path).is_file():  # never open a pipe or device: it can wait forever
            try:
                sha = sha256_file(Path(path))
            except OSError:
                sha = None
        return ScreeningResult(path=path, sha256=sha, status="error", reason=reason)

    # -- a batch ------------------------------------------------------------------------------

    def screen(
        self,
        paths: Iterable[str | Path],
        store=None,
        run_id: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        gate: GateChoice = GateChoice(),
        run: RunSettings = RunSettings(),
        total: int | None = None,
    ) -> Iterator[Progress]:
        """Screen files in order. With a store, each result is committed (one transaction) before it is
        yielded, and an image already screened with these models and gate is taken from the store, not
        recomputed. `should_stop` is checked before every result: once it says stop, nothing more is
        yielded or stored. `total` defaults to len(paths) when paths has a length."""
        thresholds = self.thresholds(gate)  # a bad confidence fails here, before any work
        key = self.result_key(gate)
        confidence = gate.confidence if gate.confidence is not None else self.bundle.manifest.gate.default_confidence
        if total is None and isinstance(paths, Sized):
            total = len(paths)
        stop = should_stop or (lambda: False)
        start = time.perf_counter()
        done = 0
        margins = cascade_margins(self.bundle, gate)
        for result, thumbnail in self._pipeline(paths, store, key, thresholds, run, stop, margins):
            if stop():
                return
            if not gate.auto_clearing:  # "review (low risk)" with the reason instead of cleared
                from core.screening.auto_clearing import OFF_SETTING, hold

                result = hold(result, gate.held_reason or OFF_SETTING)
            if result.ok and result.confidence is None:  # every outcome says which confidence made it
                result = replace(result, confidence=confidence)
            if store is not None:
                store.add_result(run_id, result, key, thumbnail=thumbnail or None)
            done += 1
            yield Progress(done=done, total=total, result=result, elapsed_s=time.perf_counter() - start)

    def _pipeline(
        self,
        paths: Iterable,
        store,
        key: str,
        thresholds: Thresholds,
        run: RunSettings,
        stop: Callable[[], bool],
        margins: StopMargins | None = None,
    ) -> Iterator[tuple[ScreeningResult, bytes]]:
        """(result, thumbnail) per path, in order. A window of at most `ahead` files is read ahead of the
        engine: stored results are looked up and the rest handed to the workers as they enter it."""
        batch = max(1, run.batch_images)
        ahead = max(2 * batch, run.workers + 1)
        window: deque[_Pending] = deque()
        in_window: Counter[str] = Counter()  # hashes in the window: a duplicate waits for the first's result
        source = iter(paths)
        exhausted = False
        pool = ThreadPoolExecutor(max_workers=max(1, run.workers), thread_name_prefix="melascreen-prepare")

        def admit(path: str) -> _Pending:
            item = _Pending(path)
            if store is not None:
                try:  # only regular files: opening a pipe waits for a writer, forever
                    item.sha256 = sha256_file(Path(path)) if Path(path).is_file() else None
                except OSError:
                    item.sha256 = None
                if item.sha256 and in_window[item.sha256]:
                    in_window[item.sha256] += 1
                    return item  # neither stored nor prepared: decided when it reaches the head
                cached = store.find_result(item.sha256, key) if item.sha256 else None
                if cached is not None:
                    item.stored = replace(cached, path=path, from_store=True)
                    return item
                if item.sha256:
                    in_window[item.sha256] += 1
            item.prepared = pool.submit(self.prepare, path, run.limits)
            return item

        def take() -> _Pending:
            item = window.popleft()
            if item.stored is None and item.sha256:  # counted in admit
                in_window[item.sha256] -= 1
                if not in_window[item.sha256]:
                    del in_window[item.sha256]
            return item

        try:
            while not stop():
                while not exhausted and len(window) < ahead:
                    try:
                        window.append(admit(str(next(source))))
                    except StopIteration:
                        exhausted = True
                if not window:
                    return
                head = take()
                if head.stored is not None:
                    yield head.stored, b""
                    continue
                if head.prepared is None:  # a duplicate: the file ahead of it is in the store by now
                    cached = store.find_result(head.sha256, key)
                    if cached is not None:
                        yield replace(cached, path=head.path, from_store=True), b""
                        continue
                    prepared = self.prepare(head.path, run.limits)
                else:
                    prepared = head.prepared.result()
                if isinstance(prepared, ScreeningResult):
                    yield prepared, b""
                    continue
                group = [prepared]
                while len(group) < batch and window and window[0].prepared is not None:
                    nxt = window[0].prepared.result()  # the next file anyway: waiting costs nothing
                    if isinstance(nxt, ScreeningResult):
                        break  # leaves through the head, in order
                    group.append(nxt)
                    take()
                yield from self.infer(group, thresholds, run.with_cam, margins)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def screen_folder(
    screener: Screener,
    folder: str | Path,
    store=None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    gate: GateChoice = GateChoice(),
    run: RunSettings = RunSettings(),
) -> tuple[list[ScreeningResult], RunSummary]:
    """Screen every file in a folder as one run; returns the results and a summary.

    Every file found is reported, including files that are not images, so nothing in the folder
    goes unmentioned. The run is marked finished or cancelled in the store even on an exception.
    The returned results carry no heat maps (memory stays flat on a large folder): `on_progress`
    sees each full result, and the store keeps the heat maps.
    """
    paths = scan_candidates(folder, recursive=run.recursive or run.intake.needs_subfolders)
    filing = PatientFiling(folder, paths, run.intake)  # identities resolved up front; the sidecar is not screened
    paths = filing.paths
    from core.screening.auto_clearing import run_clearing

    clearing = run_clearing(screener.bundle, paths, gate.auto_clearing, store)  # the camera check (issue 25)
    gate = replace(gate, auto_clearing=clearing.allowed, held_reason=clearing.why)
    run_id = None
    if store is not None:
        m = screener.bundle.manifest
        run_id = store.start_run(
            str(Path(folder).resolve()),
            m.name,
            m.version,
            screener.result_key(gate),
            {
                "confidence": gate.confidence or m.gate.default_confidence,
                "bundle": screener.bundle.trust_text,  # "unsigned bundle (...)" follows the run into reports
                "engine": screener.engine_in_use,
                "provider": screener.provider_in_use,
                "recursive": run.recursive,
                "clearing": clearing.to_dict(),
                **owner_stamp(),  # pid + host: a killed run can be shown as interrupted (core/records/runs.py)
            },
        )
    results: list[ScreeningResult] = []
    start = time.perf_counter()
    status = "failed"
    try:
        for progress in screener.screen(paths, store, run_id, should_stop, gate, run):
            results.append(replace(progress.result, cam=None, named_cam=None))
            filing.file(store, progress.result)
            if on_progress is not None:
                on_progress(progress)
        status = "cancelled" if len(results) < len(paths) else "finished"
    finally:
        summary = summarize(results, run_id, cancelled=status != "finished", elapsed_s=time.perf_counter() - start)
        summary = replace(summary, intake_issues=tuple(filing.issues), clearing=clearing.to_dict())
        if store is not None:
            store.finish_run(run_id, status, summary_dict(summary))
    return results, summary


def summarize(results: list[ScreeningResult], run_id=None, cancelled=False, elapsed_s=0.0) -> RunSummary:
    counts = {"benign": 0, "suspicious": 0, "uncertain": 0, "not_dermoscopy": 0}
    for r in results:
        if r.ok and r.decision is not None:
            counts[r.outcome_code] += 1  # a picture that is not dermoscopy is not a case to review
    return RunSummary(
        run_id=run_id,
        total=len(results),
        errors=sum(1 for r in results if not r.ok),
        counts=counts,
        reused=sum(1 for r in results if r.from_store),
        intake_flagged=sum(1 for r in results if r.ok and r.intake not in (None, "familiar")),
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
        **({"intake_flagged": s.intake_flagged} if s.intake_flagged else {}),
        **({"intake_issues": [str(i) for i in s.intake_issues]} if s.intake_issues else {}),
        **({"clearing": s.clearing} if s.clearing else {}),
    }
