"""Damaged copies of image files, made the way disks, copies and transfers damage them.

Shared by the damage tests (tests/core/test_damage*.py) and benchmarks/bench_damage.py, so the CI sweep
and the measured table use the same damage. Every maker takes the intact file's bytes and a
`random.Random`, and returns the damaged bytes (None when the file has no place for that damage).
"""

from __future__ import annotations

import io
import random
import struct

import numpy as np
from PIL import Image


def jpeg_scan_ranges(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each scan's entropy-coded data: from after its SOS header to the next marker."""
    ranges, pos, size = [], 2, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        length = struct.unpack_from(">H", data, pos + 2)[0]
        pos += 2 + length
        if marker != 0xDA:
            continue
        start = pos
        while pos + 1 < size:  # the next marker that is not stuffing or a restart
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= size:
                pos = size
                break
            follower = data[pos + 1]
            if follower == 0x00 or 0xD0 <= follower <= 0xD7 or follower == 0xFF:
                pos += 1 if follower == 0xFF else 2
                continue
            break
        ranges.append((start, pos))
    return ranges


def _entropy_span(data: bytes) -> tuple[int, int]:
    ranges = jpeg_scan_ranges(data)
    return ranges[0][0], ranges[-1][1]


def zero_at_fraction(data: bytes, size: int, fraction: float) -> bytes:
    """`size` zero bytes written at `fraction` of the JPEG's entropy-coded data (a zeroed disk sector)."""
    start, end = _entropy_span(data)
    at = start + int((end - start) * fraction)
    size = min(size, end - at)
    return data[:at] + bytes(size) + data[at + size :]


def zero_block(data: bytes, rng: random.Random, size: int) -> bytes | None:
    """`size` zero bytes at a random place in the picture data (JPEG: its entropy-coded data)."""
    start, end = _picture_span(data)
    if end - start < size + 2:
        return None
    at = rng.randrange(start, end - size)
    return data[:at] + bytes(size) + data[at + size :]


def random_bytes(data: bytes, rng: random.Random, size: int) -> bytes | None:
    start, end = _picture_span(data)
    if end - start < size + 2:
        return None
    at = rng.randrange(start, end - size)
    return data[:at] + rng.randbytes(size) + data[at + size :]


def bit_flips(data: bytes, rng: random.Random, count: int) -> bytes | None:
    start, end = _picture_span(data)
    damaged = bytearray(data)
    for _ in range(count):
        at = rng.randrange(start, end)
        damaged[at] ^= 1 << rng.randrange(8)
    return bytes(damaged)


def _picture_span(data: bytes) -> tuple[int, int]:
    """Where the picture's own data lies: a JPEG's entropy-coded data, a TIFF's strips, a DICOM's
    pixel data (the last 90% of the file for formats not parsed here)."""
    if data.startswith(b"\xff\xd8"):
        return _entropy_span(data)
    if data.startswith((b"II*\x00", b"MM\x00*")):
        with Image.open(io.BytesIO(data)) as image:
            offsets = image.tag_v2.get(273)
            counts = image.tag_v2.get(279)
        if offsets and counts:
            return min(offsets), max(o + c for o, c in zip(offsets, counts, strict=False))
    if data[128:132] == b"DICM":
        at = data.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data
        if at > 0:
            return at + 12, len(data) - 2
    return len(data) // 10, len(data)


def progressive(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, progressive=True)
    return buf.getvalue()


def cut_at_scan(data: bytes, rng: random.Random, add_end_marker: bool = True) -> bytes | None:
    """A progressive JPEG cut at the start of one of its later scans (an interrupted copy), with the
    end-of-image marker added the way some copy tools and repair programs do."""
    ranges = jpeg_scan_ranges(data)
    if len(ranges) < 3:
        return None
    cut = ranges[rng.randrange(1, len(ranges) - 1)][1]  # after a whole scan, before the next one
    return data[:cut] + (b"\xff\xd9" if add_end_marker else b"")


def uncompressed_tiff(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="TIFF")
    return buf.getvalue()


def jpeg_dicom(path, rgb: np.ndarray) -> bytes:
    from tests.support.dicom_files import write_dicom

    write_dicom(path, rgb, encoding="jpeg")
    return path.read_bytes()


def rgb_dicom(path, rgb: np.ndarray) -> bytes:
    from tests.support.dicom_files import write_dicom

    write_dicom(path, rgb, encoding="rgb")
    return path.read_bytes()


def photo_like(seed: int, height: int = 288, width: int = 384) -> np.ndarray:
    """A synthetic stand-in for a dermoscopy photograph when ../shared is absent: skin tone with
    sensor-like noise and a darker blob (noise matters: a photograph has no perfectly flat areas)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width * (0.4 + 0.2 * rng.random()), height * (0.4 + 0.2 * rng.random())
    blob = np.exp(-(((xx - cx) / (width / 5)) ** 2 + ((yy - cy) / (height / 5)) ** 2))[..., None]
    skin = np.array([214, 160, 130], np.float32) + rng.normal(0, 6, 3)
    rgb = skin * (1 - 0.6 * blob) + np.array([70, 40, 30], np.float32) * 0.6 * blob
    rgb += rng.normal(0, 7, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
