"""Opening the results file on a worker: creating it, SQLite's quick check and upgrading an older file
(its migrations) can take a while. The latest request wins: a file opened for an older request, or after the
window closed, is closed again instead of being used."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core import ReviewStore

from ..workers import Worker, WorkerPool


def open_store_job(path: Path, request: int):
    """Open the results file at `path`; a refusal is an answer too, told with its request (a StoreError says
    what to do; anything else is told the same way rather than lost on the worker)."""

    def job(report, should_stop) -> tuple[int, Path, ReviewStore | None, Exception | None]:
        try:
            return request, path, ReviewStore.open(path), None
        except Exception as exc:  # noqa: BLE001 - StoreError, or a surprise: either is shown, not lost
            return request, path, None, exc

    return job


class ResultsFile(QObject):
    """`open(path)` opens the file on a worker; `opened(path, store)` or `refused(path, StoreError)` follows
    unless a newer request (or `forget()`) came meanwhile."""

    opened = Signal(object, object)  # the path asked for, the open ReviewStore
    refused = Signal(object, object)  # the path asked for, the exception (its words say what to do)

    def __init__(self, pool: WorkerPool, parent=None):
        super().__init__(parent)
        self.pool = pool
        self._request = 0
        self.opening: Path | None = None  # the file being opened now (None when no request is under way)

    def open(self, path: Path) -> Worker:
        self._request += 1
        self.opening = path
        request = self._request
        worker = Worker(open_store_job(path, request), name="open results file")
        worker.signals.result.connect(self._arrived)  # a bound method: dropped if this controller is gone
        return self.pool.start(worker)

    def forget(self) -> None:
        """The window closes (or opens another file another way): a file still being opened is not used."""
        self._request += 1
        self.opening = None

    def _arrived(self, arrived: tuple) -> None:
        request, path, store, problem = arrived
        if request != self._request:
            if store is not None:
                store.close()  # asked for before a newer request: nobody will use it
            return
        self.opening = None
        if store is not None:
            self.opened.emit(path, store)
        else:
            self.refused.emit(path, problem)
