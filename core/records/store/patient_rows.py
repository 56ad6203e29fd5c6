"""The store's queries on patients, lesions and visits (schema version 3); what they mean for a clinic
(worklists, timelines, filing a run) is core.records.patients.

An image (by the SHA-256 of its bytes) is attached to at most one lesion visit; a lesion belongs to one
patient; results and reviews stay keyed by the image, so they follow it. An image already attached
elsewhere is never moved silently: `file_image` refuses and says where it is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from core.decision.results import Decision
from core.files.identity import Identity
from core.records.store.clock import utc_now
from core.records.store.connection import StoreConnection

_IDENTITY_SELECT = (
    "SELECT iv.sha256, l.patient_id, l.id, l.label, l.labelled, l.body_site, v.visit_date, iv.age, iv.note, iv.source,"
    " p.sex FROM image_visits iv JOIN visits v ON v.id = iv.visit_id JOIN lesions l ON l.id = v.lesion_id"
    " JOIN patients p ON p.id = l.patient_id"
)


class AttachConflict(ValueError):
    """The image is already attached to another lesion visit (or the lesion to another body site)."""


@dataclass(frozen=True)
class AttachedIdentity:
    """Where an image is filed: its patient, lesion and visit."""

    sha256: str
    patient_id: str
    lesion_key: int  # the store's id of the lesion
    lesion_label: str  # the clinic's lesion id, or "unlabelled ..."
    labelled: bool
    body_site: str | None
    visit_date: date | None
    age: int | None
    note: str
    source: str
    sex: str | None = None  # the patient's: "F", "M", "O" or unknown

    @property
    def who(self) -> str:
        """ "P001, 54 y, F" for a table cell: patient first, what is known of age and sex after."""
        parts = [self.patient_id]
        if self.age is not None:
            parts.append(f"{self.age} y")
        if self.sex:
            parts.append(self.sex)
        return ", ".join(parts)


def stored_date(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(text)


def _attached(row) -> AttachedIdentity:
    sha, patient, key, label, labelled, site, visit_date, age, note, source, sex = row
    return AttachedIdentity(
        sha, patient, int(key), label, bool(labelled), site, stored_date(visit_date), age, note, source, sex
    )


def _describe_visit(c: sqlite3.Connection, visit_id: int) -> str:
    patient, label, visit_date = c.execute(
        "SELECT l.patient_id, l.label, v.visit_date FROM visits v JOIN lesions l ON l.id = v.lesion_id WHERE v.id = ?",
        (visit_id,),
    ).fetchone()
    return f"patient '{patient}', lesion '{label}', visit {visit_date or 'undated'}"


def _lesion_of(c: sqlite3.Connection, identity: Identity, label: str, labelled: bool, now: str) -> int:
    """The lesion's id (created when new); AttachConflict when it is recorded at another body site."""
    row = c.execute(
        "SELECT id, body_site FROM lesions WHERE patient_id = ? AND label = ?", (identity.patient_id, label)
    ).fetchone()
    if row is None:
        return int(
            c.execute(  # type: ignore[arg-type]  # set after an INSERT
                "INSERT INTO lesions (patient_id, label, body_site, labelled, created) VALUES (?, ?, ?, ?, ?)",
                (identity.patient_id, label, identity.body_site, int(labelled), now),
            ).lastrowid
        )
    lesion_key, site = int(row[0]), row[1]
    if identity.body_site and site and site.casefold() != identity.body_site.casefold():
        raise AttachConflict(
            f"lesion '{label}' of patient '{identity.patient_id}' is recorded at '{site}', but this image "
            f"says '{identity.body_site}'; check the lesion id (the image was not attached)"
        )
    if identity.body_site and not site:
        c.execute("UPDATE lesions SET body_site = ? WHERE id = ?", (identity.body_site, lesion_key))
    return lesion_key


class PatientRecords(StoreConnection):
    """Filing images under patients, lesions and visits, and reading them back."""

    def file_image(self, sha256: str, identity: Identity, label: str, labelled: bool) -> None:
        """File an image under its patient, lesion `label` and visit (creating them as needed), in one
        transaction; filing it again under the same visit changes nothing. AttachConflict when it is filed
        under another visit, or when the lesion was recorded at another body site (nothing is written)."""
        visit_date = identity.visit_date.isoformat() if identity.visit_date else None
        now = utc_now()
        with self._write() as c:
            c.execute(
                "INSERT OR IGNORE INTO patients (id, sex, created) VALUES (?, ?, ?)",
                (identity.patient_id, identity.sex, now),
            )
            if identity.sex:
                c.execute(
                    "UPDATE patients SET sex = ? WHERE id = ? AND sex IS NULL", (identity.sex, identity.patient_id)
                )
            lesion_key = _lesion_of(c, identity, label, labelled, now)
            c.execute(
                "INSERT OR IGNORE INTO visits (lesion_id, visit_date, created) VALUES (?, ?, ?)",
                (lesion_key, visit_date, now),
            )
            visit_id = int(
                c.execute(
                    "SELECT id FROM visits WHERE lesion_id = ? AND coalesce(visit_date, '') = coalesce(?, '')",
                    (lesion_key, visit_date),
                ).fetchone()[0]
            )
            existing = c.execute("SELECT visit_id FROM image_visits WHERE sha256 = ?", (sha256,)).fetchone()
            if existing is None:
                c.execute(
                    "INSERT INTO image_visits (sha256, visit_id, age, note, source, attached)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (sha256, visit_id, identity.age, identity.note or "", identity.source, now),
                )
            elif int(existing[0]) != visit_id:
                where = _describe_visit(c, int(existing[0]))
                raise AttachConflict(
                    f"this image is already filed under {where}; it was not moved"
                    " (an image belongs to one lesion visit)"
                )

    def identity_of(self, sha256: str) -> AttachedIdentity | None:
        """Where the image is filed, or None ("no patient")."""
        rows = self._read(f"{_IDENTITY_SELECT} WHERE iv.sha256 = ?", (sha256,))
        return _attached(rows[0]) if rows else None

    def identities_of(self, sha256s: Sequence[str]) -> dict[str, AttachedIdentity]:
        rows = self._read_chunked(
            f"{_IDENTITY_SELECT} WHERE iv.sha256 IN ({{marks}})", sorted({s for s in sha256s if s})
        )
        return {r[0]: _attached(r) for r in rows}

    def patient_images(self, patient_id: str) -> list[AttachedIdentity]:
        """Every image filed under the patient, by lesion label then visit date."""
        rows = self._read(
            f"{_IDENTITY_SELECT} WHERE l.patient_id = ? ORDER BY l.label, coalesce(v.visit_date, ''), iv.sha256",
            (patient_id,),
        )
        return [_attached(r) for r in rows]

    def patient_sex(self, patient_id: str) -> str | None:
        rows = self._read("SELECT sex FROM patients WHERE id = ?", (patient_id,))
        return rows[0][0] if rows else None

    def has_patient(self, patient_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM patients WHERE id = ?", (patient_id,)))

    def patient_counts(self) -> list[tuple[str, int, int, date | None]]:
        """(patient id, lesions, images, last visit date) of every patient."""
        rows = self._read(
            "SELECT p.id, count(DISTINCT l.id), count(iv.sha256), max(v.visit_date) FROM patients p"
            " LEFT JOIN lesions l ON l.patient_id = p.id LEFT JOIN visits v ON v.lesion_id = l.id"
            " LEFT JOIN image_visits iv ON iv.visit_id = v.id GROUP BY p.id"
        )
        return [(pid, int(n_lesions), int(n_images), stored_date(last)) for pid, n_lesions, n_images, last in rows]

    def lesion_id(self, patient_id: str, label: str) -> int | None:
        """The store's id of the patient's lesion with the clinic's `label`, or None."""
        rows = self._read("SELECT id FROM lesions WHERE patient_id = ? AND label = ?", (patient_id, label))
        return int(rows[0][0]) if rows else None

    def lesion_counts(self, patient_id: str) -> list[tuple[int, str, bool, str | None, int, int, date | None]]:
        """(lesion id, label, labelled, body site, visits, images, last visit date) of the patient's lesions."""
        rows = self._read(
            "SELECT l.id, l.label, l.labelled, l.body_site, count(DISTINCT v.id), count(iv.sha256), max(v.visit_date)"
            " FROM lesions l JOIN visits v ON v.lesion_id = l.id LEFT JOIN image_visits iv ON iv.visit_id = v.id"
            " WHERE l.patient_id = ? GROUP BY l.id",
            (patient_id,),
        )
        return [
            (int(key), label, bool(labelled), site, int(n_visits), int(n_images), stored_date(last))
            for key, label, labelled, site, n_visits, n_images, last in rows
        ]

    def lesion_pictures(self, lesion_key: int) -> list[tuple[str, date | None]]:
        """(sha256, visit date) of every picture of a lesion, oldest visit first (undated last)."""
        rows = self._read(
            "SELECT iv.sha256, v.visit_date FROM image_visits iv JOIN visits v ON v.id = iv.visit_id"
            " WHERE v.lesion_id = ? ORDER BY v.visit_date IS NULL, v.visit_date, iv.attached, iv.sha256",
            (lesion_key,),
        )
        return [(sha, stored_date(visit_date)) for sha, visit_date in rows]

    def last_visit_dates(self, lesion_keys: Sequence[int]) -> dict[int, date]:
        """lesion id -> its latest dated visit; lesions without one are left out."""
        rows = self._read_chunked(
            "SELECT lesion_id, max(visit_date) FROM visits WHERE lesion_id IN ({marks}) GROUP BY lesion_id",
            sorted(set(lesion_keys)),
        )
        return {int(k): date.fromisoformat(d) for k, d in rows if d}

    def latest_results(self, sha256s: Sequence[str]) -> dict[str, tuple]:
        """sha256 -> (result id, path, p_malignant, decision, malignant class, band, intake, confidence) of its
        latest good result (p_malignant: p(melanoma) for old rows)."""
        rows = self._read_chunked(
            "SELECT r.sha256, r.id, r.path, coalesce(r.p_malignant, r.p_melanoma), r.decision, r.malignant_class,"
            " r.band, r.intake, (SELECT json_extract(u.settings_json, '$.confidence') FROM runs u"
            " WHERE u.id = r.first_run_id) FROM results r"
            " WHERE r.status = 'ok' AND r.sha256 IN ({marks})"
            # The latest decision is that of the run that saw the image last (a later run at the clinic's
            # confidence wins over an earlier one at another), not the newest row.
            " ORDER BY (SELECT max(i.run_id) FROM run_items i WHERE i.result_id = r.id), r.id",
            sorted({s for s in sha256s if s}),
        )
        found: dict[str, tuple] = {}
        for sha, rid, path, p, decision, malignant, band, intake, confidence in rows:
            d = None if decision is None else Decision(decision)
            found[sha] = (int(rid), path, p, d, malignant or "", band, intake, confidence)
        return found
