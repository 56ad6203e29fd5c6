"""Confirmed diagnoses: what a lesion or an image turned out to be (store schema version 5).

A confirmation names a lesion (every picture of it) or one image (by sha256), a diagnosis (the
bundle's classes, or "other malignant" / "other benign"), how it was confirmed, when, who entered
it and a note. Rows are append-only (triggers in the store refuse UPDATE and DELETE): a correction
is a newer row, and the newest one that applies to an image is the one the audit uses; a
confirmation of the image itself wins over one of its lesion.

`import_csv` reads the clinic's file (lesion or file, diagnosis, method, date): each bad row is
reported with its line and why, the good rows are imported.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.common.errors import StoreError
from core.decision.vocabulary import CLASS_NAMES
from core.inference.digests import sha256_file
from core.records.store import ReviewStore

EVIDENCE_SCHEMA_VERSION = 5
OTHER_MALIGNANT, OTHER_BENIGN = "other_malignant", "other_benign"
# The HAM10000 malignant classes (as training.evaluation.metrics.MALIGNANT_DX) and any other cancer.
MALIGNANT_DIAGNOSES = ("mel", "bcc", "akiec", OTHER_MALIGNANT)
DIAGNOSIS_WORDS: dict[str, str] = {
    **CLASS_NAMES,
    OTHER_MALIGNANT: "other malignant (e.g. squamous cell carcinoma, Merkel cell carcinoma)",
    OTHER_BENIGN: "other benign",
}
DIAGNOSES: tuple[str, ...] = tuple(DIAGNOSIS_WORDS)
# Words a clinic's file may use for a code (lower case).
DIAGNOSIS_ALIASES: dict[str, str] = {
    **{w.lower(): c for c, w in CLASS_NAMES.items()},
    "other malignant": OTHER_MALIGNANT,
    "other benign": OTHER_BENIGN,
    "scc": OTHER_MALIGNANT,
    "squamous cell carcinoma": OTHER_MALIGNANT,
    "merkel cell carcinoma": OTHER_MALIGNANT,
    "other": OTHER_BENIGN,  # Derm7pt's 'miscellaneous' (benign in training.evaluate)
    "nevus": "nv",
}
METHODS: dict[str, str] = {
    "histopathology": "histopathology",
    "follow_up": "clinical follow-up",
    "consensus": "expert consensus",
}
METHOD_ALIASES = {
    "histo": "histopathology",
    "histology": "histopathology",
    "follow-up": "follow_up",
    "followup": "follow_up",
    "clinical follow-up": "follow_up",
    "expert consensus": "consensus",
}


class EvidenceError(ValueError):
    """A confirmed diagnosis cannot be recorded as given; the message says what to fix."""


@dataclass(frozen=True)
class ConfirmedDiagnosis:
    id: int
    diagnosis: str  # a code of DIAGNOSES
    method: str  # a key of METHODS
    confirmed_on: date | None
    entered_by: str
    note: str
    created: str  # UTC ISO-8601
    lesion_key: int | None = None  # the store's lesion id, when it names a lesion
    sha256: str | None = None  # the image, when it names one image

    @property
    def malignant(self) -> bool:
        return self.diagnosis in MALIGNANT_DIAGNOSES

    @property
    def words(self) -> str:
        when = f" on {self.confirmed_on.isoformat()}" if self.confirmed_on else ""
        return f"{diagnosis_words(self.diagnosis)} ({METHODS[self.method]}{when})"

    @property
    def shown(self) -> str:
        """ "confirmed: melanoma (histopathology, 2026-11-02, by Dr X)": where the clinician looks (case,
        timeline, patient report)."""
        how = [METHODS.get(self.method, self.method)]
        if self.confirmed_on:
            how.append(self.confirmed_on.isoformat())
        how.append(f"by {self.entered_by}")
        return f"confirmed: {diagnosis_words(self.diagnosis)} ({', '.join(how)})"


@dataclass(frozen=True)
class ImportProblem:
    line: int  # the CSV line (1 = the header)
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ImportReport:
    imported: tuple[ConfirmedDiagnosis, ...]
    problems: tuple[ImportProblem, ...]


def diagnosis_words(code: str) -> str:
    return DIAGNOSIS_WORDS.get(code, code)


def diagnosis_code(text: str) -> str:
    """A diagnosis code from a code or its words ("mel", "melanoma", "SCC"); EvidenceError if unknown."""
    t = (text or "").strip()
    if t in DIAGNOSIS_WORDS:
        return t
    code = DIAGNOSIS_ALIASES.get(t.lower()) or (t.lower() if t.lower() in DIAGNOSIS_WORDS else None)
    if code is None:
        raise EvidenceError(f"unknown diagnosis {t!r}; use one of {', '.join(DIAGNOSES)}")
    return code


def method_code(text: str) -> str:
    t = (text or "").strip().lower()
    code = t if t in METHODS else METHOD_ALIASES.get(t)
    if code is None:
        raise EvidenceError(f"unknown confirmation method {text!r}; use one of {', '.join(METHODS)}")
    return code


def _date(text: str | date | None) -> date | None:
    if text is None or isinstance(text, date):
        return text
    t = text.strip()
    if not t:
        return None
    try:
        return date.fromisoformat(t)
    except ValueError:
        raise EvidenceError(f"date {text!r} is not a date such as 2026-11-30") from None


def _require_schema(store: ReviewStore) -> None:
    if store.schema_version < EVIDENCE_SCHEMA_VERSION:
        raise StoreError(
            f"{store.path}: this results file predates confirmed diagnoses (schema {store.schema_version}); "
            "open it with ReviewStore.open, which upgrades it"
        )


def lesion_key(store: ReviewStore, patient_id: str, lesion_label: str) -> int:
    """The store's id of the clinic's lesion; EvidenceError naming what is missing."""
    key = store.lesion_id((patient_id or "").strip(), lesion_label.strip())
    if key is None:
        if not store.has_patient((patient_id or "").strip()):
            raise EvidenceError(f"no patient {patient_id!r} in {store.path}: screen and file the lesion's images first")
        raise EvidenceError(f"patient {patient_id!r} has no lesion {lesion_label!r} in {store.path}")
    return key


def image_of_file(store: ReviewStore, path: str | Path) -> str:
    """The sha256 of a screened file; EvidenceError when it cannot be read or was never screened."""
    try:
        sha = sha256_file(Path(path))
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not store.image_screened(sha):
        raise EvidenceError(f"{path}: this picture has not been screened in {store.path}; screen it first")
    return sha


def add_confirmed(
    store: ReviewStore,
    diagnosis: str,
    method: str,
    entered_by: str,
    *,
    lesion: int | None = None,
    sha256: str | None = None,
    confirmed_on: str | date | None = None,
    note: str = "",
) -> ConfirmedDiagnosis:
    """Appends one confirmation of a lesion (store lesion id) or of an image (sha256)."""
    _require_schema(store)
    if (lesion is None) == (sha256 is None):
        raise EvidenceError("a confirmed diagnosis names either a lesion or an image, not both and not neither")
    code, how, when = diagnosis_code(diagnosis), method_code(method), _date(confirmed_on)
    who = (entered_by or "").strip()
    if not who:
        raise EvidenceError("a confirmed diagnosis needs the name or initials of who entered it")
    if when is not None and when > date.today():
        raise EvidenceError(f"date {when.isoformat()} is in the future")
    added = store.add_confirmed_row(
        lesion, sha256, code, how, None if when is None else when.isoformat(), who, note or ""
    )
    if added is None:
        raise EvidenceError(f"there is no lesion with id {lesion} in {store.path}")
    row_id, now = added
    return ConfirmedDiagnosis(row_id, code, how, when, who, note or "", now, lesion, sha256)


def _row(r) -> ConfirmedDiagnosis:
    """A confirmation from the store's columns (core.records.store.evidence_rows)."""
    rid, dx, how, when, who, note, created, lesion, sha = r
    return ConfirmedDiagnosis(
        int(rid),
        dx,
        how,
        None if when is None else date.fromisoformat(when),
        who,
        note,
        created,
        None if lesion is None else int(lesion),
        sha,
    )


def all_confirmed(store: ReviewStore) -> list[ConfirmedDiagnosis]:
    """Every row, oldest first (corrections included)."""
    _require_schema(store)
    return [_row(r) for r in store.confirmed_rows()]


def confirmed_for_images(store: ReviewStore, sha256s: Sequence[str] | None = None) -> dict[str, ConfirmedDiagnosis]:
    """sha256 -> the confirmation that applies to the image: the newest of the image's own, else the
    newest of its lesion's. Images without one are left out; None: every screened image."""
    _require_schema(store)
    found: dict[str, ConfirmedDiagnosis] = {}
    # The lesions' first, then the images' own, each by ascending id: the newest wins, and an image's own
    # confirmation outranks its lesion's.
    for sha, r in store.confirmed_rows_by_image():
        found[sha] = _row(r)
    if sha256s is not None:
        wanted = set(sha256s)
        found = {k: v for k, v in found.items() if k in wanted}
    return found


def confirmed_for_lesion(store: ReviewStore, lesion: int) -> list[ConfirmedDiagnosis]:
    """A lesion's confirmations, oldest first (for the timeline)."""
    _require_schema(store)
    return [_row(r) for r in store.confirmed_rows_of_lesion(lesion)]


def import_csv(store: ReviewStore, path: str | Path, entered_by: str) -> ImportReport:
    """Rows with `diagnosis`, `method`, `date` (may be empty) and either `patient` + `lesion` or `file`
    (relative to the CSV's folder) or `image` (a sha256); optional `note` and `entered_by` (default:
    the `entered_by` given). Each bad row becomes an ImportProblem with its line; the rest are imported,
    each in its own transaction (an interruption keeps the rows done)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = set(rows[0]) if rows else set()
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise EvidenceError(f"{path}: no rows (needs a header line and one row per confirmed diagnosis)")
    missing = {"diagnosis", "method"} - header
    if missing or not ({"lesion", "file", "image"} & header):
        raise EvidenceError(
            f"{path}: needs the columns diagnosis, method, date and one of lesion (with patient), file or image; "
            f"found {', '.join(sorted(c for c in header if c))}"
        )
    imported, problems = [], []
    for line, r in enumerate(rows, start=2):
        r = {k: (v or "").strip() for k, v in r.items() if k}
        try:
            target: dict = {}
            if r.get("image"):
                target["sha256"] = r["image"].lower()
            elif r.get("file"):
                file = Path(r["file"])
                target["sha256"] = image_of_file(store, file if file.is_absolute() else path.parent / file)
            elif r.get("lesion"):
                if not r.get("patient"):
                    raise EvidenceError("a lesion needs its patient (column patient)")
                target["lesion"] = lesion_key(store, r["patient"], r["lesion"])
            else:
                raise EvidenceError("no lesion, file or image given")
            imported.append(
                add_confirmed(
                    store,
                    r.get("diagnosis", ""),
                    r.get("method", ""),
                    r.get("entered_by") or entered_by,
                    confirmed_on=r.get("date") or None,
                    note=r.get("note", ""),
                    **target,
                )
            )
        except (EvidenceError, StoreError) as exc:
            problems.append(ImportProblem(line, str(exc)))
    return ImportReport(tuple(imported), tuple(problems))
