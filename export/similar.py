"""Add a similar-cases index to a bundle: an encoder (member 0 up to its pooled features) and an index.

    python -m export.similar --bundle core/models/default --out BUNDLE_COPY --n 2000 --seed 0

BUNDLE_COPY is a copy of the bundle plus similar-encoder.onnx and similar-index.npz; sign it afterwards
with `python -m export.sign`. Only HAM10000 TRAINING images (configs/splits/ham10000_lesion_split.csv,
split == train) are indexed; each goes through core's own image -> model-input path (id view).
Torch-free: onnx, onnxruntime and numpy.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from core.imaging.model_input import InputSpec, square_from_file
from core.imaging.preprocess import normalize
from core.inference.bundle import load_bundle
from core.inference.similar import ENCODER, INDEX

PCA_DIMS = 64
THUMB = 64
SPLITS = Path("configs/splits/ham10000_lesion_split.csv")
IMAGES = Path("../shared/data/dermoscopy/images")


def feature_tensor(model: onnx.ModelProto) -> str:
    """The input of the classifier (Gemm or MatMul producing `logits`): the pooled pre-logit features."""
    for node in model.graph.node:
        if "logits" in node.output and node.op_type in ("Gemm", "MatMul"):
            return node.input[0]
    raise ValueError("no Gemm/MatMul producing 'logits' in the member graph")


def make_encoder(member: Path, out: Path) -> Path:
    """Member graph cut at its pooled features, exposed as the one output `features` (weights unchanged)."""
    model = onnx.load(str(member))
    feat = feature_tensor(model)
    graph = model.graph
    needed, keep = {feat}, []
    for node in reversed(graph.node):  # nodes are topologically sorted: walk back from the features
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    graph.node.append(onnx.helper.make_node("Identity", [feat], ["features"]))
    kept_inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    del graph.value_info[:]
    del graph.output[:]
    graph.output.append(onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["batch", "features"]))
    inferred = onnx.shape_inference.infer_shapes(model)
    elem = next((v.type.tensor_type.elem_type for v in inferred.graph.value_info if v.name == feat), None)
    if elem is not None and elem != onnx.TensorProto.FLOAT:
        graph.node[-1].CopyFrom(onnx.helper.make_node("Cast", [feat], ["features"], to=onnx.TensorProto.FLOAT))
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def thumbnail(square: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(square).resize((THUMB, THUMB), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def encode(encoder: Path, paths: Sequence[Path], spec: InputSpec, batch: int = 16):
    """Features (N, D) and thumbnails of the images, through core's model-input path (id view)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(encoder), sess_options=opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feats, thumbs = [], []
    for start in range(0, len(paths), batch):
        squares = [square_from_file(p, spec.preprocessing, spec.size) for p in paths[start : start + batch]]
        x = np.stack([normalize(s, spec.mean, spec.std) for s in squares]).astype(np.float32)
        (out,) = session.run(["features"], {name: x})
        feats.append(np.asarray(out, dtype=np.float32).reshape(len(squares), -1))
        thumbs += [thumbnail(s) for s in squares]
        print(f"{min(start + batch, len(paths))}/{len(paths)}", file=sys.stderr, flush=True)
    return np.concatenate(feats), thumbs


def build_index(features: np.ndarray, labels: Sequence[str], ids: Sequence[str], thumbs: Sequence[bytes], dims: int):
    """L2-normalise, PCA to `dims` (fitted on these features), re-normalise; arrays for index.npz."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    mean = f.mean(axis=0)
    _, _, vt = np.linalg.svd(f - mean, full_matrices=False)
    comps = vt[: min(dims, vt.shape[0])]
    z = (f - mean) @ comps.T
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in thumbs])]).astype(np.int64)
    return {
        "mean": mean.astype(np.float32),
        "components": comps.astype(np.float32),
        "vectors": z.astype(np.float32),
        "labels": np.array(list(labels), dtype=str),
        "image_ids": np.array(list(ids), dtype=str),
        "thumb_offsets": offsets,
        "thumb_blob": np.frombuffer(b"".join(thumbs), dtype=np.uint8),
    }


def add_index(bundle_dir: Path, out: Path, paths, labels, ids, dims: int = PCA_DIMS) -> Path:
    """Copy the bundle to `out` (signature dropped: sign again) and add the encoder and the index."""
    bundle = load_bundle(bundle_dir, allow_unsigned=True)
    if out.exists():
        raise SystemExit(f"{out} exists; choose a new folder")
    shutil.copytree(bundle_dir, out, ignore=shutil.ignore_patterns("signature.json", "similar-*"))
    member = out / bundle.manifest.members[0].file
    encoder = make_encoder(member, out / ENCODER)
    feats, thumbs = encode(encoder, list(paths), InputSpec.from_manifest(bundle.manifest))
    np.savez(out / INDEX, **build_index(feats, labels, ids, thumbs, dims))
    return out


def training_sample(n: int, seed: int, splits: Path = SPLITS, images: Path = IMAGES):
    with open(splits, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    rows.sort(key=lambda r: r["image_id"])
    pick = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    chosen = [rows[i] for i in sorted(pick.tolist())]
    return [images / f"{r['image_id']}.jpg" for r in chosen], [r["dx"] for r in chosen], [r["image_id"] for r in chosen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.similar", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", default=str(IMAGES))
    args = ap.parse_args(argv)
    paths, labels, ids = training_sample(args.n, args.seed, images=Path(args.images))
    out = add_index(Path(args.bundle), Path(args.out), paths, labels, ids)
    print(f"wrote {out / ENCODER} and {out / INDEX} ({len(paths)} training images); now sign {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
