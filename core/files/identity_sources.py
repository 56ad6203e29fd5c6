"""Whose lesion each file of a batch shows: the sources of an identity and their precedence.

In this order (the first that names a patient for a file wins, whole):

1. the sidecar CSV (core.files.sidecar);
2. the folder layout, when asked for (`layout="patient-visit"`):
   `PATIENT/image`, `PATIENT/VISIT_DATE/image`, `PATIENT/LESION/image` or
   `PATIENT/VISIT_DATE/LESION/image` (or LESION/VISIT_DATE); a folder whose name is a date
   (2024-03-15 or 20240315) is the visit, any other is the lesion;
3. the tags of a DICOM dermoscopy file (PatientID, StudyDate, anatomic region, laterality,
   Lesion Number), read once per file here, before screening (pixels are not read);
4. otherwise none: the image is screened as before, with "no patient".

A problem with a source becomes an `IdentityIssue` and the file gets the identity of the next
source, if any. Patient names are never read or stored; the patient id is whatever the clinic uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from core.common.errors import ImageReadError
from core.files.dicom import is_dicom_path, read_dicom_identity
from core.files.identity import LAYOUTS, FolderIdentities, Identity, IdentityIssue, parse_iso_date, path_key
from core.files.sidecar import SIDECAR_NAME, default_sidecar, field_problems, read_sidecar

# ---------------------------------------------------------------------------------- folder layout


def identity_from_layout(path: str | os.PathLike, folder: str | os.PathLike) -> tuple[Identity | None, str | None]:
    """(identity, None) from PATIENT/[VISIT_DATE/][LESION/]image, (None, None) for a file at the
    top of the folder, or (None, problem) when the folders do not follow the layout."""
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder)))
    parts = rel.parts[:-1]
    if not parts or parts[0] == "..":
        return None, None
    patient, rest = parts[0].strip(), parts[1:]
    if len(rest) > 2:
        return None, "the folders are deeper than PATIENT/VISIT_DATE/LESION/ (the layout); no identity taken"
    visit, lesion = None, None
    for part in rest:
        as_date = parse_iso_date(part)
        if as_date is not None:
            if visit is not None:
                return None, "two visit-date folders in one path; no identity taken"
            visit = as_date
        else:
            if lesion is not None:
                return None, "two lesion folders in one path (a visit folder is named YYYY-MM-DD); no identity taken"
            lesion = part.strip()
    return Identity(patient_id=patient, lesion_id=lesion, visit_date=visit, source="folder"), None


# ------------------------------------------------------------------------------------------ DICOM


def identity_from_dicom(path: str | os.PathLike) -> Identity | None:
    """The identity a DICOM dermoscopy file carries; None without a PatientID or for other files."""
    tags = read_dicom_identity(path)
    if not tags.patient_id:
        return None
    return Identity(
        patient_id=tags.patient_id,
        lesion_id=tags.lesion_id,
        body_site=tags.body_site,
        visit_date=tags.study_date,
        age=tags.age,
        sex=tags.sex,
        source="dicom",
    )


def _dicom_identity_or_problem(path: str | os.PathLike) -> tuple[Identity | None, str | None]:
    """A DICOM file's identity, or why it gives none: a DICOM without a PatientID is filed under no
    patient, and the user must hear it (they expected the file to name its patient)."""
    try:
        identity = identity_from_dicom(path)
    except ImageReadError:
        return None, None  # screening reports the file's own problem
    if identity is None:
        return None, (
            "the DICOM file has no PatientID: screened with no patient; name its patient in a sidecar "
            f"({SIDECAR_NAME}) or fix the export"
        )
    problems = field_problems({"patient_id": identity.patient_id, "lesion_id": identity.lesion_id or ""})
    if problems:
        return None, "; ".join(problems) + " (DICOM tags) - screened with no patient"
    return identity, None


# ---------------------------------------------------------------------------------------- a batch


def resolve_identities(
    folder: str | os.PathLike,
    paths: Iterable[str | os.PathLike],
    sidecar: str | os.PathLike | None = None,
    layout: str = "none",
) -> FolderIdentities:
    """The identity of every path of a batch, and the issues found on the way.

    `sidecar`: a CSV file; None looks for `melascreen.csv` in `folder`. `layout`: "none" or
    "patient-visit". Never raises for a bad row or file: those become issues.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    sidecar_path = Path(sidecar) if sidecar is not None else default_sidecar(folder)
    issues: list[IdentityIssue] = []
    from_sidecar: dict[str, Identity] = {}
    if sidecar_path is not None:
        if not sidecar_path.is_file():
            issues.append(IdentityIssue(str(sidecar_path), None, "the sidecar file does not exist"))
        else:
            from_sidecar, sidecar_issues = read_sidecar(sidecar_path, folder)
            issues.extend(sidecar_issues)
    identities: dict[str, Identity] = {}
    for p in paths:
        key = path_key(p)
        if sidecar_path is not None and key == path_key(sidecar_path):
            continue
        identity = from_sidecar.get(key)
        if identity is None and layout == "patient-visit":
            identity, problem = identity_from_layout(p, folder)
            if problem:
                issues.append(IdentityIssue(str(p), None, problem))
        if identity is None and is_dicom_path(p):
            identity, problem = _dicom_identity_or_problem(p)
            if problem:
                issues.append(IdentityIssue(str(p), None, problem))
        if identity is not None:
            identities[key] = identity
    return FolderIdentities(identities=identities, issues=tuple(issues), sidecar=sidecar_path)
