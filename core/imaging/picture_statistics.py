"""The picture-statistics part of the intake check: 13 colour and texture numbers of a decoded picture.

The bundle's intake check (core.decision.intake_check) scores them against the training images'
statistics; the per-run camera check (core.screening.camera_check) compares a run's with them.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.common.resizing import resize_longest_side
from core.decision.intake_check import IMAGE_STATISTICS

STATS_SIDE = 256  # statistics are taken on the picture with its longest side at this size
__all__ = ["IMAGE_STATISTICS", "STATS_SIDE", "image_statistics"]


def image_statistics(rgb: np.ndarray) -> np.ndarray:
    """Colour and texture of a decoded RGB uint8 picture: 13 numbers a dermoscopy image keeps in a
    narrow range (skin colours, soft texture, no dominant flat colour, no saturated graphics)."""
    small = resize_longest_side(rgb, STATS_SIDE, enlarge_with=cv2.INTER_AREA)  # area averaging both ways, as fitted
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float64)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    sharpness = cv2.Laplacian(grey, cv2.CV_64F).var()
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1)).mean()
    bins = (small // 32).reshape(-1, 3).astype(np.int64)
    dominant = np.bincount(bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2], minlength=512).max() / len(bins)
    hist = np.bincount(grey.ravel(), minlength=256) / grey.size
    entropy = -(hist[hist > 0] * np.log2(hist[hist > 0])).sum()
    hue, sat, val = hsv[:, 0] * 2, hsv[:, 1] / 255, hsv[:, 2]
    skin = np.mean(((hue < 50) | (hue > 330)) & (sat > 0.1) & (val > 40))
    return np.array(
        [*lab.mean(axis=0), *lab.std(axis=0), np.log1p(sharpness), np.log1p(gradient),
         np.mean(sat < 0.08), skin, dominant, entropy, np.mean(sat > 0.8)]
    )  # fmt: skip
