"""Desktop test fixtures: a private MELASCREEN_HOME, a small clinic folder, a ready main window."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.lesion_pictures import lesion

pytest.importorskip("pytestqt", reason="the desktop tests need pytest-qt (dev extra)")


@pytest.fixture(autouse=True)
def melascreen_home(tmp_path, monkeypatch) -> Path:
    """Settings and the results file go to a temporary folder, never the user's own."""
    home = tmp_path / "home"
    monkeypatch.setenv("MELASCREEN_HOME", str(home))
    return home


def _synthetic_lesions(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        img = np.full((240, 320, 3), (150, 170, 205), np.uint8)  # BGR skin tone
        img = (img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
        shade = 30 + 25 * i
        cv2.ellipse(img, (160, 120), (60 + 4 * i, 42), 20 * i, 0, 360, (shade // 3, shade // 2, shade), -1)
        p = folder / f"lesion-{i:02d}.png"
        cv2.imwrite(str(p), img)
        out.append(p)
    return out


@pytest.fixture
def clinic_folder(tmp_path, real_image_paths) -> Path:
    """Eight lesion images (real ones when ../shared is present), two that the quality check sends
    to review whatever the models say (too dark, no detail at all), a cut-off JPEG and a text file."""
    folder = tmp_path / "clinic"
    folder.mkdir()
    if real_image_paths:
        for p in real_image_paths[:8]:
            shutil.copyfile(p, folder / p.name)
        source = real_image_paths[0].read_bytes()
    else:
        _synthetic_lesions(folder, 8)
        ok, buf = cv2.imencode(".jpg", np.full((200, 200, 3), 128, np.uint8))
        source = buf.tobytes()
    cv2.imwrite(str(folder / "q_dark.png"), np.full((240, 320, 3), 6, np.uint8))
    cv2.imwrite(str(folder / "q_flat.png"), np.full((240, 320, 3), (150, 170, 205), np.uint8))
    (folder / "zz_broken.jpg").write_bytes(source[: len(source) // 3])
    (folder / "zz_notes.txt").write_text("not an image\n")
    return folder


@pytest.fixture
def make_window(qtbot, synthetic_bundle, tmp_path):
    """Builds a main window on the synthetic bundle and waits until its models are loaded and its results file is
    open (both on workers)."""
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    windows = []

    def make(settings: AppSettings | None = None, wait: bool = True):
        settings = settings or AppSettings(
            bundle_path=str(synthetic_bundle), reviewer="Dr. Test", disclaimer_accepted=True
        )
        w = MainWindow(settings, settings_file=tmp_path / "home" / "config" / "settings.json")
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        if wait:
            qtbot.waitUntil(lambda: w.model is not None or w.screening.banner_button.isVisible(), timeout=20_000)
            assert w.model is not None, w.model_message
            qtbot.waitUntil(lambda: w.store is not None or bool(w.store_error), timeout=10_000)
            assert w.store is not None, w.store_error
        return w

    yield make
    for w in windows:
        w.shutdown()


@pytest.fixture
def screen(qtbot):
    """screen(window, folder) runs a screening through the real worker and returns its RunSummary."""

    def run(window, folder, recursive: bool = False, timeout: int = 60_000):
        with qtbot.waitSignal(window.run_done, timeout=timeout) as blocker:
            assert window.start_screening(str(folder), recursive) is not None
        return blocker.args[0]

    return run


@pytest.fixture
def export_csv(qtbot):
    """export_csv(window, path): the run's CSV, written on a worker; returns the path once it is written."""

    def run(window, path, timeout: int = 30_000) -> Path:
        with qtbot.waitSignal(window.export_done, timeout=timeout) as written:
            assert window.export_csv(str(path)) is not None
        return Path(written.args[0])

    return run


@pytest.fixture
def store(tmp_path, synthetic_bundle):
    """A screened day of two patients from a sidecar CSV (P1: L1 at two visits and L2; P2: L1)."""
    from core.inference.bundle import load_bundle
    from core.records.store import ReviewStore
    from core.screening import Screener, screen_folder

    day = tmp_path / "day"
    day.mkdir()
    lesion(day / "p1-l1-jan.png", 180)
    lesion(day / "p1-l1-jul.png", 20)
    lesion(day / "p1-l2-jul.png", 120)
    lesion(day / "p2-l1-jul.png", 200, size=200)
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\n"
        "p1-l1-jan.png,P1,L1,left shin,2024-01-10\n"
        "p1-l1-jul.png,P1,L1,left shin,2024-07-10\n"
        "p1-l2-jul.png,P1,L2,back,2024-07-10\n"
        "p2-l1-jul.png,P2,L1,chest,2024-07-10\n"
    )
    with ReviewStore.open(tmp_path / "r.sqlite") as s:
        screen_folder(Screener(load_bundle(synthetic_bundle)), day, s)
        yield s


@pytest.fixture
def patient_report(qtbot):
    """patient_report(view, suffix, path, **kw): the Patients tab's report, written on a worker; returns its path."""

    def run(view, suffix: str, path, timeout: int = 30_000, **kwargs) -> Path:
        with qtbot.waitSignal(view.report_written, timeout=timeout) as written:
            assert view.export_report(suffix, str(path), **kwargs) is not None
        return Path(written.args[0])

    return run


@pytest.fixture
def save_audit(qtbot):
    """save_audit(evidence_view, path): the audit saved on a worker; returns the path once it is written."""

    def run(view, path, timeout: int = 30_000) -> Path:
        with qtbot.waitSignal(view.audit_saved, timeout=timeout) as saved:
            assert view.save_audit(str(path)) is not None
        return Path(saved.args[0])

    return run
