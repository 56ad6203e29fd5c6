"""Runs: one screening of a folder with one set of models and gate settings, and what it counted."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from core.records.store.clock import utc_now
from core.records.store.connection import StoreConnection, json_text

RUN_STATUSES = ("running", "finished", "cancelled", "failed")
_RUN_COLUMNS = (
    "id, folder, bundle_name, bundle_version, result_key, settings_json, started, finished, status, summary_json"
)


@dataclass(frozen=True)
class RunCounts:
    total: int = 0
    ok: int = 0
    error: int = 0
    benign: int = 0
    uncertain: int = 0
    suspicious: int = 0
    reused: int = 0  # results taken from an earlier run instead of screened again


@dataclass(frozen=True)
class RunInfo:
    id: int
    folder: str
    started: str
    finished: str | None
    status: str  # one of RUN_STATUSES; "running" also marks a run that was killed
    counts: RunCounts
    bundle_name: str
    bundle_version: str
    result_key: str  # models + gate settings (Screener.result_key)
    settings: dict
    summary: dict | None


class RunRecords(StoreConnection):
    """The runs table: a run starts "running" and is finished once, with its summary."""

    def start_run(self, folder: str, bundle_name: str, bundle_version: str, result_key: str, settings: dict) -> int:
        """Records a new run with status "running"; returns its id."""
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (folder, bundle_name, bundle_version, result_key, settings_json, started, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (str(folder), bundle_name, bundle_version, result_key, json_text(settings), utc_now()),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]  # set after an INSERT

    def finish_run(self, run_id: int, status: str = "finished", summary: dict | None = None) -> None:
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"run status must be one of finished, cancelled, failed; got {status!r}")
        with self._write() as c:
            cur = c.execute(
                "UPDATE runs SET status = ?, finished = ?, summary_json = ? WHERE id = ?",
                (status, utc_now(), None if summary is None else json_text(summary), run_id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"there is no run with id {run_id} in {self.path}")

    def runs(self) -> list[RunInfo]:
        """Every run, newest first."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC")
        return [self._run_info(r) for r in rows]

    def get_run(self, run_id: int) -> RunInfo | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return self._run_info(rows[0]) if rows else None

    def run_labels(self) -> list[tuple[str, str, str, dict]]:
        """(result key, bundle name, bundle version, settings) of every run, oldest first; without the counts
        `runs` adds, so it stays cheap for a file of many runs."""
        rows = self._read("SELECT result_key, bundle_name, bundle_version, settings_json FROM runs ORDER BY id")
        return [(key, name, version, json.loads(settings or "{}")) for key, name, version, settings in rows]

    def latest_run_for_folder(self, folder: str, result_key: str) -> RunInfo | None:
        """The newest run of this folder with these models and gate, e.g. to offer "resume"."""
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE folder = ? AND result_key = ? ORDER BY id DESC LIMIT 1",
            (str(folder), result_key),
        )
        return self._run_info(rows[0]) if rows else None

    def _run_info(self, row: Sequence) -> RunInfo:
        (run_id, folder, b_name, b_version, key, settings_json, started, finished, status, summary_json) = row
        c = self._read(
            "SELECT count(*),"
            " coalesce(sum(r.status = 'ok'), 0), coalesce(sum(r.status = 'error'), 0),"
            " coalesce(sum(r.decision = 'benign'), 0), coalesce(sum(r.decision = 'uncertain'), 0),"
            " coalesce(sum(r.decision = 'suspicious'), 0), coalesce(sum(r.first_run_id != i.run_id), 0)"
            " FROM run_items i JOIN results r ON r.id = i.result_id WHERE i.run_id = ?",
            (run_id,),
        )[0]
        return RunInfo(
            id=run_id,
            folder=folder,
            started=started,
            finished=finished,
            status=status,
            counts=RunCounts(*(int(x) for x in c)),
            bundle_name=b_name,
            bundle_version=b_version,
            result_key=key,
            settings=json.loads(settings_json),
            summary=None if summary_json is None else json.loads(summary_json),
        )
