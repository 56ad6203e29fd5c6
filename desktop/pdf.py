"""HTML -> PDF through Qt's rich-text engine (reports ready to file; the PDF title is the HTML <title>).

Needs a QGuiApplication; one is created (offscreen when there is no display) when the command
line asks for a PDF without the app running.
"""

from __future__ import annotations

import os
from pathlib import Path

PDF_DPI = 150


def html_to_pdf(html: str, path: str | Path) -> Path:
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QGuiApplication, QPageLayout, QPageSize, QPdfWriter, QTextDocument

    app = None  # Qt needs an application while it draws; the command line has none
    if QGuiApplication.instance() is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication([])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = QPdfWriter(str(path))
    writer.setResolution(PDF_DPI)
    writer.setPageLayout(
        # no printer margin: QTextDocument.print_ keeps its own 2 cm around the text, enough on its own
        QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(0, 0, 0, 0), QPageLayout.Millimeter)
    )
    doc = QTextDocument()
    doc.setHtml(html)
    writer.setTitle(doc.metaInformation(QTextDocument.MetaInformation.DocumentTitle) or "MelaScreen report")
    doc.print_(writer)
    del writer  # the file is complete once the writer is gone
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"Qt did not write the PDF {path}")
    del app
    return path
