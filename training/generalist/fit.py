"""Fit a generalist's shipped head on cached features of every training source and write it as a
checkpoint export.generalist reads: the timm model (the package's ImageNet backbone + the head as its
classifier), its class names and the features' backbone / size / preprocessing.

    python -m training.generalist.fit --cache C --backbone lite0 --size 192 --preprocessing seed \\
        --sets ham10000_train,isic2017_train --weight-decay WD --out generalist.pt
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from .backbones import BACKBONES, backbone
from .features import FeatureKey, preprocessing_params
from .heads import LinearHead
from .protocol import CLASSES, _load, fit_head

log = logging.getLogger(__name__)


def model_with_head(backbone_name: str, head: LinearHead) -> torch.nn.Module:
    """The backbone with its classifier replaced by the head: pool -> Linear (closed-form Grad-CAM)."""
    k, d = head.weight.shape
    model = backbone(backbone_name, num_classes=k)
    fc = model.get_classifier()
    if fc.in_features != d:
        raise ValueError(f"the head takes {d} features; {backbone_name} gives {fc.in_features}")
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(head.weight))
        fc.bias.copy_(torch.from_numpy(head.bias))
    return model.eval()


def _params(name: str) -> dict | None:
    params = preprocessing_params(name)
    return None if params is None else params.to_dict()


def save_checkpoint(path: Path, model: torch.nn.Module, key: FeatureKey, info: dict) -> None:
    full = {
        "arch": BACKBONES[key.backbone][0],
        "backbone": key.backbone,
        "size": key.size,
        "preprocessing": key.preprocessing,
        "preprocessing_params": _params(key.preprocessing),
        "classes": len(CLASSES),
        "class_names": list(CLASSES),
        **info,
    }
    torch.save({"state_dict": model.state_dict(), "info": json.dumps(full)}, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--backbone", default="lite0")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--preprocessing", default="seed")
    ap.add_argument("--sets", required=True)
    ap.add_argument("--weight-decay", type=float, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    key = FeatureKey(args.backbone, args.size, args.preprocessing)
    sets = args.sets.split(",")
    train = _load(args.cache, Path("core/models/default"), sets, key, False)
    head = fit_head(train, args.weight_decay)
    save_checkpoint(
        args.out,
        model_with_head(key.backbone, head),
        key,
        {
            "fitted_on": sets,
            "images": int(len(train.y)),
            "weight_decay": args.weight_decay,
            "head": "linear softmax, class-balanced, source-masked (training.generalist.heads)",
        },
    )
    log.info("%s: head on %d images of %s", args.out, len(train.y), sets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
