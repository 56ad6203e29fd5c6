"""Long work off the GUI thread: a QRunnable that runs one function on a QThreadPool.

The function gets two callables: `report(value)` (progress, delivered to the GUI as the `progress`
signal) and `should_stop()` (True once `cancel()` was called). Its return value arrives as
`result`, an exception as `failed`; `done` follows either way. Signals cross to the GUI thread as
queued connections, so slots run on the GUI thread and may touch widgets.

The jobs below are the app's long tasks, written as such functions over core's API.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from core import (
    Bundle,
    EnsembleSettings,
    GateChoice,
    Progress,
    RunSettings,
    RunSummary,
    Screener,
    ScreeningResult,
    identities_of,
    load_bundle,
    screen_folder,
)


class WorkerSignals(QObject):
    progress = Signal(object)
    result = Signal(object)
    failed = Signal(object)  # the exception
    done = Signal()


class Worker(QRunnable):
    """Runs `fn(report, should_stop)` on a pool thread. Keep a reference until `done`."""

    def __init__(self, fn: Callable[[Callable[[Any], None], Callable[[], bool]], Any], name: str = "job"):
        super().__init__()
        self.setAutoDelete(False)  # Python owns it: the pool must not delete it under our feet
        self.fn = fn
        self.name = name
        self.signals = WorkerSignals()
        self._stop = threading.Event()
        self.finished = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:  # on the pool thread
        try:
            value = self.fn(self.signals.progress.emit, self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI, not kill the thread
            exc.traceback_text = traceback.format_exc()  # type: ignore[attr-defined]
            self._tell("failed", exc)
        else:
            self._tell("result", value)
        finally:
            self.finished.set()
            self._tell("done")

    def _tell(self, signal: str, *args) -> None:
        try:
            getattr(self.signals, signal).emit(*args)
        except RuntimeError:  # the signals object was deleted (the app is closing): nobody is left to tell
            pass


class WorkerPool:
    """The app's pool: starts workers, keeps them referenced until done, cancels all on close."""

    def __init__(self, max_threads: int = 2):
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(max_threads)
        self._running: set[Worker] = set()

    def start(self, worker: Worker) -> Worker:
        self._running.add(worker)
        worker.signals.done.connect(lambda w=worker: self._running.discard(w))
        self.pool.start(worker)
        return worker

    @property
    def busy(self) -> bool:
        return any(not w.finished.is_set() for w in self._running)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        for w in list(self._running):
            w.cancel()
        return self.pool.waitForDone(timeout_ms)


# ------------------------------------------------------------------------------------ the jobs


@dataclass(frozen=True)
class LoadedModel:
    bundle: Bundle
    screener: Screener
    load_s: float


def load_model_job(bundle_path: str | Path, session: EnsembleSettings, trusted_keys=(), allow_unsigned: bool = False):
    """Verify the bundle's checksums and build the engines (seconds for real models). The gate (confidence)
    is not part of this: it is passed with each screening run."""

    def job(report, should_stop) -> LoadedModel:
        t = time.perf_counter()
        report("Verifying the model files…")
        from core import Trust

        bundle = load_bundle(bundle_path, trust=Trust.default(tuple(trusted_keys), allow_unsigned))
        report("Starting the models…")
        screener = Screener(bundle, session)
        return LoadedModel(bundle, screener, time.perf_counter() - t)

    return job


@dataclass(frozen=True)
class ResultRow:
    """One row of a results table: the result (heat map dropped, it is big) and its id in the store."""

    result: ScreeningResult
    result_id: int | None  # None for errors (they are kept per run, not looked up by image)


@dataclass(frozen=True)
class ScreeningBatch:
    """What the screening job reports: rows screened since the last report, and the latest progress."""

    rows: tuple[ResultRow, ...]
    done: int
    total: int
    rate: float | None  # None until enough time has passed to tell
    eta_s: float | None
    identities: dict = field(default_factory=dict)  # sha256 -> where the rows' pictures are filed (read here)


def case_shas(rows) -> list[str]:
    """The sha256s of the rows that are a patient's case (the only rows filed under a patient)."""
    return [r.result.sha256 for r in rows if r.result.is_case and r.result.sha256]


def row_for(result: ScreeningResult, store, result_key: str) -> ResultRow:
    rid = (
        store.result_id_for(result.sha256, result_key) if (store is not None and result.ok and result.sha256) else None
    )
    return ResultRow(replace(result, cam=None, named_cam=None), rid)


def screening_job(
    screener: Screener,
    folder: str | Path,
    store,
    recursive: bool,
    gate: GateChoice = GateChoice(),
    min_interval_s: float = 0.1,
):
    """Screen a folder as one run of core.screening.screener.screen_folder; returns its RunSummary.

    Progress is batched (at most one report per `min_interval_s`), so a folder whose results all
    come from the store does not flood the GUI with thousands of tiny updates.
    """
    run = RunSettings(recursive=recursive)
    result_key = screener.result_key(gate)

    def filed(rows: list[ResultRow]) -> dict:
        """Where the rows' pictures are filed (each is filed before it is reported), read on this thread."""
        return identities_of(store, case_shas(rows)) if store is not None else {}

    def job(report, should_stop) -> RunSummary:
        pending: list[ResultRow] = []
        last: list[Progress] = []
        last_report = [0.0]

        def on_progress(p: Progress) -> None:
            assert p.total is not None  # a folder's files are listed before the first is screened
            pending.append(row_for(p.result, store, result_key))
            last[:] = [p]
            now = time.monotonic()
            if now - last_report[0] >= min_interval_s or p.done == p.total:
                last_report[0] = now
                report(ScreeningBatch(tuple(pending), p.done, p.total, p.rate, p.eta_s, filed(pending)))
                pending.clear()

        _, summary = screen_folder(screener, folder, store, should_stop, on_progress, gate=gate, run=run)
        if pending:  # cancelled between reports: deliver what was done
            p = last[0]
            assert p.total is not None  # as in on_progress
            report(ScreeningBatch(tuple(pending), p.done, p.total, p.rate, None, filed(pending)))
        return summary

    return job
