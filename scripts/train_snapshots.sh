#!/usr/bin/env bash
# The default bundle's CPU recipe, step 2: a snapshot ensemble fine-tuned from member 1 of the
# progressive run (scripts/train_default.sh). Safe to re-run with --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p /work/runs/snapshots
cp -n /work/runs/default/split.csv /work/runs/snapshots/split.csv
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.snapshots --config configs/cpu_default.yaml \
    --init /work/runs/default/member-1/best.pt --out /work/runs/snapshots --cycles 14 --keep 5 --lr 3e-4 \
    --set data.split_file=/work/runs/snapshots/split.csv --set output_dir=/work/runs/snapshots "$@" \
    >> /work/runs/snapshots/train.log 2>&1 &
echo "snapshot training started (pid $!); follow with: tail -f /work/runs/snapshots/train.log"
