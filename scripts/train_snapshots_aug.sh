#!/usr/bin/env bash
# Chain A, continued: twelve more warm-restart cycles at 192 px with richer augmentation (data.augment=rich:
# dihedral views + random-resized crop + brightness/contrast/saturation jitter) from the last 192 px
# snapshot. Three of the default bundle's members come from here (cycles 8, 10, 12).
exec "$(dirname "$0")/train_snapshots.sh" snapshots_aug snapshots/member-13 12 --set data.augment=rich "$@"
