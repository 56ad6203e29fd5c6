"""Scanning a folder, the first step of the flow: every file a batch must screen or report.

Hidden entries (a leading dot, or Windows' hidden attribute) are left out; everything else comes
back, sorted the same way on every platform, so a batch can say why a file was not screened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.common.errors import ImageReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")  # DICOM: core/files/dicom.py

_WINDOWS_HIDDEN = 0x2  # FILE_ATTRIBUTE_HIDDEN


def _is_hidden(entry: os.DirEntry) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    try:
        attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    except OSError:
        return False
    return bool(attributes & _WINDOWS_HIDDEN)


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise ImageReadError(str(folder), "the folder does not exist (it may have been moved, renamed or unplugged)")
    if not folder.is_dir():
        raise ImageReadError(str(folder), "this is a file, not a folder")


def _candidates(folder: Path, recursive: bool) -> list[Path]:
    """Non-hidden entries under `folder` that a report must mention; unreadable sub-folders are
    skipped, the top one raises."""
    _check_folder(folder)
    found: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                listing = list(entries)
        except PermissionError:
            if current == folder:
                raise ImageReadError(str(folder), "permission denied: MelaScreen may not read this folder") from None
            continue
        except OSError as exc:
            if current == folder:
                raise ImageReadError(str(folder), f"the folder cannot be read ({exc.strerror or exc})") from None
            continue
        for entry in listing:
            if _is_hidden(entry):
                continue
            try:
                info = entry.stat()  # follows links
            except OSError:
                found.append(Path(entry.path))  # a broken link or a link loop: reading it will say which
                continue
            if stat.S_ISDIR(info.st_mode):
                # Real folders are descended when recursive; linked folders are never followed (no
                # loops). A folder named like an image is reported, so it does not vanish silently.
                if recursive and not entry.is_symlink():
                    pending.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    found.append(Path(entry.path))
            else:
                # Regular files, and pipes, sockets and devices too: each gets a row saying what it is.
                # Nothing here opens them (opening a pipe waits for a writer, forever); read_image
                # looks at its type first and refuses it.
                found.append(Path(entry.path))
    # Case-insensitive order so that the same folder lists the same way on every platform.
    return sorted(found, key=lambda p: (str(p).casefold(), str(p)))


def scan_candidates(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Every non-hidden file in `folder`, sorted, so a batch can report the ones it cannot screen:
    files of any kind, broken links, link loops and folders named like images (not other folders)."""
    return _candidates(Path(folder), recursive)


def visible_subfolders(folder: str | os.PathLike[str]) -> int:
    """How many non-hidden sub-folders `folder` has (0 when it cannot be read): a hint for --recursive."""
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if not _is_hidden(e) and e.is_dir(follow_symlinks=False))
    except OSError:
        return 0
