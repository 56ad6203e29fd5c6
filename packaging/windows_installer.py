"""The Windows installer: packaging/windows/melascreen.nsi compiled by NSIS's makensis.

On Windows it wraps the real PyInstaller folder. On Linux (Debian's `nsis` package) the script is
compiled around a placeholder payload with the same layout, which checks the script without a
Windows build.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NSI = HERE / "windows" / "melascreen.nsi"
ICON = HERE / "icons" / "melascreen.ico"


def find_makensis() -> str | None:
    found = shutil.which("makensis")
    if found is None and sys.platform == "win32":
        for base in (r"C:\Program Files (x86)\NSIS", r"C:\Program Files\NSIS"):
            candidate = Path(base) / "makensis.exe"
            if candidate.is_file():
                return str(candidate)
    return found


def build_nsis(app_dir: Path, out_file: Path, version: str, makensis: str) -> Path:
    flag = "/" if sys.platform == "win32" else "-"
    cmd = [
        makensis,
        f"{flag}V2",
        f"{flag}DVERSION={version}",
        f"{flag}DAPPDIR={app_dir.resolve()}",
        f"{flag}DOUTFILE={out_file.resolve()}",
        f"{flag}DICON={ICON}",
        str(NSI),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"makensis failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return out_file


def make_placeholder_app(dest: Path, notices: Path) -> Path:
    """A stand-in for dist/melascreen with the files the .nsi names (not a working program)."""
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "_internal").mkdir(parents=True)
    (dest / "licenses").mkdir()
    for exe in ("melascreen.exe", "melascreen-cli.exe"):
        (dest / exe).write_bytes(b"MZ placeholder: the real file comes from PyInstaller on Windows\n")
    (dest / "_internal" / "placeholder.txt").write_text("payload placeholder\n")
    shutil.copy2(notices, dest / "NOTICES")
    shutil.copy2(HERE / "licenses" / "LGPL-3.0.txt", dest / "licenses" / "LGPL-3.0.txt")
    return dest
