"""Small DICOM dermoscopy files written by the tests themselves with pydicom (nothing downloaded)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DermoscopicPhotographyImageStorage,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    VLPhotographicImageStorage,
    generate_uid,
)


def write_dicom(
    path: Path,
    rgb: np.ndarray,
    *,
    patient_id: str | None = "P-001",
    patient_name: str = "Doe^Jane",
    study_date: str | None = "20240315",
    region: str | None = "Forearm",
    laterality: str | None = "L",
    lesion_number: int | None = None,
    sop_class: str = DermoscopicPhotographyImageStorage,
    encoding: str = "rgb",  # "rgb", "ybr" (uncompressed YBR_FULL) or "jpeg" (baseline, through Pillow)
    age: str | None = "045Y",
    sex: str | None = "F",
    jpeg_data: bytes | None = None,  # with encoding="jpeg": these JPEG bytes as the picture (e.g. damaged ones)
    character_set: str | None = None,  # Specific Character Set, e.g. "ISO_IR 192" (UTF-8)
) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.Modality = "XC"
    if character_set is not None:
        ds.SpecificCharacterSet = character_set
    ds.PatientName = patient_name
    if patient_id is not None:
        ds.PatientID = patient_id
    if study_date is not None:
        ds.StudyDate = study_date
    if age is not None:
        ds.PatientAge = age
    if sex is not None:
        ds.PatientSex = sex
    if region is not None:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "14975008", "SCT", region
        ds.AnatomicRegionSequence = [item]
    if laterality is not None:
        ds.ImageLaterality = laterality
    if lesion_number is not None:
        ds.LesionNumber = lesion_number
    h, w = rgb.shape[:2]
    ds.Rows, ds.Columns = h, w
    ds.SamplesPerPixel = 3
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PlanarConfiguration = 0
    if encoding == "jpeg":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PixelData = encapsulate([jpeg_data if jpeg_data is not None else buf.getvalue()])
        ds["PixelData"].VR = "OB"
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if encoding == "ybr":
            import cv2

            # DICOM YBR_FULL is full-range BT.601 Y, Cb, Cr; OpenCV's YCrCb is the same with Cr first.
            ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
            pixels = ycrcb[:, :, [0, 2, 1]]
            ds.PhotometricInterpretation = "YBR_FULL"
        else:
            pixels = rgb
            ds.PhotometricInterpretation = "RGB"
        ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


__all__ = ["write_dicom", "VLPhotographicImageStorage", "DermoscopicPhotographyImageStorage"]
