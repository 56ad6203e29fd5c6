"""Tiny but real model bundles for tests, built with onnx.helper from numpy weights (no torch).

Each member: conv 3x3/stride 4 + ReLU (the 'last feature map' A), global average pool, linear.
Its `cam` output is the closed-form Grad-CAM: relu(sum_k W[c,k]/HW * A_k). The melanoma logit
is made to grow with how dark the image is, so dark test images score higher.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper, numpy_helper

from core.decision.gate import GateSettings, Thresholds
from core.imaging.preprocess import PreprocessParams
from core.inference.bundle import write_bundle
from core.inference.manifest import Manifest, Member
from core.inference.signing import TRUSTED_KEYS_ENV, public_key_pem

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MALIGNANT = ("akiec", "bcc", "mel")
# The test publisher: made here from a fixed seed, trusted only by the test session (tests/conftest.py).
TEST_SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"melascreen synthetic test publisher").digest())


def trust_test_key(folder: Path) -> Path:
    """Write the test publisher's public key into `folder` and trust it for this process and its children."""
    folder.mkdir(parents=True, exist_ok=True)
    pub = folder / "test-publisher.pub"
    pub.write_bytes(public_key_pem(TEST_SIGNING_KEY))
    pub.chmod(0o644)  # trusted keys that group or others may write are ignored (core.inference.signing)
    os.environ[TRUSTED_KEYS_ENV] = str(pub)
    return pub


def make_member_onnx(path: Path, input_size: int = 64, channels: int = 8, seed: int = 0, mel_bias: float = 0.0) -> Path:
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    conv_w = rng.normal(0, 0.3, size=(channels, 3, 3, 3)).astype(np.float32)
    # Channel 0 responds to darkness (negative weights on normalised input).
    conv_w[0] = -0.1
    conv_b = np.full((channels,), 0.5, dtype=np.float32)
    fc_w = rng.normal(0, 0.3, size=(k, channels)).astype(np.float32)
    fc_w[CLASSES.index("mel"), 0] = 3.0
    fc_b = np.zeros((k,), dtype=np.float32)
    fc_b[CLASSES.index("mel")] = mel_bias
    stride = 4
    h = (input_size + 2 - 3) // stride + 1
    cam_w = (fc_w / float(h * h)).reshape(k, channels, 1, 1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["pre"], strides=[stride, stride], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["pre"], ["feat"]),
        helper.make_node("GlobalAveragePool", ["feat"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Conv", ["feat", "cam_w"], ["cam_raw"]),
        helper.make_node("Relu", ["cam_raw"], ["cam"]),
    ]
    graph = helper.make_graph(
        nodes,
        "synthetic_member",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, input_size, input_size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["batch", k, h, h]),
        ],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(fc_w, "fc_w"),
            numpy_helper.from_array(fc_b, "fc_b"),
            numpy_helper.from_array(cam_w, "cam_w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_bundle(
    target: Path,
    members: int = 2,
    input_size: int = 64,
    tta_views: tuple[str, ...] = ("id", "flip", "rot90", "zoom"),
    gate: GateSettings | None = None,
    preprocessing: PreprocessParams | None = None,
    sign_key: Ed25519PrivateKey | None = TEST_SIGNING_KEY,
    **manifest_fields,
) -> Path:
    """A bundle folder, signed by the test publisher unless `sign_key` is None; `manifest_fields`
    override manifest fields (mean, std, class_names, ...)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    files, specs = {}, []
    for i in range(members):
        name = f"member-{i}.onnx"
        files[name] = make_member_onnx(target / name, input_size=input_size, seed=i, mel_bias=-1.0 + 0.2 * i)
        specs.append(Member(file=name, sha256="", arch="synthetic-cnn", seed=i, temperature=1.0 + 0.5 * i))
    manifest = Manifest(
        name="synthetic-test-bundle",
        version="0.0.1",
        class_names=CLASSES,
        positive_class="mel",
        malignant_classes=MALIGNANT,
        input_size=input_size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        members=tuple(specs),
        preprocessing=preprocessing or PreprocessParams(working_size=256),
        tta_views=tta_views,
        gate=gate or GateSettings(fitted={0.99: Thresholds(0.2, 0.6)}, max_member_spread=0.5),
        provenance={"note": "synthetic weights for tests; not a medical model"},
    )
    manifest = replace(manifest, **manifest_fields)
    write_bundle(target, manifest, files, "# Synthetic test bundle\n\nNot a medical model.\n", sign_key=sign_key)
    return target
