"""Entry point of the desktop app: `run_app(argv) -> exit code` (called by `melascreen` / `melascreen gui`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

import core

from .dialogs import FirstStartDialog
from .main_window import MainWindow
from .settings import load_settings, save_settings, settings_path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="melascreen gui", description="MelaScreen desktop app")
    parser.add_argument(
        "--bundle", help="model bundle (folder or .zip) for this session, instead of the one in Settings"
    )
    parser.add_argument("--folder", help="folder to show as chosen at start")
    args, _qt_args = parser.parse_known_args(argv)
    return args


def application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()  # typed as QCoreApplication: the desktop's process makes only a QApplication
    if not isinstance(app, QApplication):  # none yet (anything else would fail to make the window's widgets)
        app = QApplication([sys.argv[0] if sys.argv else "melascreen", *(argv or [])])
    app.setApplicationName("MelaScreen")
    app.setApplicationVersion(core.__version__)
    app.setOrganizationName("MelaScreen")
    # Links the window to the menu entry on Wayland/taskbars; the icon ships as package data.
    app.setDesktopFileName("melascreen")
    icon = Path(__file__).resolve().parent / "resources" / "melascreen.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def run_app(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    app = application(list(argv or []))
    path = settings_path()
    loaded = load_settings(path)
    settings = loaded.settings
    if not settings.disclaimer_accepted:
        first = FirstStartDialog(settings.reviewer)
        if not first.exec():
            return 0  # the user did not accept the disclaimer: nothing was opened
        settings = replace(settings, disclaimer_accepted=True, reviewer=first.reviewer())
        try:
            save_settings(settings, path)
        except OSError as exc:
            QMessageBox.warning(
                None, "Settings", f"The settings could not be saved ({exc}); they apply to this session only."
            )
    if args.folder:
        settings = replace(settings, last_folder=args.folder)
    window = MainWindow(settings, settings_file=path, bundle_override=args.bundle)
    window.show()
    if loaded.warning:
        QMessageBox.warning(window, "Settings", loaded.warning)
    return int(app.exec())
