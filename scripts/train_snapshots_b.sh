#!/usr/bin/env bash
# Chain B, independent of chain A up to the ImageNet weights: continued from member 0 of the progressive
# run (seed 0, its own phases 1-2) instead of member 1, with richer augmentation (data.augment=rich).
# Two of the default bundle's members come from here (cycles 16, 17).
exec "$(dirname "$0")/train_snapshots.sh" snapshots_b default/member-0 17 --set data.augment=rich "$@"
