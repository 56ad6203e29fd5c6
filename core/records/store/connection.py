"""The results file's connection: opening it (creating, upgrading or read-only), SQLite's quick check
first, and the two doors every query of the store goes through: `_read` and `_write` (one transaction).

Threads: one store holds one connection opened with check_same_thread=False, and every query takes the
store's lock, so the desktop app may share one store between its screening worker thread and the GUI
thread. Other processes (e.g. the CLI) may open the same file at the same time; WAL and busy_timeout let
them take turns. One transaction per result, WAL journal and synchronous=FULL: a crash or `kill -9` loses
at most the image in flight.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from core.common.errors import StoreError
from core.common.paths import create_private_file, make_private_folder, os_error_words
from core.records.store.migrations import APPLICATION_ID, MIGRATIONS, migrate

BUSY_TIMEOUT_MS = 10_000

_Store = TypeVar("_Store", bound="StoreConnection")


def json_text(value) -> str:
    """How the store writes a JSON column (keys sorted, so equal values are equal text)."""
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _sqlite_cause(exc: sqlite3.Error) -> str:
    """What went wrong, in words, from SQLite's error code: a read-only file is not a full disk."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    words = {
        "SQLITE_READONLY": "the results file or its folder is read-only",
        "SQLITE_FULL": "the disk is full; free disk space",
        "SQLITE_BUSY": "another program holds the results file locked; close it and try again",
        "SQLITE_LOCKED": "another program holds the results file locked; close it and try again",
        "SQLITE_CORRUPT": "the results file is damaged; restore a backup or choose another file",
        "SQLITE_NOTADB": "the file is not a MelaScreen results file",
        "SQLITE_IOERR": "the disk reported a read or write error",
        "SQLITE_CANTOPEN": "the file cannot be opened (its folder is missing or not accessible)",
        "SQLITE_PERM": "permission denied",
    }
    for code, text in words.items():
        if name == code or name.startswith(code + "_"):
            return f"{text} ({exc})"
    return str(exc)


def _open_problem(exc: sqlite3.DatabaseError) -> str:
    msg = str(exc)
    if "not a database" in msg or "malformed" in msg or "encrypted" in msg:
        return f"{msg}; it is not a MelaScreen results file (or it is damaged); choose another file or restore a backup"
    return _sqlite_cause(exc)


def _quick_check(conn: sqlite3.Connection, where: str) -> None:
    """SQLite's quick_check (page structure, no index cross-check: a fraction of integrity_check's
    time) before anything is written: a damaged file is refused as it is, never written into."""
    rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    found = [str(r[0]) for r in rows]
    if found != ["ok"]:
        raise StoreError(
            f"{where}: the results file is damaged (SQLite's check: {'; '.join(found)[:300]}); nothing was "
            "written to it. Restore a backup, or choose another results file"
        )


def _check_read_only_schema(conn: sqlite3.Connection, where: str) -> None:
    """Refuse a file of a newer MelaScreen or of another program (read-only: nothing can be upgraded)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{where}: this results file has schema version {version}, but this MelaScreen only knows "
            f"versions up to {len(MIGRATIONS)}. It was written by a newer MelaScreen: update MelaScreen."
        )
    n_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    if app_id != APPLICATION_ID and (version or n_tables):  # an empty file is a new store, not a stranger
        raise StoreError(
            f"{where}: this is a SQLite database of another program (it has tables but no "
            "MelaScreen schema). Choose a new file name for the MelaScreen results."
        )


def _connect_read_only(path: Path, where: str) -> sqlite3.Connection:
    """A connection that cannot change the file. mode=ro still needs to create the -shm file of a WAL
    database; where the folder is read-only too, immutable=1 reads the file as it is, which is right
    only when no un-merged -wal file holds newer results (then we say so instead)."""
    if not path.is_file():
        raise StoreError(f"{where}: there is no results file here; screen a folder first or give its path")
    base = path.absolute().as_uri()
    conn = None
    try:
        try:
            conn = sqlite3.connect(f"{base}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            _quick_check(conn, where)
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
                conn = None
            name = getattr(exc, "sqlite_errorname", "") or ""
            if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
                raise
            wal = path.with_name(path.name + "-wal")
            if wal.is_file() and wal.stat().st_size > 0:
                raise StoreError(
                    f"{where}: the results file is read-only and its newest results are still in {wal.name}, "
                    "which only a MelaScreen that may write there can merge; open it once where it can be "
                    "written (or copy the file with its -wal file to a folder you can write to)"
                ) from exc
            conn = sqlite3.connect(f"{base}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            _quick_check(conn, where)
        conn.execute("PRAGMA query_only = ON")
        _check_read_only_schema(conn, where)
        return conn
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{where}: cannot read the results file: {_open_problem(exc)}") from exc


def _connect_writable(path: Path, where: str) -> sqlite3.Connection:
    """A connection to a private file (created if missing) in WAL mode, checked and upgraded to the newest schema."""
    try:
        # Private (0700 folder it creates, 0600 file and -wal/-shm): it holds names, paths, thumbnails.
        make_private_folder(path.parent)
        create_private_file(path)
    except OSError as exc:
        raise StoreError(f"{where}: cannot create the results file or its folder: {os_error_words(exc)}") from exc
    conn = None
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per result.
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # The first real read (a file that is not SQLite fails here), before the first write.
        _quick_check(conn, where)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"{where}: SQLite could not switch this file to WAL mode (got {mode!r}); "
                "network drives often cannot do this: keep the results file on a local disk"
            )
        # FULL: a commit survives power loss too; the cost is small next to screening an image.
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn, MIGRATIONS, where)
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{where}: cannot open the results file: {_open_problem(exc)}") from exc
    return conn


class StoreConnection:
    """One open results file: the connection, its lock, and whether it was opened for reading only."""

    def __init__(self, conn: sqlite3.Connection, path: Path, read_only: bool = False):
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path
        self.read_only = read_only  # opened for reading only: every write is refused with a reason

    @classmethod
    def open(cls: type[_Store], path: str | Path, read_only: bool = False) -> _Store:
        """Open (and create, or upgrade) the results file. SQLite's quick_check runs before anything is
        written: a damaged file is refused untouched, so a refusal means nothing was written to it.

        read_only: for listings and reports; never creates, upgrades or changes the file, and works on a
        file (or folder) the user may only read. `open_for_reading` picks this when it must."""
        path = Path(path).expanduser()
        where = str(path)
        if path.is_dir():
            raise StoreError(f"{where}: is a folder; give the path of a results file, e.g. {path / 'results.sqlite'}")
        if read_only:
            return cls(_connect_read_only(path, where), path, read_only=True)
        return cls(_connect_writable(path, where), path)

    @classmethod
    def open_for_reading(cls: type[_Store], path: str | Path) -> _Store:
        """For listings and reports: read-only when the file or its folder cannot be written (a file on
        a read-only disk, a colleague's file) or always, never creating a file; an older file is
        upgraded first when it can be."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise StoreError(f"{path}: there is no results file here; screen a folder first or give its path")
        store = cls.open(path, read_only=True)
        if store.schema_version < len(MIGRATIONS):  # written by an older MelaScreen: upgrade it if we may
            store.close()
            try:
                return cls.open(path)
            except StoreError as exc:
                raise StoreError(
                    f"{exc}. This results file was written by an older MelaScreen and must be upgraded once "
                    "before it can be read: open it where it can be written"
                ) from exc
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

    def integrity_check(self) -> str:
        """SQLite's own check of the whole file: "ok" when healthy."""
        rows = self._read("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)

    # -- the two doors: the store's own modules only ---------------------------------------------

    def _read(self, sql: str, args: Sequence = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: reading the results file failed: {exc}") from exc

    def _read_chunked(self, sql: str, keys: Sequence, args_after: Sequence = ()) -> list[sqlite3.Row]:
        """`sql` with `{marks}` for an IN list, run over `keys` 500 at a time (SQLite limits the number
        of parameters); the rows of every chunk, in chunk order."""
        rows: list[sqlite3.Row] = []
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            rows += self._read(sql.format(marks=", ".join("?" * len(chunk))), [*chunk, *args_after])
        return rows

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (IMMEDIATE) so it cannot deadlock on upgrade."""
        with self._lock:
            if self.read_only:
                raise StoreError(f"{self.path}: the results file was opened for reading only; nothing was written")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: cannot write to the results file: {_sqlite_cause(exc)}; nothing was written"
                ) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(
                        f"{self.path}: writing to the results file failed and was undone: {_sqlite_cause(exc)}"
                    ) from exc
                raise
