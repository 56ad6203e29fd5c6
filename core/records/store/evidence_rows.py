"""The store's queries on confirmed diagnoses (schema version 5); what they mean (codes, methods, the
clinic's CSV, which confirmation applies) is core.records.evidence. Rows are append-only: triggers refuse
UPDATE and DELETE, so a correction is a newer row."""

from __future__ import annotations

from core.records.store.clock import utc_now
from core.records.store.connection import StoreConnection

# The columns of one confirmation, in the order core.records.evidence reads them.
_COLUMNS = "d.id, d.diagnosis, d.method, d.confirmed_on, d.entered_by, d.note, d.created, d.lesion_id, d.sha256"


class EvidenceRecords(StoreConnection):
    """Confirmed diagnoses of lesions and images, and the lookups an import needs."""

    def image_screened(self, sha256: str) -> bool:
        """Whether the image has a good result in this file."""
        return bool(self._read("SELECT 1 FROM results WHERE sha256 = ? AND status = 'ok' LIMIT 1", (sha256,)))

    def add_confirmed_row(
        self,
        lesion: int | None,
        sha256: str | None,
        diagnosis: str,
        method: str,
        confirmed_on: str | None,
        entered_by: str,
        note: str,
    ) -> tuple[int, str] | None:
        """Appends one confirmation; (its id, its created stamp), or None when there is no such lesion
        (nothing is written)."""
        now = utc_now()
        with self._write() as c:
            if lesion is not None and c.execute("SELECT 1 FROM lesions WHERE id = ?", (lesion,)).fetchone() is None:
                return None
            row_id = c.execute(
                "INSERT INTO confirmed_diagnoses (lesion_id, sha256, diagnosis, method, confirmed_on, entered_by, note,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (lesion, sha256, diagnosis, method, confirmed_on, entered_by, note, now),
            ).lastrowid
        return int(row_id), now  # type: ignore[arg-type]  # set after an INSERT

    def confirmed_rows(self) -> list[tuple]:
        """Every confirmation (`_COLUMNS`), oldest first, corrections included."""
        return [tuple(r) for r in self._read(f"SELECT {_COLUMNS} FROM confirmed_diagnoses d ORDER BY d.id")]

    def confirmed_rows_by_image(self) -> list[tuple[str, tuple]]:
        """(sha256, confirmation) oldest first: first every lesion confirmation for each picture of the lesion,
        then every confirmation of an image itself."""
        by_lesion = self._read(
            f"SELECT {_COLUMNS}, iv.sha256 FROM confirmed_diagnoses d"
            " JOIN visits v ON v.lesion_id = d.lesion_id JOIN image_visits iv ON iv.visit_id = v.id"
            " WHERE d.lesion_id IS NOT NULL ORDER BY d.id"
        )
        own = self._read(f"SELECT {_COLUMNS} FROM confirmed_diagnoses d WHERE d.sha256 IS NOT NULL ORDER BY d.id")
        return [(r[-1], tuple(r[:-1])) for r in by_lesion] + [(r[-1], tuple(r)) for r in own]

    def confirmed_rows_of_lesion(self, lesion: int) -> list[tuple]:
        """A lesion's own confirmations (`_COLUMNS`), oldest first."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM confirmed_diagnoses d WHERE d.lesion_id = ? ORDER BY d.id", (lesion,)
        )
        return [tuple(r) for r in rows]
