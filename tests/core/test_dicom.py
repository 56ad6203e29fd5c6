"""DICOM dermoscopy files: identity tags and pixels, from files the tests write with pydicom."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from pydicom.uid import CTImageStorage

from core.common.errors import ImageReadError
from core.files.dicom import has_dicom_preamble, read_dicom_identity, read_dicom_image
from core.files.image_file import ImageLimits
from core.files.images import read_image
from tests.support.dicom_files import VLPhotographicImageStorage, write_dicom


def lesion_picture(h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth skin-coloured picture with a darker blob: JPEG keeps it close."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((xx - w / 2) / (w / 5)) ** 2 + ((yy - h / 2) / (h / 5)) ** 2))
    skin = np.array([214, 160, 130], np.float32)
    rgb = skin * (1 - 0.7 * blob[..., None]) + np.array([60, 30, 20], np.float32) * 0.7 * blob[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_identity_tags_are_read_and_the_name_is_not(tmp_path):
    path = write_dicom(
        tmp_path / "a.dcm",
        lesion_picture(),
        patient_id="MRN-778",
        study_date="20240315",
        region="Forearm",
        laterality="L",
        lesion_number=2,
        patient_name="Secret^Name",
    )
    ident = read_dicom_identity(path)
    assert ident.patient_id == "MRN-778"
    assert ident.study_date == date(2024, 3, 15)
    assert ident.body_site == "Forearm (left)"
    assert ident.lesion_id == "2"
    assert ident.age == 45 and ident.sex == "F"
    assert ident.sop_instance_uid and ident.sop_instance_uid.startswith("1.2.")
    assert "Secret" not in repr(ident)
    assert has_dicom_preamble(path)


def test_missing_tags_give_none_not_errors(tmp_path):
    path = write_dicom(
        tmp_path / "b.dcm",
        lesion_picture(),
        patient_id=None,
        study_date=None,
        region=None,
        laterality=None,
        age=None,
        sex=None,
        sop_class=VLPhotographicImageStorage,
    )
    ident = read_dicom_identity(path)
    assert (ident.patient_id, ident.study_date, ident.body_site, ident.lesion_id, ident.age, ident.sex) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("encoding, tolerance", [("rgb", 0), ("ybr", 2), ("jpeg", 6)])
def test_pixels_reach_us_as_rgb(tmp_path, encoding, tolerance):
    rgb = lesion_picture()
    path = write_dicom(tmp_path / f"{encoding}.dcm", rgb, encoding=encoding)
    image = read_dicom_image(path)
    assert image.rgb.shape == rgb.shape and image.rgb.dtype == np.uint8
    assert (image.width, image.height) == (128, 96)
    error = np.abs(image.rgb.astype(int) - rgb.astype(int))
    assert error.mean() <= tolerance / 2 and np.percentile(error, 99) <= tolerance * 2
    # Red stays red: a YBR file read as RGB would swap the colours completely.
    assert image.rgb[..., 0].mean() > image.rgb[..., 2].mean() + 40
    assert len(image.sha256) == 64


def test_non_dermoscopy_dicom_is_refused_with_its_kind(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", lesion_picture(), sop_class=CTImageStorage)
    with pytest.raises(ImageReadError, match="CT Image Storage.*not a dermoscopy photograph"):
        read_dicom_image(path)


def test_damaged_and_oversized_files_are_refused_with_a_reason(tmp_path):
    good = write_dicom(tmp_path / "good.dcm", lesion_picture())
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(good.read_bytes()[:400])
    with pytest.raises(ImageReadError, match="damaged|incomplete|no picture"):
        read_dicom_image(cut)
    not_dicom = tmp_path / "text.dcm"
    not_dicom.write_text("hello")
    with pytest.raises(ImageReadError):
        read_dicom_image(not_dicom)
    with pytest.raises(ImageReadError, match="too large"):
        read_dicom_image(good, ImageLimits(max_pixels=1000))


# ------------------------------------------------------------------------- issue 26: text, damage


def _with_raw_patient_id(path, raw: bytes, vr: str = "OB"):
    import pydicom
    from pydicom.dataelem import DataElement

    ds = pydicom.dcmread(path)
    del ds.PatientID
    ds.add(DataElement(0x00100020, vr, raw))
    ds.save_as(path)
    return path


@pytest.mark.parametrize(
    "charset,raw,expected", [(None, b"HHHH-12", "HHHH-12"), ("ISO_IR 100", b"M\xfcller-7", "Müller-7")]
)
def test_a_patient_id_stored_as_bytes_is_decoded_with_the_files_character_set(tmp_path, charset, raw, expected):
    path = write_dicom(tmp_path / "a.dcm", lesion_picture(), character_set=charset)
    assert read_dicom_identity(_with_raw_patient_id(path, raw)).patient_id == expected


def test_a_patient_id_too_long_for_its_tag_never_comes_back_as_python_bytes(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that the value is longer than LO allows, and writes it as UN
        path = write_dicom(tmp_path / "a.dcm", lesion_picture(), patient_id="H" * 70_000)
    patient_id = read_dicom_identity(path).patient_id
    assert patient_id is not None and not patient_id.startswith("b'") and set(patient_id) == {"H"}


def _jpeg_of(rgb) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_a_damaged_jpeg_inside_a_dicom_file_is_refused_as_damaged_not_as_an_encoding_we_cannot_read(tmp_path):
    rgb = lesion_picture(192, 256)
    rgb = np.clip(rgb + np.random.default_rng(0).normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    data = _jpeg_of(rgb)
    start = data.index(b"\xff\xda") + 20
    at = start + (len(data) - start) // 2
    damaged = data[:at] + bytes(512) + data[at + 512 :]
    path = write_dicom(tmp_path / "z.dcm", rgb, encoding="jpeg", jpeg_data=damaged)
    with pytest.raises(ImageReadError) as caught:
        read_dicom_image(path)
    assert "damaged" in caught.value.reason and "JPEG picture inside this DICOM file" in caught.value.reason
    assert "cannot decode" not in caught.value.reason
    assert read_dicom_image(write_dicom(tmp_path / "ok.dcm", rgb, encoding="jpeg", jpeg_data=data)).damage is None


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_dicom_file_cut_short_is_reported_incomplete_not_as_an_unknown_kind(tmp_path, keep):
    path = write_dicom(tmp_path / "a.dcm", lesion_picture(), encoding="jpeg")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageReadError) as caught:
        read_dicom_image(path)
    assert "incomplete" in caught.value.reason and "unknown kind" not in caught.value.reason


def test_a_dicom_file_with_several_frames_is_refused_with_the_count(tmp_path):
    import pydicom

    path = write_dicom(tmp_path / "a.dcm", lesion_picture())
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="holds 2 pictures"):
        read_dicom_image(path)


def test_a_zeroed_band_in_an_uncompressed_dicom_picture_is_refused(tmp_path):
    rgb = lesion_picture(192, 256)
    rgb = np.clip(rgb + np.random.default_rng(1).normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    path = write_dicom(tmp_path / "a.dcm", rgb)
    data = path.read_bytes()
    at = len(data) - rgb.size // 2
    path.write_bytes(data[:at] + bytes(8192) + data[at + 8192 :])
    with pytest.raises(ImageReadError, match="band of one flat colour"):
        read_dicom_image(path)


@pytest.mark.timeout(30)
def test_a_pipe_named_dcm_is_never_opened(tmp_path):
    import os

    pipe = tmp_path / "pipe.dcm"
    os.mkfifo(pipe)
    assert not has_dicom_preamble(pipe)
    with pytest.raises(ImageReadError, match="pipe"):
        read_dicom_identity(pipe)


def test_a_dicom_file_is_read_from_disk_once_and_decoded_like_any_picture(tmp_path, monkeypatch):
    import builtins
    import os

    rgb = lesion_picture()
    path = write_dicom(tmp_path / "a.dcm", rgb)
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == os.fspath(path):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    image = read_image(path)
    assert len(opened) == 1  # the bytes read once serve the checks, the hash and the pixels
    assert np.array_equal(image.rgb, rgb) and image.source_mode == "rgb8"
    assert image.sha256 == read_dicom_image(path).sha256
