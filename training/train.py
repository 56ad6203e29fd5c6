"""Progressive training of an ensemble, one member per seed.

    python -m training.train --config configs/cpu_default.yaml [--set phase3.epochs=2] [--resume]
    torchrun --nproc_per_node=N -m training.train --config configs/convnext_base.yaml

Phase 1 trains the classifier on a frozen backbone, phase 2 also the last blocks, phase 3 all of
it with learning rates that shrink towards the stem. Every epoch ends with a checkpoint
(member-<seed>/last.pt) from which --resume continues; best.pt keeps the epoch with the best
validation melanoma AUC and everything export needs.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from core.ensemble import softmax
from core.preprocess import PreprocessParams
from training.config import ConfigError, PhaseConfig, TrainConfig, load_config, save_config, to_dict
from training.data import (
    CLASS_NAMES,
    MELANOMA_INDEX,
    DermoscopyDataset,
    LabelledImage,
    balanced_rows,
    class_counts,
    image_cache,
    normalise,
    resolve_split,
)
from training.features import FrozenFeatures, features_key, frozen_features
from training.losses import FocalLoss, class_weights
from training.metrics import balanced_accuracy, roc_auc
from training.models import Units, backbone_units, build_model, model_mean_std

log = logging.getLogger("training")

SUMMARY_FIELDS = [
    "phase", "epoch", "train_loss", "val_loss", "val_mel_auc", "val_balanced_accuracy", "seconds", "images_per_s",
]


# ---------------------------------------------------------------- process group


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_distributed() -> Dist:
    """torchrun sets WORLD_SIZE/RANK; gloo on CPU, nccl when CUDA is there."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(dist.get_rank(), dist.get_world_size())


def device_for(d: Dist) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


# ---------------------------------------------------------------- run data


@dataclass(frozen=True)
class RunData:
    images: np.ndarray  # uint8 [N, S, S, 3], all split images in split order
    train_rows: np.ndarray
    val_rows: np.ndarray
    labels: np.ndarray  # int64 [N]
    mean: tuple
    std: tuple
    preprocess: dict | None


def prepare_data(cfg: TrainConfig, run_dir: Path, d: Dist) -> RunData:
    dc = cfg.data
    if d.main:
        split = resolve_split(dc.labels_csv, run_dir, dc.split_file, dc.split_seed, dc.val_fraction, dc.test_fraction, dc.max_images)
    d.barrier()
    if not d.main:
        split = resolve_split(dc.labels_csv, run_dir, dc.split_file, dc.split_seed, dc.val_fraction, dc.test_fraction, dc.max_images)
    params = PreprocessParams.from_dict(dc.preprocess_params) if dc.preprocess else None
    ids = [im.image_id for im in split]
    if d.main:
        images = image_cache(ids, dc.images_dir, params, dc.input_size, cfg.cache_root(), dc.cache_workers)
    d.barrier()
    if not d.main:
        images = image_cache(ids, dc.images_dir, params, dc.input_size, cfg.cache_root(), 1)
    mean, std = model_mean_std(cfg.model.arch)
    mean = tuple(dc.mean) if dc.mean is not None else mean
    std = tuple(dc.std) if dc.std is not None else std
    split_names = np.array([im.split for im in split])
    return RunData(
        images=images,
        train_rows=np.flatnonzero(split_names == "train"),
        val_rows=np.flatnonzero(split_names == "val"),
        labels=np.array([im.label for im in split], dtype=np.int64),
        mean=mean,
        std=std,
        preprocess=params.to_dict() if params is not None else None,
    )


def shared_features(cfg: TrainConfig, data: RunData, d: Dist) -> tuple[FrozenFeatures, FrozenFeatures] | None:
    """Frozen-backbone activations for train (all cached views) and val (identity view)."""
    if not any(p.cached and p.epochs > 0 for _, p in cfg.phases()[:2]):
        return None
    model = build_model(cfg.model.arch, len(CLASS_NAMES), cfg.model.pretrained_path, cfg.model.drop_rate)
    units = backbone_units(model)
    start = units.tail_start(cfg.unfreeze_blocks)
    images_key = features_key({"n": int(len(data.images)), "shape": list(data.images.shape), "file": getattr(data.images, "filename", None) and Path(data.images.filename).name})
    key = features_key(
        {
            "arch": cfg.model.arch,
            "weights": cfg.model.pretrained_path,
            "images": images_key,
            "train": data.train_rows.tolist(),
            "val": data.val_rows.tolist(),
            "tail_start": start,
            "mean": data.mean,
            "std": data.std,
        }
    )
    folder = cfg.cache_root() / f"features-{cfg.model.arch}-{key}"
    kw = dict(batch_size=cfg.eval_batch_size, channels_last=cfg.channels_last)
    if d.main:
        log.info("frozen features in %s", folder)
        frozen_features(model, units, start, data.images, data.train_rows, cfg.cached_views, data.mean, data.std, folder / "train", **kw)
        frozen_features(model, units, start, data.images, data.val_rows, ("id",), data.mean, data.std, folder / "val", **kw)
    d.barrier()
    train = frozen_features(model, units, start, data.images, data.train_rows, cfg.cached_views, data.mean, data.std, folder / "train", **kw)
    val = frozen_features(model, units, start, data.images, data.val_rows, ("id",), data.mean, data.std, folder / "val", **kw)
    return train, val


# ---------------------------------------------------------------- one phase's model view


class PhaseForward(nn.Module):
    """The model as one phase trains it: units before `start` frozen (eval, no grad).

    Input is images (from_unit=0), cached prefix activations (from_unit=start) or cached pooled
    features (from_unit=None: only the classifier runs).
    """

    def __init__(self, model: nn.Module, units: Units, start: int, from_unit: int | None, drop_rate: float, freeze_bn: bool = False):
        super().__init__()
        self.freeze_bn = freeze_bn
        self.model = model
        self.units = units
        self.start = start
        self.from_unit = from_unit
        self.drop_rate = drop_rate
        for p in model.parameters():
            p.requires_grad_(False)
        for m in units.modules[start:]:
            for p in m.parameters():
                p.requires_grad_(True)
        for p in model.get_classifier().parameters():
            p.requires_grad_(True)
        if hasattr(model, "head") and hasattr(model.head, "norm"):  # ConvNeXt head norm trains too
            for p in model.head.norm.parameters():
                p.requires_grad_(True)

    def train(self, mode: bool = True) -> "PhaseForward":
        super().train(mode)
        for m in self.units.modules[: self.start]:
            m.eval()  # frozen BN keeps its ImageNet statistics
        if self.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.from_unit is None:
            x = F.dropout(x, self.drop_rate, self.training)
            return self.model.get_classifier()(x)
        if self.from_unit < self.start:
            with torch.no_grad():
                x = Units.run(self.units.modules[self.from_unit : self.start], x)
            x = x.detach()
            first = self.start
        else:
            first = self.from_unit
        x = Units.run(self.units.modules[first:], x)
        return self.model.forward_head(x)


def param_groups(model: nn.Module, units: Units, start: int, phase: PhaseConfig) -> list[dict]:
    """AdamW groups: per unit (lr * layer_decay ** distance from the head), no decay on 1-D params."""
    groups: list[dict] = []
    seen: set[int] = set()
    n = len(units.modules)

    def add(params, lr):
        params = [p for p in params if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        if decay:
            groups.append({"params": decay, "lr": lr, "weight_decay": phase.weight_decay})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})

    add(model.get_classifier().parameters(), phase.lr)
    if hasattr(model, "head"):  # ConvNeXt: the head's norm sits beside the classifier
        add(model.head.parameters(), phase.lr)
    for i in range(n - 1, start - 1, -1):
        add(units.modules[i].parameters(), phase.lr * phase.layer_decay ** (n - i))
    add(model.parameters(), phase.lr)  # anything left (none for the supported families)
    return groups


# ---------------------------------------------------------------- evaluation


def training_loss(cfg: TrainConfig, train_labels: np.ndarray) -> FocalLoss:
    """Focal loss with class weights from the class counts one balanced epoch sees (capped at
    max_per_class): the loss every stage trains and validates with."""
    counts = class_counts(train_labels)
    if cfg.data.max_per_class is not None:
        counts = np.minimum(counts, cfg.data.max_per_class)
    return FocalLoss(cfg.loss.gamma, class_weights(counts, cfg.loss.class_weight_power))


def evaluate_logits(logits: np.ndarray, labels: np.ndarray, loss_fn: nn.Module) -> dict:
    probs = softmax(logits)
    loss = float(loss_fn(torch.from_numpy(logits), torch.from_numpy(labels)).item())
    return {
        "val_loss": loss,
        "val_mel_auc": roc_auc(labels == MELANOMA_INDEX, probs[:, MELANOMA_INDEX]),
        "val_balanced_accuracy": balanced_accuracy(labels, probs.argmax(1)),
    }


@torch.no_grad()
def predict_images(model: nn.Module, data: RunData, rows: np.ndarray, batch: int, channels_last: bool, device) -> np.ndarray:
    model.eval()
    out = []
    for b in range(0, len(rows), batch):
        x = normalise(np.asarray(data.images[rows[b : b + batch]]), data.mean, data.std).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def predict_cached(fwd: PhaseForward, inputs: np.ndarray, batch: int, device) -> np.ndarray:
    fwd.eval()
    out = []
    for b in range(0, len(inputs), batch):
        x = torch.from_numpy(np.array(inputs[b : b + batch], dtype=np.float32)).to(device)
        out.append(fwd(x).float().cpu().numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------- checkpoints


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def write_summary(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".csv.partial")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in SUMMARY_FIELDS})
    os.replace(tmp, path)


def export_record(cfg: TrainConfig, data: RunData, seed: int, model: nn.Module, metrics: dict) -> dict:
    """best.pt: the weights plus everything export needs to rebuild and describe the member."""
    return {
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "arch": cfg.model.arch,
        "num_classes": len(CLASS_NAMES),
        "class_names": list(CLASS_NAMES),
        "input_size": cfg.data.input_size,
        "mean": list(data.mean),
        "std": list(data.std),
        "preprocess": data.preprocess,
        "seed": seed,
        "val_metrics": metrics,
        "config": to_dict(cfg),
    }


def check_in_sync(model: nn.Module, d: Dist) -> None:
    """Every rank must end with the same weights; a silent divergence would make rank 0's files lie."""
    flat = torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()])
    mine = torch.stack([flat.sum(), flat.square().sum(), (flat * torch.arange(len(flat)) / len(flat)).sum()])
    gathered = [torch.zeros_like(mine) for _ in range(d.world)]
    dist.all_gather(gathered, mine)
    for r, theirs in enumerate(gathered):
        if not torch.allclose(theirs, gathered[0], rtol=1e-5, atol=1e-6):
            raise RuntimeError(f"rank {r} weights differ from rank 0 ({theirs.tolist()} vs {gathered[0].tolist()})")
    log.info("weights in sync across %d ranks", d.world)


# ---------------------------------------------------------------- one member


def final_epoch(cfg: TrainConfig) -> tuple[int, int]:
    """(phase, epoch) at which a member is complete under this configuration."""
    last = [(n, p.epochs) for n, p in cfg.phases() if p.epochs > 0]
    return last[-1] if last else (0, 0)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def train_member(cfg: TrainConfig, data: RunData, feats, seed: int, member_dir: Path, resume: bool, d: Dist) -> dict | None:
    device = device_for(d)
    done_file = member_dir / "done.json"
    if done_file.exists():
        reached = json.loads(done_file.read_text()).get("reached")
        if reached is None and (member_dir / "last.pt").exists():
            ckpt = torch.load(member_dir / "last.pt", map_location="cpu", weights_only=False)
            reached = (ckpt["phase"], ckpt["epoch"])
        if reached is None or tuple(reached) >= final_epoch(cfg) or not resume:
            log.info("member %d already finished, skipped", seed)
            return json.loads(done_file.read_text())
        # The configuration now asks for more epochs than this member ran: --resume extends it.
        log.info("member %d finished at phase %d epoch %d; the configuration asks for phase %d epoch %d",
                 seed, *reached, *final_epoch(cfg))
    if d.main:
        member_dir.mkdir(parents=True, exist_ok=True)
    d.barrier()
    seed_everything(seed)
    model = build_model(cfg.model.arch, len(CLASS_NAMES), cfg.model.pretrained_path, cfg.model.drop_rate).to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    units = backbone_units(model)

    train_labels = data.labels[data.train_rows]
    val_labels = data.labels[data.val_rows]
    loss_fn, eval_loss = training_loss(cfg, train_labels).to(device), training_loss(cfg, train_labels)

    history: list[dict] = []
    best = {"val_mel_auc": -1.0}
    start_phase, start_epoch, ckpt = 1, 0, None
    last = member_dir / "last.pt"
    if resume and last.exists():
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        history, best = ckpt["history"], ckpt["best"]
        start_phase, start_epoch = ckpt["phase"], ckpt["epoch"]
        set_rng_state(ckpt["rng"])
        log.info("member %d: resuming after phase %d epoch %d", seed, start_phase, start_epoch)
    elif last.exists():
        raise ConfigError(f"{member_dir} already holds a checkpoint: pass --resume, or choose another output_dir")

    for phase_no, phase in cfg.phases():
        if phase_no < start_phase or phase.epochs == 0:
            continue
        first_epoch = start_epoch if phase_no == start_phase else 0
        if first_epoch >= phase.epochs:
            continue
        # First trainable unit: none (head only), the last blocks, or all.
        start = {1: len(units.modules), 2: units.tail_start(cfg.unfreeze_blocks), 3: 0}[phase_no]
        cached = phase.cached and phase_no in (1, 2) and feats is not None
        from_unit = (None if phase_no == 1 else start) if cached else 0
        fwd = PhaseForward(model, units, start, from_unit, cfg.model.drop_rate, phase.freeze_bn)
        optimizer = torch.optim.AdamW(param_groups(model, units, fwd.start, phase), lr=phase.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=max(1, phase.restart_epochs or phase.epochs), eta_min=phase.lr * 0.01
        )
        if ckpt is not None and ckpt["phase"] == phase_no and first_epoch > 0:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        net = fwd
        if d.active and not cached:
            net = DistributedDataParallel(fwd, device_ids=[device.index] if device.type == "cuda" else None)
        n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log.info("member %d phase %d: %d epochs, %s, %.2fM trainable parameters", seed, phase_no, phase.epochs,
                 "cached features" if cached else "images", n_trainable / 1e6)

        for epoch in range(first_epoch, phase.epochs):
            t0 = time.time()
            rng = np.random.default_rng([seed, phase_no, epoch])
            random.seed(int(rng.integers(2**31)))
            rows = balanced_rows(train_labels, cfg.data.max_per_class, rng)
            net.train()
            losses, seen, n_steps = [], 0, math.ceil(len(rows) / phase.batch_size)
            if cfg.max_steps_per_epoch:
                n_steps = min(n_steps, cfg.max_steps_per_epoch)
            if cached:
                store = feats[0].pooled if phase_no == 1 else feats[0].prefix
                view_of = rng.integers(len(store), size=len(rows))
                batches = (
                    (
                        torch.from_numpy(np.stack([np.asarray(store[v][r], dtype=np.float32) for v, r in zip(view_of[b : b + phase.batch_size], rows[b : b + phase.batch_size])])),
                        torch.from_numpy(train_labels[rows[b : b + phase.batch_size]]),
                    )
                    for b in range(0, len(rows), phase.batch_size)
                )
            else:
                ds = DermoscopyDataset(data.images, data.labels, data.mean, data.std, cfg.data.augment, data.train_rows[rows])
                sampler = DistributedSampler(ds, d.world, d.rank, shuffle=False, drop_last=True) if d.active else None
                batches = iter(DataLoader(ds, batch_size=phase.batch_size, sampler=sampler, shuffle=False, num_workers=0, drop_last=d.active))
                if d.active:
                    n_steps = min(n_steps, len(ds) // d.world // phase.batch_size or 1)
            t_train = time.time()
            for step, (x, y) in enumerate(batches):
                if step >= n_steps:
                    break
                x, y = x.to(device), y.to(device)
                if cfg.channels_last and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                loss = loss_fn(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step(epoch + (step + 1) / n_steps)
                losses.append(float(loss.item()))
                seen += len(y)
                if not cached and (step + 1) % 25 == 0:
                    log.info("  step %d/%d, loss %.4f, %.1f images/s", step + 1, n_steps, np.mean(losses[-25:]),
                             seen * d.world / (time.time() - t_train))
            train_seconds = time.time() - t_train

            if cached and phase_no == 1:
                val_logits = predict_cached(fwd, feats[1].pooled[0], cfg.eval_batch_size, device)
            elif cached:
                val_logits = predict_cached(fwd, feats[1].prefix[0], cfg.eval_batch_size, device)
            else:
                val_logits = predict_images(model, data, data.val_rows, cfg.eval_batch_size, cfg.channels_last, device)
            metrics = evaluate_logits(val_logits, val_labels, eval_loss)
            row = {"phase": phase_no, "epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                   **metrics, "seconds": time.time() - t0, "images_per_s": seen * d.world / max(train_seconds, 1e-9)}
            history.append(row)
            log.info("member %d phase %d epoch %d/%d: train loss %.4f, val loss %.4f, val mel AUC %.4f, bal acc %.3f, %.0f s, %.1f images/s",
                     seed, phase_no, epoch + 1, phase.epochs, row["train_loss"], row["val_loss"], row["val_mel_auc"],
                     row["val_balanced_accuracy"], row["seconds"], row["images_per_s"])
            improved = not math.isnan(row["val_mel_auc"]) and row["val_mel_auc"] > best["val_mel_auc"]
            if improved:
                best = {**metrics, "phase": phase_no, "epoch": epoch + 1}
            if d.main:
                if improved:
                    atomic_save(export_record(cfg, data, seed, model, best), member_dir / "best.pt")
                atomic_save(
                    {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "phase": phase_no, "epoch": epoch + 1, "rng": rng_state(), "history": history, "best": best, "seed": seed},
                    last,
                )
                write_summary(member_dir / "summary.csv", history)
            d.barrier()
        ckpt = None

    if d.active:
        check_in_sync(model, d)
    if d.main:
        if not (member_dir / "best.pt").exists():  # every AUC was NaN (tiny runs): keep the last weights
            atomic_save(export_record(cfg, data, seed, model, best), member_dir / "best.pt")
        done_file.write_text(json.dumps({**best, "reached": list(final_epoch(cfg))}, indent=1))
    d.barrier()
    return best


# ---------------------------------------------------------------- entry point


def run(cfg: TrainConfig, resume: bool = False) -> dict:
    d = init_distributed()
    logging.basicConfig(level=logging.INFO if d.main else logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stdout, force=True)
    torch.set_num_threads(cfg.num_threads)
    run_dir = Path(cfg.output_dir)
    try:
        if d.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
        d.barrier()
        data = prepare_data(cfg, run_dir, d)
        log.info("split: %d train, %d val images; input %d px; mean %s std %s", len(data.train_rows), len(data.val_rows),
                 cfg.data.input_size, data.mean, data.std)
        feats = shared_features(cfg, data, d)
        results = {}
        for seed in cfg.seeds:
            results[seed] = train_member(cfg, data, feats, seed, run_dir / f"member-{seed}", resume, d)
        log.info("all members done: %s", {s: round(r.get("val_mel_auc", float("nan")), 4) for s, r in results.items()})
        if d.active:
            print(f"rank {d.rank}/{d.world} finished", flush=True)
        return results
    finally:
        if d.active:
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the MelaScreen ensemble (progressive fine-tuning).")
    ap.add_argument("--config", help="YAML configuration (configs/cpu_default.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. phase3.epochs=2")
    ap.add_argument("--resume", action="store_true", help="continue from each member's last checkpoint")
    ap.add_argument("--split-file", help="reuse this split CSV (sets data.split_file)")
    args = ap.parse_args(argv)
    overrides = list(args.set) + ([f"data.split_file={args.split_file}"] if args.split_file else [])
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    run(cfg, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
