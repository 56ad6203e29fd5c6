"""Parity of an exported member with torch: logits vs eager, CAM vs the grad-cam package.

The CAM is compared after the post-processing pytorch-grad-cam applies to its own maps
(`scale_cam_image`: min-max to 0..1 and resize to the input size, once per layer and once after
aggregating), so both sides are the same kind of map: the figure is in units of the map's range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from core.common.errors import MelaScreenError
from core.inference.bundle import INPUT_NAME, OUTPUT_NAMES

from .heads import CamClassifier

TOLERANCE = 1e-4


@dataclass(frozen=True)
class ParityReport:
    file: str
    n_inputs: int
    input_kinds: tuple[str, ...]  # e.g. ("random", "validation images")
    classes: tuple[int, ...]  # classes whose CAM was compared
    logits_max_abs: float  # onnxruntime vs torch eager
    cam_max_abs: float  # onnxruntime CAM vs pytorch_grad_cam.GradCAM, both post-processed
    cam_raw_max_abs: float  # onnxruntime raw CAM vs the torch wrapper's raw CAM (not normalised)
    tolerance: float
    seconds: float

    def to_dict(self) -> dict:
        return {
            "n_inputs": self.n_inputs,
            "input_kinds": list(self.input_kinds),
            "classes": list(self.classes),
            "logits_max_abs": self.logits_max_abs,
            "cam_max_abs": self.cam_max_abs,
            "cam_raw_max_abs": self.cam_raw_max_abs,
            "tolerance": self.tolerance,
        }


class ParityError(MelaScreenError, RuntimeError):
    """The exported file does not reproduce the torch model; the report carries the figures."""

    def __init__(self, report: ParityReport, failures: list[str]):
        self.report = report
        super().__init__(
            f"{report.file}: parity failed ({'; '.join(failures)}; tolerance {report.tolerance:g}, "
            f"{report.n_inputs} inputs). Do not ship this file: check the exporter, opset and head."
        )


def postprocess_like_gradcam(raw_cam: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """N x h x w raw (ReLU'd) CAMs -> N x H x W maps exactly as GradCAM.__call__ returns them."""
    height, width = input_hw
    per_layer = scale_cam_image(np.maximum(raw_cam, 0), (width, height))
    return scale_cam_image(np.maximum(per_layer, 0))


def _cut_graph_at(layer: torch.nn.Module):
    """Forward hook: the layer's output becomes a leaf that requires grad.

    d(score)/d(feature map) depends only on what comes after the feature map, so cutting the
    autograd graph there leaves GradCAM's gradients and maps unchanged while sparing a backward
    pass through the whole backbone (seconds per class on CPU).
    """
    return layer.register_forward_hook(lambda _m, _i, out: out.detach().requires_grad_(True))


def gradcam_reference(wrapper: CamClassifier, inputs: torch.Tensor, cls: int) -> np.ndarray:
    """pytorch_grad_cam.GradCAM of class `cls` on the last feature layer of the plain model."""
    model = wrapper.model
    layer = model.get_submodule(wrapper.spec.feature_layer)
    handle = _cut_graph_at(layer)  # registered first, so GradCAM's own hooks see the cut tensor
    try:
        with GradCAM(model=model, target_layers=[layer]) as cam:
            return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(cls)] * len(inputs))
    finally:
        handle.remove()


def check_parity(
    onnx_path: str | Path,
    reference: CamClassifier,
    inputs: np.ndarray,
    input_kinds: tuple[str, ...] = ("random",),
    classes: tuple[int, ...] | None = None,
    tolerance: float = TOLERANCE,
) -> ParityReport:
    """Run the file on `inputs` (N x 3 x S x S float32) and compare; raise ParityError on failure."""
    t0 = time.perf_counter()
    x = np.ascontiguousarray(inputs, dtype=np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    onnx_logits, onnx_cam = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
    xt = torch.from_numpy(x)
    with torch.no_grad():
        eager_logits = reference.model(xt).numpy()
        _, torch_cam = reference(xt)
    num_classes = eager_logits.shape[1]
    classes = tuple(range(num_classes)) if classes is None else tuple(int(c) for c in classes)
    cam_err = 0.0
    for c in classes:
        ours = postprocess_like_gradcam(onnx_cam[:, c], x.shape[2:])
        theirs = gradcam_reference(reference, xt, c)
        cam_err = max(cam_err, float(np.abs(ours - theirs).max()))
    report = ParityReport(
        file=Path(onnx_path).name,
        n_inputs=len(x),
        input_kinds=tuple(input_kinds),
        classes=classes,
        logits_max_abs=float(np.abs(onnx_logits - eager_logits).max()),
        cam_max_abs=cam_err,
        cam_raw_max_abs=float(np.abs(onnx_cam - torch_cam.numpy()).max()),
        tolerance=tolerance,
        seconds=time.perf_counter() - t0,
    )
    failures = []
    if not report.logits_max_abs <= tolerance:  # `not <=` also catches NaN
        failures.append(f"logits differ from torch eager by {report.logits_max_abs:.3g}")
    if not report.cam_max_abs <= tolerance:
        failures.append(f"CAM differs from pytorch-grad-cam by {report.cam_max_abs:.3g} (classes {list(classes)})")
    if failures:
        raise ParityError(report, failures)
    return report
