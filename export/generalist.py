"""A generalist head (training.generalist) + its frozen backbone as one bundle member: `image` ->
`logits`, `cam` (closed-form Grad-CAM of every class, like the fine-tuned members), fp16 weights,
parity-checked against torch and pytorch-grad-cam, written as a one-member bundle that takes the
same input as a given bundle, so export.merge can join them and core runs it unchanged.

    python -m export.generalist --head HEAD.npz --like core/models/default --out GEN_BUNDLE
    then: export.merge --bundle BASE --bundle GEN_BUNDLE --out M; export.refit --temperatures;
    export.intake; export.sign
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import timm
import torch

from core.common.errors import MelaScreenError
from core.inference.bundle import Bundle, load_bundle, write_bundle
from core.inference.manifest import Member

from .onnx_export import MemberInfo, export_member
from .parity import check_parity


class GeneralistExportError(MelaScreenError, ValueError):
    """The head does not fit the backbone or the bundle it should join; the message says which."""


MEAN = (0.5, 0.5, 0.5)  # the TF EfficientNet-Lite releases' normalisation
STD = (0.5, 0.5, 0.5)


def load_generalist(path: Path) -> tuple[torch.nn.Module, dict]:
    """The timm model (frozen backbone + fitted linear head) a generalist checkpoint describes, and its info."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        info = json.loads(ckpt["info"])
        model = timm.create_model(info["arch"], pretrained=False, num_classes=int(info["classes"]))
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise GeneralistExportError(f"{path}: not a generalist checkpoint of training.generalist.fit ({exc})") from None
    return model.eval(), info


def export_generalist(ckpt_path: Path, like: Bundle, out: Path, seed: int = 0, parity_inputs: int = 4) -> Bundle:
    model, info = load_generalist(ckpt_path)
    m = like.manifest
    if list(info["class_names"]) != list(m.class_names):
        raise GeneralistExportError(
            f"the head's classes {info['class_names']} are not {m.version}'s {list(m.class_names)}"
        )
    if int(info["size"]) != m.input_size or tuple(m.mean) != MEAN or tuple(m.std) != STD:
        raise GeneralistExportError(
            f"the head's features were taken at {info['size']} px with mean/std {MEAN}/{STD}; {m.version} feeds "
            f"{m.input_size} px with {m.mean}/{m.std}: fit the head on features of the bundle's own input"
        )
    if info.get("preprocessing_params") != m.preprocessing.to_dict():
        raise GeneralistExportError(
            f"the head's features used preprocessing {info['preprocessing']!r}, not {m.version}'s: a member "
            "must see in the app the pixels its head was fitted on"
        )
    arch = info["arch"]
    with tempfile.TemporaryDirectory(prefix="melascreen-generalist-") as tmp:
        member = export_member(
            model,
            Path(tmp) / "member-0.onnx",
            MemberInfo(
                arch,
                seed,
                m.input_size,
                tuple(m.class_names),
                MEAN,
                STD,
                extra={"generalist": f"frozen ImageNet {arch} + linear head", "head": info},
            ),
            weights_dtype="float16",
        )
        x = np.random.default_rng(seed).normal(0, 1, (parity_inputs, 3, m.input_size, m.input_size)).astype(np.float32)
        parity = check_parity(member.path, member.reference, x)
        spec = Member(
            file="member-0.onnx",
            sha256="0" * 64,
            arch=arch,
            seed=seed,
            temperature=1.0,
            val_metrics={"generalist_head": info},
        )
        manifest = replace(
            m,
            version=f"{m.version}-generalist",
            members=(spec,),
            ood=None,
            created="",
            provenance={
                "generalist": info,
                "parity": {
                    "logits_max_abs": parity.logits_max_abs,
                    "cam_max_abs": parity.cam_max_abs,
                    "inputs": parity.n_inputs,
                },
            },
        )
        card = "\n".join(
            [
                f"# {m.name} generalist member",
                "",
                f"Frozen ImageNet {arch} (weights from its pip package) + a linear 7-class head fitted on cached",
                f"features ({json.dumps(info)}). Input as {m.version}.",
                "To be merged, re-calibrated, checked and signed.",
                "",
                "## Disclaimer",
                "",
                m.disclaimer,
                "",
            ]
        )
        return write_bundle(out, manifest, {"member-0.onnx": member.path}, card)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.generalist", description=__doc__.split("\n\n")[0])
    ap.add_argument("--head", required=True, type=Path, help="generalist checkpoint .pt (training.generalist.fit)")
    ap.add_argument("--like", required=True, type=Path, help="the bundle whose input the member takes")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        b = export_generalist(args.head, load_bundle(args.like, allow_unsigned=True), args.out, args.seed)
    except GeneralistExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{b.root}: 1 generalist member ({json.dumps(b.manifest.provenance['parity'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
