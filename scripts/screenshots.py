"""Render every view of the desktop app with real data and save PNGs, to look at them.

    .venv/bin/python scripts/screenshots.py [--out DIR] [--bundle PATH] [--images N] [--x11]

Without --bundle, a small synthetic bundle is built on the fly (tests/support/synthetic_bundle.py; its
scores are not medical). Images come from ../shared/data/dermoscopy/images when present (linked
into a temporary folder, never copied into the repo), else synthetic ones are drawn. By default
Qt renders offscreen (no X server needed); --x11 uses the current display (e.g. under xvfb-run).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "dermoscopy"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "melascreen-screenshots"))
    p.add_argument("--bundle", help="a real model bundle; default: a synthetic one built now")
    p.add_argument("--images", type=int, default=14, help="how many dermoscopy images to screen")
    p.add_argument("--x11", action="store_true", help="render on the current display instead of offscreen")
    return p.parse_args(argv)


def pick_images(n: int) -> list[Path]:
    """Some melanomas and some others from the shared set, so every decision is likely to show."""
    images = SHARED / "images"
    labels = SHARED / "labels.csv"
    if not images.is_dir():
        return []
    if labels.is_file():
        with open(labels, newline="") as f:
            rows = list(csv.DictReader(f))
        mel = [r["image_id"] for r in rows if r.get("dx") == "mel"][: n // 3]
        other = [r["image_id"] for r in rows if r.get("dx") != "mel"][: n - len(mel)]
        chosen = [images / f"{i}.jpg" for i in mel + other]
        return [p for p in chosen if p.is_file()]
    return sorted(images.glob("*.jpg"))[:n]


def synthetic_images(folder: Path, n: int) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((288, 384, 3), (200, 170, 150), np.uint8)
        img = (img + rng.normal(0, 6, img.shape)).clip(0, 255).astype(np.uint8)
        shade = int(40 + 150 * i / max(n - 1, 1))
        cv2.ellipse(
            img,
            (190 + 10 * (i % 3), 140),
            (70 + 3 * i, 50 + 2 * i),
            15 * i,
            0,
            360,
            (shade, shade // 2, shade // 3),
            -1,
        )
        cv2.imwrite(str(folder / f"synthetic-{i:02d}.jpg"), cv2.GaussianBlur(img, (5, 5), 0))


def make_folder(work: Path, n: int) -> Path:
    folder = work / "clinic-folder"
    folder.mkdir()
    picked = pick_images(n)
    for p in picked:
        try:
            (folder / p.name).symlink_to(p)
        except OSError:
            shutil.copyfile(p, folder / p.name)
    if not picked:
        synthetic_images(folder, n)
    # What clinic folders hold besides images: a cut-off copy and a stray document.
    src = picked[0] if picked else next(folder.glob("*.jpg"))
    data = src.read_bytes()
    (folder / "IMG_copy_interrupted.jpg").write_bytes(data[: len(data) // 3])
    (folder / "referral letter.txt").write_text("not an image\n")
    # One very dark, one washed-out picture: the quality check should send them to review.
    import cv2

    rgb = cv2.imread(str(src))
    cv2.imwrite(str(folder / "underexposed.jpg"), (rgb * 0.12).astype("uint8"))
    return folder


def wait_until(app, predicate, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def save(widget, out: Path, name: str, app) -> Path:
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
    path = out / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}")
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.x11:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="melascreen-shots-"))
    os.environ["MELASCREEN_HOME"] = str(work / "home")
    sys.path.insert(0, str(ROOT))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.bundle:
        bundle_path = Path(args.bundle)
    else:
        from core.decision.gate import GateSettings, Thresholds
        from tests.support.synthetic_bundle import make_bundle

        # Thresholds placed inside the synthetic models' score range, so all three decisions show.
        gate = GateSettings(fitted={0.99: Thresholds(0.11, 0.16)}, max_member_spread=0.5)
        bundle_path = make_bundle(work / "synthetic-bundle", gate=gate)
    folder = make_folder(work, args.images)

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop.app import application
    from desktop.dialogs import AboutDialog, FirstStartDialog, read_notices
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings
    from desktop.views.case_panel import CaseRef

    app = application([])
    app.setStyleSheet("QWidget { font-size: 10pt; }")
    settings = AppSettings(bundle_path=str(bundle_path), reviewer="Dr. A. Example", disclaimer_accepted=True)

    first = FirstStartDialog("")
    first.name.setText("Dr. A. Example")
    first.accept_box.setChecked(True)
    first.show()
    save(first, out, "01-first-start", app)
    first.close()

    window = MainWindow(settings, settings_file=work / "home" / "config" / "settings.json")
    window.resize(1400, 880)
    window.show()
    loaded = []
    window.model_loaded.connect(loaded.append)
    window.model_failed.connect(loaded.append)
    save(window, out, "02-loading-models", app)
    wait_until(app, lambda: loaded, 120, "the models to load")
    wait_until(app, lambda: window.store is not None, 60, "the results file to open")
    if isinstance(loaded[0], str):
        print(f"the models did not load: {loaded[0]}", file=sys.stderr)
        save(window, out, "02-model-error", app)
        return 1

    done = []
    window.run_done.connect(done.append)
    window.screening.set_folder(str(folder))
    window.start_screening(str(folder), False)
    wait_until(app, lambda: window.screening.model.rows or done, 120, "the first result")
    save(window, out, "03-screening-in-progress", app)
    wait_until(app, lambda: done, 600, "screening to finish")
    save(window, out, "04-screening-results", app)

    # Sort by p(melanoma), most suspicious first, and open the top case.
    window.screening.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    save(window, out, "05-results-sorted-by-p", app)
    rows = [
        r for r in window.screening.visible_rows() if r.result.ok and not (r.result.quality and r.result.quality.flags)
    ]
    top = rows[0]
    cases = []
    window.case_panel.loaded.connect(cases.append)
    window.open_case(CaseRef(top.result_id, top.result))
    wait_until(app, lambda: cases, 60, "the case to load")
    save(window, out, "06-case-heatmap", app)
    window.case_panel.case_view.heat_toggle.setChecked(False)
    save(window, out, "07-case-no-heatmap", app)
    window.case_panel.case_view.heat_toggle.setChecked(True)
    window.case_panel.case_view.view.zoom(2.5)
    save(window, out, "08-case-zoomed", app)

    window.tabs.setCurrentWidget(window.queue_view)
    queued = []
    window.queue_view.panel.loaded.connect(queued.append)
    window.queue_view.refresh()
    wait_until(app, lambda: queued or not window.queue_view.model.items, 60, "the queue's first case")
    save(window, out, "09-review-queue", app)
    if window.queue_view.model.items:
        form = window.queue_view.panel.form
        form.choose("refer")
        form.note.setPlainText("Irregular network at 2 o'clock; refer for dermoscopy by a dermatologist.")
        save(window, out, "10-review-filled", app)
        queued.clear()
        form._on_save()
        wait_until(app, lambda: queued or not window.queue_view.model.items, 60, "the next case")
        save(window, out, "11-review-next-case", app)
        window.queue_view.include_reviewed.setChecked(True)
        queued.clear()
        window.queue_view.select_row(0)
        wait_until(app, lambda: queued, 60, "the reviewed case")
        save(window, out, "12-review-history", app)

    # Filter: only what needs a look.
    window.tabs.setCurrentWidget(window.screening)
    window.screening.filter_buttons["benign"].setChecked(False)
    save(window, out, "13-results-filtered", app)
    window.screening.filter_buttons["benign"].setChecked(True)

    dialog = window.settings_dialog()  # as the app builds it: the loaded bundle's default confidence
    dialog.show()
    save(dialog, out, "14-settings", app)
    dialog.close()
    about = AboutDialog(window.model.bundle, True, window.model.screener.engine_in_use, "", read_notices(), window)
    about.show()
    for i, name in enumerate(("15-about-bundle", "16-about-model-card", "17-about-notices")):
        about.tabs.setCurrentIndex(i)
        save(about, out, name, app)
    about.close()

    report = out / "report.html"
    written = []
    window.export_done.connect(written.append)
    window.export_report(str(report))
    wait_until(app, lambda: written, 120, "the report")
    window.export_csv(str(out / "results.csv"))
    print(f"wrote {report} and {out / 'results.csv'}")

    # The first start on a machine without a bundle: the app opens and says what to do.
    empty = MainWindow(replace(settings, bundle_path=""), settings_file=None)
    empty.resize(1400, 880)
    empty.show()
    save(empty, out, "18-no-bundle", app)
    empty.shutdown()
    empty.close()

    window.shutdown()
    window.close()
    QApplication.processEvents()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
