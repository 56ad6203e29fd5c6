"""Checkpoints of a training run: atomic writes, random-number state, the best.pt record export
reads, and the per-epoch summary.csv. Shared by training.train and training.snapshots."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import TrainConfig, to_dict
from .run_data import RunData
from .splits import CLASS_NAMES

SUMMARY_FIELDS = [
    "phase",
    "epoch",
    "train_loss",
    "val_loss",
    "val_mel_auc",
    "val_balanced_accuracy",
    "seconds",
    "images_per_s",
]


def atomic_save(obj: dict, path: Path) -> None:
    """A crash mid-write leaves the previous checkpoint, never a truncated one."""
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    """A resume checkpoint (last.pt: optimiser, scheduler and random state included)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def resume_state(model: nn.Module, optimizer, scheduler, extra: dict) -> dict:
    """What last.pt holds: everything to continue exactly after this epoch."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        **extra,
    }


def write_summary(path: Path, rows: list[dict]) -> None:
    """One row per epoch: SUMMARY_FIELDS, then whatever else the rows carry (per-source AUCs)."""
    extra = sorted({k for r in rows for k in r} - set(SUMMARY_FIELDS))
    fields = SUMMARY_FIELDS + extra
    tmp = path.with_suffix(".csv.partial")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in fields if k in r})
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
