"""Drawing heat maps over images: plain numpy/OpenCV, no plotting libraries."""

from __future__ import annotations

import cv2
import numpy as np

from core.common.paths import write_file_atomically


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


def write_png(path, rgb: np.ndarray, *, private: bool = True) -> None:
    """`rgb` as a PNG at `path`, whole or not at all, private (0600) unless `private=False`."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path}")
    write_file_atomically(path, buf.tobytes(), private=private)


HEATMAP_MODES = ("overlay", "side by side", "contour")


def side_by_side(rgb: np.ndarray, cam: np.ndarray, gap: int = 8) -> np.ndarray:
    """The image and its heat map (full colour) next to each other, with a white gap."""
    h, w = rgb.shape[:2]
    if cam.shape != (h, w):
        cam = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    spacer = np.full((h, gap, 3), 255, np.uint8)
    return np.concatenate([rgb, spacer, colorize(cam)], axis=1)


def contours(rgb: np.ndarray, cam: np.ndarray, levels=(0.5, 0.75, 0.9)) -> np.ndarray:
    """The image with the heat map's iso-lines drawn on it (yellow to red as the level rises):
    the lesion stays fully visible."""
    h, w = rgb.shape[:2]
    if cam.shape != (h, w):
        cam = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.ascontiguousarray(rgb.copy())
    thickness = max(1, round(max(h, w) / 400))
    colours = ((255, 235, 59), (255, 152, 0), (229, 57, 53))
    for level, colour in zip(levels, colours):
        mask = (cam >= level).astype(np.uint8)
        found, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, found, -1, colour, thickness, lineType=cv2.LINE_AA)
    return out


def compose(rgb: np.ndarray, cam: np.ndarray | None, mode: str = "overlay", opacity: float = 0.45) -> np.ndarray:
    """The picture as shown in one of HEATMAP_MODES; the image alone when there is no heat map."""
    if cam is None:
        return rgb
    if mode == "side by side":
        return side_by_side(rgb, cam)
    if mode == "contour":
        return contours(rgb, cam)
    if mode != "overlay":
        raise ValueError(f"heat map mode must be one of {', '.join(HEATMAP_MODES)}, got {mode!r}")
    return overlay(rgb, cam, opacity)
