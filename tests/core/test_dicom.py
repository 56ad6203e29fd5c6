"""DICOM dermoscopy files: identity tags and pixels, from files the tests write with pydicom."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from dicom_files import VLPhotographicImageStorage, write_dicom
from pydicom.uid import CTImageStorage

from core.dicom import has_dicom_preamble, read_dicom_identity, read_dicom_image
from core.errors import ImageReadError
from core.images import ImageLimits


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
