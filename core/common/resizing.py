"""Resizing a picture to its longest side: the one copy every room uses (thumbnails, reports, views,
preprocessing, quality and the intake check's picture statistics). OpenCV only, so importing it stays light."""

from __future__ import annotations

import cv2
import numpy as np


def resize_longest_side(
    rgb: np.ndarray, size: int, enlarge: bool = True, enlarge_with: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """The image scaled so that its longest side is `size` pixels, aspect ratio kept (area averaging
    when shrinking, `enlarge_with` when enlarging: bilinear unless asked otherwise; stored thumbnails
    use cv2.INTER_AREA both ways, as they always have). With enlarge=False a smaller image is returned
    as it is. The one shared copy: thumbnails, reports, views, preprocessing and quality analysis all
    resize this way."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    if scale == 1.0 or (scale > 1.0 and not enlarge):
        return rgb
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, target, interpolation=cv2.INTER_AREA if scale < 1.0 else enlarge_with)
