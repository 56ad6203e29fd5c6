"""DICOM dermoscopy files: the identity tags and the picture, read with pydicom.

Dermoscopy systems export pictures as DICOM "VL Photographic Image" or "Dermoscopic Photography
Image" objects. From them MelaScreen reads what a clinic files a picture under: the patient id,
the study date (the visit), the anatomic region and laterality, the lesion number when the system
sets one, and the SOP Instance UID. The patient's name is never read: the tag reader asks pydicom
for the listed tags only.

Pixels go through pydicom's own decoders (uncompressed RGB / YBR; JPEG baseline through Pillow)
and come back as the same `LoadedImage` that `core.files.images.read_image` gives for JPEG or PNG files.
`read_image` reads the file's bytes once and hands them to `decode_dicom`: one read from disk, one
pydicom dataset for the checks and the pixels.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.common.errors import ImageReadError
from core.files.damage import jpeg_decoder_damage, jpeg_structure_damage, picture_damage
from core.files.image_file import ImageLimits, LoadedImage, read_file_bytes

DICOM_EXTENSIONS = (".dcm", ".dicom")
# SOP classes of photographs of skin; anything else (CT, MR, video, reports) is not screened.
# (Dermoscopic Photography is ...77.1.7; ...77.1.4.1 is Video Photographic, which is not screened.)
DERMOSCOPY_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.7": "Dermoscopic Photography Image",
}
_LATERALITY_WORDS = {"L": "left", "R": "right", "B": "both sides", "U": "unpaired"}
# The only tags the identity reader asks pydicom for (never PatientName).
_IDENTITY_TAGS = (
    "SpecificCharacterSet",  # how the text tags are encoded
    "SOPClassUID",
    "SOPInstanceUID",
    "PatientID",
    "PatientAge",
    "PatientSex",
    "StudyDate",
    "ContentDate",
    "AnatomicRegionSequence",
    "ImageLaterality",
    "Laterality",
    "LesionNumber",
)


@dataclass(frozen=True)
class DicomIdentity:
    """What a DICOM dermoscopy file says about whose lesion it shows; None where a tag is absent."""

    sop_instance_uid: str | None
    patient_id: str | None
    study_date: date | None
    body_site: str | None  # anatomic region code meaning, with laterality, e.g. "forearm (left)"
    lesion_id: str | None  # the Lesion Number tag when present
    age: int | None
    sex: str | None  # "F", "M", "O"


def _regular_file(path: str | os.PathLike) -> bool:
    """Only regular files are opened: opening a pipe (FIFO) waits for a writer, forever."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def has_dicom_preamble(path: str | os.PathLike) -> bool:
    """True when the file has DICOM Part 10's 'DICM' marker after its 128-byte preamble."""
    if not _regular_file(path):
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_path(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(DICOM_EXTENSIONS) or has_dicom_preamble(path)


def _text(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        # A text tag pydicom left undecoded (stored with VR UN or OB, e.g. longer than its VR allows):
        # decoded with the file's character set, never shown as Python's b'...'.
        value = _decode_text(ds, bytes(value))
    # str.strip, not str(): pydicom's UID.__str__ gives the UID's name instead of its digits.
    text = (value if isinstance(value, str) else str(value)).strip(" \t\r\n\x00")
    return text or None


def _decode_text(ds, raw: bytes) -> str:
    from pydicom.charset import convert_encodings, decode_bytes

    declared = ds.get("SpecificCharacterSet") or "ISO_IR 6"
    try:
        return decode_bytes(raw, convert_encodings(declared), set())
    except (LookupError, ValueError, UnicodeDecodeError):
        return raw.decode("latin-1")  # every byte is a character: nothing is lost


def _dicom_date(text: str | None) -> date | None:
    if not text:
        return None
    text = text.strip()
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 and text.isdigit() else None
    except ValueError:
        return None


def _age_years(text: str | None) -> int | None:
    # DICOM ages are "nnnD/W/M/Y"; only whole years are useful in a report.
    if not text or len(text) != 4 or not text[:3].isdigit():
        return None
    n = int(text[:3])
    return {"Y": n, "M": n // 12, "W": n // 52, "D": n // 365}.get(text[3].upper())


def _body_site(ds) -> str | None:
    region = None
    seq = ds.get("AnatomicRegionSequence")
    if seq:
        item = seq[0]
        region = _text(item, "CodeMeaning") or _text(item, "CodeValue")
    side = _text(ds, "ImageLaterality") or _text(ds, "Laterality")
    side_word = _LATERALITY_WORDS.get(side.upper()) if side else None
    if region and side_word:
        return f"{region} ({side_word})"
    return region or (f"{side_word} side" if side_word and side_word not in ("unpaired",) else None)


def _read_dataset(path: str, data: bytes | None = None, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    if data is None and not _regular_file(path):
        raise ImageReadError(path, "this is not a regular file (a device or a pipe), so it is not an image")
    source = io.BytesIO(data) if data is not None else path
    try:
        return pydicom.dcmread(source, **kwargs)
    except (InvalidDicomError, EOFError, struct.error, ValueError, KeyError, TypeError) as exc:
        raise ImageReadError(path, f"the DICOM file is damaged or incomplete and cannot be read ({exc})") from None
    except OSError as exc:
        raise ImageReadError(path, f"the file cannot be read ({exc.strerror or exc})") from None


def _check_sop_class(path: str, ds) -> None:
    sop_class = _text(ds, "SOPClassUID")
    if sop_class not in DERMOSCOPY_SOP_CLASSES:
        from pydicom.uid import UID

        kind = UID(sop_class).name if sop_class else "unknown kind"
        raise ImageReadError(
            path,
            f"this DICOM file is a '{kind}', not a dermoscopy photograph (VL Photographic or Dermoscopic "
            "Photography Image); MelaScreen screens only photographs of skin",
        )


def read_dicom_identity(path: str | os.PathLike) -> DicomIdentity:
    """The identity tags of one DICOM dermoscopy file (pixels are not read); ImageReadError if it is not one."""
    path = os.fspath(path)
    from pydicom.datadict import tag_for_keyword

    tags = [tag_for_keyword(k) for k in _IDENTITY_TAGS]
    ds = _read_dataset(path, stop_before_pixels=True, specific_tags=tags)
    _check_sop_class(path, ds)
    sex = (_text(ds, "PatientSex") or "").upper()
    lesion = _text(ds, "LesionNumber")
    return DicomIdentity(
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        patient_id=_text(ds, "PatientID"),
        study_date=_dicom_date(_text(ds, "StudyDate")) or _dicom_date(_text(ds, "ContentDate")),
        body_site=_body_site(ds),
        lesion_id=lesion,
        age=_age_years(_text(ds, "PatientAge")),
        sex=sex if sex in ("F", "M", "O") else None,
    )


_INCOMPLETE = (
    "the DICOM file is incomplete (it ends before its picture does), probably an interrupted copy or export; "
    "copy it again from the original"
)
# JPEG baseline and extended: the codings libjpeg-turbo reads, checked like a JPEG file (core.files.damage).
_JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}


def _check_jpeg_frame(path: str, ds) -> None:
    """The JPEG inside the file gets the same damage checks as a JPEG file: marker structure and
    libjpeg-turbo's warnings as errors. Refuses with the reason in words."""
    from pydicom.encaps import generate_frames

    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except (StopIteration, ValueError, KeyError, TypeError, struct.error, EOFError) as exc:
        raise ImageReadError(path, f"the picture inside this DICOM file is damaged or incomplete ({exc})") from None
    damage = jpeg_structure_damage(frame) or jpeg_decoder_damage(frame)
    if damage is not None:
        words = damage.replace("the image file is", "the JPEG picture inside this DICOM file is", 1)
        words = words.replace("the image data is", "the JPEG picture inside this DICOM file is", 1)
        raise ImageReadError(path, words)


def _check_picture(path: str, ds, data: bytes, limits: ImageLimits) -> None:
    """Refuse, before any pixel is decoded, a file that is cut short, not a dermoscopy photograph,
    without a picture, too large or too small for the limits, or holding several pictures."""
    if len(ds) == 0 and data[128:132] == b"DICM":
        # pydicom gives back an empty dataset when the file ends inside an element it is reading
        raise ImageReadError(path, _INCOMPLETE)
    _check_sop_class(path, ds)
    if "PixelData" not in ds:
        raise ImageReadError(path, "this DICOM file holds no picture (no pixel data)")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    width, height = cols, rows
    if width * height > limits.max_pixels:  # before any pixel is decoded
        raise ImageReadError(
            path,
            f"the image is too large to screen ({width} x {height} pixels; the limit is "
            f"{limits.max_pixels / 1e6:.0f} megapixels); export a smaller copy",
        )
    if min(width, height) < limits.min_side:
        raise ImageReadError(
            path,
            f"the image is too small to screen ({width} x {height} pixels; each side needs at least "
            f"{limits.min_side} pixels)",
        )
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > 1:
        raise ImageReadError(
            path,
            f"this DICOM file holds {frames} pictures (frames); MelaScreen screens one picture per file and will "
            "not guess which one shows the lesion: export the picture to screen as a file of its own",
        )


def _decoded_pixels(path: str, ds, syntax, from_jpeg: bool) -> np.ndarray:
    """pydicom's decoders (raw=False: YBR comes back as RGB); a failure is refused in words."""
    from pydicom.pixels import pixel_array

    try:
        return pixel_array(ds)
    except (NotImplementedError, RuntimeError) as exc:
        if from_jpeg:  # a JPEG this build reads, so the data is at fault
            raise ImageReadError(path, f"the JPEG picture inside this DICOM file is damaged ({exc})") from None
        name = syntax.name if syntax is not None else "an unknown encoding"
        raise ImageReadError(
            path,
            f"the picture is stored as {name}, which this MelaScreen cannot decode ({exc}); "
            "export it as uncompressed or JPEG baseline DICOM",
        ) from None
    except (ValueError, AttributeError, KeyError, TypeError, struct.error, EOFError, OSError) as exc:
        raise ImageReadError(path, f"the DICOM picture is damaged and cannot be decoded ({exc})") from None


def _to_rgb8(path: str, ds, pixels: np.ndarray, notes: list[str]) -> tuple[np.ndarray, str]:
    """Decoded DICOM pixels -> contiguous H x W x 3 uint8, and the source mode in words."""
    if pixels.dtype != np.uint8:
        if pixels.dtype.kind not in "ui":
            raise ImageReadError(path, "the DICOM picture stores floating-point pixels, which MelaScreen does not read")
        bits = int(ds.get("BitsStored") or pixels.dtype.itemsize * 8)
        pixels = np.clip(pixels.astype(np.float64) * (255.0 / (2**bits - 1)), 0, 255).round().astype(np.uint8)
        notes.append(f"{bits}-bit pixels scaled to 8 bits")
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        source_mode = "gray"
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        source_mode = "rgb8"
    else:
        raise ImageReadError(path, f"the DICOM picture has an unexpected shape {pixels.shape}; expected colour pixels")
    return np.ascontiguousarray(pixels), source_mode


def decode_dicom(path: str, data: bytes, limits: ImageLimits = ImageLimits()) -> LoadedImage:
    """A DICOM dermoscopy photograph's bytes (already read from `path`) -> 8-bit RGB, or ImageReadError
    with the reason. One pydicom dataset serves every check and the pixels."""
    ds = _read_dataset(path, data)
    _check_picture(path, ds, data, limits)
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    from_jpeg = syntax in _JPEG_SYNTAXES
    if from_jpeg:
        _check_jpeg_frame(path, ds)
    notes: list[str] = []
    pixels, source_mode = _to_rgb8(path, ds, _decoded_pixels(path, ds, syntax, from_jpeg), notes)
    damage = picture_damage(pixels, from_jpeg)
    if damage is not None and damage.strong:
        raise ImageReadError(path, damage.reason.replace("the picture is", "the picture inside this DICOM file is", 1))
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric.startswith("YBR"):
        notes.append(f"DICOM {photometric} colours converted to RGB")
    return LoadedImage(
        path=path,
        rgb=pixels,
        sha256=hashlib.sha256(data).hexdigest(),
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        source_mode=source_mode,
        notes=tuple(notes),
        damage=damage.reason if damage is not None else None,
    )


def read_dicom_image(path: str | os.PathLike, limits: ImageLimits = ImageLimits()) -> LoadedImage:
    """Read and decode a DICOM dermoscopy photograph (`core.files.images.read_image` does the same for
    any picture file, DICOM included)."""
    path = os.fspath(path)
    return decode_dicom(path, read_file_bytes(path, limits), limits)
