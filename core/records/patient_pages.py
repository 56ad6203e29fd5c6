"""One patient's report as pages (core.records.paged): a header for every page (clinic, patient id, age,
sex), an overview, then per lesion a heading with a small body diagram and one block per visit, then what
made the results, the disclaimer and signature lines. The facts come from core.records.patient_record."""

from __future__ import annotations

import base64
import html
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from core.decision.vocabulary import outcome
from core.imaging.body_map import VIEW_BOX, figure_svg, place_pins
from core.inference.manifest import DISCLAIMER
from core.records.paged import Block, PagedReport
from core.records.patient_record import URGENT, LesionReport, PatientReport, VisitRecord
from core.records.patients import TimelineEntry
from core.records.provenance import UNSIGNED, Provenance
from core.records.store import local_time

PICTURE_WIDTH = 150  # px (CSS pixels) of each picture and heat map in a visit row


def _uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _img(jpeg: bytes, entry: TimelineEntry, what: str) -> str:
    """An <img> with its exact size (so a PDF writer measures the row before the picture is decoded)."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) if jpeg else None
    if bgr is None:
        return "<span class='small'>no picture stored</span>"
    h, w = bgr.shape[:2]
    width = PICTURE_WIDTH if w >= h else round(PICTURE_WIDTH * w / h)
    height = round(width * h / w)
    return f"<img src='{_uri(jpeg)}' width='{width}' height='{height}' alt='{html.escape(what)}'>"


def _badge(text: str, code: str) -> str:
    o = outcome(code)
    return f"<span style='background:{o.colour};color:{o.text_colour}'>&nbsp;{html.escape(text)}&nbsp;</span>"


def _made_by(p: Provenance | None) -> str:
    if p is None:
        return "<span class='small'>model: not recorded</span>"
    sig = f"<span class='unsigned'>{UNSIGNED}</span>" if p.unsigned else html.escape(p.signature_text)
    return (
        f"<span class='small'>made by {html.escape(p.bundle_name)} {html.escape(p.bundle_version)}, {sig}, "
        f"confidence {html.escape(p.confidence_text)}</span>"
    )


def _visit_block(v: VisitRecord, le: LesionReport) -> Block:
    e = v.entry
    esc = html.escape
    when = e.visit_date.isoformat() if e.visit_date else "undated visit"
    p = "" if v.p_malignant is None else f"p(malignant) {v.p_malignant:.3f}"
    if e.rose_from is not None and v.p_malignant is not None:
        p += f"<br><span class='rose'>rose from {e.rose_from:.3f}</span>"
    review = "<b>not reviewed</b>"
    if e.review is not None:
        review = f"<b>{esc(e.review.words)}</b><br>{esc(e.review.reviewer)}, {esc(local_time(e.review.created))}" + (
            f"<br><i>{esc(e.review.note)}</i>" if e.review.note else ""
        )
    if v.follow_up is not None:
        review += f"<br><b>follow-up by {v.follow_up.isoformat()}</b>"
    if v.confirmed:
        review = f"<b class='confirmed'>{esc(v.confirmed)}</b><br>{review}"
    heat = (
        _img(v.heat_map_jpeg, e, "heat map") + f"<br><span class='small'>{esc(v.heat_map_words)}</span>"
        if v.heat_map_jpeg
        else "<span class='small'>no heat map"
        + (": not a dermoscopy image" if v.p_malignant is None else "")
        + "</span>"
    )
    note = f"<br><span class='small'>{esc(v.picture_note)}</span>" if v.picture_note else ""
    return Block(
        "<table width='100%' cellspacing='0' class='row'><tr>"
        # the lesion is named on each row: a row at the top of a page still says whose it is
        f"<td width='22%'><span class='small'>{esc(le.title)} · {esc(le.site_words)}</span><br><b>{when}</b><br>"
        f"{_badge(v.outcome_text, v.outcome_code)}<br>{p}<br>{_made_by(v.provenance)}"
        f"<br><span class='small'>{esc(Path(e.path).name)}<br>sha256 {e.sha256[:12]}…</span></td>"
        f"<td width='26%'>{_img(v.picture_jpeg, e, 'picture')}{note}</td>"
        f"<td width='26%'>{heat}</td>"
        f"<td width='26%'>{review}</td></tr></table>"
    )


DIAGRAM_WIDTH = 140  # px of the small body diagram beside each lesion's heading


def _lesion_block(le: LesionReport) -> Block:
    esc = html.escape
    pins = []
    if le.site.site is not None:
        placed, _ = place_pins([(le.lesion.body_site, "#d50000", None, "")])
        pins = [replace(p, number=0) for p in placed]  # one lesion: a plain mark
    diagram = figure_svg(pins, title=f"{le.title}: {le.site_words}", pin_radius=20)
    height = round(DIAGRAM_WIDTH * VIEW_BOX[3] / VIEW_BOX[2])
    urgency = (
        f"<span class='urgent'>&nbsp;{URGENT.words}: {esc(le.review.words)}&nbsp;</span>"  # type: ignore[union-attr]  # URGENT comes only from a review
        if le.urgency is URGENT
        else f"<b style='color:{le.urgency.colour}'>{esc(le.urgency.words)}</b>"
        + (f": {esc(le.review.words)}" if le.review is not None else "")
    )
    follow = next((v.follow_up for v in reversed(le.visits) if v.follow_up is not None), None)
    latest = le.lesion.latest
    latest_words = "not screened"
    for v in le.visits:
        if latest is not None and v.entry.sha256 == latest.sha256:
            latest_words = v.outcome_text
    confirmed = next((v.confirmed for v in reversed(le.visits) if v.confirmed), "")
    return Block(
        "<table width='100%' cellspacing='0'><tr>"
        f"<td width='{DIAGRAM_WIDTH + 8}'><img src='{_svg_uri(diagram)}' width='{DIAGRAM_WIDTH}' height='{height}' "
        f"alt='body diagram'><br><span class='small'>body diagram: "
        + (esc(le.site.site.label) if le.site.site else "site not on the map")
        + "</span></td><td>"
        f"<h2>{esc(le.title)}: {esc(le.site_words)}</h2>"
        + (f"<p><b class='confirmed'>{esc(confirmed)}</b></p>" if confirmed else "")
        + f"<p>{urgency}"
        + (f" · <b>follow-up by {follow.isoformat()}</b>" if follow else "")
        + f"<br>{le.lesion.visits} visit(s), latest "
        f"{le.lesion.last_visit.isoformat() if le.lesion.last_visit else 'undated'}; latest outcome: "
        f"{esc(latest_words)}</p></td></tr></table>",
        keep_with_next=True,
    )


def _overview_block(report: PatientReport) -> Block:
    esc = html.escape
    urgent = [le for le in report.lesions if le.urgency is URGENT]
    waiting = [le for le in report.lesions if le.review is None]
    lines = []
    if urgent:
        lines.append(
            f"<p><span class='urgent'>&nbsp;URGENT&nbsp;</span> <b>{len(urgent)} lesion(s) to excise or refer:</b> "
            + "; ".join(f"{esc(le.title)} ({esc(le.site_words)}): {esc(le.review.words)}" for le in urgent)  # type: ignore[union-attr]  # URGENT comes only from a review
            + "</p>"
        )
    if waiting:
        lines.append(
            f"<p><b>{len(waiting)} lesion(s) not reviewed yet:</b> "
            + "; ".join(esc(le.title) for le in waiting)
            + "</p>"
        )
    follow = sorted((v.follow_up, le.title) for le in report.lesions for v in le.visits[-1:] if v.follow_up is not None)
    if follow:
        lines.append("<p><b>Follow-up:</b> " + "; ".join(f"{esc(t)} by {d.isoformat()}" for d, t in follow) + "</p>")
    summary = esc(report.summary).replace("\n", "<br>") if report.summary else "&nbsp;<br>&nbsp;<br>&nbsp;"
    pictures = sum(len(le.visits) for le in report.lesions)
    return Block(
        f"<p>{len(report.lesions)} lesion(s), {pictures} picture(s). Report made {esc(report.created)}"
        + (f" by {esc(report.reviewer)}" if report.reviewer else "")
        + ".</p>"
        + "".join(lines)
        + "<p><b>Summary</b></p><table width='100%' cellspacing='0' style='border: 1px solid #90a4ae'>"
        f"<tr><td>{summary}</td></tr></table>"
    )


def _closing_blocks(report: PatientReport) -> list[Block]:
    esc = html.escape
    made = report.provenances
    if made:
        rows = "".join(
            f"<li>{esc(p.bundle_name)}, version {esc(p.bundle_version)}, "
            + (f"<span class='unsigned'>{UNSIGNED}</span>" if p.unsigned else esc(p.signature_text))
            + f", confidence {esc(p.confidence_text)}"
            + (f", engine {esc(p.engine)}" if p.engine else "")
            + "</li>"
            for p in made
        )
        model = f"<p><b>What made these results</b></p><ul>{rows}</ul>"
    else:
        model = "<p><b>What made these results:</b> not recorded in the results file.</p>"
    if report.unsigned:
        model += (
            f"<p class='unsigned'>{UNSIGNED}: at least one result above was made by a model bundle without a "
            "trusted signature (a research setting). Do not file this report as a clinical record.</p>"
        )
    return [
        Block(model + f"<p class='disclaimer'>{esc(DISCLAIMER)}</p>"),
        Block(
            "<table width='100%' cellspacing='0'><tr>"
            f"<td width='50%'><br><br>Signature: ______________________________<br>"
            f"<span class='small'>{esc(report.reviewer) if report.reviewer else 'name of the clinician'}</span></td>"
            "<td width='50%'><br><br>Date: ____________________</td></tr></table>"
        ),
    ]


def paged_report(report: PatientReport) -> PagedReport:
    """The report as a header for every page (clinic, patient id, age, sex) and blocks never split."""
    esc = html.escape
    unsigned = f" · <span class='unsigned'>{UNSIGNED}</span>" if report.unsigned else ""
    header = (
        "<table width='100%' cellspacing='0'><tr>"
        f"<td><b>{esc(report.clinic.header_line())}</b><br>"
        f"<span style='font-size:12pt'><b>{esc(report.who)}</b></span></td>"
        f"<td align='right'><b>MelaScreen patient report</b><br><span class='small'>{esc(report.created)}</span>"
        f"{unsigned}</td></tr></table>"
    )
    blocks = [_overview_block(report)]
    for le in report.lesions:
        blocks.append(_lesion_block(le))
        blocks += [_visit_block(v, le) for v in le.visits]
    blocks += _closing_blocks(report)
    return PagedReport(
        title=f"MelaScreen report, patient {report.patient_id}",
        header_html=header,
        blocks=tuple(blocks),
        footer=f"Patient {report.patient_id} · MelaScreen is a research tool, not a diagnosis",
    )
