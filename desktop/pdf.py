"""Reports as PDF through Qt (no new dependency).

- an HTML string: Qt's rich-text engine prints it as it flows (the run report);
- a `core.records.paged.PagedReport`: its blocks are laid out whole, page by page (a block that
  does not fit the rest of a page starts the next one; a heading moves with what follows it), under
  the report's header on every page, with "page x of y" at the bottom. A block taller than a whole
  page is scaled down to fit one, never cut.

Needs a QGuiApplication; one is created (offscreen when there is no display) when the command
line asks for a PDF without the app running.
"""

from __future__ import annotations

import os
from pathlib import Path

PDF_DPI = 150
MARGIN_MM = 14
GAP = 6  # px (CSS pixels) between blocks


def _application():
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is not None:
        return None
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return QGuiApplication([])  # Qt needs an application while it draws; the command line has none


def _writer(path: Path, title: str):
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter

    writer = QPdfWriter(str(path))
    writer.setResolution(PDF_DPI)
    writer.setTitle(title)
    writer.setCreator("MelaScreen")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(0, 0, 0, 0),
            QPageLayout.Unit.Millimeter,
        )
    )
    return writer


def html_to_pdf(document, path: str | Path) -> Path:
    """Write `document` (HTML text, or a PagedReport) as a PDF at `path`; OSError if Qt wrote nothing."""
    from PySide6.QtGui import QTextDocument

    app = _application()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(document, str):
        doc = QTextDocument()
        doc.setHtml(document)
        writer = _writer(path, doc.metaInformation(QTextDocument.MetaInformation.DocumentTitle) or "MelaScreen report")
        # no printer margin: QTextDocument.print_ keeps its own 2 cm around the text, enough on its own
        doc.print_(writer)
        del writer  # the file is complete once the writer is gone
    else:
        _paged_to_pdf(document, path)
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"Qt did not write the PDF {path}")
    del app
    return path


def _text_document(html: str, width: float, css: str, device):
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    # laid out for the PDF itself (its resolution), so what is measured is what is drawn
    doc.documentLayout().setPaintDevice(device)
    doc.setDefaultStyleSheet(css)
    doc.setDocumentMargin(0)
    doc.setHtml(html)
    doc.setTextWidth(width)
    return doc


def _paged_to_pdf(report, path: Path) -> None:
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QPainter, QPen

    from core import REPORT_CSS

    writer = _writer(path, report.title)
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"the PDF {path} could not be started")
    try:
        # Everything in the writer's pixels (PDF_DPI per inch); CSS pixels are 1/96 inch.
        px = PDF_DPI / 96.0
        page = writer.pageLayout().fullRectPixels(PDF_DPI)
        margin = MARGIN_MM / 25.4 * PDF_DPI
        width = page.width() - 2 * margin
        height = page.height() - 2 * margin
        header = _text_document(report.header_html, width, REPORT_CSS, writer)
        footer_h = 16.0 * px
        top = header.size().height() + 8 * px
        room = height - top - footer_h
        docs = [_text_document(b.html, width, REPORT_CSS, writer) for b in report.blocks]
        heights = [d.size().height() for d in docs]
        pages = _paginate(heights, [b.keep_with_next for b in report.blocks], room, GAP * px)
        font = QFont("DejaVu Sans")
        font.setPixelSize(round(9 * px))
        for number, placed in enumerate(pages, start=1):
            if number > 1:
                writer.newPage()
            painter.save()
            painter.translate(margin, margin)
            header.drawContents(painter)
            painter.setPen(QPen(QColor("#90a4ae"), px))
            painter.drawLine(QPointF(0, top - 4 * px), QPointF(width, top - 4 * px))
            for index, y in placed:
                doc = docs[index]
                h = doc.size().height()
                painter.save()
                painter.translate(0, top + y)
                if h > room:  # taller than a page: shrink it onto one, never cut it
                    painter.scale(room / h, room / h)
                doc.drawContents(painter)
                painter.restore()
            painter.setPen(QColor("#546e7a"))
            painter.setFont(font)
            painter.drawLine(QPointF(0, height - footer_h), QPointF(width, height - footer_h))
            painter.drawText(
                QRectF(0, height - footer_h + 3 * px, width, footer_h), Qt.AlignmentFlag.AlignLeft, report.footer
            )
            painter.drawText(
                QRectF(0, height - footer_h + 3 * px, width, footer_h),
                Qt.AlignmentFlag.AlignRight,
                f"Page {number} of {len(pages)}",
            )
            painter.restore()
    finally:
        painter.end()


def _paginate(
    heights: list[float], keep_with_next: list[bool], room: float, gap: float
) -> list[list[tuple[int, float]]]:
    """Blocks -> pages of (block index, y): each block whole; a block marked keep_with_next starts a new
    page with the block after it when both do not fit; a block taller than `room` gets a page of its own."""
    pages: list[list[tuple[int, float]]] = [[]]
    y = 0.0
    for i, h in enumerate(heights):
        need = min(h, room)
        if keep_with_next[i] and i + 1 < len(heights):
            need = min(h + gap + min(heights[i + 1], room), room)
        if pages[-1] and y + need > room:
            pages.append([])
            y = 0.0
        pages[-1].append((i, y))
        y += min(h, room) + gap
    return pages
