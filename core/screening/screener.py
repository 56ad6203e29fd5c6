"""Screening one image or a batch: files -> images -> preprocessing -> ensemble -> gate -> store.

`Screener.screen` is a generator: each step yields a `Progress` with the result of one file, in input
order, so a command line or a GUI worker can draw progress and stop between images. A file that
cannot be used becomes an error result with its reason; the batch goes on. The batch runs as a
pipeline (core/screening/pipeline.py); a folder as one stored run is core/screening/folder.py.

The engines are made once per `Screener` (session settings: `EnsembleSettings`); the gate
(`GateChoice`) and run settings (`RunSettings`, core/screening/settings.py) come with each call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from core.decision.cascade import ESCALATED, STOP_NOTE, STOPPED, StopMargins, settled
from core.decision.gate import Thresholds
from core.decision.intake_check import IntakeFinding
from core.decision.results import GateOutcome, Prediction, ScreeningResult, named_class
from core.decision.vocabulary import NOT_DERMOSCOPY
from core.files.image_file import ImageLimits
from core.inference.bundle import Bundle
from core.inference.engines import EngineInfo
from core.inference.ensemble import Ensemble, EnsembleSettings, RawOutputs
from core.screening.deciding import decide_image, picture_flagged
from core.screening.holding import OFF_SETTING, hold
from core.screening.pipeline import run_pipeline
from core.screening.preparing import PreparedImage, error_result, prepare_image
from core.screening.settings import GateChoice, RunSettings, cascade_margins, result_key
from core.screening.summary import Progress


@dataclass(frozen=True)
class _Ran:
    """One image's prediction, the raw outputs it came from (image `index` of `raw`) and the cascade's word
    on it: "" (no cascade), STOPPED or ESCALATED."""

    prediction: Prediction
    raw: RawOutputs
    index: int
    cascade: str


def _result(
    p: PreparedImage, r: _Ran, outcome: GateOutcome, intake: IntakeFinding | None, details: str, timings: dict
) -> ScreeningResult:
    """What is stored of one screened image."""
    pred = r.prediction
    return ScreeningResult(
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
        timings=timings,
        p_malignant=pred.p_malignant,
        likely_class=pred.likely_class,
        malignant_class=pred.malignant_class,
        band=outcome.band,
        details=details,
        ood_score=pred.ood_score,
        intake=None if intake is None else intake.level,
        cascade=r.cascade,
    )


class Screener:
    """Holds the ensemble (engines made once); gate and run settings come with each call."""

    def __init__(self, bundle: Bundle, session: EnsembleSettings = EnsembleSettings()):
        self.bundle = bundle
        self.session = session
        self.ensemble = Ensemble(bundle, session)

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

    def result_key(self, gate: GateChoice = GateChoice()) -> str:
        return result_key(self.bundle, gate)

    # -- one image, in steps ------------------------------------------------------------------

    def prepare(self, path: str, limits: ImageLimits = ImageLimits()) -> PreparedImage | ScreeningResult:
        """Decode, check quality, preprocess (thread-safe). Image problems give an error result."""
        return prepare_image(self.bundle.manifest, path, limits)

    def _run(self, images: list[PreparedImage], with_cam: bool, stop: StopMargins | None) -> list[_Ran]:
        """The models' part of `infer`: each image's prediction and the raw outputs it came from. With `stop`
        (the cascade's margins), stage 1 runs first and only the images it does not settle run the rest."""
        inputs = np.stack([p.model_input for p in images])
        sizes = [(p.height, p.width) for p in images]
        ens = self.ensemble
        m = self.bundle.manifest
        if stop is None or m.cascade is None:
            raw = ens.run(inputs, with_cam=with_cam)
            return [_Ran(pred, raw, i, "") for i, pred in enumerate(ens.to_predictions(raw, sizes))]
        section = m.cascade
        first = ens.passes(inputs, with_cam, section.members, section.views)
        numbers = ens.to_predictions(replace(ens.raw_outputs(first), cams=None))  # no heat maps yet
        done = [
            i
            for i, (p, pred) in enumerate(zip(images, numbers))
            if settled(section, stop, pred, p.quality, picture_flagged(m, p.statistics))
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
            return [(error_result(p.path, f"could not be analysed ({type(exc).__name__}: {exc})", p.sha256), b"")]
        m = self.bundle.manifest
        out = []
        for p, r in zip(images, ran):
            outcome, intake = decide_image(m, r.prediction, thresholds, p.quality, p.statistics)
            details = outcome.details
            if r.cascade == STOPPED and m.cascade is not None:
                details += (
                    f"; {STOP_NOTE} ({len(m.cascade.members)} of {len(m.members)} members x "
                    f"{len(m.cascade.views)} of {len(m.tta_views)} views)"
                )
            timings = {**p.timings, "inference": inference, "cam": cam}
            result = _result(p, r, outcome, intake, details, timings)
            out.append((self._with_named_cam(result, r.raw, r.index, (p.height, p.width)), p.thumbnail))
        return out

    def _with_named_cam(self, result: ScreeningResult, raw, i: int, image_hw: tuple[int, int]) -> ScreeningResult:
        """The result with the heat map of the class its outcome names (core.inference.class_cam.named_class), composed
        from the maps of every class this run kept (no model run); the positive class's is `cam` itself."""
        if result.cam is None or raw.class_cams is None or result.intake == NOT_DERMOSCOPY.code:
            return result
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
        confidence = gate.confidence_in(self.bundle)
        if total is None and isinstance(paths, Sized):
            total = len(paths)
        stop = should_stop or (lambda: False)
        start = time.perf_counter()
        done = 0
        margins = cascade_margins(self.bundle, gate)

        def prepare(path: str) -> PreparedImage | ScreeningResult:
            return self.prepare(path, run.limits)

        def infer(group: list[PreparedImage]) -> list[tuple[ScreeningResult, bytes]]:
            return self.infer(group, thresholds, run.with_cam, margins)

        for result, thumbnail in run_pipeline(paths, store, key, run, stop, prepare, infer):
            if stop():
                return
            if not gate.auto_clearing:  # "review (low risk)" with the reason instead of cleared
                result = hold(result, gate.held_reason or OFF_SETTING)
            if result.ok and result.confidence is None:  # every outcome says which confidence made it
                result = replace(result, confidence=confidence)
            if store is not None:
                store.add_result(run_id, result, key, thumbnail=thumbnail or None)
            done += 1
            yield Progress(done=done, total=total, result=result, elapsed_s=time.perf_counter() - start)
