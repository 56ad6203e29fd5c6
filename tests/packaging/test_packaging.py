"""The clinic installers, built and used the way a clinic would use them (slow: one full build).

One build (synthetic model bundle, fast compression) feeds every test: the frozen app, the .deb
(contents, install into a private dpkg root, removal), the per-user .run (install into a temporary
HOME, screen images with no Python on PATH, open the GUI, uninstall without leftovers) and the
NSIS script (compiled around a placeholder payload).

System tools: apt-get install -y binutils makeself nsis desktop-file-utils xvfb x11-utils
libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux installers build on Linux only"),
]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "build_dist.py"
CLEAN_PATH = "/usr/bin:/bin"  # no venv, no pyenv shims: the app must carry its own Python
TOOLS = {
    "readelf": "binutils",
    "makeself": "makeself",
    "makensis": "nsis",
    "dpkg-deb": "dpkg",
    "desktop-file-validate": "desktop-file-utils",
}
DECISIONS = {"benign", "suspicious", "uncertain"}


def clean_env(**extra: str) -> dict[str, str]:
    # MELASCREEN_TRUSTED_KEYS: the test publisher key that signs the synthetic bundle (tests/conftest.py).
    keep = {k: os.environ[k] for k in ("LANG", "TMPDIR", "MELASCREEN_TRUSTED_KEYS") if k in os.environ}
    return {"PATH": CLEAN_PATH, "LANG": keep.get("LANG", "C.UTF-8"), **keep, **extra}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    missing = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"system tools missing: {', '.join(missing)}; see this module's docstring for the apt-get line")
    from tests.support.synthetic_bundle import make_bundle

    base = tmp_path_factory.mktemp("packaging")
    bundle = make_bundle(base / "bundle")
    out, work = base / "dist", base / "build"
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(BUILD),
            "--bundle",
            str(bundle),
            "--out",
            str(out),
            "--work",
            str(work),
            "--compression",
            "fast",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    info = json.loads((out / "build-info.json").read_text())
    info["test_build_s"] = round(time.monotonic() - start, 1)
    print(f"\nbuild: {info['test_build_s']}s, sizes {info['sizes_bytes']}")
    version = info["version"]
    return {
        "base": base,
        "out": out,
        "work": work,
        "info": info,
        "app": out / "melascreen",
        "deb": next(out.glob(f"melascreen_{version}_*.deb")),
        "run": next(out.glob(f"melascreen-{version}-linux-*.run")),
    }


@pytest.fixture(scope="module")
def images(tmp_path_factory, real_image_paths):
    """A few real dermoscopy images when ../shared is present, else synthetic ones."""
    folder = tmp_path_factory.mktemp("images")
    if real_image_paths:
        for p in real_image_paths[:6]:
            os.symlink(p, folder / p.name)
    else:
        import cv2
        import numpy as np

        rng = np.random.default_rng(0)
        for i in range(6):
            img = np.full((288, 384, 3), 40 + 35 * i, np.uint8)
            cv2.circle(img, (192, 144), 60, (30, 20, 10), -1)
            img = np.clip(img.astype(int) + rng.integers(-12, 12, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"synthetic-{i}.jpg"), img)
    # A DICOM file too: the frozen app must carry pydicom's handlers (loaded at run time) and Pillow.
    import cv2
    import numpy as np

    from tests.support.dicom_files import write_dicom

    rng = np.random.default_rng(1)
    picture = np.full((288, 384, 3), (200, 150, 140), np.uint8)
    cv2.circle(picture, (192, 144), 60, (90, 60, 50), -1)
    picture = np.clip(picture.astype(int) + rng.integers(-10, 10, picture.shape), 0, 255).astype(np.uint8)
    write_dicom(folder / "dermoscope-export.dcm", picture, patient_id="P-PACK")
    return folder


def test_frozen_app_carries_bundle_notices_and_no_research_code(built):
    app = built["app"]
    internal = app / "_internal"
    assert (internal / "core" / "models" / "default" / "manifest.json").is_file()
    assert (app / "NOTICES").read_text().count("CC BY-NC 4.0") >= 1
    licenses = {p.name for p in (app / "licenses").iterdir()}
    assert {"LGPL-3.0.txt", "GPL-3.0.txt", "Apache-2.0.txt", "onnxruntime-LICENSE.txt", "numpy-LICENSE.txt"} <= licenses
    names = {p.name for p in internal.rglob("*")}
    for banned in ("torch", "torchvision", "timm", "pytorch_grad_cam", "matplotlib", "tkinter", "training", "export"):
        assert banned not in names, f"{banned} must not be in the clinic app"
    # The C++ runtime and GLib come from the clinic's system (see packaging/melascreen.spec).
    assert not any(n.startswith(("libstdc++.so", "libgcc_s.so", "libglib-2.0.so")) for n in names)
    assert not any("wayland" in n.lower() or "qt6quick" in n.lower() for n in names)
    provider_libs = list((internal / "onnxruntime" / "capi").glob("libonnxruntime_providers_shared.so"))
    assert provider_libs, "onnxruntime's provider library must be bundled"
    floors = built["info"]["linux"]["floors"]
    assert re.fullmatch(r"\d+\.\d+", floors["GLIBC"]["version"])


def test_deb_contents_and_metadata(built):
    listing = subprocess.run(["dpkg-deb", "-c", str(built["deb"])], capture_output=True, text=True, check=True).stdout
    for path in (
        "./opt/melascreen/melascreen",
        "./opt/melascreen/NOTICES",
        "./opt/melascreen/_internal/core/models/default/manifest.json",
        "./usr/share/applications/melascreen.desktop",
        "./usr/share/icons/hicolor/256x256/apps/melascreen.png",
        "./usr/share/doc/melascreen/copyright",
    ):
        assert f" {path}\n" in listing + "\n" or f" {path} " in listing, f"{path} missing from the .deb"
    assert re.search(r"\./usr/bin/melascreen -> /opt/melascreen/melascreen", listing)
    depends = subprocess.run(["dpkg-deb", "-f", str(built["deb"]), "Depends"], capture_output=True, text=True).stdout
    assert re.match(r"libc6 \(>= \d+\.\d+\)", depends)
    assert "libstdc++6" in depends and "libglib2.0-0" in depends
    if shutil.which("apt-get"):
        # Every dependency resolves on this distribution (a dry run: nothing is installed).
        sim = subprocess.run(["apt-get", "install", "-s", str(built["deb"])], capture_output=True, text=True)
        assert sim.returncode == 0, sim.stdout + sim.stderr


def test_deb_installs_runs_and_removes_cleanly(built, images, tmp_path):
    root = tmp_path / "root"
    db = root / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (db / sub).mkdir(parents=True)
    (db / "status").touch()
    (db / "available").touch()
    dpkg = ["dpkg", f"--root={root}", "--force-not-root", "--log=/dev/null"]
    # The private root has no libc6 etc. registered: dependencies are checked by the apt dry run above.
    subprocess.run([*dpkg, "--force-depends", "-i", str(built["deb"])], check=True, capture_output=True)
    app = root / "opt" / "melascreen" / "melascreen"
    assert os.access(app, os.X_OK)
    assert os.readlink(root / "usr" / "bin" / "melascreen") == "/opt/melascreen/melascreen"
    desktop = root / "usr" / "share" / "applications" / "melascreen.desktop"
    subprocess.run(["desktop-file-validate", str(desktop)], check=True)
    proc = subprocess.run(
        [str(app), "bundle", "verify"], env=clean_env(HOME=str(tmp_path)), capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("ok:"), proc.stderr
    subprocess.run([*dpkg, "-r", "melascreen"], check=True, capture_output=True)
    left = [p for p in root.rglob("*") if not p.is_relative_to(root / "var")]
    assert not [p for p in left if p.is_file() or p.is_symlink()], f"left after dpkg -r: {left}"


def _start_xvfb() -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    # Xvfb writes the number, then the newline: read both, or its second write fails and it exits.
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    return xvfb, f":{data.decode().strip()}"


def _app_window_shown(display: str) -> bool:
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree"], env={"DISPLAY": display, "PATH": CLEAN_PATH}, capture_output=True, text=True
    ).stdout
    # The main window (class melascreen/MelaScreen), not Qt's 1x1 client-leader window.
    return re.search(r'\("melascreen" "MelaScreen"\)\s+\d{3,}x\d{3,}', tree) is not None


def _open_gui_until_first_window(app: Path, env: dict[str, str]) -> float | None:
    """Start the installed GUI; seconds until its main window is on screen (None: offscreen run)."""
    if shutil.which("Xvfb") and shutil.which("xwininfo"):
        xvfb, display = _start_xvfb()
        try:
            start = time.monotonic()
            proc = subprocess.Popen(
                [str(app)], env={**env, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            shown = None
            while time.monotonic() - start < 60 and proc.poll() is None:
                if _app_window_shown(display):
                    shown = time.monotonic() - start
                    break
                time.sleep(0.05)
            alive = proc.poll() is None
            proc.terminate()
            _out, err = proc.communicate(timeout=20)
        finally:
            xvfb.terminate()
            xvfb.wait(timeout=20)
        assert alive and shown is not None, f"the GUI did not show its main window within 60 s:\n{err}"
        assert "Traceback" not in err, err
        return shown
    # No X server for tests: the offscreen platform, alive after 20 s and no traceback.
    proc = subprocess.Popen(
        [str(app)],
        env={**env, "QT_QPA_PLATFORM": "offscreen"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    alive = proc.poll() is None
    proc.terminate()
    _out, err = proc.communicate(timeout=20)
    assert alive and "Traceback" not in err, f"the GUI exited early (rc {proc.returncode}):\n{err}"
    return None


def test_run_installs_per_user_screens_opens_gui_and_uninstalls(built, images, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    outside = tmp_path / "outside"  # app data, caches and temp files: anywhere but the HOME we check
    (outside / "tmp").mkdir(parents=True)
    install_env = clean_env(HOME=str(home), TMPDIR=str(outside / "tmp"))
    proc = subprocess.run(["sh", str(built["run"])], env=install_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    app_dir = home / ".local" / "opt" / "melascreen"
    launcher = home / ".local" / "bin" / "melascreen"
    menu = home / ".local" / "share" / "applications" / "melascreen.desktop"
    assert os.readlink(launcher) == str(app_dir / "melascreen")
    assert (home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "melascreen.png").is_file()
    subprocess.run(["desktop-file-validate", str(menu)], check=True)
    assert f"Exec={app_dir / 'melascreen'}" in menu.read_text()

    app_env = clean_env(
        HOME=str(home),
        MELASCREEN_HOME=str(outside / "melascreen"),
        XDG_CACHE_HOME=str(outside / "cache"),
        XDG_CONFIG_HOME=str(outside / "config"),
        XDG_RUNTIME_DIR=str(outside / "tmp"),
        TMPDIR=str(outside / "tmp"),
    )
    report = outside / "report.csv"
    proc = subprocess.run(
        [str(launcher), "screen", str(images), "--report", str(report)],
        env=app_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    n_images = len(list(images.iterdir()))
    assert len(rows) == n_images
    assert all(r["status"] == "ok" and r["decision"] in DECISIONS for r in rows), rows
    assert all(0.0 <= float(r["p_melanoma"]) <= 1.0 for r in rows)
    assert f"screened {n_images} files" in proc.stdout

    # The GUI: settings say the disclaimer was accepted, so the main window is the first window.
    from desktop.settings import AppSettings, save_settings

    save_settings(
        replace(AppSettings(), disclaimer_accepted=True, reviewer="packaging test"),
        outside / "melascreen" / "config" / "settings.json",
    )
    shown_after = _open_gui_until_first_window(launcher, app_env)
    if shown_after is not None:
        print(f"\nGUI: main window shown {shown_after:.2f}s after start (installed .run, Xvfb)")

    proc = subprocess.run([str(app_dir / "uninstall.sh")], env=install_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert left == [], f"left in HOME after uninstall: {left}"
    assert (outside / "melascreen").is_dir(), "the user's results must survive an uninstall"


def test_nsis_script_compiles(built):
    check = built["info"]["nsis_check"]
    exe = Path(check["compiled"])
    assert exe.read_bytes()[:2] == b"MZ", "makensis must produce a Windows executable"


def test_release_build_refuses_to_run_without_a_trained_model(tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(BUILD),
            "--require-model",
            "--bundle",
            str(empty),
            "--out",
            str(tmp_path / "dist"),
            "--work",
            str(tmp_path / "build"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "no trained model bundle" in proc.stderr and "core/models/default" in proc.stderr
    assert not (tmp_path / "dist" / "melascreen").exists(), "nothing may be built without the model"
