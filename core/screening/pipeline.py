"""The batch as a pipeline: worker threads decode, quality-check and preprocess the next files while the
engine runs on the current ones. Work ahead is bounded (`RunSettings.batch_images` and `workers`), so
memory stays flat on a folder of any size, and the store is only touched from the caller's thread.

A window of at most `ahead` files is read ahead of the engine: stored results are looked up and the rest
handed to the workers as they enter it; a file whose content is already in the window waits for the first
one's result (it is in the store by the time it reaches the head).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from core.decision.results import ScreeningResult
from core.inference.digests import sha256_file
from core.screening.preparing import PreparedImage
from core.screening.settings import RunSettings

Prepare = Callable[[str], PreparedImage | ScreeningResult]
Infer = Callable[[list[PreparedImage]], list[tuple[ScreeningResult, bytes]]]


@dataclass
class _Pending:
    """A file in the pipeline's window: a stored result, a preparation under way, or a duplicate of a
    file ahead of it (looked up in the store once that one is stored)."""

    path: str
    sha256: str | None = None
    stored: ScreeningResult | None = None
    prepared: Future | None = None


class _ReadAhead:
    """The window of files ahead of the engine, and the workers preparing them."""

    def __init__(self, paths: Iterable, store, key: str, prepare: Prepare, ahead: int, workers: int):
        self.source = iter(paths)
        self.exhausted = False
        self.store = store
        self.key = key
        self.prepare = prepare
        self.ahead = ahead
        self.window: deque[_Pending] = deque()
        self.in_window: Counter[str] = Counter()  # hashes in the window: a duplicate waits for the first's result
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="melascreen-prepare")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _admit(self, path: str) -> _Pending:
        item = _Pending(path)
        if self.store is not None:
            try:  # only regular files: opening a pipe waits for a writer, forever
                item.sha256 = sha256_file(Path(path)) if Path(path).is_file() else None
            except OSError:
                item.sha256 = None
            if item.sha256 and self.in_window[item.sha256]:
                self.in_window[item.sha256] += 1
                return item  # neither stored nor prepared: decided when it reaches the head
            cached = self.store.find_result(item.sha256, self.key) if item.sha256 else None
            if cached is not None:
                item.stored = replace(cached, path=path, from_store=True)
                return item
            if item.sha256:
                self.in_window[item.sha256] += 1
        item.prepared = self.pool.submit(self.prepare, path)
        return item

    def _take(self) -> _Pending:
        item = self.window.popleft()
        if item.stored is None and item.sha256:  # counted in _admit
            self.in_window[item.sha256] -= 1
            if not self.in_window[item.sha256]:
                del self.in_window[item.sha256]
        return item

    def next(self) -> _Pending | None:
        """The head of the window, after topping it up; None when every file has left."""
        while not self.exhausted and len(self.window) < self.ahead:
            try:
                self.window.append(self._admit(str(next(self.source))))
            except StopIteration:
                self.exhausted = True
        return self._take() if self.window else None

    def resolve(self, head: _Pending) -> PreparedImage | ScreeningResult:
        """The head's stored result, its error, or its prepared image."""
        if head.stored is not None:
            return head.stored
        if head.prepared is None:  # a duplicate: the file ahead of it is in the store by now
            cached = self.store.find_result(head.sha256, self.key)
            if cached is not None:
                return replace(cached, path=head.path, from_store=True)
            return self.prepare(head.path)
        return head.prepared.result()

    def prepared_next(self, n: int) -> list[PreparedImage]:
        """Up to `n` more prepared images from the front of the window (the next files anyway: waiting for
        them costs nothing); stops at a file that is stored, a duplicate or an error, which leaves through
        the head, in order."""
        group: list[PreparedImage] = []
        while len(group) < n and self.window and self.window[0].prepared is not None:
            nxt = self.window[0].prepared.result()
            if isinstance(nxt, ScreeningResult):
                break
            group.append(nxt)
            self._take()
        return group


def run_pipeline(
    paths: Iterable,
    store,
    key: str,
    run: RunSettings,
    stop: Callable[[], bool],
    prepare: Prepare,
    infer: Infer,
) -> Iterator[tuple[ScreeningResult, bytes]]:
    """(result, thumbnail) per path, in order: `prepare` runs on the workers, `infer` (a batch of up to
    `run.batch_images` prepared images) on the caller's thread."""
    batch = max(1, run.batch_images)
    window = _ReadAhead(paths, store, key, prepare, max(2 * batch, run.workers + 1), run.workers)
    try:
        while not stop():
            head = window.next()
            if head is None:
                return
            prepared = window.resolve(head)
            if isinstance(prepared, ScreeningResult):
                yield prepared, b""
                continue
            yield from infer([prepared, *window.prepared_next(batch - 1)])
    finally:
        window.close()
