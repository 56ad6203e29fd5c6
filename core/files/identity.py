"""Identity at intake: whose lesion each screened file shows, and at which visit.

Sources, in this order of precedence (the first that names a patient for a file wins, whole):

1. a sidecar CSV, `melascreen.csv` in the screened folder (or `--sidecar FILE`), one row per file:
   `file, patient_id, lesion_id, body_site, visit_date` and optionally `age, sex, note`.
   `file` is the path relative to the screened folder; `visit_date` is an ISO date (2024-03-15).
   Commas, semicolons or tabs separate the columns (spreadsheets save any of them); the header line
   decides which. Quoting is the csv module's, as spreadsheets write it: quoted fields, doubled quotes
   ("" inside quotes), notes over several lines, a byte-order mark (UTF-8 or UTF-16).
   Bounds (FIELD_LIMITS): patient_id and lesion_id at most 64 characters (DICOM's limit for a
   PatientID), body_site 128, file 1,024, note 2,000; ids hold no control characters. A row over a
   bound is an issue (a longer note is cut, and said so); a sidecar over 20 MB is not read.
2. the folder layout, when asked for (`layout="patient-visit"`):
   `PATIENT/image`, `PATIENT/VISIT_DATE/image`, `PATIENT/LESION/image` or
   `PATIENT/VISIT_DATE/LESION/image` (or LESION/VISIT_DATE); a folder whose name is a date
   (2024-03-15 or 20240315) is the visit, any other is the lesion.
3. the tags of a DICOM dermoscopy file (PatientID, StudyDate, anatomic region, laterality,
   Lesion Number).
4. otherwise none: the image is screened as before, with "no patient".

A bad sidecar row (unknown file, bad date, contradicting another row, missing patient id,
unknown column) is never dropped in silence: it becomes an `IdentityIssue` reported with the run,
and its file is screened with the identity of the next source, if any. Patient names are never
read or stored; the patient id is whatever the clinic uses.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from core.common.errors import ImageReadError
from core.files.body_sites import site_from_text

SIDECAR_NAME = "melascreen.csv"
LAYOUTS = ("none", "patient-visit")
SIDECAR_REQUIRED = ("file", "patient_id")
SIDECAR_COLUMNS = ("file", "patient_id", "lesion_id", "body_site", "visit_date", "age", "sex", "note")
SOURCES = ("sidecar", "folder", "dicom")
_SEXES = {"f": "F", "female": "F", "m": "M", "male": "M", "o": "O", "other": "O"}
MAX_AGE = 130
# Longest accepted value per column, in characters: ids as DICOM's LO (PatientID), the rest generous.
FIELD_LIMITS = {"file": 1024, "patient_id": 64, "lesion_id": 64, "body_site": 128, "note": 2000}
MAX_SIDECAR_BYTES = 20_000_000  # ~200,000 rows; a larger file is not a sidecar someone typed
_SHOWN = 60  # characters of a bad value repeated in a message


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


# ------------------------------------------------------------------------------------ sidecar CSV


def default_sidecar(folder: str | os.PathLike) -> Path | None:
    candidate = Path(folder) / SIDECAR_NAME
    return candidate if candidate.is_file() else None


def _shown(text: str, limit: int = _SHOWN) -> str:
    """A value as repeated in a message: bounded, so one bad cell cannot flood a report."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _decode_sidecar(raw: bytes) -> str:
    """Text of a sidecar: UTF-16 when it starts with its byte-order mark (spreadsheets' "Unicode text"),
    else UTF-8 with or without one. UnicodeDecodeError when it is neither."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def _delimiter(text: str) -> str:
    """The separator of the header line: the most frequent of , ; tab outside quotes (comma on a tie)."""
    counts = {",": 0, ";": 0, "\t": 0}
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            break
        elif ch in counts and not quoted:
            counts[ch] += 1
    return max(counts, key=lambda d: (counts[d], d == ","))


class _SidecarDialect(csv.excel):
    """As spreadsheets write CSV: "quoted" fields, "" for a quote inside one, line breaks inside quotes.
    strict: a broken quote is an error with its line, not a row that swallows the rest of the file."""

    skipinitialspace = True
    strict = True


def _sidecar_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | None, str]]:
    """(first line, cells, "") per record (a record may span lines: a quoted note); at broken quoting
    or an over-long cell, one last (line, None, what is wrong) and nothing after it."""
    dialect = type("_Dialect", (_SidecarDialect,), {"delimiter": delimiter})
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    start = 1
    try:
        for row in reader:
            yield start, row, ""
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field limit" in str(exc):
            why = f"a cell is longer than {csv.field_size_limit()} characters ({exc})"
        else:
            why = f"its quoting is broken: a quote opened and never closed, or text after a closing quote ({exc})"
        yield start, None, why


def _field_problems(values: dict[str, str]) -> list[str]:
    problems = []
    for col in ("file", "patient_id", "lesion_id", "body_site"):
        value = values.get(col, "")
        if len(value) > FIELD_LIMITS[col]:
            problems.append(f"{col} is {len(value)} characters long; the limit is {FIELD_LIMITS[col]}")
        elif col != "file" and value and not value.isprintable():
            problems.append(f"{col} {ascii(_shown(value))} holds control characters (line breaks, tabs, escapes)")
    return problems


def read_sidecar(
    sidecar: str | os.PathLike, folder: str | os.PathLike
) -> tuple[dict[str, Identity], list[IdentityIssue]]:
    """Parse and check a sidecar CSV against the files in `folder`.

    Returns the identities of the good rows (keyed by path_key) and one issue per bad row or
    column. A file listed twice, or one lesion given two body sites on one visit, makes the
    later row an issue; several pictures of one lesion on one visit are fine.
    """
    sidecar, folder = Path(sidecar), Path(folder)
    name = sidecar.name
    try:
        info = sidecar.stat()
        if not stat.S_ISREG(info.st_mode):  # a pipe or device would block the run on read
            return {}, [IdentityIssue(name, None, "the sidecar is not a regular file (a pipe?): it is not read")]
        size = info.st_size
        if size > MAX_SIDECAR_BYTES:
            return {}, [
                IdentityIssue(
                    name,
                    None,
                    f"the sidecar is {size / 1e6:.0f} MB; the limit is {MAX_SIDECAR_BYTES / 1e6:.0f} MB "
                    "(one line per picture is far less): it is not read",
                )
            ]
        text = _decode_sidecar(sidecar.read_bytes())
    except UnicodeError:
        return {}, [
            IdentityIssue(name, None, "the sidecar is not UTF-8 text; save it from the spreadsheet as CSV UTF-8")
        ]
    except OSError as exc:
        return {}, [IdentityIssue(name, None, f"the sidecar cannot be read ({exc.strerror or exc})")]
    rows = _sidecar_rows(text, _delimiter(text))
    issues: list[IdentityIssue] = []
    _, first, broken = next(rows, (1, None, ""))
    if broken:
        return {}, [IdentityIssue(name, 1, f"the header line cannot be read: {broken}")]
    if not first:
        return {}, [IdentityIssue(name, 1, "the sidecar is empty; it needs a header line naming its columns")]
    header = [h.strip().lstrip("\ufeff").lower() for h in first]
    for col in header:
        if col not in SIDECAR_COLUMNS:
            issues.append(
                IdentityIssue(
                    name, 1, f"unknown column '{_shown(col)}' (ignored); the columns are {', '.join(SIDECAR_COLUMNS)}"
                )
            )
    missing = [c for c in SIDECAR_REQUIRED if c not in header]
    if missing:
        issues.append(
            IdentityIssue(name, 1, f"the sidecar has no column {', '.join(missing)}; no row of it can be used")
        )
        return {}, issues

    identities: dict[str, Identity] = {}
    seen_files: dict[str, int] = {}
    lesion_sites: dict[tuple, tuple[str | None, int]] = {}
    unknown_sites: set[str] = set()
    root = os.path.abspath(folder)
    for line, row, broken in rows:
        if row is None:
            issues.append(
                IdentityIssue(
                    name,
                    line,
                    f"the sidecar cannot be read from this line on: {broken}; the rows from here are not used. "
                    "Save it again from the spreadsheet as CSV",
                )
            )
            break
        if not any(cell.strip() for cell in row):
            continue
        values = {col: (row[i].strip() if i < len(row) else "") for i, col in enumerate(header)}
        file = values.get("file", "")
        label = _shown(file) if file else f"(line {line})"
        problems: list[str] = _field_problems(values)
        note = values.get("note", "").replace("\r\n", "\n").replace("\r", "\n")  # one kind of line break
        if len(note) > FIELD_LIMITS["note"]:
            issues.append(
                IdentityIssue(
                    label,
                    line,
                    f"the note is {len(note)} characters long; only its first {FIELD_LIMITS['note']} are kept",
                )
            )
            note = note[: FIELD_LIMITS["note"]]
        if len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
            problems.append(f"{len(row)} cells but the header names {len(header)} columns")
        target = None
        if not file:
            problems.append("no file named")
        elif problems and len(file) > FIELD_LIMITS["file"]:
            pass  # said above; not looked up
        else:
            target = os.path.abspath(os.path.join(folder, file))
            if os.path.commonpath([root, target]) != root:
                problems.append("the file lies outside the screened folder")
            elif not os.path.isfile(target):
                problems.append(f"unknown file: there is no '{_shown(file)}' in {folder}")
            elif path_key(target) in seen_files:
                problems.append(f"the file is already listed on line {seen_files[path_key(target)]}")
        patient = values.get("patient_id", "")
        if not patient:
            problems.append("no patient_id")
        visit = None
        if values.get("visit_date"):
            visit = parse_iso_date(values["visit_date"])
            if visit is None:
                problems.append(f"bad visit_date '{_shown(values['visit_date'])}': write the date as YYYY-MM-DD")
        age = None
        if values.get("age"):
            try:
                age = int(values["age"])
            except ValueError:
                age = -1
            if not 0 <= age <= MAX_AGE:
                problems.append(f"bad age '{_shown(values['age'])}': a whole number of years, 0 to {MAX_AGE}")
        sex = None
        if values.get("sex"):
            sex = _SEXES.get(values["sex"].lower())
            if sex is None:
                problems.append(f"bad sex '{_shown(values['sex'])}': F, M or O (or leave it empty)")
        lesion = values.get("lesion_id") or None
        site = values.get("body_site") or None
        if lesion and patient and not problems:
            key = (patient, lesion, visit)
            if key in lesion_sites and lesion_sites[key][0] and site and lesion_sites[key][0] != site:
                earlier_site, earlier_line = lesion_sites[key]
                problems.append(
                    f"duplicate lesion on one visit: lesion '{lesion}' of patient '{patient}' on "
                    f"{visit or 'an undated visit'} is at '{earlier_site}' on line {earlier_line} but at '{site}' here"
                )
        if problems:
            issues.append(IdentityIssue(label, line, "; ".join(problems) + " - this row's identity is not used"))
            continue
        if lesion:
            lesion_sites.setdefault((patient, lesion, visit), (site, line))
        seen_files[path_key(target)] = line  # type: ignore[arg-type]  # rows without a target are skipped above
        identities[path_key(target)] = Identity(  # type: ignore[arg-type]  # rows without a target are skipped above
            patient_id=patient,
            lesion_id=lesion,
            body_site=site,
            visit_date=visit,
            age=age,
            sex=sex,
            note=note,
            source="sidecar",
        )
        if site and site.casefold() not in unknown_sites and site_from_text(site).unknown:
            unknown_sites.add(site.casefold())  # said once per word; the row is used, the site kept as written
            issues.append(
                IdentityIssue(
                    label,
                    line,
                    f"body site '{_shown(site)}' is not in MelaScreen's list of body sites (e.g. 'left forearm', "
                    "'upper back', 'scalp'): it is kept as written but cannot be shown on the body map",
                )
            )
    return identities, issues


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
    from core.files.dicom import read_dicom_identity

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
    problems = _field_problems({"patient_id": identity.patient_id, "lesion_id": identity.lesion_id or ""})
    if problems:
        return None, "; ".join(problems) + " (DICOM tags) - screened with no patient"
    return identity, None


# ----------------------------------------------------------------------------------------- intake


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
    from core.files.dicom import is_dicom_path

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
