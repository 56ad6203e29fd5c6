"""Snapshot ensemble: members taken from one fine-tuning run at the end of each warm restart.

    python -m training.snapshots --config configs/cpu_default.yaml --init RUN/member-1/best.pt \
        --out RUN_SNAPSHOTS --cycles 6 --keep 5 --lr 3e-4 [--resume]

Why: on a 2-core CPU, full fine-tuning is where the quality comes from (frozen features reach
val AUC ~0.8) but costs ~5 minutes per balanced epoch, so five independent members with several
full epochs each do not fit. CosineAnnealingWarmRestarts with a one-epoch period (the seed's
scheduler) visits a new minimum each cycle; the weights at the end of each cycle are the members
(Huang et al., "Snapshot Ensembles: Train 1, get M for free", ICLR 2017). Members are less
diverse than independently seeded ones; the GPU recipe (configs/convnext_base.yaml) trains
independent seeds. Each snapshot is written as RUN/member-<cycle>/best.pt (what export reads),
and every cycle ends with a checkpoint, so --resume continues after the last finished cycle.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from evalkit.labelled import project_relative
from training import checkpoint
from training.checkpoint import atomic_save, export_record, seed_everything, write_summary
from training.config import ConfigError, load_config, save_config
from training.data import CLASS_NAMES, DermoscopyDataset, balanced_rows
from training.distributed import init_distributed
from training.from_bundle import load_member_weights
from training.loop import (
    PhaseForward,
    epoch_row,
    evaluate_logits,
    param_groups,
    predict_images,
    run_loss,
    train_one_epoch,
)
from training.models import NO_WEIGHTS, backbone_units, build_model
from training.run_data import prepare_data

log = logging.getLogger("training.snapshots")


def run_snapshots(cfg, init: Path, out: Path, cycles: int, keep: int, lr: float, resume: bool) -> list[dict]:
    d = init_distributed()
    torch.set_num_threads(cfg.num_threads)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    data = prepare_data(cfg, out, d)
    seed_everything(cfg.seeds[0] if cfg.seeds else 0)
    model = build_model(cfg.model.arch, len(CLASS_NAMES), NO_WEIGHTS, cfg.model.drop_rate)
    # A training record (best.pt) or a shipped bundle's member (.onnx: its weights, read back).
    if init.suffix == ".onnx":
        load_member_weights(model, init)
    else:
        model.load_state_dict(checkpoint.load(init)["state_dict"])
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    units = backbone_units(model)
    phase = dataclasses.replace(cfg.phase3, epochs=cycles, lr=lr, restart_epochs=1)
    fwd = PhaseForward(model, units, 0, 0, cfg.model.drop_rate, phase.freeze_bn)
    optimizer = torch.optim.AdamW(param_groups(model, units, fwd.start, phase), lr=phase.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=1, eta_min=lr * 0.01)

    train_labels, val_labels = data.labels[data.train_rows], data.labels[data.val_rows]
    train_sources, val_sources = data.source_of[data.train_rows], data.source_of[data.val_rows]
    loss_fn = run_loss(cfg, data)  # on the CPU, training and validation share it

    history: list[dict] = []
    start_cycle = 0
    last = out / "last.pt"
    if resume and last.exists():
        ckpt = checkpoint.load(last)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        checkpoint.set_rng_state(ckpt["rng"])
        history, start_cycle = ckpt["history"], ckpt["cycle"]
        log.info("resuming after cycle %d", start_cycle)
    elif last.exists():
        raise ConfigError(f"{out} already holds a snapshot run: pass --resume, or choose another folder")
    log.info("snapshot run from %s: %d cycles of one balanced epoch, lr %g, keep the last %d", init, cycles, lr, keep)

    for cycle in range(start_cycle, cycles):
        t0 = time.time()
        rng = np.random.default_rng([1000, cycle])
        random.seed(int(rng.integers(2**31)))
        rows = balanced_rows(train_labels, cfg.data.max_per_class, rng, train_sources, data.source_caps)
        ds = DermoscopyDataset(data.images, data.targets, data.mean, data.std, cfg.data.augment, data.train_rows[rows])
        n_steps = math.ceil(len(ds) / phase.batch_size)
        if cfg.max_steps_per_epoch:
            n_steps = min(n_steps, cfg.max_steps_per_epoch)
        batches = DataLoader(ds, batch_size=phase.batch_size, shuffle=False, num_workers=0)
        result = train_one_epoch(
            fwd,
            batches,
            loss_fn,
            optimizer,
            scheduler,
            cycle,
            n_steps,
            torch.device("cpu"),
            cfg.channels_last,
            label=f"cycle {cycle + 1} ",
        )
        val_logits = predict_images(
            model, data, data.val_rows, cfg.eval_batch_size, cfg.channels_last, torch.device("cpu")
        )
        metrics = evaluate_logits(
            val_logits, val_labels, loss_fn, data.targets[data.val_rows], val_sources, data.source_names
        )
        row = epoch_row(3, cycle + 1, result, metrics, t0)
        history.append(row)
        log.info(
            "cycle %d/%d: train loss %.4f, val loss %.4f, val mel AUC %.4f, bal acc %.3f, %.0f s",
            cycle + 1,
            cycles,
            row["train_loss"],
            row["val_loss"],
            row["val_mel_auc"],
            row["val_balanced_accuracy"],
            row["seconds"],
        )
        member = out / f"member-{cycle}"
        member.mkdir(exist_ok=True)
        record = export_record(
            cfg, data, cycle, model, {**metrics, "snapshot_cycle": cycle + 1, "init": project_relative(init)}
        )
        atomic_save(record, member / "best.pt")
        atomic_save(
            checkpoint.resume_state(model, optimizer, scheduler, {"cycle": cycle + 1, "history": history}), last
        )
        write_summary(out / "summary.csv", history)
    # Only the last `keep` snapshots are members: earlier ones are still far from converged.
    for old in sorted(out.glob("member-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]:
        shutil.move(str(old), str(out / f"early-{old.name}"))
    (out / "snapshots.json").write_text(json.dumps(history, indent=1))
    return history


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Snapshot-ensemble fine-tuning (CPU recipe for the default bundle).")
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument(
        "--init", required=True, help="best.pt to start from (a member after phases 1-3), or a bundle member's .onnx"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument("--cycles", type=int, default=6)
    ap.add_argument("--keep", type=int, default=5)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout, force=True)
    try:
        cfg = load_config(args.config, args.set)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not Path(args.init).is_file():
        print(f"error: no checkpoint at {args.init}; train a member first (python -m training.train)", file=sys.stderr)
        return 2
    run_snapshots(cfg, Path(args.init), Path(args.out), args.cycles, args.keep, args.lr, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
