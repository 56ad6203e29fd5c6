"""Where MelaScreen keeps its files on each platform (MELASCREEN_HOME overrides them all), and how it
writes them: private database files, output paths checked before a batch, files replaced atomically."""

from __future__ import annotations

import errno
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.common.errors import MelaScreenError


def _home_override() -> Path | None:
    home = os.environ.get("MELASCREEN_HOME")
    return Path(home) if home else None


def user_data_dir() -> Path:
    if (home := _home_override()) is not None:
        return home / "data"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "MelaScreen"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "MelaScreen"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "melascreen"


def user_config_dir() -> Path:
    if (home := _home_override()) is not None:
        return home / "config"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "MelaScreen"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Preferences" / "MelaScreen"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "melascreen"


def default_database_path() -> Path:
    return user_data_dir() / "melascreen.sqlite"


def user_cache_dir() -> Path:
    if (home := _home_override()) is not None:
        return home / "cache"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "MelaScreen" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "MelaScreen"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "melascreen"


def bundle_cache_dir() -> Path:
    """Zip bundles are extracted here, one folder per zip SHA-256."""
    return user_cache_dir() / "bundles"


def user_trusted_keys_dir() -> Path:
    """Public keys (*.pub) of bundle publishers this user trusts, besides the project's own."""
    return user_config_dir() / "trusted_keys"


# ------------------------------------------------------------------------- private and output files

# Files and folders that hold patient data (results, reports, heat maps, exports) are readable by their
# owner only unless the user chooses otherwise (the app's Settings; callers pass private=False).
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


class OutputPathError(MelaScreenError):
    """A file or folder MelaScreen is asked to write cannot be written; said before the work starts."""


def os_error_words(exc: OSError) -> str:
    """The cause of an OSError in words a user can act on; never a guess (a read-only file system is not
    a full disk)."""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"the disk is full ({reason}); free disk space or choose another place"
    if code == errno.EROFS:
        return f"the file system is read-only ({reason}); choose a place you can write to"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied ({reason}); choose a place you can write to or change its permissions"
    if code == errno.ENOENT:
        return f"the folder does not exist ({reason})"
    if code == errno.EISDIR:
        return f"it is a folder ({reason}); give a file name"
    return reason


class FileWriteError(MelaScreenError, OSError):
    """A file could not be written (whole): the message names the file the user asked for (never the
    temporary file) and the cause in words. An OSError too, so callers that catch OSError still do."""

    def __init__(self, path: str | os.PathLike, exc: OSError):
        super().__init__(exc.errno, exc.strerror or str(exc), str(path))
        self.path = Path(path)
        self.cause = os_error_words(exc)

    def __str__(self) -> str:
        return f"{self.path} could not be written: {self.cause}"


def _mkdir_levels(folder: Path, mode: int | None) -> None:
    """Create `folder` and its missing parents, each new level with `mode` (None: the umask's default);
    Path.mkdir(parents=True) would give the parents the default mode."""
    missing = []
    level = folder
    while not level.exists():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for new in reversed(missing):
        try:
            if mode is None:
                new.mkdir()
            else:
                new.mkdir(mode=mode)
                os.chmod(new, mode)  # mkdir's mode is masked by the umask
        except FileExistsError:
            pass


def make_private_folder(folder: str | os.PathLike, private: bool = True) -> Path:
    """Create `folder` (and missing parents) if missing, readable by its owner only (0700): the results
    database, reports and heat maps hold file names, paths and lesion pictures. An existing folder is
    left as it is (the user chose it)."""
    folder = Path(folder)
    if not folder.is_dir():
        _mkdir_levels(folder, PRIVATE_FOLDER_MODE if private else None)
    return folder


def create_private_file(path: str | os.PathLike) -> None:
    """Create an empty file readable by its owner only (0600) unless it exists. SQLite gives its -wal
    and -shm files the permissions of the database file, so they are private too."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass


def _probe_folder(folder: Path, what: str) -> None:
    """Write and remove a small file: the only test that also holds for root, network drives and
    read-only file systems (permission bits alone do not tell)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".melascreen-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{what} cannot be written in {folder}: {os_error_words(exc)}") from None


def check_output_folder(folder: str | os.PathLike, what: str, private: bool = True) -> Path:
    """`folder` exists (created if needed, 0700 when `private`) and can be written, or OutputPathError
    says why."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what}: {folder} is a file, not a folder; give a folder")
    try:
        make_private_folder(folder, private)
    except OSError as exc:
        raise OutputPathError(f"{what}: the folder {folder} cannot be created: {os_error_words(exc)}") from None
    _probe_folder(folder, what)
    return folder


def check_output_file(path: str | os.PathLike, what: str, private: bool = True) -> Path:
    """`path` can be written as a file (its folder is created if needed), or OutputPathError says why."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{what}: {path} is a folder; give a file name, e.g. {path / 'report.csv'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{what}: {path} exists and is read-only; choose another name")
    check_output_folder(path.parent, what, private)
    return path


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on every platform or file system."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_target(path: str | os.PathLike, *, private: bool = True) -> Iterator[Path]:
    """A temporary path next to `path` (same extension, so encoders pick the format) to write to by
    name; when the block succeeds it is flushed to disk (fsync) and renamed over `path`; when anything
    fails it is removed. A full disk or a crash leaves the old file or none, never a truncated one.

    private (default): the file is created 0600 (owner only), whatever wrote it; private=False: 0666
    less the umask, as a plain open() gives (the user chose to share outputs).
    An OSError in the block, the flush or the rename is raised as FileWriteError naming `path`."""
    path = Path(path)
    while True:
        temp = path.with_name(f".{path.stem}-{secrets.token_hex(4)}.partial{path.suffix}")
        try:
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE if private else 0o666))
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise FileWriteError(path, exc) from None
    try:
        yield temp
        if private:
            os.chmod(temp, PRIVATE_FILE_MODE)  # a writer may have replaced the file instead of filling it
        _fsync_path(temp)
        os.replace(temp, path)
        _fsync_folder(path.parent)
    except FileWriteError:
        temp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise FileWriteError(path, exc) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_file_atomically(
    path: str | os.PathLike, data: bytes | str, *, private: bool = True, encoding: str = "utf-8"
) -> Path:
    """Write `data` (text is encoded with `encoding`, newlines kept as given) to `path` through
    atomic_target: whole or not at all, 0600 unless private=False, errors as FileWriteError naming `path`."""
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else data
    with atomic_target(path, private=private) as temp:
        with open(temp, "wb") as f:
            f.write(raw)
    return path
