#!/usr/bin/env bash
# An experiment, not shipped: ten more warm-restart cycles at 256 px, continued from the last 192 px
# snapshot. Measured 2026-11-26: the 5 best cycles by validation AUC (export.package --members) gave
# val AUC 0.892 / test 0.890, no better than the 192 px default (0.888 / 0.894) at about 1.6x the
# inference time per image.
exec "$(dirname "$0")/train_snapshots.sh" snapshots256 snapshots/member-13 10 --set data.input_size=256 "$@"
