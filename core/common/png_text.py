"""Text inside PNG files (iTXt chunks, UTF-8): a heat map carries what made it (bundle, version,
signer or UNSIGNED BUNDLE, engine, confidence), as every kept result does."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_text(png: bytes, text: Mapping[str, str]) -> bytes:
    """`png` with one iTXt chunk per item placed right after IHDR (readers find it before the pixels).
    Keys are PNG keywords: 1-79 Latin-1 characters, e.g. "Software", "Description"."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file (no signature and IHDR chunk at its start)")
    (ihdr_length,) = struct.unpack(">I", png[8:12])
    after_ihdr = 8 + 12 + ihdr_length
    chunks = []
    for key, value in text.items():
        keyword = key.encode("latin-1")
        if not 1 <= len(keyword) <= 79 or b"\0" in keyword:
            raise ValueError(f"a PNG text keyword has 1 to 79 characters; got {key!r}")
        # keyword, 0, compression flag 0, method 0, empty language tag + 0, empty translated keyword + 0, text
        chunks.append(_chunk(b"iTXt", keyword + b"\0\0\0\0\0" + str(value).encode("utf-8")))
    return png[:after_ihdr] + b"".join(chunks) + png[after_ihdr:]


def png_text(png: bytes) -> dict[str, str]:
    """The uncompressed iTXt and tEXt items of a PNG (what `png_with_text` wrote), e.g. to check a file."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"tEXt" and b"\0" in data:
            key, value = data.split(b"\0", 1)
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt" and b"\0" in data:
            key, rest = data.split(b"\0", 1)
            if rest[:1] == b"\0":  # uncompressed
                _, _, tail = rest[2:].partition(b"\0")  # language tag
                _, _, value = tail.partition(b"\0")  # translated keyword
                out[key.decode("latin-1")] = value.decode("utf-8", "replace")
        if kind == b"IEND":
            break
        pos += 12 + length
    return out
