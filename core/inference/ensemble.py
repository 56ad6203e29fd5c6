"""The ensemble: one engine per member, created once, with test-time augmentation.

Per image: member logits averaged over the TTA views, divided by each member's temperature, softmax
(core/inference/calibration.py); p(melanoma) is the mean of the members' calibrated probabilities. The heat
map is the members' Grad-CAM of the melanoma class, mapped back from each view and averaged. The graphs give
the Grad-CAM of every class: those raw maps are kept (RawOutputs.class_cams) until the gate has decided, so
the map of the class the outcome names is composed the same way (`class_cam`) without running again. Which
engine runs the members (onnxruntime or OpenVINO) is `core.inference.engines`' business; the results are the
same.

A bundle with the intake check (core/decision/intake_check.py: an `ood` output in every member and an `ood` section in
the manifest) also gives each member's out-of-distribution score of the `id` view (the view the
statistics were fitted on; the mean over views when a bundle has no `id` view).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.common.errors import BundleError
from core.decision.intake_check import OOD_OUTPUT, ensemble_score
from core.decision.results import Prediction, summarise_classes
from core.imaging.tta import apply_view, invert_view
from core.inference.bundle import OUTPUT_NAMES, Bundle
from core.inference.calibration import calibrated_probs, malignant_sum
from core.inference.engines import EngineInfo, MemberEngine, open_members


@dataclass(frozen=True)
class RawOutputs:
    member_logits: np.ndarray  # M x N x K, averaged over views, before temperature
    cams: np.ndarray | None  # M x N x V x h x w, positive class, as each view saw it
    ood: np.ndarray | None = None  # M x N intake scores of the id view; None: the bundle has no intake check
    class_cams: np.ndarray | None = None  # M x N x V x K x h x w, every class (`cams` is the positive one's)
    # What ran, when a part of the ensemble (the cascade's stage 1): member indices and view names; None: all
    members: tuple[int, ...] | None = None
    views: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Passes:
    """Per-view outputs of some members on some views, before any averaging (the cascade's stages)."""

    members: tuple[int, ...]  # indices into the manifest's members
    views: tuple[str, ...]
    logits: np.ndarray  # M x N x V x K
    class_cams: np.ndarray | None  # M x N x V x K x h x w, or None
    ood: np.ndarray | None  # M x N x V intake scores, or None

    def rows(self, index: Sequence[int]) -> Passes:
        """The passes of some images only."""
        idx = np.asarray(index, dtype=np.intp)
        return Passes(
            members=self.members,
            views=self.views,
            logits=self.logits[:, idx],
            class_cams=None if self.class_cams is None else self.class_cams[:, idx],
            ood=None if self.ood is None else self.ood[:, idx],
        )


@dataclass(frozen=True)
class EnsembleSettings:
    """Session settings: the engines are built once from these (changing them means a new Ensemble)."""

    engine: str = "auto"  # "auto", "onnxruntime" or "openvino" (core.inference.engines.ENGINES)
    provider: str = "auto"  # onnxruntime: one of core.inference.engines.PROVIDER_CHOICES ("auto": CUDA when present)
    precision: str = "exact"  # "exact" (f32, checked against onnxruntime) or "fast" (bf16 where the CPU has it)
    threads: int = 0  # inference threads; 0 lets the engine choose
    max_batch: int = 36  # views per engine run


class Ensemble:
    def __init__(self, bundle: Bundle, settings: EnsembleSettings = EnsembleSettings()):
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.settings = settings
        self.members: Sequence[MemberEngine]
        self.engine: EngineInfo
        self.members, self.engine = open_members(
            bundle, settings.engine, settings.provider, settings.precision, settings.threads
        )
        # An engine member serves one call at a time (OpenVINO's infer request refuses a second one):
        # two threads screening with the same ensemble take turns instead of failing.
        self._engine_lock = threading.Lock()
        self.has_intake_check = self._intake_check_present()

    def _intake_check_present(self) -> bool:
        """True when the manifest declares the intake check and every member computes it. A manifest that
        declares it for members without the output is refused: the check must never be skipped in silence."""
        if self.manifest.ood is None:
            return False
        lacking = [
            spec.file for spec, mem in zip(self.manifest.members, self.members) if OOD_OUTPUT not in mem.output_names
        ]
        if lacking:
            raise BundleError(
                f"the manifest declares an intake check, but member(s) {', '.join(lacking)} have no "
                f"'{OOD_OUTPUT}' output; the bundle is inconsistent: install it again from its source"
            )
        return True

    @property
    def provider_in_use(self) -> str:
        """onnxruntime's provider (e.g. "CPUExecutionProvider") or OpenVINO's device ("CPU")."""
        return self.engine.provider

    @property
    def engine_in_use(self) -> str:
        """e.g. "OpenVINO 2026.4.1 CPU f32"."""
        return self.engine.describe()

    @property
    def views(self) -> tuple[str, ...]:
        return self.manifest.tta_views

    def _run_views(
        self, batch: np.ndarray, want_cam: bool, members: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """batch: B x 3 x S x S -> logits M x B x K, cams M x B x K x h x w (every class) or None, and
        intake scores M x B or None; M: `members` (indices), all members when None."""
        engines = self.members if members is None else [self.members[i] for i in members]
        outputs = OUTPUT_NAMES[:2] if want_cam else OUTPUT_NAMES[:1]
        if self.has_intake_check:
            outputs = (*outputs, OOD_OUTPUT)
        logits_name, cam_name = OUTPUT_NAMES[0], OUTPUT_NAMES[1]
        step = self.settings.max_batch
        with self._engine_lock:
            runs = [
                [member.run(batch[start : start + step], outputs) for start in range(0, len(batch), step)]
                for member in engines
            ]
        logits = np.stack([np.concatenate([out[logits_name] for out in member_runs]) for member_runs in runs])
        ood = None
        if self.has_intake_check:
            ood = np.stack(
                [np.concatenate([out[OOD_OUTPUT].reshape(-1) for out in member_runs]) for member_runs in runs]
            ).astype(np.float32)
        if not want_cam:
            return logits.astype(np.float32), None, ood
        cams = np.stack([np.concatenate([out[cam_name] for out in member_runs]) for member_runs in runs])
        return logits.astype(np.float32), cams.astype(np.float32, copy=False), ood

    def _views_of(self, inputs: np.ndarray) -> np.ndarray:
        return np.stack([apply_view(v, x) for x in inputs for v in self.views]).astype(np.float32)

    def member_logits(self, inputs: np.ndarray) -> np.ndarray:
        """Raw TTA-averaged logits, M x N x K, before temperature (what calibration is fitted on)."""
        return self.run(inputs, with_cam=False).member_logits

    def calibrated_member_probs(self, member_logits: np.ndarray, members: Sequence[int] | None = None) -> np.ndarray:
        """member_logits: M x N x K of `members` (indices; all when None) -> calibrated probabilities."""
        specs = self.manifest.members if members is None else [self.manifest.members[i] for i in members]
        return calibrated_probs(member_logits, [mem.temperature for mem in specs])

    def run(self, inputs: np.ndarray, with_cam: bool = True) -> RawOutputs:
        """Run every member on every TTA view of N model inputs (N x 3 x S x S)."""
        return self.raw_outputs(self.passes(inputs, with_cam))

    def passes(
        self,
        inputs: np.ndarray,
        with_cam: bool = True,
        members: Sequence[int] | None = None,
        views: Sequence[str] | None = None,
    ) -> Passes:
        """Run `members` (indices; all when None) on `views` (names; all when None) of N model inputs."""
        inputs = np.asarray(inputs, dtype=np.float32)
        member_ids = tuple(range(len(self.members))) if members is None else tuple(members)
        view_names = self.views if views is None else tuple(views)
        n, v = len(inputs), len(view_names)
        batch = np.stack([apply_view(name, x) for x in inputs for name in view_names]).astype(np.float32)
        logits, cams, ood = self._run_views(batch, want_cam=with_cam, members=None if members is None else member_ids)
        m, _, k = logits.shape
        return Passes(
            members=member_ids,
            views=view_names,
            logits=logits.reshape(m, n, v, k),
            class_cams=cams.reshape(m, n, v, *cams.shape[2:]) if cams is not None else None,
            ood=ood.reshape(m, n, v) if ood is not None else None,
        )

    def complete(self, inputs: np.ndarray, stage1: Passes, with_cam: bool = True) -> Passes:
        """Every member on every view of `inputs`, re-using the passes `stage1` already ran on them (the cascade's
        second stage): only the members and views stage 1 left out run now. The result is what `passes` gives
        for the whole ensemble, arranged in the manifest's member and view order."""
        inputs = np.asarray(inputs, dtype=np.float32)
        all_members = tuple(range(len(self.members)))
        rest_members = tuple(i for i in all_members if i not in stage1.members)
        rest_views = tuple(v for v in self.views if v not in stage1.views)
        parts = [stage1]
        if rest_members:
            parts.append(self.passes(inputs, with_cam, rest_members, self.views))
        if rest_views:
            parts.append(self.passes(inputs, with_cam, stage1.members, rest_views))
        n, k = len(inputs), stage1.logits.shape[-1]
        m, v = len(all_members), len(self.views)
        logits = np.empty((m, n, v, k), dtype=np.float32)
        cams = None
        if with_cam and stage1.class_cams is not None:
            cams = np.empty((m, n, v, *stage1.class_cams.shape[3:]), dtype=np.float32)
        ood = np.empty((m, n, v), dtype=np.float32) if stage1.ood is not None else None
        for part in parts:
            mi = np.array(part.members)[:, None]
            vi = np.array([self.views.index(name) for name in part.views])[None, :]
            logits[mi, :, vi] = part.logits.transpose(0, 2, 1, 3)
            if cams is not None and part.class_cams is not None:
                cams[mi, :, vi] = part.class_cams.transpose(0, 2, 1, *range(3, part.class_cams.ndim))
            if ood is not None and part.ood is not None:
                ood[mi, :, vi] = part.ood.transpose(0, 2, 1)
        return Passes(members=all_members, views=self.views, logits=logits, class_cams=cams, ood=ood)

    def raw_outputs(self, passes: Passes) -> RawOutputs:
        """Passes -> what the gate and heat maps use: logits averaged over the views that ran, the positive
        class's maps, intake scores of the id view."""
        class_cams = passes.class_cams
        # the positive class's maps as a view (no copy): what the stored heat map is made of
        cams = class_cams[:, :, :, self.manifest.positive_index] if class_cams is not None else None
        ood = passes.ood
        if ood is not None:
            # The statistics were fitted on the id view; without one, the views' mean is the best stand-in.
            ood = ood[:, :, passes.views.index("id")] if "id" in passes.views else ood.mean(axis=2)
        full = passes.members == tuple(range(len(self.members))) and passes.views == self.views
        return RawOutputs(
            member_logits=passes.logits.mean(axis=2),
            cams=cams,
            ood=ood,
            class_cams=class_cams,
            members=None if full else passes.members,
            views=None if full else passes.views,
        )

    def to_predictions(self, raw: RawOutputs, image_sizes: list[tuple[int, int]] | None = None) -> list[Prediction]:
        """Calibrate, average and map heat maps to each image's (height, width)."""
        probs = self.calibrated_member_probs(raw.member_logits, raw.members)  # M x N x K
        pos = self.manifest.positive_index
        names = self.manifest.class_names
        malignant = self.manifest.malignant_classes  # an old bundle's is its positive class (core.inference.upgrade)
        mal_idx = self.manifest.malignant_indices
        preds = []
        for i in range(probs.shape[1]):
            member_p = probs[:, i, pos]
            member_mal = malignant_sum(probs[:, i], mal_idx)
            cam = None
            if raw.cams is not None:
                hw = image_sizes[i] if image_sizes else (self.manifest.input_size,) * 2
                cam = self._ensemble_cam(raw.cams[:, i], hw, raw.views)
            class_probs = {c: float(probs[:, i, j].mean()) for j, c in enumerate(names)}
            _, likely, mal_class = summarise_classes(class_probs, malignant)
            preds.append(
                Prediction(
                    p_melanoma=float(member_p.mean()),
                    member_p=tuple(float(x) for x in member_p),
                    spread=float(member_p.std()),
                    class_probs=class_probs,
                    cam=cam,
                    p_malignant=float(member_mal.mean()),
                    likely_class=likely,
                    malignant_class=mal_class,
                    member_p_malignant=tuple(float(x) for x in member_mal),
                    ood_score=None if raw.ood is None else ensemble_score(raw.ood[:, i]),
                )
            )
        return preds

    def predict(
        self, inputs: np.ndarray, image_sizes: list[tuple[int, int]] | None = None, with_cam: bool = True
    ) -> list[Prediction]:
        """inputs: N x 3 x S x S model inputs; image_sizes: (height, width) to map each heat map to."""
        return self.to_predictions(self.run(inputs, with_cam), image_sizes)

    def class_cam(self, raw: RawOutputs, i: int, class_code: str, image_hw: tuple[int, int]) -> np.ndarray | None:
        """The heat map (H x W, 0..1) of `class_code` for image `i` of `raw`, composed as the positive class's
        map is; None when `raw` kept no maps. ValueError for a class the bundle does not have."""
        if raw.class_cams is None:
            return None
        names = self.manifest.class_names
        if class_code not in names:
            raise ValueError(f"the bundle has no class {class_code!r}; its classes: {', '.join(names)}")
        return self._ensemble_cam(raw.class_cams[:, i, :, names.index(class_code)], image_hw, raw.views)

    def _ensemble_cam(
        self, cams: np.ndarray, image_hw: tuple[int, int], views: Sequence[str] | None = None
    ) -> np.ndarray:
        """cams: M x V x h x w raw maps of `views` (all when None) -> one H x W map in 0..1 in image coordinates."""
        size = self.manifest.input_size
        total = np.zeros((size, size), dtype=np.float32)
        for member_cams in cams:
            acc = np.zeros((size, size), dtype=np.float32)
            weight = np.zeros((size, size), dtype=np.float32)
            for view, cam in zip(self.views if views is None else views, member_cams):
                up = cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR)
                back, w = invert_view(view, up)
                acc += back
                weight += w
            member_map = acc / np.maximum(weight, 1e-6)
            peak = float(member_map.max())
            if peak > 0:  # members weigh equally whatever their activation scale
                total += member_map / peak
        total -= total.min()
        peak = float(total.max())
        if peak > 0:
            total /= peak
        h, w = image_hw  # type: ignore[assignment]  # w: the view weights above, here the width
        return cv2.resize(total, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
