"""Where MelaScreen keeps its files on each platform (MELASCREEN_HOME overrides them all), and how it
writes them: private database files, output paths checked before a batch, files replaced atomically."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MelaScreenError


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


class OutputPathError(MelaScreenError):
    """A file or folder MelaScreen is asked to write cannot be written; said before the work starts."""


def make_private_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` if missing, readable by its owner only (0700): the results database holds file
    names, paths and lesion thumbnails. An existing folder is left as it is (the user chose it)."""
    folder = Path(folder)
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def create_private_file(path: str | os.PathLike) -> None:
    """Create an empty file readable by its owner only (0600) unless it exists. SQLite gives its -wal
    and -shm files the permissions of the database file, so they are private too."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
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
        raise OutputPathError(
            f"{what} cannot be written in {folder} ({exc.strerror or exc}); choose a folder you can write to"
        ) from None


def check_output_folder(folder: str | os.PathLike, what: str) -> Path:
    """`folder` exists (created if needed) and can be written, or OutputPathError says why."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what}: {folder} is a file, not a folder; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{what}: the folder {folder} cannot be created ({exc.strerror or exc})") from None
    _probe_folder(folder, what)
    return folder


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """`path` can be written as a file (its folder is created if needed), or OutputPathError says why."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{what}: {path} is a folder; give a file name, e.g. {path / 'report.csv'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{what}: {path} exists and is read-only; choose another name")
    check_output_folder(path.parent, what)
    return path


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path` (same extension, so encoders pick the format) to write to;
    renamed over `path` when the block succeeds, removed when it fails. A full disk or a crash leaves
    the old file or none, never a truncated one."""
    path = Path(path)
    while True:
        temp = path.with_name(f".{path.stem}-{secrets.token_hex(4)}.partial{path.suffix}")
        try:
            # 0o666 less the umask, as a plain open() would give (mkstemp's 0600 would make reports private)
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
