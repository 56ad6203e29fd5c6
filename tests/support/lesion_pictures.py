"""A small synthetic lesion picture (a dark ellipse on skin tone) for the patient views' tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def lesion(path: Path, shade: int, size: int = 160) -> None:
    img = np.full((size, size + 40, 3), (150, 170, 205), np.uint8)
    cv2.ellipse(
        img, (size // 2 + 20, size // 2), (size // 3, size // 4), 15, 0, 360, (shade // 3, shade // 2, shade), -1
    )
    cv2.imwrite(str(path), img)
