"""The sidecar CSV: a clinic's list of whose lesion each file shows, checked row by row.

`melascreen.csv` in the screened folder (or `--sidecar FILE`), one row per file:
`file, patient_id, lesion_id, body_site, visit_date` and optionally `age, sex, note`.
`file` is the path relative to the screened folder; `visit_date` is an ISO date (2024-03-15).
Commas, semicolons or tabs separate the columns (spreadsheets save any of them); the header line
decides which. Quoting is the csv module's, as spreadsheets write it: quoted fields, doubled quotes
("" inside quotes), notes over several lines, a byte-order mark (UTF-8 or UTF-16).
Bounds (FIELD_LIMITS): patient_id and lesion_id at most 64 characters (DICOM's limit for a
PatientID), body_site 128, file 1,024, note 2,000; ids hold no control characters. A row over a
bound is an issue (a longer note is cut, and said so); a sidecar over 20 MB is not read.

A bad row (unknown file, bad date, contradicting another row, missing patient id, unknown column)
is never dropped in silence: it becomes an `IdentityIssue` reported with the run, and its file is
screened with the identity of the next source, if any.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from core.files.body_sites import site_from_text
from core.files.identity import Identity, IdentityIssue, parse_iso_date, path_key

SIDECAR_NAME = "melascreen.csv"
SIDECAR_REQUIRED = ("file", "patient_id")
SIDECAR_COLUMNS = ("file", "patient_id", "lesion_id", "body_site", "visit_date", "age", "sex", "note")
_SEXES = {"f": "F", "female": "F", "m": "M", "male": "M", "o": "O", "other": "O"}
MAX_AGE = 130
# Longest accepted value per column, in characters: ids as DICOM's LO (PatientID), the rest generous.
FIELD_LIMITS = {"file": 1024, "patient_id": 64, "lesion_id": 64, "body_site": 128, "note": 2000}
MAX_SIDECAR_BYTES = 20_000_000  # ~200,000 rows; a larger file is not a sidecar someone typed
_SHOWN = 60  # characters of a bad value repeated in a message


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


def _sidecar_text(sidecar: Path) -> str | IdentityIssue:
    """The sidecar's text, or the issue that says why it is not read at all."""
    name = sidecar.name
    try:
        info = sidecar.stat()
        if not stat.S_ISREG(info.st_mode):  # a pipe or device would block the run on read
            return IdentityIssue(name, None, "the sidecar is not a regular file (a pipe?): it is not read")
        size = info.st_size
        if size > MAX_SIDECAR_BYTES:
            return IdentityIssue(
                name,
                None,
                f"the sidecar is {size / 1e6:.0f} MB; the limit is {MAX_SIDECAR_BYTES / 1e6:.0f} MB "
                "(one line per picture is far less): it is not read",
            )
        return _decode_sidecar(sidecar.read_bytes())
    except UnicodeError:
        return IdentityIssue(name, None, "the sidecar is not UTF-8 text; save it from the spreadsheet as CSV UTF-8")
    except OSError as exc:
        return IdentityIssue(name, None, f"the sidecar cannot be read ({exc.strerror or exc})")


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


_Rows = Iterator[tuple[int, list[str] | None, str]]


def _sidecar_rows(text: str, delimiter: str) -> _Rows:
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


def _header(rows: _Rows, name: str) -> tuple[list[str] | None, list[IdentityIssue]]:
    """The header's column names (None when no row can be used) and the issues of the header line."""
    _, first, broken = next(rows, (1, None, ""))
    if broken:
        return None, [IdentityIssue(name, 1, f"the header line cannot be read: {broken}")]
    if not first:
        return None, [IdentityIssue(name, 1, "the sidecar is empty; it needs a header line naming its columns")]
    header = [h.strip().lstrip("\ufeff").lower() for h in first]
    issues = [
        IdentityIssue(
            name, 1, f"unknown column '{_shown(col)}' (ignored); the columns are {', '.join(SIDECAR_COLUMNS)}"
        )
        for col in header
        if col not in SIDECAR_COLUMNS
    ]
    missing = [c for c in SIDECAR_REQUIRED if c not in header]
    if missing:
        issues.append(
            IdentityIssue(name, 1, f"the sidecar has no column {', '.join(missing)}; no row of it can be used")
        )
        return None, issues
    return header, issues


def field_problems(values: dict[str, str]) -> list[str]:
    """Values over their FIELD_LIMITS, and ids holding control characters, in words."""
    problems = []
    for col in ("file", "patient_id", "lesion_id", "body_site"):
        value = values.get(col, "")
        if len(value) > FIELD_LIMITS[col]:
            problems.append(f"{col} is {len(value)} characters long; the limit is {FIELD_LIMITS[col]}")
        elif col != "file" and value and not value.isprintable():
            problems.append(f"{col} {ascii(_shown(value))} holds control characters (line breaks, tabs, escapes)")
    return problems


def _details(values: dict[str, str]) -> tuple[date | None, int | None, str | None, list[str]]:
    """The visit date, age and sex of a row, and what is wrong with them."""
    problems = []
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
    return visit, age, sex, problems


@dataclass
class _AcceptedRows:
    """The rows accepted so far, which later rows are checked against (one sidecar, one folder)."""

    folder: Path
    name: str
    header: list[str]
    identities: dict[str, Identity] = field(default_factory=dict)
    seen_files: dict[str, int] = field(default_factory=dict)
    lesion_sites: dict[tuple, tuple[str | None, int]] = field(default_factory=dict)
    unknown_sites: set[str] = field(default_factory=set)

    def _listed_file(self, file: str) -> tuple[str | None, str | None]:
        """(the file's absolute path or None, what is wrong with it or None)."""
        if not file:
            return None, "no file named"
        if len(file) > FIELD_LIMITS["file"]:
            return None, None  # said by field_problems; not looked up
        root = os.path.abspath(self.folder)
        target = os.path.abspath(os.path.join(self.folder, file))
        if os.path.commonpath([root, target]) != root:
            return target, "the file lies outside the screened folder"
        if not os.path.isfile(target):
            return target, f"unknown file: there is no '{_shown(file)}' in {self.folder}"
        if path_key(target) in self.seen_files:
            return target, f"the file is already listed on line {self.seen_files[path_key(target)]}"
        return target, None

    def _lesion_conflict(self, patient: str, lesion: str, visit: date | None, site: str | None) -> str | None:
        """A lesion given two body sites on one visit: the later row is the problem."""
        key = (patient, lesion, visit)
        if key in self.lesion_sites and self.lesion_sites[key][0] and site and self.lesion_sites[key][0] != site:
            earlier_site, earlier_line = self.lesion_sites[key]
            return (
                f"duplicate lesion on one visit: lesion '{lesion}' of patient '{patient}' on "
                f"{visit or 'an undated visit'} is at '{earlier_site}' on line {earlier_line} but at '{site}' here"
            )
        return None

    def _note(self, values: dict[str, str], label: str, line: int, issues: list[IdentityIssue]) -> str:
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
        return note

    def check(self, line: int, row: list[str]) -> list[IdentityIssue]:
        """Check one row; a good one becomes an identity. Returns the row's issues, in order."""
        header = self.header
        values = {col: (row[i].strip() if i < len(row) else "") for i, col in enumerate(header)}
        file = values.get("file", "")
        label = _shown(file) if file else f"(line {line})"
        issues: list[IdentityIssue] = []
        problems = field_problems(values)
        note = self._note(values, label, line, issues)
        if len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
            problems.append(f"{len(row)} cells but the header names {len(header)} columns")
        target, problem = self._listed_file(file)
        problems += [problem] if problem else []
        patient = values.get("patient_id", "")
        if not patient:
            problems.append("no patient_id")
        visit, age, sex, detail_problems = _details(values)
        problems += detail_problems
        lesion = values.get("lesion_id") or None
        site = values.get("body_site") or None
        if lesion and patient and not problems and (conflict := self._lesion_conflict(patient, lesion, visit, site)):
            problems.append(conflict)
        if problems or target is None:
            issues.append(IdentityIssue(label, line, "; ".join(problems) + " - this row's identity is not used"))
            return issues
        if lesion:
            self.lesion_sites.setdefault((patient, lesion, visit), (site, line))
        self.seen_files[path_key(target)] = line
        self.identities[path_key(target)] = Identity(
            patient_id=patient,
            lesion_id=lesion,
            body_site=site,
            visit_date=visit,
            age=age,
            sex=sex,
            note=note,
            source="sidecar",
        )
        if site and site.casefold() not in self.unknown_sites and site_from_text(site).unknown:
            self.unknown_sites.add(site.casefold())  # said once per word; the row is used, the site kept as written
            issues.append(
                IdentityIssue(
                    label,
                    line,
                    f"body site '{_shown(site)}' is not in MelaScreen's list of body sites (e.g. 'left forearm', "
                    "'upper back', 'scalp'): it is kept as written but cannot be shown on the body map",
                )
            )
        return issues


def read_sidecar(
    sidecar: str | os.PathLike, folder: str | os.PathLike
) -> tuple[dict[str, Identity], list[IdentityIssue]]:
    """Parse and check a sidecar CSV against the files in `folder`.

    Returns the identities of the good rows (keyed by path_key) and one issue per bad row or
    column. A file listed twice, or one lesion given two body sites on one visit, makes the
    later row an issue; several pictures of one lesion on one visit are fine.
    """
    sidecar, folder = Path(sidecar), Path(folder)
    text = _sidecar_text(sidecar)
    if isinstance(text, IdentityIssue):
        return {}, [text]
    rows = _sidecar_rows(text, _delimiter(text))
    header, issues = _header(rows, sidecar.name)
    if header is None:
        return {}, issues
    accepted = _AcceptedRows(folder, sidecar.name, header)
    for line, row, broken in rows:
        if row is None:
            issues.append(
                IdentityIssue(
                    sidecar.name,
                    line,
                    f"the sidecar cannot be read from this line on: {broken}; the rows from here are not used. "
                    "Save it again from the spreadsheet as CSV",
                )
            )
            break
        if any(cell.strip() for cell in row):
            issues += accepted.check(line, row)
    return accepted.identities, issues
