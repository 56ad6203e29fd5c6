"""Drawing heat maps over images: plain numpy/OpenCV, no plotting libraries."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(cam: np.ndarray) -> np.ndarray:
    """A 0..1 heat map as an RGB uint8 image (JET: blue = low, red = high)."""
    u8 = np.clip(cam * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay(rgb: np.ndarray, cam: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """The heat map blended over the image; the map is resized to the image if needed."""
    h, w = rgb.shape[:2]
    if cam.shape != (h, w):
        cam = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    # Weight the colour by the map itself so cold regions keep the image visible.
    alpha = (opacity * np.clip(cam, 0, 1))[..., None]
    out = rgb.astype(np.float32) * (1 - alpha) + colorize(cam).astype(np.float32) * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def write_png(path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path}")
    buf.tofile(str(path))  # tofile: works with non-ASCII paths on Windows
