"""Export one ensemble member to ONNX: `image` -> (`logits`, `cam`), dynamic batch, checked and stamped.

With `weights_dtype="float16"` the file stores its weights as fp16 (half the size) and Casts them
back to fp32 in the graph, so compute stays fp32. To keep parity exact, the torch model's weights
are rounded to fp16 first and that rounded model is exported and is the parity reference
(`ExportedMember.reference`). The exporter's own graph optimiser is off in that case: it folds
BatchNorm into the convolutions, and folded weights are no longer fp16 values; onnxruntime does
the same fusion in fp32 when it loads the model.
"""

from __future__ import annotations

import copy
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from core.common.errors import MelaScreenError
from core.inference.bundle import INPUT_NAME, OUTPUT_NAMES

from .heads import CamClassifier, cam_classifier

log = logging.getLogger(__name__)

OPSET = 18
WEIGHTS_DTYPES = ("float32", "float16")
MAX_BATCH = 4096
FP16_SUFFIX = "__fp16"


class ExportError(MelaScreenError, RuntimeError):
    """The ONNX export itself failed or produced an invalid model."""


@dataclass(frozen=True)
class MemberInfo:
    """What is stamped into each member file's metadata_props (values JSON-encoded)."""

    arch: str
    seed: int
    input_size: int
    class_names: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    extra: dict = field(default_factory=dict)  # e.g. provenance strings

    def metadata(self, weights_dtype: str, head_kind: str, cam_layer: str) -> dict[str, str]:
        values = {
            "arch": self.arch,
            "seed": self.seed,
            "input_size": self.input_size,
            "class_names": list(self.class_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "weights_dtype": weights_dtype,
            "cam_head": head_kind,
            "cam_layer": cam_layer,
            "torch_version": torch.__version__,
            **self.extra,
        }
        return {k: json.dumps(v) for k, v in values.items()}


@dataclass(frozen=True)
class ExportedMember:
    path: Path
    info: MemberInfo
    weights_dtype: str
    size_bytes: int
    seconds: float
    fp16_initializers: int  # initializers stored as fp16
    fp32_initializers: int  # initializers left in fp32 (not exactly representable in fp16)
    reference: CamClassifier = field(repr=False, compare=False)  # the torch model the file must match


def round_to_fp16(model: nn.Module) -> nn.Module:
    """A copy whose floating parameters and buffers are rounded to fp16 (and kept as fp32 tensors)."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for t in list(rounded.parameters()) + list(rounded.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))
    return rounded.eval()


def _store_initializers_fp16(model: onnx.ModelProto) -> tuple[int, int]:
    """Replace each fp32 initializer whose values are exact in fp16 by an fp16 one + Cast to fp32."""
    graph = model.graph
    kept, casts, converted, left = [], [], 0, 0
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        half = values.astype(np.float16)
        if values.size < 2 or not np.array_equal(half.astype(np.float32), values, equal_nan=True):
            kept.append(init)
            left += values.size >= 2
            continue
        kept.append(numpy_helper.from_array(half, init.name + FP16_SUFFIX))
        casts.append(helper.make_node("Cast", [init.name + FP16_SUFFIX], [init.name], to=onnx.TensorProto.FLOAT))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return converted, left


def export_member(
    model: nn.Module, path: str | Path, info: MemberInfo, weights_dtype: str = "float32", opset: int = OPSET
) -> ExportedMember:
    """Export a timm classifier as a member file; refuses unsupported heads (UnsupportedHeadError)."""
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {WEIGHTS_DTYPES}, got {weights_dtype!r}")
    if opset < 17:
        raise ValueError(f"opset {opset} is too old: LayerNormalization needs opset >= 17")
    t0 = time.perf_counter()
    model = model.eval()
    source = round_to_fp16(model) if weights_dtype == "float16" else model
    wrapper = cam_classifier(source).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, info.input_size, info.input_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not our problem
            program = torch.onnx.export(
                wrapper,
                (example,),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                opset_version=opset,
                dynamo=True,
                dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}},
                optimize=weights_dtype == "float32",
                external_data=False,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; say which member failed
        raise ExportError(f"{info.arch} seed {info.seed}: ONNX export failed ({type(exc).__name__}: {exc})") from exc
    proto = program.model_proto
    converted, left = (0, 0)
    if weights_dtype == "float16":
        converted, left = _store_initializers_fp16(proto)
    else:
        left = sum(1 for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT)
    helper.set_model_props(proto, info.metadata(weights_dtype, wrapper.spec.kind, wrapper.spec.feature_layer))
    proto.doc_string = f"MelaScreen member {info.arch} seed {info.seed}: image -> logits, cam (Grad-CAM, all classes)"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{info.arch} seed {info.seed}: exported model fails onnx.checker ({exc})") from exc
    onnx.save(proto, str(path))
    size = path.stat().st_size
    seconds = time.perf_counter() - t0
    log.info(
        "exported %s (%s, %s weights): %.1f MB in %.1f s", path.name, info.arch, weights_dtype, size / 1e6, seconds
    )
    return ExportedMember(
        path=path,
        info=info,
        weights_dtype=weights_dtype,
        size_bytes=size,
        seconds=seconds,
        fp16_initializers=converted,
        fp32_initializers=left,
        reference=wrapper,
    )


def read_member_metadata(path: str | Path) -> dict:
    """The metadata stamped by `export_member`, decoded."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in proto.metadata_props}
