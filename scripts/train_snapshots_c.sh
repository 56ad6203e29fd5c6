#!/usr/bin/env bash
# Chain C, independent of chains A and B up to the ImageNet weights: continued from member 2 of the
# progressive run (seed 2, its own phases 1-2), with the same settings as chain B; run to 17 cycles,
# then extended to 27 (re-running resumes after the last finished cycle).
exec "$(dirname "$0")/train_snapshots.sh" snapshots_c default/member-2 27 --set data.augment=rich "$@"
