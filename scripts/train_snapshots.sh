#!/usr/bin/env bash
# The default bundle's CPU recipe, step 2: a snapshot ensemble fine-tuned from member 1 of the
# progressive run (scripts/train_default.sh). Safe to re-run: it resumes after the last cycle.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${MELASCREEN_RUNS:-$(cd .. && pwd)/runs}"
mkdir -p "$RUNS/snapshots"
cp -n "$RUNS/default/split.csv" "$RUNS/snapshots/split.csv"
RESUME=""
[ -f "$RUNS/snapshots/last.pt" ] && RESUME="--resume"
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.snapshots --config configs/cpu_default.yaml \
    --init "$RUNS/default/member-1/best.pt" --out "$RUNS/snapshots" --cycles 14 --keep 5 --lr 3e-4 $RESUME \
    --set "data.split_file=$RUNS/snapshots/split.csv" --set "output_dir=$RUNS/snapshots" "$@" \
    >> "$RUNS/snapshots/train.log" 2>&1 &
echo "snapshot training started (pid $!); follow with: tail -f $RUNS/snapshots/train.log"
