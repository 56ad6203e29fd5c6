"""A shipped bundle member's weights read back into a torch state dict, so a new model can start
from a bundle whose training checkpoints are gone (fine-tuning on new sources, new preprocessing).

Export (export.onnx_export) wraps the timm model as `model.<name>`; weights stored as float16 are
initialisers named `<name>__fp16` (upcast in the graph). Batch-norm running statistics are
initialisers too, so the timm model's whole state dict is recovered (up to fp16 rounding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.common.errors import MelaScreenError

PREFIX = "model."
FP16_SUFFIX = "__fp16"


class MemberWeightsError(MelaScreenError):
    """A bundle member's file cannot be turned back into weights; the message names the file."""


def state_dict_from_onnx(path: str | Path) -> dict[str, torch.Tensor]:
    """{timm parameter name: float32 tensor} from an exported member (.onnx)."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError, OSError, ...: all mean "not a member file"
        raise MemberWeightsError(f"{path}: not a readable ONNX model ({exc})") from exc
    out: dict[str, torch.Tensor] = {}
    for init in graph.initializer:
        name = init.name
        if not name.startswith(PREFIX):
            continue  # constants of the graph (CAM, intake statistics), not model weights
        name = name[len(PREFIX) :]
        if name.endswith(FP16_SUFFIX):
            name = name[: -len(FP16_SUFFIX)]
        out[name] = torch.from_numpy(np.array(numpy_helper.to_array(init), dtype=np.float32))
    if not out:
        raise MemberWeightsError(f"{path}: no model weights found (was it exported by export.onnx_export?)")
    return out


def load_member_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load an exported member's weights into `model` (same architecture), strictly: every
    parameter and running statistic must be there; only batch counters (never exported) are kept."""
    weights = state_dict_from_onnx(path)
    target = model.state_dict()
    missing = [k for k in target if k not in weights and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in weights if k not in target]
    wrong = [k for k in weights if k in target and tuple(weights[k].shape) != tuple(target[k].shape)]
    if missing or unexpected or wrong:
        raise MemberWeightsError(
            f"{path} does not fit this architecture: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"other shapes {wrong[:3]}"
        )
    model.load_state_dict(weights, strict=False)
