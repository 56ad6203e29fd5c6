#!/usr/bin/env bash
# An experiment, not shipped: ten more warm-restart cycles at 256 px, continued from the last 192 px
# snapshot (scripts/train_snapshots.sh). Measured 2026-11-26: the 5 best cycles by validation AUC gave
# val AUC 0.892 / test 0.890, no better than the 192 px default (0.888 / 0.894) at about 1.6x the inference time per
# image. Safe to re-run: it resumes after the last cycle.
# Then: python -m export.package --run RUNS/snapshots256 --members <the 5 best folders by val AUC> ...
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${MELASCREEN_RUNS:-$(cd .. && pwd)/runs}"
mkdir -p "$RUNS/snapshots256"
cp -n "$RUNS/snapshots/split.csv" "$RUNS/snapshots256/split.csv"
RESUME=""
[ -f "$RUNS/snapshots256/last.pt" ] && RESUME="--resume"
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.snapshots --config configs/cpu_default.yaml \
    --init "$RUNS/snapshots/member-13/best.pt" --out "$RUNS/snapshots256" --cycles 10 --keep 5 --lr 3e-4 $RESUME \
    --set data.input_size=256 --set "data.split_file=$RUNS/snapshots256/split.csv" --set "output_dir=$RUNS/snapshots256" "$@" \
    >> "$RUNS/snapshots256/train.log" 2>&1 &
echo "256 px snapshot training started (pid $!); follow with: tail -f $RUNS/snapshots256/train.log"
