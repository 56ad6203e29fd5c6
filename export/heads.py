"""A torch wrapper that returns (logits, cam): Grad-CAM of every class, in closed form, inside the graph.

Grad-CAM weights each channel k of the last feature map A by the spatial mean of
d(score_c)/d(A_k). For heads built as global-average-pool -> (LayerNorm) -> Linear that gradient
does not depend on the position (i, j), so the weights alpha (K x C per sample) have a closed form
and the exported ONNX graph can return the CAM beside the logits:

* pool -> Linear (timm EfficientNet, ResNet): score_c = W_c . mean_ij A + b_c, so
  alpha_ck = W_ck / HW.
* pool -> LayerNorm -> Linear (timm ConvNeXt `NormMlpClassifierHead`): with the pooled vector x,
  rstd = 1 / sqrt(var(x) + eps), xhat = (x - mean(x)) * rstd and G_c = W_c * gamma, the LayerNorm
  Jacobian gives d score_c / d x = rstd * (G_c - mean(G_c) - xhat * mean(G_c * xhat)), and
  d x / d A_k(i, j) = 1 / HW.

cam_c = relu(sum_k alpha_ck A_k): N x K x h x w, not normalised (the app and the parity check
normalise it the way pytorch-grad-cam does).

Anything else (max or attention pooling, a hidden pre-logits layer, a head module that is not the
identity at eval) is refused with `UnsupportedHeadError`: its CAM would not be Grad-CAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.common.errors import MelaScreenError

# Head modules that are the identity in eval mode and so do not change the gradient.
_EVAL_IDENTITY = (nn.Identity, nn.Dropout, nn.Flatten)
# Relative tolerance of the numerical self-check of the parsed head against the model's own head.
_SELF_CHECK_RTOL = 1e-4


class UnsupportedHeadError(MelaScreenError, ValueError):
    """The model's classifier head has no closed-form Grad-CAM here; export would give a wrong map."""

    def __init__(self, arch: str, module: str, reason: str):
        self.arch = arch
        self.module = module
        self.reason = reason
        super().__init__(
            f"{arch}: classifier head module {module!r} is not supported ({reason}). Closed-form Grad-CAM "
            "needs global-average-pool -> [LayerNorm] -> Linear; pick such an architecture "
            "(timm ConvNeXt, EfficientNet, ResNet) or extend export/heads.py with its derivation."
        )


@dataclass(frozen=True)
class HeadSpec:
    """What was found in the model: the kind of head and the modules it is built from."""

    kind: str  # "avgpool_linear" or "avgpool_layernorm_linear"
    feature_layer: str  # name of the module whose output is forward_features' output (Grad-CAM target)
    fc: str  # name of the final Linear
    norm: str | None = None  # name of the LayerNorm, for "avgpool_layernorm_linear"


def _arch(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture", type(model).__name__))


def _check_avg_pool(arch: str, name: str, pool: nn.Module) -> None:
    """Accept timm SelectAdaptivePool2d doing a global average, or a plain AdaptiveAvgPool2d(1)."""
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        size = pool.output_size
        if size in (1, (1, 1)):
            return
        raise UnsupportedHeadError(arch, name, f"adaptive average pool to {size}, not a global average")
    pool_type = str(getattr(pool, "pool_type", "")).lower()
    inner = getattr(pool, "pool", None)
    if pool_type not in ("avg", "fast", "fastavg") or inner is None:
        raise UnsupportedHeadError(arch, name, f"global pooling {pool_type or type(pool).__name__!r} is not an average")
    if isinstance(inner, nn.AdaptiveAvgPool2d):
        _check_avg_pool(arch, f"{name}.pool", inner)
    elif type(inner).__name__ != "FastAdaptiveAvgPool":
        raise UnsupportedHeadError(arch, f"{name}.pool", f"{type(inner).__name__} is not a global average")


def _check_identity(arch: str, name: str, module: nn.Module) -> None:
    if not isinstance(module, _EVAL_IDENTITY):
        raise UnsupportedHeadError(arch, name, f"{type(module).__name__} is not the identity at eval")


def _find_feature_layer(model: nn.Module, probe: torch.Tensor) -> str:
    """The module whose output IS forward_features' output (the last to finish, if several)."""
    finished: list[tuple[str, torch.Tensor]] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, out, name=name: finished.append((name, out)))
        for name, m in model.named_modules()
        if name
    ]
    try:
        with torch.no_grad():
            feats = model.forward_features(probe)
    finally:
        for h in handles:
            h.remove()
    names = [name for name, out in finished if out is feats]
    if not names:
        raise UnsupportedHeadError(_arch(model), "forward_features", "no module returns the final feature map")
    return names[-1]


def inspect_head(model: nn.Module, probe_size: int = 64) -> HeadSpec:
    """Find the head's kind and modules, or raise `UnsupportedHeadError` naming the module at fault."""
    arch = _arch(model)
    if not hasattr(model, "forward_features") or not hasattr(model, "forward_head"):
        raise UnsupportedHeadError(
            arch, type(model).__name__, "not a timm classifier (no forward_features/forward_head)"
        )
    head = getattr(model, "head", None)
    if head is not None and type(head).__name__ == "NormMlpClassifierHead":
        allowed = {"global_pool", "norm", "flatten", "pre_logits", "drop", "fc"}
        for child_name, _ in head.named_children():
            if child_name not in allowed:
                raise UnsupportedHeadError(arch, f"head.{child_name}", "unexpected module in a NormMlpClassifierHead")
        _check_avg_pool(arch, "head.global_pool", head.global_pool)
        if not isinstance(head.norm, nn.LayerNorm):  # timm LayerNorm2d subclasses nn.LayerNorm
            raise UnsupportedHeadError(arch, "head.norm", f"{type(head.norm).__name__} is not a LayerNorm")
        if not head.norm.elementwise_affine or head.norm.weight is None:
            raise UnsupportedHeadError(arch, "head.norm", "LayerNorm without an affine weight")
        if not isinstance(head.pre_logits, nn.Identity):
            raise UnsupportedHeadError(arch, "head.pre_logits", f"hidden layer {type(head.pre_logits).__name__}")
        _check_identity(arch, "head.flatten", head.flatten)
        _check_identity(arch, "head.drop", head.drop)
        if not isinstance(head.fc, nn.Linear):
            raise UnsupportedHeadError(arch, "head.fc", f"{type(head.fc).__name__} is not a Linear")
        kind, fc, norm = "avgpool_layernorm_linear", "head.fc", "head.norm"
    else:
        pool = getattr(model, "global_pool", None)
        if pool is None:
            name = "head" if head is not None else type(model).__name__
            raise UnsupportedHeadError(arch, name, "no global_pool -> classifier head found")
        if not isinstance(pool, nn.Module):  # e.g. ViT's global_pool = "token" / "map"
            raise UnsupportedHeadError(arch, "global_pool", f"{pool!r} pooling (token or attention), not an average")
        _check_avg_pool(arch, "global_pool", pool)
        classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
        fc = next((n for n, m in model.named_modules() if m is classifier), None)
        if not isinstance(classifier, nn.Linear) or fc is None:
            raise UnsupportedHeadError(arch, fc or "classifier", f"{type(classifier).__name__} is not a Linear")
        for extra in ("head_drop", "head_hidden", "pre_logits", "fc_norm", "head_norm"):
            if extra in dict(model.named_children()):
                _check_identity(arch, extra, getattr(model, extra))
        kind, norm = "avgpool_linear", None
    was_training = model.training
    model.eval()
    try:
        probe = torch.zeros(1, 3, probe_size, probe_size)
        feature_layer = _find_feature_layer(model, probe)
        spec = HeadSpec(kind=kind, feature_layer=feature_layer, fc=fc, norm=norm)
        _self_check(model, spec, probe)
    finally:
        model.train(was_training)
    return spec


def _self_check(model: nn.Module, spec: HeadSpec, probe: torch.Tensor) -> None:
    """The parsed head must reproduce the model's own forward_head; catches hidden head steps."""
    with torch.no_grad():
        feats = model.forward_features(probe)
        feats = torch.randn_like(feats.expand(2, -1, -1, -1)) * 2.0 + 0.5
        expected = model.forward_head(feats)
        got = _closed_form_logits(model, spec, feats)
    scale = float(expected.abs().max()) + 1.0
    err = float((expected - got).abs().max())
    if err > _SELF_CHECK_RTOL * scale:
        raise UnsupportedHeadError(
            _arch(model), "forward_head", f"it does not compute {spec.kind} (differs by {err:.3g}): a hidden step?"
        )


def _module(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name)


def _closed_form_logits(model: nn.Module, spec: HeadSpec, feats: torch.Tensor) -> torch.Tensor:
    fc: nn.Linear = _module(model, spec.fc)
    x = feats.mean(dim=(2, 3))
    if spec.norm is not None:
        ln: nn.LayerNorm = _module(model, spec.norm)
        x = nn.functional.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)
    return fc(x)


class CamClassifier(nn.Module):
    """Wraps a timm classifier: forward(image) -> (logits N x K, cam N x K x h x w)."""

    def __init__(self, model: nn.Module, spec: HeadSpec | None = None):
        super().__init__()
        self.model = model.eval()
        self.spec = spec or inspect_head(model)
        self.train(False)

    def train(self, mode: bool = True) -> CamClassifier:
        # Always eval: dropout off and BatchNorm on running statistics, or the closed form is wrong.
        return super().train(False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.forward_features(image)  # N x C x h x w
        logits = self.model.forward_head(feats)  # the model's own head: logits match eager exactly
        alpha = self.cam_weights(feats)  # N x K x C
        cam = torch.relu(torch.einsum("nkc,nchw->nkhw", alpha, feats))
        return logits, cam

    def cam_weights(self, feats: torch.Tensor) -> torch.Tensor:
        """Grad-CAM channel weights alpha (N x K x C): spatial mean of d logit_k / d feats."""
        fc: nn.Linear = _module(self.model, self.spec.fc)
        hw = feats.shape[2] * feats.shape[3]
        n = feats.shape[0]
        if self.spec.norm is None:
            return (fc.weight / hw).unsqueeze(0).expand(n, -1, -1)
        ln: nn.LayerNorm = _module(self.model, self.spec.norm)
        x = feats.mean(dim=(2, 3))  # N x C
        mu = x.mean(dim=1, keepdim=True)
        var = ((x - mu) ** 2).mean(dim=1, keepdim=True)  # biased, as LayerNorm
        rstd = torch.rsqrt(var + ln.eps)
        xhat = ((x - mu) * rstd).unsqueeze(1)  # N x 1 x C
        g = (fc.weight * ln.weight).unsqueeze(0)  # 1 x K x C
        g_mean = g.mean(dim=2, keepdim=True)
        gx_mean = (g * xhat).mean(dim=2, keepdim=True)  # N x K x 1
        return rstd.unsqueeze(1) * (g - g_mean - xhat * gx_mean) / hw


def cam_classifier(model: nn.Module) -> CamClassifier:
    """The exportable (logits, cam) module for a timm classifier; refuses unsupported heads."""
    return CamClassifier(model, inspect_head(model))
