"""Weight averaging of snapshots (stochastic weight averaging, Izmailov et al., UAI 2018).

    python -m training.average --config configs/cpu_default.yaml --out RUN_AVG/member-0 \
        --checkpoints RUN/member-7/best.pt RUN/member-8/best.pt ... [--set data.augment=rich]

Snapshots of one warm-restart chain lie in one basin: the mean of their weights is a single model
near its centre, which often generalises like the ensemble of those snapshots at the cost of one.
The batch-norm statistics of averaged weights are not the average of the statistics, so they are
recomputed with one pass over balanced training images, unless the chain trained with frozen batch
norm (`phase3.freeze_bn`, the CPU recipe): then every snapshot carries the same statistics, the
weights were fitted to them, and recomputing them costs about 0.09 of validation AUC. The result is a best.pt like any member's
(export reads it), with the averaged checkpoints and its validation metrics recorded.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from training.config import ConfigError, load_config
from training.data import CLASS_NAMES, DermoscopyDataset, balanced_rows
from training.models import build_model
from training.train import (
    atomic_save,
    evaluate_logits,
    export_record,
    init_distributed,
    predict_images,
    prepare_data,
    training_loss,
)

log = logging.getLogger("training.average")


class AverageError(ValueError):
    """The checkpoints cannot be averaged (different architectures or shapes, or none given)."""


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors; integer buffers (batch counters) from the first."""
    if not states:
        raise AverageError("no checkpoints to average")
    keys = list(states[0])
    for i, s in enumerate(states[1:], start=2):
        if list(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise AverageError(f"checkpoint {i} does not have the first one's layers: average members of one architecture only")
    out = {}
    for k in keys:
        first = states[0][k]
        if first.is_floating_point():
            out[k] = torch.stack([s[k].double() for s in states]).mean(0).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches) -> int:
    """Running mean/var of every batch-norm layer from scratch (cumulative average over `batches`)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None = cumulative moving average: every batch counts the same
    model.train()
    seen = 0
    for x in batches:
        model(x)
        seen += len(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    return seen


def run_average(cfg, checkpoints: list[Path], out: Path, bn_images: int) -> dict:
    t0 = time.time()
    torch.set_num_threads(cfg.num_threads)
    records = [torch.load(p, map_location="cpu", weights_only=False) for p in checkpoints]
    archs = {r["arch"] for r in records}
    if len(archs) != 1 or archs != {cfg.model.arch}:
        raise AverageError(f"checkpoints are {sorted(archs)}, the config trains {cfg.model.arch}: average one architecture")
    model = build_model(cfg.model.arch, len(CLASS_NAMES), None, cfg.model.drop_rate)
    model.load_state_dict(average_state_dicts([r["state_dict"] for r in records]))

    out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(cfg, out, init_distributed())
    train_labels, val_labels = data.labels[data.train_rows], data.labels[data.val_rows]
    seen = 0
    if not cfg.phase3.freeze_bn:
        rows = balanced_rows(train_labels, cfg.data.max_per_class, np.random.default_rng(0))[:bn_images]
        ds = DermoscopyDataset(data.images, data.labels, data.mean, data.std, cfg.data.augment, data.train_rows[rows])
        loader = DataLoader(ds, batch_size=cfg.phase3.batch_size, shuffle=False, num_workers=0)
        seen = recompute_batchnorm(model, (x for x, _ in loader))

    loss_fn = training_loss(cfg, train_labels)
    val_logits = predict_images(model, data, data.val_rows, cfg.eval_batch_size, cfg.channels_last, torch.device("cpu"))
    metrics = evaluate_logits(val_logits, val_labels, loss_fn)
    metrics["averaged"] = [str(p) for p in checkpoints]
    metrics["batchnorm_images"] = seen
    cycles = [r.get("val_metrics", {}).get("snapshot_cycle") for r in records]
    inits = {str(r.get("val_metrics", {}).get("init", "?")) for r in records}
    if all(c is not None for c in cycles) and len(inits) == 1:
        metrics["averaged_cycles"] = cycles
        metrics["init"] = inits.pop()
    atomic_save(export_record(cfg, data, records[0].get("seed", 0), model, metrics), out / "best.pt")
    log.info("average of %d checkpoints -> %s: val mel AUC %.4f, bal acc %.3f (batch norm recomputed from %d images), %.0f s",
             len(checkpoints), out / "best.pt", metrics["val_mel_auc"], metrics["val_balanced_accuracy"], seen, time.time() - t0)
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Average the weights of snapshots of one chain into one member.")
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--checkpoints", nargs="+", required=True, help="best.pt files of one chain")
    ap.add_argument("--out", required=True, help="member folder to write best.pt into")
    ap.add_argument("--bn-images", type=int, default=2000, help="training images for the batch-norm statistics")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout, force=True)
    missing = [p for p in args.checkpoints if not Path(p).is_file()]
    if missing:
        print(f"error: no checkpoint at {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, args.set)
        run_average(cfg, [Path(p) for p in args.checkpoints], Path(args.out), args.bn_images)
    except (ConfigError, AverageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
