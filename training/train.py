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
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from training import checkpoint
from training.checkpoint import SUMMARY_FIELDS, atomic_save, export_record, seed_everything, write_summary
from training.config import ConfigError, TrainConfig, load_config, save_config
from training.data import CLASS_NAMES, DermoscopyDataset, balanced_rows
from training.distributed import Dist, check_in_sync, destroy, device_for, init_distributed
from training.features import FrozenFeatures, features_key, frozen_features
from training.loop import (
    PhaseForward,
    epoch_row,
    evaluate_logits,
    param_groups,
    predict_cached,
    predict_images,
    run_loss,
    train_one_epoch,
)
from training.models import backbone_units, build_model
from training.run_data import RunData, prepare_data

log = logging.getLogger("training")

__all__ = ["SUMMARY_FIELDS", "build_model", "prepare_data", "run", "train_member", "main"]


def shared_features(cfg: TrainConfig, data: RunData, d: Dist) -> tuple[FrozenFeatures, FrozenFeatures] | None:
    """Frozen-backbone activations for train (all cached views) and val (identity view)."""
    if not any(p.cached and p.epochs > 0 for _, p in cfg.phases()[:2]):
        return None
    model = build_model(cfg.model.arch, len(CLASS_NAMES), cfg.model.pretrained_path, cfg.model.drop_rate)
    units = backbone_units(model)
    start = units.tail_start(cfg.unfreeze_blocks)
    images_key = features_key(
        {
            "n": int(len(data.images)),
            "shape": list(data.images.shape),
            "file": getattr(data.images, "filename", None) and Path(data.images.filename).name,
        }
    )
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
        frozen_features(
            model,
            units,
            start,
            data.images,
            data.train_rows,
            cfg.cached_views,
            data.mean,
            data.std,
            folder / "train",
            **kw,
        )
        frozen_features(
            model, units, start, data.images, data.val_rows, ("id",), data.mean, data.std, folder / "val", **kw
        )
    d.barrier()
    train = frozen_features(
        model, units, start, data.images, data.train_rows, cfg.cached_views, data.mean, data.std, folder / "train", **kw
    )
    val = frozen_features(
        model, units, start, data.images, data.val_rows, ("id",), data.mean, data.std, folder / "val", **kw
    )
    return train, val


# ---------------------------------------------------------------- one member


def final_epoch(cfg: TrainConfig) -> tuple[int, int]:
    """(phase, epoch) at which a member is complete under this configuration."""
    last = [(n, p.epochs) for n, p in cfg.phases() if p.epochs > 0]
    return last[-1] if last else (0, 0)


def train_member(
    cfg: TrainConfig, data: RunData, feats, seed: int, member_dir: Path, resume: bool, d: Dist
) -> dict | None:
    device = device_for(d)
    done_file = member_dir / "done.json"
    if done_file.exists():
        reached = json.loads(done_file.read_text()).get("reached")
        if reached is None and (member_dir / "last.pt").exists():
            ckpt = checkpoint.load(member_dir / "last.pt")
            reached = (ckpt["phase"], ckpt["epoch"])
        if reached is None or tuple(reached) >= final_epoch(cfg) or not resume:
            log.info("member %d already finished, skipped", seed)
            return json.loads(done_file.read_text())
        # The configuration now asks for more epochs than this member ran: --resume extends it.
        log.info(
            "member %d finished at phase %d epoch %d; the configuration asks for phase %d epoch %d",
            seed,
            *reached,
            *final_epoch(cfg),
        )
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
    # Targets carry each image's source for the source-masked loss (equal to the labels with one source).
    train_targets, val_targets = data.targets[data.train_rows], data.targets[data.val_rows]
    train_sources = data.source_of[data.train_rows]
    loss_fn, eval_loss = run_loss(cfg, data).to(device), run_loss(cfg, data)

    history: list[dict] = []
    best = {"val_mel_auc": -1.0}
    start_phase, start_epoch, ckpt = 1, 0, None
    last = member_dir / "last.pt"
    if resume and last.exists():
        ckpt = checkpoint.load(last)
        model.load_state_dict(ckpt["model"])
        history, best = ckpt["history"], ckpt["best"]
        start_phase, start_epoch = ckpt["phase"], ckpt["epoch"]
        checkpoint.set_rng_state(ckpt["rng"])
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
        log.info(
            "member %d phase %d: %d epochs, %s, %.2fM trainable parameters",
            seed,
            phase_no,
            phase.epochs,
            "cached features" if cached else "images",
            n_trainable / 1e6,
        )

        for epoch in range(first_epoch, phase.epochs):
            t0 = time.time()
            rng = np.random.default_rng([seed, phase_no, epoch])
            random.seed(int(rng.integers(2**31)))
            rows = balanced_rows(train_labels, cfg.data.max_per_class, rng, train_sources, data.source_caps)
            n_steps = math.ceil(len(rows) / phase.batch_size)
            if cfg.max_steps_per_epoch:
                n_steps = min(n_steps, cfg.max_steps_per_epoch)
            if cached:
                store = feats[0].pooled if phase_no == 1 else feats[0].prefix
                view_of = rng.integers(len(store), size=len(rows))
                batches = (
                    (
                        torch.from_numpy(
                            np.stack(
                                [
                                    np.asarray(store[v][r], dtype=np.float32)
                                    for v, r in zip(view_of[b : b + phase.batch_size], rows[b : b + phase.batch_size])
                                ]
                            )
                        ),
                        torch.from_numpy(train_targets[rows[b : b + phase.batch_size]]),
                    )
                    for b in range(0, len(rows), phase.batch_size)
                )
            else:
                ds = DermoscopyDataset(
                    data.images, data.targets, data.mean, data.std, cfg.data.augment, data.train_rows[rows]
                )
                sampler = DistributedSampler(ds, d.world, d.rank, shuffle=False, drop_last=True) if d.active else None
                batches = iter(
                    DataLoader(
                        ds,
                        batch_size=phase.batch_size,
                        sampler=sampler,
                        shuffle=False,
                        num_workers=0,
                        drop_last=d.active,
                    )
                )
                if d.active:
                    n_steps = min(n_steps, len(ds) // d.world // phase.batch_size or 1)
            result = train_one_epoch(
                net,
                batches,
                loss_fn,
                optimizer,
                scheduler,
                epoch,
                n_steps,
                device,
                cfg.channels_last,
                d.world,
                log_every=0 if cached else 25,
            )

            if cached and phase_no == 1:
                val_logits = predict_cached(fwd, feats[1].pooled[0], cfg.eval_batch_size, device)
            elif cached:
                val_logits = predict_cached(fwd, feats[1].prefix[0], cfg.eval_batch_size, device)
            else:
                val_logits = predict_images(model, data, data.val_rows, cfg.eval_batch_size, cfg.channels_last, device)
            metrics = evaluate_logits(
                val_logits, val_labels, eval_loss, val_targets, data.source_of[data.val_rows], data.source_names
            )
            row = epoch_row(phase_no, epoch + 1, result, metrics, t0, d.world)
            history.append(row)
            log.info(
                "member %d phase %d epoch %d/%d: train loss %.4f, val loss %.4f, val mel AUC %.4f, "
                "bal acc %.3f, %.0f s, %.1f images/s",
                seed,
                phase_no,
                epoch + 1,
                phase.epochs,
                row["train_loss"],
                row["val_loss"],
                row["val_mel_auc"],
                row["val_balanced_accuracy"],
                row["seconds"],
                row["images_per_s"],
            )
            improved = not math.isnan(row["val_mel_auc"]) and row["val_mel_auc"] > best["val_mel_auc"]
            if improved:
                best = {**metrics, "phase": phase_no, "epoch": epoch + 1}
            if d.main:
                if improved:
                    atomic_save(export_record(cfg, data, seed, model, best), member_dir / "best.pt")
                atomic_save(
                    checkpoint.resume_state(
                        model,
                        optimizer,
                        scheduler,
                        {"phase": phase_no, "epoch": epoch + 1, "history": history, "best": best, "seed": seed},
                    ),
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
    logging.basicConfig(
        level=logging.INFO if d.main else logging.WARNING,
        format="%(asctime)s %(message)s",
        stream=sys.stdout,
        force=True,
    )
    torch.set_num_threads(cfg.num_threads)
    run_dir = Path(cfg.output_dir)
    try:
        if d.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
        d.barrier()
        data = prepare_data(cfg, run_dir, d)
        log.info(
            "split: %d train, %d val images; input %d px; mean %s std %s",
            len(data.train_rows),
            len(data.val_rows),
            cfg.data.input_size,
            data.mean,
            data.std,
        )
        feats = shared_features(cfg, data, d)
        results = {}
        for seed in cfg.seeds:
            results[seed] = train_member(cfg, data, feats, seed, run_dir / f"member-{seed}", resume, d)
        log.info("all members done: %s", {s: round(r.get("val_mel_auc", float("nan")), 4) for s, r in results.items()})
        if d.active:
            print(f"rank {d.rank}/{d.world} finished", flush=True)
        return results
    finally:
        destroy(d)


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
