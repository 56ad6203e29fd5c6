"""The onnxruntime ensemble: one session per member, created once, with test-time augmentation.

Per image: member logits averaged over the TTA views, divided by each member's temperature,
softmax; p(melanoma) is the mean of the members' calibrated probabilities. The heat map is the
members' Grad-CAM of the melanoma class, mapped back from each view and averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort

from .bundle import INPUT_NAME, OUTPUT_NAMES, Bundle
from .errors import BundleError, ProviderError
from .results import Prediction
from .tta import apply_view, invert_view

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@dataclass(frozen=True)
class RawOutputs:
    member_logits: np.ndarray  # M x N x K, averaged over views, before temperature
    cams: np.ndarray | None  # M x N x V x h x w, positive class, as each view saw it


@dataclass(frozen=True)
class EnsembleSettings:
    provider: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu" or "cuda"
    threads: int = 0  # onnxruntime intra-op threads; 0 lets onnxruntime choose
    max_batch: int = 36  # views per session run


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def _provider_list(requested: str) -> list[str]:
    avail = available_providers()
    if requested == "cpu":
        return ["CPUExecutionProvider"]
    if requested == "cuda":
        if "CUDAExecutionProvider" not in avail:
            raise ProviderError(
                "CUDA was requested but this onnxruntime has no CUDA provider (available: "
                f"{', '.join(avail)}). Install the GPU build (extra 'gpu') or choose the CPU provider."
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if requested == "auto":
        if "CUDAExecutionProvider" in avail:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    raise ProviderError(f"unknown provider {requested!r}; use auto, cpu or cuda")


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class Ensemble:
    def __init__(self, bundle: Bundle, settings: EnsembleSettings = EnsembleSettings()):
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.settings = settings
        providers = _provider_list(settings.provider)
        opts = ort.SessionOptions()
        if settings.threads:
            opts.intra_op_num_threads = settings.threads
        opts.log_severity_level = 3
        self.sessions: list[ort.InferenceSession] = []
        for member in self.manifest.members:
            path = bundle.member_path(member)
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise BundleError(f"onnxruntime cannot load this member ({exc})", str(path)) from exc
            self._check_signature(sess, str(path))
            self.sessions.append(sess)
        # What onnxruntime really uses: asking for CUDA can silently end on CPU.
        used = {s.get_providers()[0] for s in self.sessions}
        self.provider_in_use = "CUDAExecutionProvider" if used == {"CUDAExecutionProvider"} else sorted(used)[0]
        if settings.provider == "cuda" and self.provider_in_use != "CUDAExecutionProvider":
            raise ProviderError(
                f"CUDA was requested but the models run on {self.provider_in_use}: check the CUDA and cuDNN "
                "libraries, or choose the CPU provider."
            )

    def _check_signature(self, sess: ort.InferenceSession, path: str) -> None:
        inputs = [i.name for i in sess.get_inputs()]
        outputs = [o.name for o in sess.get_outputs()]
        if inputs != [INPUT_NAME] or any(n not in outputs for n in OUTPUT_NAMES):
            raise BundleError(
                f"model has inputs {inputs} and outputs {outputs}; a MelaScreen member needs input "
                f"'{INPUT_NAME}' and outputs {list(OUTPUT_NAMES)}",
                path,
            )
        shape = sess.get_inputs()[0].shape
        size = self.manifest.input_size
        if len(shape) != 4 or any(isinstance(d, int) and d != size for d in shape[2:]):
            raise BundleError(f"model input shape {shape} does not match the manifest's input size {size}", path)

    @property
    def views(self) -> tuple[str, ...]:
        return self.manifest.tta_views

    def _run_views(self, batch: np.ndarray, want_cam: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """batch: B x 3 x S x S -> logits M x B x K and cams M x B x h x w (positive class) or None."""
        outputs = [OUTPUT_NAMES[0], OUTPUT_NAMES[1]] if want_cam else [OUTPUT_NAMES[0]]
        pos = self.manifest.positive_index
        all_logits, all_cams = [], []
        for sess in self.sessions:
            logits_parts, cam_parts = [], []
            for start in range(0, len(batch), self.settings.max_batch):
                chunk = batch[start : start + self.settings.max_batch]
                out = sess.run(outputs, {INPUT_NAME: chunk})
                logits_parts.append(out[0])
                if want_cam:
                    cam_parts.append(out[1][:, pos])
            all_logits.append(np.concatenate(logits_parts))
            if want_cam:
                all_cams.append(np.concatenate(cam_parts))
        logits = np.stack(all_logits).astype(np.float32)
        return logits, (np.stack(all_cams).astype(np.float32) if want_cam else None)

    def _views_of(self, inputs: np.ndarray) -> np.ndarray:
        return np.stack([apply_view(v, x) for x in inputs for v in self.views]).astype(np.float32)

    def member_logits(self, inputs: np.ndarray) -> np.ndarray:
        """Raw TTA-averaged logits, M x N x K, before temperature (what calibration is fitted on)."""
        return self.run(inputs, with_cam=False).member_logits

    def calibrated_member_probs(self, member_logits: np.ndarray) -> np.ndarray:
        temps = np.array([mem.temperature for mem in self.manifest.members], dtype=np.float32)
        return softmax(member_logits / temps[:, None, None])

    def run(self, inputs: np.ndarray, with_cam: bool = True) -> RawOutputs:
        """Run every member on every TTA view of N model inputs (N x 3 x S x S)."""
        inputs = np.asarray(inputs, dtype=np.float32)
        n, v = len(inputs), len(self.views)
        logits, cams = self._run_views(self._views_of(inputs), want_cam=with_cam)
        m, _, k = logits.shape
        cams = cams.reshape(m, n, v, *cams.shape[2:]) if cams is not None else None
        return RawOutputs(member_logits=logits.reshape(m, n, v, k).mean(axis=2), cams=cams)

    def to_predictions(self, raw: RawOutputs, image_sizes: list[tuple[int, int]] | None = None) -> list[Prediction]:
        """Calibrate, average and map heat maps to each image's (height, width)."""
        probs = self.calibrated_member_probs(raw.member_logits)  # M x N x K
        pos = self.manifest.positive_index
        names = self.manifest.class_names
        preds = []
        for i in range(probs.shape[1]):
            member_p = probs[:, i, pos]
            cam = None
            if raw.cams is not None:
                hw = image_sizes[i] if image_sizes else (self.manifest.input_size,) * 2
                cam = self._ensemble_cam(raw.cams[:, i], hw)
            preds.append(
                Prediction(
                    p_melanoma=float(member_p.mean()),
                    member_p=tuple(float(x) for x in member_p),
                    spread=float(member_p.std()),
                    class_probs={c: float(probs[:, i, j].mean()) for j, c in enumerate(names)},
                    cam=cam,
                )
            )
        return preds

    def predict(
        self, inputs: np.ndarray, image_sizes: list[tuple[int, int]] | None = None, with_cam: bool = True
    ) -> list[Prediction]:
        """inputs: N x 3 x S x S model inputs; image_sizes: (height, width) to map each heat map to."""
        return self.to_predictions(self.run(inputs, with_cam), image_sizes)

    def _ensemble_cam(self, cams: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """cams: M x V x h x w raw maps -> one H x W map in 0..1 in image coordinates."""
        size = self.manifest.input_size
        total = np.zeros((size, size), dtype=np.float32)
        for member_cams in cams:
            acc = np.zeros((size, size), dtype=np.float32)
            weight = np.zeros((size, size), dtype=np.float32)
            for view, cam in zip(self.views, member_cams):
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
        h, w = image_hw
        return cv2.resize(total, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
