#!/usr/bin/env bash
# Train the default CPU ensemble in the background; safe to re-run: it resumes where it stopped.
# Output: /work/runs/default (outside the repo); log: /work/runs/default/train.log
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p /work/runs/default
# Passive OpenMP waiting: on a shared 2-core machine spinning threads only steal the cores back.
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.train --config configs/cpu_default.yaml --resume "$@" \
    >> /work/runs/default/train.log 2>&1 &
echo "training started (pid $!); follow with: tail -f /work/runs/default/train.log"
