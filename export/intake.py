"""Give a bundle the intake check: fit each member's feature statistics on training images, append
the score to its ONNX graph, fit the thresholds on validation images, write a new bundle.

    python -m export.intake --bundle core/models/default --out NEW_BUNDLE \
        --split-file configs/splits/ham10000_lesion_split.csv [--train-images 3000] [--sign-key KEY.pem]

The models themselves are unchanged: logits and heat maps stay bit-identical, only the `ood`
output is added. Features are the id view's pooled features, computed through the same
image -> model-input path the app uses (core.imaging.model_input).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from core.decision.intake_check import IntakeCheck, ensemble_score
from core.files.images import read_image
from core.imaging.model_input import InputSpec, model_input_from_file
from core.imaging.picture_statistics import image_statistics
from core.inference.bundle import Bundle, load_bundle, write_bundle

from .ood import (
    DEFAULT_COMPONENTS,
    MahalanobisStats,
    add_ood_output,
    feature_tensor,
    fit_mahalanobis,
    ood_scores,
    strip_ood_output,
)

# Each part flags this share of validation images, so the whole check flags about 1% of them.
PART_FLAG_SHARE = 0.005
# "Not dermoscopy at all": the feature part from this many times the highest validation score, the
# picture part beyond every training image: far outside anything the models were calibrated on.
CLEAR_FACTOR = 2.0


@dataclass(frozen=True)
class LabelledImages:
    paths: tuple[Path, ...]
    labels: tuple[str, ...]

    def __add__(self, other: LabelledImages) -> LabelledImages:
        return LabelledImages(self.paths + other.paths, self.labels + other.labels)


def split_images(
    split_file: Path, data_dir: Path, part: str, limit: int | None = None, seed: int = 0, column: str = "split"
):
    rows = [r for r in csv.DictReader(open(split_file, newline="")) if r[column] == part]
    if limit is not None and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        rows = [rows[i] for i in keep]
    return LabelledImages(
        tuple(data_dir / "images" / f"{r['image_id']}.jpg" for r in rows), tuple(r["dx"] for r in rows)
    )


def extra_source_images(labels_csv: Path, part: str, limit: int | None) -> LabelledImages:
    """A further training source's part (ISIC 2017: labels.csv with challenge_split, images/ beside it)."""
    return split_images(labels_csv, labels_csv.parent, part, limit, column="challenge_split")


def _feature_session(member_path: Path, threads: int) -> ort.InferenceSession:
    model = onnx.load(str(member_path))
    name = feature_tensor(model)
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"]), name


def member_features(bundle: Bundle, images: LabelledImages, threads: int = 0, batch_size: int = 32) -> np.ndarray:
    """N x members x D pooled features of the id view, through the app's image -> model-input path.
    Images go through the members `batch_size` at a time: one image per run left the cores idle."""
    m = bundle.manifest
    spec = InputSpec.from_manifest(m)
    sessions = [_feature_session(bundle.member_path(mem), threads) for mem in m.members]
    out = None
    for start in range(0, len(images.paths), batch_size):
        paths = images.paths[start : start + batch_size]
        x = np.stack([model_input_from_file(p, spec) for p in paths]).astype(np.float32)
        for j, (sess, name) in enumerate(sessions):
            feats = sess.run([name], {"image": x})[0]
            if out is None:
                out = np.zeros((len(images.paths), len(sessions), feats.shape[1]), np.float32)
            out[start : start + len(paths), j] = feats
    return out


def picture_statistics(paths) -> np.ndarray:
    """N x 13 picture statistics (core.imaging.picture_statistics.image_statistics) of decoded files."""
    return np.stack([image_statistics(read_image(p).rgb) for p in paths])


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cov = np.cov(x.T) + 1e-6 * np.eye(x.shape[1])
    return x.mean(axis=0), np.linalg.inv(cov)


def _mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    d = x - mean
    return np.einsum("nd,de,ne->n", d, precision, d)


def fit_check(
    stats: list[MahalanobisStats],
    val_features: np.ndarray,
    train_pictures: np.ndarray,
    val_pictures: np.ndarray,
    fitted_on: str,
) -> IntakeCheck:
    feature = np.array([ensemble_score([ood_scores(s, val_features[i : i + 1, j])[0] for j, s in enumerate(stats)])
                        for i in range(len(val_features))])  # fmt: skip
    threshold = float(np.quantile(feature, 1.0 - PART_FLAG_SHARE))
    mean, precision = _gaussian(train_pictures)
    picture = _mahalanobis(val_pictures, mean, precision)
    image_threshold = float(np.quantile(picture, 1.0 - PART_FLAG_SHARE))
    image_clear = float(max(_mahalanobis(train_pictures, mean, precision).max(), image_threshold))
    return IntakeCheck(
        threshold=threshold,
        clear_threshold=float(max(feature.max(), threshold) * CLEAR_FACTOR),
        validation_flagged=float(((feature > threshold) | (picture > image_threshold)).mean()),
        fitted_on=fitted_on,
        image_mean=tuple(float(v) for v in mean),
        image_precision=tuple(tuple(float(v) for v in row) for row in precision),
        image_threshold=image_threshold,
        image_clear_threshold=image_clear,
    )


def add_intake_check(
    bundle: Bundle,
    out: Path,
    train_features: np.ndarray,
    train_labels,
    val_features: np.ndarray,
    fitted_on: str,
    n_components: int = DEFAULT_COMPONENTS,
    train_pictures: np.ndarray | None = None,
    val_pictures: np.ndarray | None = None,
) -> Bundle:
    """train/val_features: N x members x D pooled features (id view); *_pictures: N x 13 picture
    statistics of the same images (both or neither: without them the check has the feature part only)."""
    m = bundle.manifest
    labels = np.asarray(train_labels)
    stats = [fit_mahalanobis(train_features[:, j], labels, n_components) for j in range(len(m.members))]
    if train_pictures is not None and val_pictures is not None:
        check = fit_check(stats, val_features, train_pictures, val_pictures, fitted_on)
    else:
        check = _feature_only_check(stats, val_features, fitted_on)
    with tempfile.TemporaryDirectory(prefix="melascreen-intake-") as tmp:
        files = {}
        for mem, s in zip(m.members, stats):
            path = Path(tmp) / mem.file
            # A member that has a check already gets the new one instead (re-fitted on other images).
            plain = strip_ood_output(onnx.load(str(bundle.member_path(mem))))
            onnx.save(add_ood_output(plain, s), str(path))
            files[mem.file] = path
        provenance = dict(m.provenance)
        provenance["intake_check"] = {
            "components": n_components,
            "fitted_on": fitted_on,
            "flag_share_per_part": PART_FLAG_SHARE,
        }
        manifest = replace(m, ood=check, provenance=provenance)
        return write_bundle(out, manifest, files, bundle.model_card)


def _feature_only_check(stats: list[MahalanobisStats], val_features: np.ndarray, fitted_on: str) -> IntakeCheck:
    feature = np.array([ensemble_score([ood_scores(s, val_features[i : i + 1, j])[0] for j, s in enumerate(stats)])
                        for i in range(len(val_features))])  # fmt: skip
    threshold = float(np.quantile(feature, 1.0 - 2 * PART_FLAG_SHARE))
    return IntakeCheck(
        threshold=threshold,
        clear_threshold=float(max(feature.max(), threshold) * CLEAR_FACTOR),
        validation_flagged=float((feature > threshold).mean()),
        fitted_on=fitted_on,
    )


def _load_npz_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(path)
    return data["feats"].astype(np.float32), data["dx"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--split-file", type=Path, default=Path("configs/splits/ham10000_lesion_split.csv"))
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/dermoscopy")
    ap.add_argument("--train-images", type=int, default=3000, help="training images sampled for the statistics")
    ap.add_argument("--components", type=int, default=DEFAULT_COMPONENTS)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--train-features", type=Path, help="npz (feats, dx) computed earlier for the training sample")
    ap.add_argument("--val-features", type=Path, help="npz (feats, dx) computed earlier for the validation split")
    ap.add_argument(
        "--extra-source",
        type=Path,
        action="append",
        default=[],
        help="labels.csv of a further training source (challenge_split parts, images/ beside it): its train "
        "part joins the statistics, its val part the thresholds",
    )
    ap.add_argument("--extra-train-images", type=int, default=1000, help="training images sampled per extra source")
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle, allow_unsigned=True)
    train = split_images(args.split_file, args.data, "train", args.train_images)
    val = split_images(args.split_file, args.data, "val")
    for labels_csv in args.extra_source:
        train = train + extra_source_images(labels_csv, "train", args.extra_train_images)
        val = val + extra_source_images(labels_csv, "val", None)
    if args.train_features:
        train_feats, train_labels = _load_npz_features(args.train_features)
        if len(train_feats) != len(train.paths):
            raise SystemExit(f"{args.train_features}: {len(train_feats)} images, the sample has {len(train.paths)}")
    else:
        train_feats, train_labels = member_features(bundle, train, args.threads), np.array(train.labels)
    if args.val_features:
        val_feats, _ = _load_npz_features(args.val_features)
    else:
        val_feats = member_features(bundle, val, args.threads)
    train_pictures, val_pictures = picture_statistics(train.paths), picture_statistics(val.paths)
    sources = ", ".join([args.split_file.name, *(str(p.parent.name) for p in args.extra_source)])
    fitted_on = (
        f"{len(train_feats)} training images of {sources} (statistics, id view); "
        f"{len(val_feats)} validation images (thresholds)"
    )
    if args.out.exists():
        shutil.rmtree(args.out)
    new = add_intake_check(
        bundle, args.out, train_feats, train_labels, val_feats, fitted_on, args.components, train_pictures, val_pictures
    )
    check = new.manifest.ood.to_dict()
    print(json.dumps({k: v for k, v in check.items() if k not in ("image_mean", "image_precision")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
