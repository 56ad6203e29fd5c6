#!/usr/bin/env bash
# Train the default CPU ensemble in the background; safe to re-run: it resumes where it stopped.
# Output: ../runs/default beside the project (MELASCREEN_RUNS moves it); log: train.log there.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${MELASCREEN_RUNS:-$(cd .. && pwd)/runs}"
mkdir -p "$RUNS/default"
# Passive OpenMP waiting: on a shared 2-core machine spinning threads only steal the cores back.
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.train --config configs/cpu_default.yaml --resume \
    --set "output_dir=$RUNS/default" "$@" >> "$RUNS/default/train.log" 2>&1 &
echo "training started (pid $!); follow with: tail -f $RUNS/default/train.log"
