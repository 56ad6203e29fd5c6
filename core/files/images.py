"""Reading a picture file: decode one safely into upright 8-bit RGB, whatever the clinic sent.

Decoding is defensive because the files come from clinic folders, USB sticks and e-mail: every
refusal is an `ImageReadError` whose reason a clinician can act on. Pillow decodes (JPEG, PNG, BMP,
TIFF; the format read from the file's bytes, not its extension) and reports truncated data; its
image size is checked against our limits before any pixel is decoded. libjpeg decodes overwritten
or cut-off JPEG data with only a warning, so every JPEG first goes through core.files.damage (marker
structure, libjpeg-turbo's warnings as errors) and every decoded picture through its pixel checks:
a damaged picture is refused, and one that may be damaged carries `LoadedImage.damage`, which
core.imaging.quality turns into a flag that sends it to review. A file with several pictures (a
multi-page TIFF, an animated PNG) is refused: which page shows the lesion is not guessed. A DICOM
file (by its 'DICM' marker or its name) goes to core.files.dicom with the bytes read here.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.common.errors import ImageReadError
from core.files.damage import (
    DAMAGED,
    TRUNCATED,
    grey_filled_end,
    jpeg_decoder_damage,
    jpeg_structure_damage,
    picture_damage,
)
from core.files.dicom import DICOM_EXTENSIONS, decode_dicom
from core.files.image_file import ImageLimits, LoadedImage, read_file_bytes

_ORIENTATION_WORDS = {
    2: "mirrored left-right",
    3: "rotated 180 degrees",
    4: "mirrored top-bottom",
    5: "mirrored and rotated",
    6: "rotated 90 degrees clockwise",
    7: "mirrored and rotated",
    8: "rotated 90 degrees anticlockwise",
}

_NOT_AN_IMAGE = (
    "this is not a picture MelaScreen can read (JPEG, PNG, BMP or TIFF); it may be another kind of "
    "file with an image's name"
)
_MANY_PAGES = (
    "this {kind} file holds {count} pictures ({what}); MelaScreen screens one picture per file and will not "
    "guess which one shows the lesion: save the picture to screen as a file of its own"
)
_UNSUPPORTED_DEPTH = (
    "the image stores its pixels as floating-point or signed numbers, which MelaScreen does not read; "
    "save it as an 8- or 16-bit image"
)
_UNSUPPORTED_TIFF = (
    "this TIFF stores its pixels in a way MelaScreen does not read (floating-point, signed or unusual "
    "channels), or it is damaged or incomplete; save it as an 8- or 16-bit RGB image"
)


def _refuse(path: str, reason: str) -> ImageReadError:
    return ImageReadError(path, reason)


def _too_large(path: str, pixels: int, limits: ImageLimits, size: str = "") -> ImageReadError:
    return _refuse(
        path,
        f"the image is too large to screen ({size}{pixels / 1e6:.0f} megapixels; "
        f"the limit is {limits.max_pixels / 1e6:.0f} megapixels); export a smaller copy",
    )


def _check_size(path: str, width: int, height: int, limits: ImageLimits) -> None:
    if width * height > limits.max_pixels:
        raise _too_large(path, width * height, limits, f"{width} x {height} pixels = ")
    if min(width, height) < limits.min_side:
        raise _refuse(
            path,
            f"the image is too small to screen ({width} x {height} pixels; each side needs at least "
            f"{limits.min_side} pixels)",
        )


def _looks_like_image(data: bytes) -> bool:
    """The first bytes of a JPEG, PNG, TIFF or BMP: a file that starts so but will not open is damaged,
    not some other kind of file. A bitmap also needs a known header size ("BM" alone starts text too)."""
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return True
    return data.startswith(b"BM") and len(data) >= 18 and struct.unpack_from("<I", data, 14)[0] in _BMP_HEADER_SIZES


_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # the DIB header versions that exist


def _exif_orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not make the picture unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _on_white(colour: np.ndarray, alpha: np.ndarray, notes: list[str]) -> np.ndarray:
    """Transparency composited on white, not black: a cut-out lesion on black would look like a
    dermoscope's vignette."""
    if alpha.min() == 255:
        return colour
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    notes.append("transparent areas shown on white")
    return np.rint(colour.astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _to_rgb8(image: Image.Image, sixteen: bool, notes: list[str]) -> tuple[np.ndarray, str]:
    """Any decoded mode -> H x W x 3 uint8 RGB, and the source mode in words."""
    mode = image.mode
    if mode == "CMYK":
        notes.append("CMYK (print) colours converted to RGB")
        return np.asarray(image.convert("RGB")), "cmyk"
    if mode.startswith("I;16") or (mode == "I" and sixteen):
        # A fixed scale (65535 -> 255), not a contrast stretch: brightness keeps its meaning.
        grey = ((np.asarray(image, dtype=np.uint32) + 128) // 257).astype(np.uint8)
        notes.append("16-bit pixels scaled to 8-bit")
        notes.append("grey image shown in colour (three equal channels)")
        return np.repeat(grey[:, :, None], 3, axis=2), "16-bit"
    if mode in ("I", "F") or mode.startswith(("I;", "F;")):
        raise ValueError(_UNSUPPORTED_DEPTH)
    source = "16-bit" if sixteen else None  # else named after the pixel layout below
    if sixteen:
        notes.append("16-bit pixels scaled to 8-bit")  # Pillow keeps the high byte of each sample
    if mode == "P":
        source = "palette"
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("1", "L", "LA", "La", "PA"):
        grey = image.convert("LA")  # type: ignore[assignment]  # image: the decoded PIL image is turned into pixels below
        pixels = np.asarray(grey)
        notes.append("grey image shown in colour (three equal channels)")
        rgb = _on_white(np.repeat(pixels[:, :, :1], 3, axis=2), pixels[:, :, 1], notes)
        return rgb, source or "gray"
    if mode in ("RGBA", "RGBa"):
        pixels = np.asarray(image.convert("RGBA"))
        return _on_white(pixels[:, :, :3], pixels[:, :, 3], notes), source or "rgba"
    if mode != "RGB":
        image = image.convert("RGB")  # YCbCr, LAB, HSV and the like
    return np.asarray(image), source or "rgb8"


def _pages(image: Image.Image) -> int:
    try:
        return int(getattr(image, "n_frames", 1) or 1)
    except _DECODE_ERRORS:
        return 1


def _decode(path: str, data: bytes, limits: ImageLimits) -> tuple[np.ndarray, str, list[str], str | None]:
    """Pillow does the decoding, after the JPEG checks of core.files.damage; every failure becomes an
    ImageReadError with a reason. Also returns weak signs of damage in words (None: none found)."""
    try:
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling (about 179 megapixels)
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, int(found.group(1)) if found else limits.max_pixels + 1, limits) from None
    except UnidentifiedImageError:
        if data.startswith((b"II", b"MM")) and _looks_like_image(data):
            raise _refuse(path, _UNSUPPORTED_TIFF) from None
        raise _refuse(path, DAMAGED if _looks_like_image(data) else _NOT_AN_IMAGE) from None
    except _DECODE_ERRORS as exc:
        if not _looks_like_image(data):
            raise _refuse(path, _NOT_AN_IMAGE) from None
        raise _refuse(path, TRUNCATED if "truncat" in str(exc) else DAMAGED) from None
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise _refuse(path, DAMAGED)
        _check_size(path, width, height, limits)  # from the header, before a single pixel is allocated
        # How the file stores its samples, read before anything loads the pixels and clears it (a PNG's
        # getexif does): Pillow reads 16-bit colour as 8-bit (the high byte) and says so only here.
        sixteen = any(";16" in str(tile.args[0] if isinstance(tile.args, tuple) else tile.args) for tile in image.tile)
        # MPO (a camera's JPEG with extra pictures appended) is screened on its primary picture, the one
        # every viewer shows; the checks read the primary picture's data, which comes first.
        jpeg = image.format in ("JPEG", "MPO")
        pages = _pages(image)
        if pages > 1 and not jpeg:
            what = "an animation" if image.format == "PNG" else "pages"
            raise _refuse(path, _MANY_PAGES.format(kind=image.format, count=pages, what=what))
        if jpeg and (damage := jpeg_structure_damage(data) or jpeg_decoder_damage(data)) is not None:
            raise _refuse(path, damage)
        if image.format == "PNG":
            _verify(path, data)  # chunk checksums: Pillow checks them only when asked
        orientation = _exif_orientation(image)
        try:
            image.load()  # raises on truncated or undecodable data (LOAD_TRUNCATED_IMAGES stays False)
            upright = ImageOps.exif_transpose(image) if orientation != 1 else image
        except (*_DECODE_ERRORS, ZeroDivisionError) as exc:
            raise _refuse(path, TRUNCATED if "truncat" in str(exc) else DAMAGED) from None
        notes: list[str] = []
        try:
            rgb, source_mode = _to_rgb8(upright, sixteen, notes)
        except ValueError as exc:
            raise _refuse(path, str(exc)) from None
        if orientation != 1:
            notes.append(f"turned upright from its EXIF orientation tag ({_ORIENTATION_WORDS[orientation]})")
        if jpeg and source_mode != "cmyk" and grey_filled_end(rgb):
            raise _refuse(path, DAMAGED)
        if pages > 1:
            notes.append(f"the primary picture of {pages} in this camera file")
    rgb = np.ascontiguousarray(rgb)
    return rgb, source_mode, notes, _pixel_damage(path, rgb, jpeg)


def _pixel_damage(path: str, rgb: np.ndarray, from_jpeg: bool) -> str | None:
    """Strong pixel evidence of damage refuses the picture; weak evidence is returned, in words."""
    finding = picture_damage(rgb, from_jpeg)
    if finding is None:
        return None
    if finding.strong:
        raise _refuse(path, finding.reason)
    return finding.reason


def _verify(path: str, data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as probe:
            probe.verify()
    except Exception as exc:  # noqa: BLE001 - Pillow's verify raises many kinds; each means damage
        raise _refuse(path, TRUNCATED if "truncat" in str(exc).lower() else DAMAGED) from None


_PILLOW_FORMATS = ("JPEG", "PNG", "BMP", "TIFF")
# What Pillow raises on bad data (its plugins raise more than OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, KeyError)


def read_image(path: str | os.PathLike, limits: ImageLimits = ImageLimits()) -> LoadedImage:
    """Decode one image file into upright 8-bit RGB, or raise ImageReadError with the reason.

    The format comes from the file's bytes, not its name. Limits are checked from the header
    before decoding (Pillow's global bomb limit is left alone: limits are per call). Damage that
    libjpeg would paper over (overwritten or missing data) is refused, not screened."""
    path = os.fspath(path)
    data = read_file_bytes(path, limits)  # the one read from disk, for every format
    if data[128:132] == b"DICM" or path.lower().endswith(DICOM_EXTENSIONS):
        return decode_dicom(path, data, limits)
    digest = hashlib.sha256(data).hexdigest()
    rgb, source_mode, notes, damage = _decode(path, data, limits)
    height, width = rgb.shape[:2]
    return LoadedImage(
        path=path,
        rgb=rgb,
        sha256=digest,
        width=width,
        height=height,
        source_mode=source_mode,
        notes=tuple(notes),
        damage=damage,
    )
