"""One epoch of training and one pass of validation, as timm's train_one_epoch / validate: the
progressive phases (training.train) and the snapshot cycles (training.snapshots) both run these."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.inference.calibration import softmax
from evalkit.metrics import balanced_accuracy, roc_auc

from .config import PhaseConfig, TrainConfig
from .data import class_counts, normalise
from .losses import SourceMaskedFocalLoss, class_weights
from .models import Units
from .run_data import RunData
from .splits import MELANOMA_INDEX

log = logging.getLogger("training")


class PhaseForward(nn.Module):
    """The model as one phase trains it: units before `start` frozen (eval, no grad).

    Input is images (from_unit=0), cached prefix activations (from_unit=start) or cached pooled
    features (from_unit=None: only the classifier runs).
    """

    def __init__(
        self,
        model: nn.Module,
        units: Units,
        start: int,
        from_unit: int | None,
        drop_rate: float,
        freeze_bn: bool = False,
    ):
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

    def train(self, mode: bool = True) -> PhaseForward:
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


def training_loss(
    cfg: TrainConfig,
    train_labels: np.ndarray,
    train_sources: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    source_caps: tuple[int | None, ...] | None = None,
) -> SourceMaskedFocalLoss:
    """Focal loss with class weights from the class counts one balanced epoch sees (each source's
    classes capped at its cap): the loss every stage trains and validates with. Targets are
    RunData.targets (label + classes * source); with one source they are the labels."""
    sources = np.zeros(len(train_labels), np.int64) if train_sources is None else np.asarray(train_sources)
    caps = source_caps or (cfg.data.max_per_class,)
    counts = np.zeros(len(class_counts(train_labels)), np.int64)
    for s in np.unique(sources):
        per_source = class_counts(np.asarray(train_labels)[sources == s])
        cap = caps[s] if s < len(caps) else cfg.data.max_per_class
        counts += np.minimum(per_source, cap) if cap is not None else per_source
    if masks is None:
        masks = np.ones((1, len(counts)), bool)
    return SourceMaskedFocalLoss(masks, cfg.loss.gamma, class_weights(counts, cfg.loss.class_weight_power))


def run_loss(cfg: TrainConfig, data: RunData) -> SourceMaskedFocalLoss:
    """training_loss for a run's training rows and sources."""
    rows = data.train_rows
    return training_loss(cfg, data.labels[rows], data.source_of[rows], data.masks(), data.source_caps)


@dataclass(frozen=True)
class EpochResult:
    train_loss: float  # mean over the steps; NaN when no step ran
    seen: int  # training images on this process
    seconds: float  # training steps only


def train_one_epoch(
    net: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    epoch: int,
    n_steps: int,
    device: torch.device,
    channels_last: bool = False,
    world: int = 1,
    log_every: int = 25,
    label: str = "",
) -> EpochResult:
    """At most `n_steps` optimiser steps; the warm-restart scheduler steps by fractions of an epoch."""
    net.train()
    losses, seen, t0 = [], 0, time.time()
    for step, (x, y) in enumerate(batches):
        if step >= n_steps:
            break
        x, y = x.to(device), y.to(device)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step(epoch + (step + 1) / n_steps)
        losses.append(float(loss.item()))
        seen += len(y)
        if log_every and (step + 1) % log_every == 0:
            log.info(
                "  %sstep %d/%d, loss %.4f, %.1f images/s",
                label,
                step + 1,
                n_steps,
                np.mean(losses[-log_every:]),
                seen * world / (time.time() - t0),
            )
    return EpochResult(float(np.mean(losses)) if losses else float("nan"), seen, time.time() - t0)


def evaluate_logits(
    logits: np.ndarray,
    labels: np.ndarray,
    loss_fn: nn.Module,
    targets: np.ndarray | None = None,
    sources: np.ndarray | None = None,
    source_names: tuple[str, ...] = (),
) -> dict:
    """Validation loss (on `targets`, the loss's encoding; default the labels), melanoma AUC and
    balanced accuracy over all validation images, and melanoma AUC per source where there are several."""
    probs = softmax(logits)
    targets = labels if targets is None else targets
    loss = float(loss_fn(torch.from_numpy(logits), torch.from_numpy(targets)).item())
    out = {
        "val_loss": loss,
        "val_mel_auc": roc_auc(labels == MELANOMA_INDEX, probs[:, MELANOMA_INDEX]),
        "val_balanced_accuracy": balanced_accuracy(labels, probs.argmax(1)),
    }
    if sources is not None and len(source_names) > 1:
        for s, name in enumerate(source_names):
            rows = sources == s
            if rows.any():
                out[f"val_mel_auc_{name}"] = roc_auc(labels[rows] == MELANOMA_INDEX, probs[rows, MELANOMA_INDEX])
    return out


@torch.no_grad()
def predict_images(
    model: nn.Module, data: RunData, rows: np.ndarray, batch: int, channels_last: bool, device
) -> np.ndarray:
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


def epoch_row(phase: int, epoch: int, result: EpochResult, metrics: dict, started: float, world: int = 1) -> dict:
    """One summary.csv row."""
    return {
        "phase": phase,
        "epoch": epoch,
        "train_loss": result.train_loss,
        **metrics,
        "seconds": time.time() - started,
        "images_per_s": result.seen * world / max(result.seconds, 1e-9),
    }
