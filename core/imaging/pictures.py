"""The picture of a screened case: the file if it is still the screened image, else the stored thumbnail.

One rule for the report and the app: re-read the file, compare its SHA-256 with the screened one,
and fall back to the thumbnail kept in the store when the file is gone or has changed, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.common.errors import ImageReadError
from core.files.images import read_image


@dataclass(frozen=True)
class CasePicture:
    rgb: np.ndarray | None  # upright RGB; None when neither the file nor a thumbnail is available
    from_thumbnail: bool  # True: the stored thumbnail, not the original file
    note: str = ""  # why the picture is not the original file, if it is not


def decode_thumbnail(data: bytes | None) -> np.ndarray | None:
    """Stored thumbnail JPEG bytes -> RGB, or None."""
    if not data:
        return None
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def case_picture(path: str, sha256: str | None, thumbnail: bytes | None) -> CasePicture:
    """The screened image of a case (see the module docstring). `thumbnail` is the stored JPEG or None."""
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return CasePicture(
            decode_thumbnail(thumbnail),
            True,
            f"The original file cannot be read now ({exc.reason}); showing the stored thumbnail.",
        )
    if sha256 and image.sha256 != sha256:
        return CasePicture(
            decode_thumbnail(thumbnail),
            True,
            "The file has changed since it was screened; showing the stored thumbnail of the screened image.",
        )
    return CasePicture(image.rgb, False, "")
