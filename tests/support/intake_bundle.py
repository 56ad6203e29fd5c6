"""A synthetic bundle with the intake check (issue 15), and images on both sides of it.

The statistics are fitted on pooled features of synthetic "skin-like" images (tests/support/image_folders.py's
lesions: skin-coloured background, a darker ellipse) through export.intake, exactly as the shipped bundle
gets them; the thresholds come from other skin-like images. Flat colours, noise and a page of text are far
from them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from core.imaging.model_input import InputSpec, model_input
from core.inference.bundle import load_bundle, sign_bundle
from export.intake import add_intake_check
from export.ood import feature_tensor
from tests.support.synthetic_bundle import TEST_SIGNING_KEY, make_bundle


def skin_like(seed: int, size=(288, 384)) -> np.ndarray:
    """RGB uint8: skin-coloured background with mild noise and one darker, brownish lesion."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = np.array((200, 160, 150)) + rng.normal(0, 6, 3)
    img = np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
    dark = 0.2 + 0.8 * rng.random()
    colour = tuple(int(c * dark) for c in (120, 70, 60))
    centre = (int(w // 2 + rng.integers(-40, 40)), int(h // 2 + rng.integers(-30, 30)))
    axes = (int(rng.integers(30, 90)), int(rng.integers(25, 70)))
    cv2.ellipse(img, centre, axes, 0, 0, 360, colour, -1)
    return img


def not_dermoscopy(kind: str, size=(288, 384)) -> np.ndarray:
    """RGB uint8 images that are plainly no dermoscopy: flat grey, noise, a page of text, a checkerboard."""
    h, w = size
    rng = np.random.default_rng(5)
    if kind == "flat":
        return np.full((h, w, 3), 128, np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "text":
        img = np.full((h, w, 3), 255, np.uint8)
        for row in range(12):
            cv2.putText(
                img,
                "Lorem ipsum dolor sit amet 1234",
                (8, 22 + 22 * row),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
        return img
    if kind == "checkerboard":
        yy, xx = np.mgrid[0:h, 0:w]
        board = (((yy // 24) + (xx // 24)) % 2 * 255).astype(np.uint8)
        return np.repeat(board[:, :, None], 3, axis=2)
    raise ValueError(kind)


NOT_DERMOSCOPY_KINDS = ("flat", "noise", "text", "checkerboard")


def _features(bundle, images: list[np.ndarray]) -> np.ndarray:
    """N x members x D pooled features of the id view, through the app's image -> model-input path."""
    m = bundle.manifest
    spec = InputSpec.from_manifest(m)
    x = np.stack([model_input(rgb, spec) for rgb in images]).astype(np.float32)
    per_member = []
    for mem in m.members:
        model = onnx.load(str(bundle.member_path(mem)))
        name = feature_tensor(model)
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        per_member.append(sess.run([name], {"image": x})[0])
    return np.stack(per_member, axis=1)


def make_intake_bundle(target: Path, n_train: int = 40, n_val: int = 40, **bundle_fields) -> Path:
    """A signed synthetic bundle whose members have the `ood` output and whose manifest has the check."""
    target = Path(target)
    plain = load_bundle(make_bundle(target.parent / f"{target.name}-plain", **bundle_fields))
    train = [skin_like(1000 + i) for i in range(n_train)]
    labels = np.array(["nv" if i % 2 else "mel" for i in range(n_train)])
    val = [skin_like(5000 + i) for i in range(n_val)]
    add_intake_check(
        plain,
        target,
        _features(plain, train),
        labels,
        _features(plain, val),
        f"{n_train} synthetic skin-like images (statistics); {n_val} others (thresholds)",
    )
    sign_bundle(target, TEST_SIGNING_KEY)
    return target


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path
