"""The pictures a result keeps: its heat maps as small grey PNGs (the codec) and its JPEG thumbnail."""

from __future__ import annotations

import cv2
import numpy as np

from core.common.errors import StoreError
from core.common.resizing import resize_longest_side
from core.records.store.connection import StoreConnection

CAM_MAX_SIDE = 128  # heat maps are smooth; 128 px is plenty and keeps a row ~10 kB


def encode_cam(cam: np.ndarray, max_side: int = CAM_MAX_SIDE) -> bytes:
    """Float heat map (HxW, 0..1) -> PNG bytes of uint8, longest side <= max_side."""
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0:
        raise ValueError(f"a heat map must be a non-empty 2-D array, got shape {cam.shape}")
    cam = resize_longest_side(cam, max_side, enlarge=False)
    q = np.rint(np.clip(np.nan_to_num(cam), 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, buf = cv2.imencode(".png", q)
    if not ok:
        raise StoreError("OpenCV could not encode a heat map as PNG; check the OpenCV installation")
    return buf.tobytes()


def decode_cam(png: bytes) -> np.ndarray:
    """PNG bytes from `encode_cam` -> float32 HxW in 0..1 at the stored size."""
    q = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if q is None:
        raise StoreError("a stored heat map is damaged; screen the image again to replace it")
    return q.astype(np.float32) / 255.0


class ImageRecords(StoreConnection):
    """The store's thumbnails (heat maps are read with their result: core.records.store.results)."""

    def thumbnail(self, result_id: int) -> bytes | None:
        """The JPEG bytes given to add_result, or None."""
        rows = self._read("SELECT thumbnail_jpeg FROM results WHERE id = ?", (result_id,))
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])
