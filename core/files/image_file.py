"""What every decoder of a picture file shares: the limits it reads within, the file's bytes (read
from disk once, then handed to the decoder that fits them), and the decoded picture it gives back.

core.files.images (JPEG, PNG, BMP, TIFF) and core.files.dicom (DICOM) both build on this module and
on nothing of each other's but the dispatch in `images.read_image`.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

import numpy as np

from core.common.errors import ImageReadError


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 100 * 1024 * 1024
    max_pixels: int = 50_000_000  # checked from the header, before decoding
    min_side: int = 32


@dataclass(frozen=True)
class LoadedImage:
    path: str
    rgb: np.ndarray = field(compare=False, repr=False)  # H x W x 3 uint8, upright
    sha256: str  # of the file's bytes: identifies the image whatever its name
    width: int
    height: int
    source_mode: str  # "rgb8", "gray", "rgba", "palette", "16-bit" or "cmyk": how the file stored its pixels
    notes: tuple[str, ...] = ()  # conversions applied, in words
    damage: str | None = None  # weak signs of damage, in words (strong signs refuse the file): sent to review


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageReadError(path, "this is a link (shortcut) to a file that no longer exists") from None
        raise ImageReadError(path, "the file does not exist (it may have been moved, renamed or deleted)") from None
    except PermissionError:
        raise ImageReadError(
            path, "permission denied: MelaScreen may not read this file; check its access rights"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(
                path, "this link (shortcut) points back to itself in a loop, so there is no image"
            ) from None
        raise ImageReadError(path, f"the file cannot be read ({exc.strerror or exc})") from None


def read_file_bytes(path: str, limits: ImageLimits) -> bytes:
    """The whole file, read once, or ImageReadError with the reason: a folder, a pipe or a device is
    refused without opening it (opening a pipe waits for a writer, forever), and so is a file over
    `limits.max_bytes` or an empty one."""
    info = _stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise ImageReadError(path, "this is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageReadError(path, "this is not a regular file (a device or a pipe), so it is not an image")
    if info.st_size > limits.max_bytes:
        raise ImageReadError(
            path,
            f"the file is too large ({info.st_size / 1e6:.0f} MB; the limit is {limits.max_bytes / 1e6:.0f} MB); "
            "export a smaller copy of the image",
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)  # the file may grow between stat and read
    except PermissionError:
        raise ImageReadError(
            path, "permission denied: MelaScreen may not read this file; check its access rights"
        ) from None
    except OSError as exc:
        raise ImageReadError(path, f"the file cannot be read ({exc.strerror or exc})") from None
    if len(data) > limits.max_bytes:
        raise ImageReadError(path, f"the file is too large (over {limits.max_bytes / 1e6:.0f} MB)")
    if not data:
        raise ImageReadError(path, "the file is empty (0 bytes): it was probably not saved or copied completely")
    return data
