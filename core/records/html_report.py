"""The printable run report as one table: a self-contained HTML page, one row per file, highest risk first,
with the picture and its heat map embedded, the outcome in words, the reason, the most likely class and the
clinician's latest decision. The PDF is drawn by the desktop app from the same HTML (Qt writes PDF without a
new dependency). The report by patient is core.records.run_report."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from core.common.paths import make_private_folder, write_file_atomically
from core.decision.results import ScreeningResult
from core.decision.vocabulary import NOT_SCREENED, OUTCOMES, class_name, intake_level, outcome, review_choice
from core.inference.manifest import DISCLAIMER
from core.records.report import local_stamp, result_words, risk_key
from core.records.report_pictures import REPORT_IMAGE_SIDE, data_uri_jpeg, report_pictures
from core.records.store import Review

_STYLE = f"""<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; margin: 1.5em; color: #212121; }}
h1 {{ font-size: 16pt; margin-bottom: 0.2em; }}
.disclaimer {{ border: 2px solid #c62828; color: #b71c1c; padding: 0.5em 0.8em; font-weight: bold; margin: 0.8em 0; }}
table.meta th {{ text-align: left; padding-right: 1em; font-weight: normal; color: #546e7a; }}
table.results {{ border-collapse: collapse; width: 100%; margin-top: 1em; }}
table.results th, table.results td {{ border: 1px solid #bdbdbd; padding: 4px 6px; vertical-align: top; }}
table.results th {{ background: #eceff1; }}
td.pic img {{ max-width: {REPORT_IMAGE_SIDE}px; max-height: {REPORT_IMAGE_SIDE}px; display: block; }}
td.num {{ text-align: right; white-space: nowrap; }}
.badge {{ padding: 2px 8px; border-radius: 3px; font-weight: bold; white-space: nowrap;
          -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
.small {{ font-size: 8pt; color: #616161; word-break: break-all; }}
.flags {{ color: #c62828; }}
.na {{ color: #9e9e9e; }}
tr {{ page-break-inside: avoid; break-inside: avoid; }}
thead {{ display: table-header-group; }}
@media print {{ body {{ margin: 0.5cm; }} }}
</style>"""
_LEGEND = (
    '<p class="small">Highest risk first. p(malignant): the calibrated probability of a skin cancer (the malignant\n'
    """classes together). Heat map: Grad-CAM, where the models looked, not the outline of a lesion; its colours are
scaled per image, so even a case at low p shows a red spot.</p>"""
)


def _badge(r: ScreeningResult) -> str:
    o = outcome(r.outcome_code) if r.ok else NOT_SCREENED
    words = result_words(r)
    return f"<span class='badge' style='background:{o.colour};color:{o.text_colour}'>{html.escape(words)}</span>"


def _review_cell(review) -> str:
    if review is None:
        return "<span class='na'>not reviewed</span>"
    choice = review_choice(review.decision)
    note = f"<br><i>{html.escape(review.note)}</i>" if review.note else ""
    return (
        f"<b style='color:{choice.colour}'>{html.escape(review.words)}</b><br>"
        f"<span class='small'>{html.escape(review.reviewer)}, {html.escape(local_stamp(review.created))}</span>{note}"
    )


def _row(r: ScreeningResult, thumb, review, with_heatmaps: bool, picture_width: int | None) -> str:
    """One file as a table row: picture, heat map, the case in words, the clinician's decision."""
    pic, heat = report_pictures(r, thumb, with_heatmaps and r.is_case) if r.ok else (None, None)
    size = f' width="{picture_width}"' if picture_width else ""
    no_pic, no_heat = '<span class="na">no picture</span>', '<span class="na">—</span>'
    pic_html = f'<img src="{data_uri_jpeg(pic)}"{size} alt="image">' if pic is not None else no_pic
    heat_html = f'<img src="{data_uri_jpeg(heat)}"{size} alt="heat map">' if heat is not None else no_heat
    p_mal = "—" if r.p_malignant is None else f"{r.p_malignant:.3f}"
    p_mel = "" if r.p_melanoma is None else f", p(melanoma) {r.p_melanoma:.3f}"
    likely = html.escape(class_name(r.likely_class)) if r.likely_class else "—"
    flags = ", ".join(r.quality.flags) if (r.quality and r.quality.flags) else ""
    extra = f"<br><span class='flags'>quality: {html.escape(flags)}</span>" if flags else ""
    if r.intake and r.intake != "familiar":  # the reason says why; the score backs it
        score = "" if r.ood_score is None else f", score {r.ood_score:.3g}"
        extra += f"<br><span class='flags'>intake check: {html.escape(intake_level(r.intake).name)}{score}</span>"
    return (
        "<tr>"
        f"<td class='pic'>{pic_html}</td><td class='pic'>{heat_html}</td>"
        f"<td><b>{html.escape(Path(r.path).name)}</b><br>{_badge(r)}<br>{html.escape(r.reason)}{extra}"
        + (f"<br>Most likely: <b>{likely}</b> · p(malignant) {p_mal}{p_mel}" if r.is_case or not r.ok else "")
        + f"<br><span class='small'>{html.escape(r.path)}</span></td>"
        f"<td>{_review_cell(review)}</td>"
        "</tr>"
    )


def _summary(results: Sequence[ScreeningResult]) -> str:
    """ "no cancer suspected: 3 · review: 1 · ..." (files not screened only when there are some)."""
    counts = {o.code: 0 for o in (*OUTCOMES, NOT_SCREENED)}
    for r in results:
        counts[outcome(r.decision).code if r.ok else NOT_SCREENED.code] += 1
    return " · ".join(
        f"{o.short}: {counts[o.code]}" for o in (*OUTCOMES, NOT_SCREENED) if counts[o.code] or o is not NOT_SCREENED
    )


def write_html(
    results: Iterable[ScreeningResult],
    path: str | Path,
    thumbnails: Iterable[bytes | None] | None = None,
    title: str = "MelaScreen screening report",
    details: dict[str, str] | None = None,
    disclaimer: str = "",
    with_heatmaps: bool = True,
    reviews: Mapping[str, Review] | None = None,
    *,
    private: bool = True,
) -> Path:
    """Write `report_html(...)` to `path` (UTF-8), whole or not at all, private (0600) unless
    `private=False`; returns the path."""
    doc = report_html(results, thumbnails, title, details, disclaimer, with_heatmaps, reviews)
    path = Path(path)
    make_private_folder(path.parent, private)
    return write_file_atomically(path, doc, private=private)


def report_html(
    results: Iterable[ScreeningResult],
    thumbnails: Iterable[bytes | None] | None = None,
    title: str = "MelaScreen screening report",
    details: dict[str, str] | None = None,
    disclaimer: str = "",
    with_heatmaps: bool = True,
    reviews: Mapping[str, Review] | None = None,
    picture_width: int | None = None,
) -> str:
    """A printable, self-contained HTML report: one row per file, highest risk first, with the
    picture and its heat map embedded as base64 JPEG (no side files to lose), the outcome in words,
    the reason, the most likely class and the clinician's latest decision. `thumbnails` (parallel
    to `results`) is used when the original file can no longer be read; `details` are label/value
    lines for the header (run, folder, bundle, settings). `picture_width` sets each picture's width
    attribute: Qt's PDF writer ignores CSS max-width and draws pictures at its own resolution."""
    results = list(results)
    thumbs: Sequence = list(thumbnails) if thumbnails is not None else [None] * len(results)
    if len(thumbs) != len(results):
        raise ValueError(f"got {len(thumbs)} thumbnails for {len(results)} results; pass one (or None) per result")
    reviews = reviews or {}
    n_reviewed = sum(1 for r in results if r.sha256 and r.sha256 in reviews)
    ranked = sorted(zip(results, thumbs), key=lambda rt: risk_key(rt[0]))
    rows = [
        _row(r, thumb, reviews.get(r.sha256) if r.sha256 else None, with_heatmaps, picture_width) for r, thumb in ranked
    ]
    head_lines = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in (details or {}).items()
    )
    created = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z")
    summary = _summary(results)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{_STYLE}</head><body>
<h1>{html.escape(title)}</h1>
<div class="disclaimer">{html.escape(disclaimer or DISCLAIMER)}</div>
<table class="meta">{head_lines}<tr><th>Report created</th><td>{created}</td></tr>
<tr><th>Files</th><td>{len(results)} ({html.escape(summary)}); reviewed by a clinician: {n_reviewed}</td></tr></table>
{_LEGEND}
<table class="results" width="100%"><thead><tr><th>Image</th><th>Heat map</th>
<th>Case: outcome, reason, most likely class</th><th>Clinician's decision</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
