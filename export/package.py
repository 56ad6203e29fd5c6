"""Training run -> verified, calibrated model bundle.

    python -m export.package --run RUN_DIR --out BUNDLE_DIR [--split-file SPLIT.csv]
                             [--weights-dtype float16] [--max-val N]

Steps (each logs its time and output size):
1. read RUN_DIR/member-<seed>/best.pt (written by training/train.py) and rebuild each timm model;
2. export each member to ONNX (export.onnx_export) and check parity with torch and pytorch-grad-cam
   on random inputs and real validation images (export.parity);
3. write an unfitted bundle (temperature 1, default gate) to BUNDLE_DIR.unfitted (staging);
4. preprocess the validation split through core (read_image -> preprocess -> to_model_input) and run
   core's Ensemble on it: TTA-averaged member logits, exactly what the app computes;
5. fit per-member temperatures and the gate thresholds on them (export.calibrate);
6. write the final manifest and model_card.md over the staging bundle, reload it through core,
   check that core's p(melanoma) is the one the thresholds were fitted on, and only then move it
   to BUNDLE_DIR (replacing an older bundle there). A failure leaves the staging folder to inspect.
Only the validation split is used; the test split is left to the evaluation step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from core.common.errors import MelaScreenError
from core.decision.gate import GateSettings
from core.imaging.model_input import square_from_file
from core.imaging.preprocess import PreprocessParams, normalize
from core.inference.bundle import EVALUATION_BEGIN, EVALUATION_END, load_bundle, write_bundle
from core.inference.calibration import calibrated_probs
from core.inference.digests import sha256_file
from core.inference.ensemble import Ensemble, EnsembleSettings
from core.inference.manifest import DEFAULT_TTA, Manifest, Member
from core.inference.signing import Trust, read_private_key, trust_of
from evalkit.labelled import DEFAULT_DATA_DIR, LabelsError, image_path, project_relative, read_split
from evalkit.metrics import roc_auc

from . import calibrate
from .onnx_export import OPSET, MemberInfo, export_member
from .parity import check_parity

log = logging.getLogger("export.package")

POSITIVE_CLASS = "mel"
MALIGNANT_CLASSES = ("akiec", "bcc", "mel")  # p(malignant) = the sum of these classes' probabilities
PARITY_RANDOM = 4  # random inputs per parity check
PARITY_REAL = 4  # validation images per parity check
CONSISTENCY_CASES = 8  # validation cases re-run through the final bundle
REPO_ROOT = Path(__file__).resolve().parents[1]


class PackagingError(MelaScreenError, RuntimeError):
    """The run cannot be packaged; the message says which file and why."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    arch: str
    seed: int
    num_classes: int
    class_names: tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    preprocess: dict | None  # core PreprocessParams fields; None: training skipped preprocessing
    val_metrics: dict
    config: dict


# ------------------------------------------------------------------------------ reading the run


def find_checkpoints(run_dir: Path, members: Sequence[str] | None = None) -> list[Path]:
    """RUN/member-*/best.pt, or the named member folders (e.g. chosen by validation AUC)."""
    if members:
        found = [run_dir / m / "best.pt" for m in members]
        missing = [str(p) for p in found if not p.is_file()]
        if missing:
            raise PackagingError(f"no checkpoint at {', '.join(missing)}; name member folders of {run_dir}")
        return found
    found = sorted(run_dir.glob("member-*/best.pt"), key=lambda p: _seed_of(p.parent.name))
    if not found:
        raise PackagingError(f"{run_dir}: no member-<seed>/best.pt found; is this a finished training run?")
    return found


def _seed_of(name: str) -> int:
    try:
        return int(name.split("-", 1)[1])
    except (IndexError, ValueError):
        return sys.maxsize


def load_checkpoint(path: Path) -> tuple[Checkpoint, dict]:
    """The checkpoint's description and its state dict (keys as training/train.py export_record)."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors here
        raise PackagingError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from exc
    missing = [
        k
        for k in ("state_dict", "arch", "num_classes", "class_names", "input_size", "mean", "std", "seed")
        if k not in record
    ]
    if missing:
        raise PackagingError(f"{path}: checkpoint lacks {missing}; was it written by training/train.py?")
    ckpt = Checkpoint(
        path=path,
        arch=str(record["arch"]),
        seed=int(record["seed"]),
        num_classes=int(record["num_classes"]),
        class_names=tuple(str(c) for c in record["class_names"]),
        input_size=int(record["input_size"]),
        mean=tuple(float(v) for v in record["mean"]),
        std=tuple(float(v) for v in record["std"]),
        preprocess=dict(record["preprocess"]) if record.get("preprocess") is not None else None,
        val_metrics=without_absolute_paths(_jsonable(record.get("val_metrics", {}))),
        config=without_absolute_paths(_jsonable(record.get("config", {}))),
    )
    if len(ckpt.class_names) != ckpt.num_classes:
        raise PackagingError(f"{path}: {ckpt.num_classes} classes but {len(ckpt.class_names)} class names")
    return ckpt, record["state_dict"]


def rebuild_member(ckpt: Checkpoint, state_dict: dict) -> torch.nn.Module:
    """The trained timm model of a checkpoint (architecture only from timm, weights from the file)."""
    import timm

    model = timm.create_model(ckpt.arch, pretrained=False, num_classes=ckpt.num_classes)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise PackagingError(f"{ckpt.path}: weights do not fit timm {ckpt.arch} ({exc})") from exc
    return model.eval()


def _jsonable(value):
    """Plain JSON types (checkpoints may hold tuples, tensors or numpy scalars)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def without_absolute_paths(value):
    """A training configuration with every absolute path made project-relative (for provenance)."""
    if isinstance(value, dict):
        return {k: without_absolute_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_absolute_paths(v) for v in value]
    if isinstance(value, str) and Path(value).is_absolute():
        return project_relative(value)
    return value


def check_members_agree(ckpts: list[Checkpoint]) -> None:
    first = ckpts[0]
    for c in ckpts[1:]:
        for key in ("class_names", "input_size", "mean", "std", "preprocess"):
            if getattr(c, key) != getattr(first, key):
                raise PackagingError(
                    f"{c.path}: {key} {getattr(c, key)!r} differs from {first.path}'s {getattr(first, key)!r}; "
                    "members of one bundle must share inputs and classes"
                )
    if POSITIVE_CLASS not in first.class_names:
        raise PackagingError(
            f"{first.path}: class names {first.class_names} lack the positive class {POSITIVE_CLASS!r}"
        )


def preprocessing_params(ckpt: Checkpoint) -> PreprocessParams:
    if ckpt.preprocess is None:  # trained on unpreprocessed images: the app must not preprocess either
        return PreprocessParams(corners=False, hair=False, clahe=False)
    return PreprocessParams.from_dict(ckpt.preprocess)


# ------------------------------------------------------------------------------ validation images


def _square_image(job: tuple[str, dict, int]) -> np.ndarray:
    path, params, size = job
    return square_from_file(path, PreprocessParams.from_dict(params), size)  # the app's path, before normalising


def load_validation_squares(paths: list[Path], params: PreprocessParams, size: int, workers: int) -> np.ndarray:
    """uint8 N x S x S x 3, through core's preprocessing (normalised later, chunk by chunk)."""
    jobs = [(str(p), params.to_dict(), size) for p in paths]
    if workers > 1 and len(jobs) > 1:
        with Pool(workers) as pool:
            squares = pool.map(_square_image, jobs, chunksize=8)
    else:
        squares = [_square_image(j) for j in jobs]
    return np.stack(squares)


def model_inputs(squares: np.ndarray, mean, std) -> np.ndarray:
    return np.stack([normalize(s, mean, std) for s in squares])


def ensemble_member_logits(ensemble: Ensemble, squares: np.ndarray, mean, std, chunk: int = 64) -> np.ndarray:
    parts = []
    t0 = time.perf_counter()
    for start in range(0, len(squares), chunk):
        parts.append(ensemble.member_logits(model_inputs(squares[start : start + chunk], mean, std)))
        done = min(start + chunk, len(squares))
        log.info("  ensemble on validation: %d/%d images, %.0f s", done, len(squares), time.perf_counter() - t0)
    return np.concatenate(parts, axis=1)


# ------------------------------------------------------------------------------ provenance, card


def git_state() -> dict:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def library_versions() -> dict:
    import onnx
    import onnxruntime
    import timm

    try:
        from importlib.metadata import version

        grad_cam = version("grad-cam")
    except Exception:  # the version is informative only
        grad_cam = "unknown"
    return {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "grad_cam": grad_cam,
        "python": sys.version.split()[0],
    }


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def model_card(manifest: Manifest, ckpts: list[Checkpoint], info: dict) -> str:
    cfg = ckpts[0].config or {}
    data_cfg, model_cfg, loss_cfg = cfg.get("data", {}), cfg.get("model", {}), cfg.get("loss", {})
    phases = [(k, cfg[k]) for k in ("phase1", "phase2", "phase3") if isinstance(cfg.get(k), dict)]
    counts = info["split_counts"]
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        f"> {manifest.disclaimer}",
        "",
        "## What it does",
        f"Classifies a dermoscopy image into {', '.join(manifest.class_names)}; the app reports "
        f"p({manifest.positive_class}) from an ensemble of {len(manifest.members)} "
        f"member{'s' if len(manifest.members) != 1 else ''} "
        f"({', '.join(sorted({m.arch for m in manifest.members}))}) averaged over {len(manifest.tta_views)} "
        "test-time views, calibrated per member, and a gate that calls an image benign, suspicious "
        "(refer) or uncertain (review). Each member also returns Grad-CAM heat maps.",
        "",
        "## Data",
        "HAM10000 (ISIC 2018 Task 3 training set, 10,015 dermoscopy images of 7,470 lesions, CC BY-NC 4.0; "
        "Tschandl et al., Sci. Data 5, 180161, 2018), images at 384 x 288.",
        f"Split: `{info['split_file']}` (sha256 {info['split_sha256'][:16]}...), grouped by lesion so no "
        f"lesion is in two splits: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))} images.",
        f"Temperatures and gate thresholds were fitted on the validation split only ({info['validation_used']} of "
        f"{counts.get('val', 0)} validation images); the test split was not used by training or packaging.",
        *_extra_source_lines(data_cfg),
        "",
        "## Training recipe",
        f"- architecture {ckpts[0].arch}, input {manifest.input_size} px, mean {list(manifest.mean)}, std "
        f"{list(manifest.std)}, ImageNet-pretrained ({model_cfg.get('pretrained_path') or 'built-in source'}), "
        f"drop rate {model_cfg.get('drop_rate', '?')}",
        "- preprocessing (core.imaging.preprocess, the same code the app runs): "
        + json.dumps(manifest.preprocessing.to_dict()),
        f"- augmentation {data_cfg.get('augment', '?')}, at most {data_cfg.get('max_per_class', '?')} training "
        f"images per class per epoch; focal loss gamma {loss_cfg.get('gamma', '?')}, class weights "
        f"(1/frequency)^{loss_cfg.get('class_weight_power', '?')}",
    ]
    for name, ph in phases:
        lines.append(
            f"- {name}: {ph.get('epochs', '?')} epochs, lr {ph.get('lr', '?')}, batch {ph.get('batch_size', '?')}"
        )
    snapshots = [c for c in ckpts if "snapshot_cycle" in c.val_metrics]
    if snapshots:
        # Members may come from several chains (different starting checkpoints): one line per chain.
        chains: dict[str, list[str]] = {}
        for c in snapshots:
            chains.setdefault(str(c.val_metrics.get("init", "?")), []).append(str(c.val_metrics["snapshot_cycle"]))
        lines.append(
            "- members are snapshots (training/snapshots.py): full fine-tuning with one-epoch warm restarts, "
            "each member the model at the end of one cycle:"
        )
        for init, cycles in chains.items():
            lines.append(f"  - continued from `{init}`: cycle {', '.join(cycles)}")
    seeds = f"recorded seeds {[c.seed for c in ckpts]}" + (
        " (a snapshot records its cycle index - 1)" if snapshots else ""
    )
    lines += [f"- {seeds}; full configuration in manifest.json provenance.config", ""]
    lines += [
        "## Validation (the split the bundle was calibrated on)",
        "",
        "| member | trained as | temperature | val mel AUC (training, no TTA) | val mel AUC (ONNX, TTA) "
        "| NLL before / after T |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m, c in zip(manifest.members, ckpts):
        vm = m.val_metrics
        lines.append(
            f"| {m.file} | {_trained_as(c)} | {m.temperature:.3f} | {_fmt(vm.get('val_mel_auc', 'n/a'))} | "
            f"{_fmt(vm.get('tta_val_mel_auc', 'n/a'))} | {_fmt(vm.get('nll_before_temperature', 'n/a'))} / "
            f"{_fmt(vm.get('nll_after_temperature', 'n/a'))} |"
        )
    ens = info["ensemble_validation"]
    lines += [
        "",
        f"Ensemble on {ens['n']} validation images ({ens['n_melanoma']} melanoma): mel AUC "
        f"{ens['mel_auc']:.4f}, accuracy {ens['accuracy']:.4f}, NLL {ens['nll']:.4f}.",
        "",
        "Gate thresholds (fitted on validation p(melanoma)):",
        "",
        "Rule: below `low`, at most 1 - confidence of the cases are melanoma AND at most 1 - confidence of "
        "all validation melanomas fall; at or above `high`, at least `confidence` of the cases are melanoma. "
        "With few validation melanomas these bounds are coarse: read the last column.",
        "",
        "| confidence | low (benign below) | high (suspicious at/above) | benign calls (melanoma among them) "
        "| suspicious calls (melanoma among them) | melanomas called benign |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in info["threshold_fits"]:
        high = f"{f['high']:.4f}" + (
            "" if f["high_found"] else " (none reached the confidence: nothing is called suspicious)"
        )
        missed = f"{f['melanoma_below_low']} of {ens['n_melanoma']}" if ens["n_melanoma"] else "n/a"
        lines.append(
            f"| {f['confidence']:g} | {f['low']:.4f} | {high} | {f['n_benign']} ({f['melanoma_below_low']}) | "
            f"{f['n_suspicious']} ({f['melanoma_at_or_above_high']}) | {missed} |"
        )
    lines += [
        "",
        "## Export",
        f"ONNX opset {info['opset']}, weights stored as {info['weights_dtype']}"
        + (
            " (torch weights rounded to fp16 before export; parity measured against that rounded model;"
            " compute is fp32)"
            if info["weights_dtype"] == "float16"
            else ""
        )
        + f". Parity (max abs, tolerance {info['tolerance']:g}): "
        + "; ".join(
            f"{p['file']}: logits {p['logits_max_abs']:.2g}, CAM {p['cam_max_abs']:.2g}" for p in info["parity"]
        ),
        "",
        "## Known limits",
        (
            "- Trained on HAM10000 and "
            + ", ".join(src.get("name", "?") for src in data_cfg.get("extra_sources", []))
            + ": a few sites and dermatoscopes, mostly fair skin; measure a new camera before relying on it."
            if data_cfg.get("extra_sources")
            else "- Trained and validated on HAM10000 only: one dataset from two sites (Vienna, Queensland), mostly "
            "fair skin; performance on other dermoscopes, populations and skin types is unknown."
        ),
        "- Dermoscopy images only; clinical (non-dermoscopic) photographs are out of scope.",
        "- Thresholds are estimated from a few hundred validation cases; at high confidence levels they rest "
        "on few cases and carry wide uncertainty. The test-set section below is the honest estimate.",
        "- The validation split also chose each member's best epoch (by validation melanoma AUC), so "
        "validation figures are optimistic; temperatures and thresholds inherit that.",
        "- Grad-CAM maps show where the last feature map drove the score at low resolution; they are not "
        "lesion segmentations.",
        "- Research tool, not a medical device: not for diagnosis.",
        "",
        "## Test-set evaluation",
        EVALUATION_BEGIN,
        "_Not yet evaluated: the evaluation step (training/evaluate.py) writes the test-split metrics here._",
        EVALUATION_END,
        "",
    ]
    return "\n".join(lines)


def _extra_source_lines(data_cfg: dict) -> list[str]:
    """The model card's lines for training sources beyond HAM10000 (training.config SourceConfig)."""
    sources = data_cfg.get("extra_sources") or []
    if not sources:
        return []
    lines = ["", "Further training sources (their own train parts for training, val parts for validation):"]
    for src in sources:
        cap = src.get("max_per_class") or data_cfg.get("max_per_class", "?")
        lines.append(
            f"- {src.get('name', '?')}: `{project_relative(src.get('labels_csv', '?'))}`, parts from column "
            f"`{src.get('split_column', '?')}`, at most {cap} images per class per epoch; its images are scored "
            "over the diagnoses it labels only (a source-masked loss), so a source without basal cell carcinoma "
            "labels never teaches 'not a basal cell carcinoma'."
        )
    return lines


# ------------------------------------------------------------------------------ the pipeline


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _trained_as(ckpt: Checkpoint) -> str:
    """A member's origin for the card: its seed, or for a snapshot its cycle and chain (whose recorded
    seed is the cycle index, so 'seed' alone would mislead)."""
    if "snapshot_cycle" in ckpt.val_metrics:
        init = _checkpoint_label(Path(str(ckpt.val_metrics.get("init", "?"))))
        return f"cycle {ckpt.val_metrics['snapshot_cycle']} from {init}"
    return f"seed {ckpt.seed}"


def _checkpoint_label(path: Path) -> str:
    """run/member folder of a checkpoint: members of a mixed bundle come from several runs."""
    return "/".join(part for part in (path.parent.parent.name, path.parent.name) if part)


def export_members(
    loaded: list[tuple[Checkpoint, dict]], folder: Path, weights_dtype: str, parity_inputs: np.ndarray, commit: str
) -> tuple[list[Member], dict[str, Path], list[dict]]:
    """Export and parity-check each member: (manifest members, their files, parity figures)."""
    members, files, parity = [], {}, []
    for k, (ckpt, state) in enumerate(loaded):
        t = time.perf_counter()
        info = MemberInfo(
            ckpt.arch,
            ckpt.seed,
            ckpt.input_size,
            ckpt.class_names,
            ckpt.mean,
            ckpt.std,
            extra={"git_commit": commit, "checkpoint": _checkpoint_label(ckpt.path)},
        )
        # Named by position, not seed: snapshot members of two chains can record the same cycle as seed.
        fname = f"member-{k}.onnx"
        exported = export_member(rebuild_member(ckpt, state), folder / fname, info, weights_dtype)
        report = check_parity(exported.path, exported.reference, parity_inputs, ("random normal", "validation images"))
        reference = "torch model with fp16-rounded weights" if weights_dtype == "float16" else "torch model"
        parity.append({"file": fname, **report.to_dict(), "reference": reference})
        members.append(
            Member(file=fname, sha256="", arch=ckpt.arch, seed=ckpt.seed, val_metrics=dict(ckpt.val_metrics))
        )
        files[fname] = exported.path
        log.info(
            "step 3: %s (seed %d) exported (%.1f MB, %s weights) and parity-checked (logits %.2g, CAM %.2g) in %.1f s",
            fname,
            ckpt.seed,
            exported.size_bytes / 1e6,
            weights_dtype,
            report.logits_max_abs,
            report.cam_max_abs,
            time.perf_counter() - t,
        )
    return members, files, parity


@dataclass(frozen=True)
class Calibration:
    members: tuple[Member, ...]  # with temperatures and validation figures
    gate: GateSettings
    p_melanoma: np.ndarray  # validation p(melanoma) the thresholds were fitted on
    record: dict  # for the manifest's provenance and the model card


def fit_calibration(members: list[Member], logits: np.ndarray, labels: np.ndarray, class_names) -> Calibration:
    """Temperatures per member, then gate thresholds on the calibrated ensemble p(melanoma)."""
    temps = calibrate.fit_temperatures(logits, labels)
    for m, fit in zip(members, temps):
        if fit.at_bound:
            log.warning(
                "%s: temperature %.3g is at the search bound %s: check this member and the validation data",
                m.file,
                fit.temperature,
                calibrate.TEMPERATURE_BOUNDS,
            )
    pos = list(class_names).index(POSITIVE_CLASS)
    is_mel = labels == pos
    t = np.array([f.temperature for f in temps], np.float32)
    p = calibrate.ensemble_probability(logits, t, pos)
    # The gate works on p(malignant) (issue 11): the HAM10000 malignant classes present in this model.
    mal_idx = [i for i, c in enumerate(class_names) if c in MALIGNANT_CLASSES]
    is_mal = np.isin(labels, mal_idx)
    p_mal = calibrate.ensemble_malignancy(logits, t, mal_idx)
    gate, fits = calibrate.fit_malignancy_gate(p_mal, is_mal, is_mel)
    fitted = []
    for m, fit, member_logits in zip(members, temps, logits):
        metrics = {
            **m.val_metrics,
            "tta_val_mel_auc": roc_auc(is_mel, member_logits[:, pos] - _logsumexp(member_logits)),
            "nll_before_temperature": fit.nll_before,
            "nll_after_temperature": fit.nll_after,
            "calibration_cases": fit.n,
        }
        fitted.append(replace(m, temperature=fit.temperature, val_metrics=metrics))
    probs = calibrated_probs(logits, t).mean(axis=0)
    ensemble_val = {
        "n": int(len(labels)),
        "n_melanoma": int(is_mel.sum()),
        "mel_auc": roc_auc(is_mel, p),
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "nll": float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12)))),
    }
    record = {
        "split": "val",
        "n": int(len(labels)),
        "temperatures": [f.temperature for f in temps],
        "threshold_fits": [f.to_dict() for f in fits],
        "ensemble_validation": ensemble_val,
        "p_melanoma": "mean over members of softmax(TTA-averaged logits / T_member)[mel], as core.inference.ensemble",
    }
    return Calibration(members=tuple(fitted), gate=gate, p_melanoma=p, record=record)


def package(
    run_dir: str | Path,
    out_dir: str | Path,
    split_file: str | Path | None = None,
    weights_dtype: str = "float32",
    images_dir: str | Path | None = None,
    max_val: int | None = None,
    workers: int = 2,
    name: str = "MelaScreen HAM10000 ensemble",
    version: str | None = None,
    tta_views: tuple[str, ...] = DEFAULT_TTA,
    members: Sequence[str] | None = None,
    sign_key=None,
    save_logits: str | Path | None = None,
) -> Path:
    """Run the whole packaging; returns the final bundle folder (replaced only once all checks pass).

    `sign_key` (an Ed25519 private key, core.inference.signing.read_private_key): the final bundle is signed;
    without it the bundle is unsigned and loads only where unsigned bundles are allowed.
    `save_logits`: also write the validation member logits (npz: ids, dx, logits N x members x
    classes, TTA-averaged, before temperature) that export.refit and training.evaluate can reuse."""
    t_all = time.perf_counter()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "manifest.json").is_file():
        raise PackagingError(f"{out_dir}: exists and is not a bundle; choose an empty or new folder (it is replaced)")
    staging = out_dir.with_name(out_dir.name + ".unfitted")
    if staging.exists():
        shutil.rmtree(staging)

    t = time.perf_counter()
    loaded = [load_checkpoint(p) for p in find_checkpoints(run_dir, members)]
    ckpts = [c for c, _ in loaded]
    check_members_agree(ckpts)
    first = ckpts[0]
    params = preprocessing_params(first)
    log.info(
        "step 1: %d checkpoints (%s) read in %.1f s",
        len(ckpts),
        ", ".join(f"{c.arch}/{c.seed}" for c in ckpts),
        time.perf_counter() - t,
    )

    split_path = Path(split_file) if split_file else run_dir / "split.csv"
    try:
        cases = read_split(split_path)
    except LabelsError as exc:
        raise PackagingError(f"not a readable split file ({exc})") from exc
    val = [c for c in cases if c.split == "val"]
    if not val:
        raise PackagingError(f"{split_path}: no validation cases; calibration needs the validation split")
    if max_val is not None and max_val < len(val):  # evenly spread: split files are often sorted by diagnosis
        val = [val[i] for i in np.linspace(0, len(val) - 1, max_val).round().astype(int)]
    images_dir = Path(images_dir or first.config.get("data", {}).get("images_dir") or DEFAULT_DATA_DIR / "images")
    unknown = [c.dx for c in val if c.dx not in first.class_names]
    if unknown:
        raise PackagingError(f"{split_path}: diagnoses {sorted(set(unknown))} are not among {first.class_names}")
    t = time.perf_counter()
    squares = load_validation_squares(
        [image_path(images_dir, c.image_id) for c in val], params, first.input_size, workers
    )
    labels = np.array([first.class_names.index(c.dx) for c in val], dtype=np.int64)
    log.info(
        "step 2: %d validation images preprocessed through core in %.1f s (%.0f MB as uint8)",
        len(val),
        time.perf_counter() - t,
        squares.nbytes / 1e6,
    )

    staging.mkdir(parents=True)
    git = git_state()
    random_inputs = np.random.default_rng(0).standard_normal((PARITY_RANDOM, 3, first.input_size, first.input_size))
    parity_inputs = np.concatenate(
        [random_inputs.astype(np.float32), model_inputs(squares[:PARITY_REAL], first.mean, first.std)]
    )
    members, files, parity = export_members(loaded, staging, weights_dtype, parity_inputs, git["commit"])

    counts: dict[str, int] = {}
    for c in cases:
        counts[c.split] = counts.get(c.split, 0) + 1
    provenance = {
        # Paths relative to the project root: a bundle must not carry its build machine's folders.
        "data": {
            "dataset": "HAM10000",
            "images_dir": project_relative(images_dir),
            "split_counts": counts,
            "validation_used": len(val),
            # Further training sources (training.config SourceConfig), each split by its own parts.
            "extra_sources": [
                {k: project_relative(v) if k in ("labels_csv", "images_dir") else v for k, v in src.items()}
                for src in first.config.get("data", {}).get("extra_sources", []) or []
            ],
        },
        "split_file": project_relative(split_path),
        "split_sha256": sha256_file(split_path),
        "run_dir": project_relative(run_dir),
        # One per member, in order, relative to run_dir (they may span several runs beside it).
        "checkpoints": [Path(os.path.relpath(c.path, run_dir)).as_posix() for c in ckpts],
        "config": first.config,
        "git": git,
        "versions": library_versions(),
        "export": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "opset": OPSET,
            "weights_dtype": weights_dtype,
            "fp16_note": "torch weights were rounded to fp16 before export and parity was measured against "
            "that rounded model; ONNX compute is fp32"
            if weights_dtype == "float16"
            else "",
            "parity": parity,
        },
    }
    unfitted = Manifest(
        name=name,
        version=version or datetime.now(timezone.utc).strftime("%Y.%m.%d"),
        class_names=first.class_names,
        positive_class=POSITIVE_CLASS,
        malignant_classes=tuple(c for c in MALIGNANT_CLASSES if c in first.class_names),
        input_size=first.input_size,
        mean=first.mean,
        std=first.std,
        members=tuple(members),
        preprocessing=params,
        tta_views=tuple(tta_views),
        provenance={**provenance, "calibration": "NOT FITTED: temperatures 1, default gate"},
    )
    t = time.perf_counter()
    bundle = write_bundle(staging, unfitted, files, "UNFITTED staging bundle: do not ship.\n")
    log.info(
        "step 4: unfitted bundle written to %s (%.1f MB) in %.1f s",
        staging,
        _dir_size(staging) / 1e6,
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    logits = ensemble_member_logits(Ensemble(bundle, EnsembleSettings(provider="cpu")), squares, first.mean, first.std)
    log.info(
        "step 5: TTA member logits on %d validation images x %d views x %d members in %.1f s",
        len(squares),
        len(tta_views),
        len(members),
        time.perf_counter() - t,
    )

    if save_logits is not None:
        np.savez(
            save_logits,
            ids=np.array([c.image_id for c in val]),
            dx=np.array([c.dx for c in val]),
            logits=np.asarray(logits).transpose(1, 0, 2).astype(np.float32),
        )
        log.info("step 5: validation member logits saved to %s", save_logits)

    t = time.perf_counter()
    cal = fit_calibration(members, logits, labels, first.class_names)
    fits = cal.record["threshold_fits"]
    log.info(
        "step 6: calibration fitted in %.1f s: temperatures %s; ensemble val mel AUC %.4f; thresholds %s",
        time.perf_counter() - t,
        [round(m.temperature, 3) for m in cal.members],
        cal.record["ensemble_validation"]["mel_auc"],
        {f"{f['confidence']:g}": (round(f["low"], 4), round(f["high"], 4)) for f in fits},
    )

    t = time.perf_counter()
    final = replace(unfitted, members=cal.members, gate=cal.gate, provenance={**provenance, "calibration": cal.record})
    card = model_card(
        final,
        ckpts,
        {
            "split_file": split_path.name,
            "split_sha256": provenance["split_sha256"],
            "split_counts": counts,
            "validation_used": len(val),
            "ensemble_validation": cal.record["ensemble_validation"],
            "threshold_fits": fits,
            "opset": OPSET,
            "weights_dtype": weights_dtype,
            "tolerance": parity[0]["tolerance"],
            "parity": parity,
        },
    )
    # The member files stay where they are: the staging folder becomes the final bundle.
    check_core_agrees(
        write_bundle(staging, final, {m.file: staging / m.file for m in final.members}, card, sign_key),
        squares[:CONSISTENCY_CASES],
        cal.p_melanoma[:CONSISTENCY_CASES],
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    load_bundle(out_dir, trust=trust_of(sign_key) if sign_key is not None else Trust(allow_unsigned=True))
    log.info(
        "step 7: final bundle %s written and re-checked through core in %.1f s: %.1f MB; total %.1f s",
        out_dir,
        time.perf_counter() - t,
        _dir_size(out_dir) / 1e6,
        time.perf_counter() - t_all,
    )
    return out_dir


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=1)
    return m + np.log(np.exp(logits - m[:, None]).sum(axis=1))


def check_core_agrees(bundle_or_path, squares: np.ndarray, expected_p: np.ndarray, tol: float = 1e-5) -> None:
    """The final bundle through core gives the p(melanoma) the thresholds were fitted on."""
    bundle = load_bundle(bundle_or_path) if not hasattr(bundle_or_path, "manifest") else bundle_or_path
    m = bundle.manifest
    preds = Ensemble(bundle, EnsembleSettings(provider="cpu")).predict(
        model_inputs(squares, m.mean, m.std), with_cam=False
    )
    got = np.array([pr.p_melanoma for pr in preds])
    err = float(np.abs(got - expected_p).max()) if len(got) else 0.0
    if not err <= tol:
        raise PackagingError(
            f"core's p(melanoma) differs from the calibration's by {err:.3g}: thresholds would not apply"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.package", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="training run folder with member-<seed>/best.pt")
    ap.add_argument("--out", required=True, help="bundle folder to write (replaced if it exists)")
    ap.add_argument("--split-file", help="split CSV (default: RUN/split.csv)")
    ap.add_argument("--weights-dtype", choices=("float32", "float16"), default="float32")
    ap.add_argument("--images-dir", help="image folder (default: the run's config, else the shared data set)")
    ap.add_argument("--max-val", type=int, help="use only N validation images, evenly spread (smoke runs)")
    ap.add_argument("--workers", type=int, default=2, help="processes for preprocessing")
    ap.add_argument("--version", help="bundle version (default: today's date)")
    ap.add_argument("--name", default="MelaScreen HAM10000 ensemble", help="bundle name shown in the app")
    ap.add_argument("--members", help="comma-separated member folders of RUN to export (default: every member-*)")
    ap.add_argument("--sign-key", help="Ed25519 private key (PEM) to sign the bundle with (python -m export.sign)")
    ap.add_argument("--save-logits", help="also write the validation member logits to this .npz (for export.refit)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        package(
            args.run,
            args.out,
            args.split_file,
            args.weights_dtype,
            args.images_dir,
            args.max_val,
            args.workers,
            version=args.version,
            name=args.name,
            members=[m.strip() for m in args.members.split(",")] if args.members else None,
            sign_key=read_private_key(args.sign_key) if args.sign_key else None,
            save_logits=args.save_logits,
        )
    except MelaScreenError as exc:  # PackagingError, ParityError, UnsupportedHeadError, ExportError, BundleError
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
