#!/usr/bin/env bash
# The default bundle's CPU recipe, step 2: a snapshot ensemble fine-tuned from member 1 of the
# progressive run (scripts/train_default.sh). Safe to re-run: it resumes after the last cycle.
#   scripts/train_snapshots.sh [OUT INIT CYCLES [more training.snapshots arguments]]
# OUT and INIT are relative to the runs folder (default: snapshots, default/member-1, 14 cycles).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${MELASCREEN_RUNS:-$(cd .. && pwd)/runs}"
OUT="${1:-snapshots}"; INIT="${2:-default/member-1}"; CYCLES="${3:-14}"
shift $(( $# < 3 ? $# : 3 ))
mkdir -p "$RUNS/$OUT"
cp -n "$RUNS/default/split.csv" "$RUNS/$OUT/split.csv"
RESUME=""
[ -f "$RUNS/$OUT/last.pt" ] && RESUME="--resume"
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.snapshots --config configs/cpu_default.yaml \
    --init "$RUNS/$INIT/best.pt" --out "$RUNS/$OUT" --cycles "$CYCLES" --keep 5 --lr 3e-4 $RESUME \
    --set "data.split_file=$RUNS/$OUT/split.csv" --set "output_dir=$RUNS/$OUT" "$@" \
    >> "$RUNS/$OUT/train.log" 2>&1 &
echo "snapshot training started (pid $!); follow with: tail -f $RUNS/$OUT/train.log"
