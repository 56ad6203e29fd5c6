"""Test-time augmentation views of a square model input, and their inverses for heat maps.

A view is a name: `id`, `rot90|rot180|rot270` (counter-clockwise), `flip` (left-right) and
`flip_rot*` (flip, then rotate), and `zoom` (the central 80 %, resized back to full size).
"""

from __future__ import annotations

import cv2
import numpy as np

ZOOM_FRACTION = 0.8
_ROTATIONS = {"id": 0, "rot90": 1, "rot180": 2, "rot270": 3}
VIEWS = frozenset(list(_ROTATIONS) + [f"flip_{r}" for r in ("rot90", "rot180", "rot270")] + ["flip", "zoom"])


def _parse(view: str) -> tuple[bool, int]:
    if view == "flip":
        return True, 0
    if view.startswith("flip_"):
        return True, _ROTATIONS[view[5:]]
    return False, _ROTATIONS[view]


def _zoom_box(size: int) -> tuple[int, int]:
    crop = int(round(size * ZOOM_FRACTION))
    start = (size - crop) // 2
    return start, crop


def apply_view(view: str, chw: np.ndarray) -> np.ndarray:
    """The view of one C x H x W image (H == W)."""
    if view not in VIEWS:
        raise ValueError(f"unknown TTA view {view!r}")
    if view == "zoom":
        size = chw.shape[-1]
        start, crop = _zoom_box(size)
        hwc = np.ascontiguousarray(chw[:, start : start + crop, start : start + crop].transpose(1, 2, 0))
        out = cv2.resize(hwc, (size, size), interpolation=cv2.INTER_LINEAR)
        if out.ndim == 2:
            out = out[:, :, None]
        return np.ascontiguousarray(out.transpose(2, 0, 1))
    flip, k = _parse(view)
    out = chw[:, :, ::-1] if flip else chw
    return np.ascontiguousarray(np.rot90(out, k, axes=(1, 2)))


def invert_view(view: str, heat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map a square H x W heat map computed on a view back to the unaugmented square.

    Returns the map and a weight map that says which pixels the view saw (zoom sees only the
    centre), so views are averaged where they have evidence.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown TTA view {view!r}")
    size = heat.shape[-1]
    if view == "zoom":
        start, crop = _zoom_box(size)
        out = np.zeros((size, size), dtype=np.float32)
        weight = np.zeros((size, size), dtype=np.float32)
        out[start : start + crop, start : start + crop] = cv2.resize(
            heat.astype(np.float32), (crop, crop), interpolation=cv2.INTER_LINEAR
        )
        weight[start : start + crop, start : start + crop] = 1.0
        return out, weight
    flip, k = _parse(view)
    out = np.rot90(heat, -k)
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32), np.ones_like(heat, dtype=np.float32)
