"""Identity: whose lesion each screened file shows, and at which visit (never the patient's name).

An identity comes from one of three sources, the first that names a patient for a file winning
whole: a sidecar CSV (core.files.sidecar), the folder layout, or a DICOM file's tags (both in
core.files.identity_sources, which also applies the precedence). This module holds what they all
give: `Identity`, the `IdentityIssue` a bad row or file becomes (reported with the run, the batch
goes on), how a run looks for identities (`IdentitySettings`) and the resolved batch
(`FolderIdentities`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

LAYOUTS = ("none", "patient-visit")
SOURCES = ("sidecar", "folder", "dicom")


@dataclass(frozen=True)
class Identity:
    """Whose lesion a picture shows and when. Only patient_id is required."""

    patient_id: str
    lesion_id: str | None = None  # the clinic's lesion id, unique within one patient
    body_site: str | None = None
    visit_date: date | None = None
    age: int | None = None
    sex: str | None = None  # "F", "M" or "O"
    note: str = ""
    source: str = "sidecar"  # one of SOURCES

    def __post_init__(self):
        if not self.patient_id or not self.patient_id.strip():
            raise ValueError("an identity needs a patient id")
        if self.source not in SOURCES:
            raise ValueError(f"identity source must be one of {', '.join(SOURCES)}; got {self.source!r}")


@dataclass(frozen=True)
class IdentityIssue:
    """A problem with the identity of one file or one sidecar row; the batch goes on."""

    file: str  # the file concerned (as written in the sidecar, or the screened path)
    row: int | None  # line number in the sidecar (the header is line 1); None for other sources
    message: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" (sidecar line {self.row})" if self.row is not None else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class IdentitySettings:
    """How a run finds identities: the sidecar (None: FOLDER/melascreen.csv when present) and the layout."""

    sidecar: Path | None = None
    layout: str = "none"  # one of LAYOUTS; "patient-visit" also screens sub-folders

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}; got {self.layout!r}")

    @property
    def needs_subfolders(self) -> bool:
        return self.layout != "none"


@dataclass(frozen=True)
class FolderIdentities:
    """The identities of a batch, resolved before screening."""

    identities: Mapping[str, Identity] = field(default_factory=dict)  # key: path_key(path)
    issues: tuple[IdentityIssue, ...] = ()
    sidecar: Path | None = None

    def identity_for(self, path: str | os.PathLike) -> Identity | None:
        return self.identities.get(path_key(path))

    def is_sidecar(self, path: str | os.PathLike) -> bool:
        """The sidecar is MelaScreen's own input, not a picture: it is not screened or reported as one."""
        return self.sidecar is not None and path_key(path) == path_key(self.sidecar)


def path_key(path: str | os.PathLike) -> str:
    """One spelling per file, so that a sidecar's relative name and the scanner's path meet."""
    return os.path.normcase(os.path.abspath(os.fspath(path)))


def parse_iso_date(text: str) -> date | None:
    """2024-03-15 (ISO) or 20240315 (DICOM style) -> date; None when it is neither."""
    text = text.strip()
    try:
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            return date.fromisoformat(text)
        if len(text) == 8 and text.isdigit():
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return None
