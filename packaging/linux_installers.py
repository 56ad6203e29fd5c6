"""Linux installers around the PyInstaller folder: a system-wide .deb and a per-user .run.

.deb: /opt/melascreen (the app), /usr/bin/melascreen (a link), a menu entry and icons;
      installed and removed by dpkg/apt, so removal is clean by construction.
.run: a makeself archive whose install.sh copies the app into ~/.local/opt/melascreen without root
      and leaves an uninstall.sh there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINUX = HERE / "linux"
ICONS = HERE / "icons"
MAINTAINER = "MelaScreen team <melascreen@localhost>"
DESCRIPTION = """Offline melanoma screening of dermoscopy images (research tool)
 MelaScreen screens folders of dermoscopy images with an ensemble of small
 convolutional networks (ONNX Runtime), shows a Grad-CAM heat map per image,
 sorts images into benign, suspicious and uncertain, and keeps a review queue.
 .
 It is a research tool, not an approved medical device: its output is not a
 diagnosis. The default model is trained on HAM10000 (CC BY-NC 4.0):
 non-commercial use only; see /usr/share/doc/melascreen/copyright."""


def _tree_size_kib(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*")) // 1024 + 1


def _copy_app(app_dir: Path, dest: Path) -> None:
    shutil.copytree(app_dir, dest, symlinks=True)


# release: xz (dpkg before Debian 12 / Ubuntu 21.10 cannot read zstd packages), about 4x smaller than
# the folder but minutes on two cores; fast: gzip -1 for test builds.
DEB_COMPRESSION = {"release": ["-Zxz", "-z6"], "fast": ["-Zgzip", "-z1"]}
RUN_COMPRESSION = {"release": ["--xz", "--complevel", "6", "--threads", "0"], "fast": ["--gzip", "--complevel", "1"]}


def build_deb(
    app_dir: Path, out_dir: Path, version: str, depends: list[str], work: Path, compression: str = "release"
) -> Path:
    """dpkg-deb package of the frozen app; `depends` is the Debian Depends list."""
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    _copy_app(app_dir, root / "opt" / "melascreen")
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink("/opt/melascreen/melascreen", root / "usr" / "bin" / "melascreen")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy2(LINUX / "melascreen.desktop", apps / "melascreen.desktop")
    for size_dir, icon in (("256x256", "melascreen.png"), ("scalable", "melascreen.svg")):
        dest = root / "usr" / "share" / "icons" / "hicolor" / size_dir / "apps"
        dest.mkdir(parents=True)
        shutil.copy2(ICONS / icon, dest / icon)
    doc = root / "usr" / "share" / "doc" / "melascreen"
    doc.mkdir(parents=True)
    shutil.copy2(app_dir / "NOTICES", doc / "copyright")
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file() and not path.is_symlink():
            path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)

    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    fields = {
        "Package": "melascreen",
        "Version": version,
        "Architecture": _deb_architecture(),
        "Maintainer": MAINTAINER,
        "Installed-Size": str(_tree_size_kib(root)),
        "Depends": ", ".join(depends),
        "Section": "science",
        "Priority": "optional",
        "Homepage": "https://example.invalid/melascreen",
        "Description": DESCRIPTION,
    }
    if not depends:
        del fields["Depends"]
    (control_dir / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    out = out_dir / f"melascreen_{version}_{fields['Architecture']}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", *DEB_COMPRESSION[compression], "--build", str(root), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(root)
    return out


def _deb_architecture() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
    return out.stdout.strip() or "amd64"


def build_run(app_dir: Path, out_dir: Path, version: str, work: Path, compression: str = "release") -> Path:
    """makeself self-extracting per-user installer."""
    stage = work / "run-stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    _copy_app(app_dir, stage / "melascreen")
    for name in ("install.sh", "uninstall.sh", "melascreen.desktop"):
        shutil.copy2(LINUX / name, stage / name)
    shutil.copy2(ICONS / "melascreen.png", stage / "melascreen.png")
    shutil.copy2(app_dir / "NOTICES", stage / "NOTICES")
    machine = os.uname().machine
    out = out_dir / f"melascreen-{version}-linux-{machine}.run"
    makeself = shutil.which("makeself") or shutil.which("makeself.sh")
    subprocess.run(
        [
            makeself,
            *RUN_COMPRESSION[compression],
            "--nox11",
            "--sha256",
            "--tar-quietly",
            str(stage),
            str(out),
            f"MelaScreen {version} (per-user install)",
            "./install.sh",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(stage)
    return out
