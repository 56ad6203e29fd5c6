"""A report as pages: blocks that are never split across pages under a header repeated on every page
(the run report, core.records.run_report, and a patient's, core.records.patient_pages). A PDF writer
(desktop/pdf.py) lays the blocks out whole; `PagedReport.html()` is the same report as one HTML page."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    """A piece of a report that is never split across pages (a row, a picture, a heading)."""

    html: str
    keep_with_next: bool = False  # a heading: moves to the next page with what follows it


@dataclass(frozen=True)
class PagedReport:
    """A report as blocks under a header repeated on every page; a PDF writer (desktop/pdf.py) lays the
    blocks out whole, page by page, and writes "page x of y" after `footer`."""

    title: str
    header_html: str
    blocks: tuple[Block, ...]
    footer: str

    def html(self) -> str:
        """The whole report as one self-contained HTML page (a browser prints it without splitting a block)."""
        body = "\n".join(f"<div class='block'>{b.html}</div>" for b in self.blocks)
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{REPORT_CSS}"
            " .block { break-inside: avoid; page-break-inside: avoid; }</style></head><body>"
            f"<div class='header'>{self.header_html}</div>\n{body}\n"
            f"<p class='small'>{html.escape(self.footer)}</p></body></html>"
        )


REPORT_CSS = (
    "body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 9pt; color: #212121; }"
    " h1 { font-size: 14pt; margin: 0; } h2 { font-size: 11.5pt; margin: 10pt 0 2pt 0; }"
    " table { border-collapse: collapse; } td, th { vertical-align: top; padding: 2px 4px; }"
    " .row td { border-top: 1px solid #b0bec5; } .small { font-size: 7.5pt; color: #546e7a; }"
    " .rose { color: #c62828; font-weight: bold; } .unsigned { color: #c62828; font-weight: bold; }"
    " .confirmed { color: #4a148c; }"
    " .disclaimer { color: #b71c1c; font-weight: bold; } .urgent { color: #ffffff; background: #c62828; }"
)
