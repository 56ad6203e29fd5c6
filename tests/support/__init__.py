"""Helpers the tests share: synthetic bundles, image folders, DICOM files, damaged files, a clinic day."""
