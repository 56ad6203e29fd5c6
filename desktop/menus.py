"""The window's menus: File (screen a folder, the run's exports, quit), Tools (Settings), Help (About)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow


def _action(window: QMainWindow, text: str, slot: Callable[[], object], shortcut=None) -> QAction:
    act = QAction(text, window) if shortcut is None else QAction(text, window, shortcut=shortcut)
    act.triggered.connect(lambda: slot())  # not the `checked` argument
    return act


def build_menus(window, export_csv, export_report, export_pdf) -> dict[str, QAction]:
    """The menu bar of `window` (a MainWindow: choose_folder, close, open_settings, open_about); the export
    actions by name."""
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(_action(window, "Screen a &folder…", window.choose_folder, QKeySequence.StandardKey.Open))
    exports = {
        "csv": _action(window, "Export results as &CSV…", export_csv),
        "report": _action(window, "Export printable &report (HTML)…", export_report, QKeySequence("Ctrl+P")),
        "pdf": _action(window, "Export report as &PDF…", export_pdf, QKeySequence("Ctrl+Shift+P")),
    }
    for act in exports.values():
        file_menu.addAction(act)
    file_menu.addSeparator()
    file_menu.addAction(_action(window, "&Quit", window.close, QKeySequence.StandardKey.Quit))
    tools = window.menuBar().addMenu("&Tools")
    tools.addAction(_action(window, "&Settings…", window.open_settings, QKeySequence("Ctrl+,")))
    window.menuBar().addMenu("&Help").addAction(_action(window, "&About MelaScreen", window.open_about))
    return exports
