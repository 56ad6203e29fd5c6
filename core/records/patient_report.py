"""One patient's report for a clinic's files (a run's CSV is core.records.report.write_run_csv).

- `build_patient_report`: one patient's report, read from the store: the clinic (core.records.clinic), the
  patient's id, age and sex; per lesion its body site (core.files.body_sites) on a small body diagram,
  each visit's picture and heat map, outcome in words, the clinician's decision, reviewer and time,
  the follow-up date of "monitor", the urgency the decision asks for; what made each result
  (core.records.provenance, UNSIGNED BUNDLE said); a free-text summary, signature and date lines.
- `patient_csv` / `paged_report(...).html()` / a PDF: the same report as a table, a self-contained
  HTML page, or (desktop/pdf.py) pages of blocks that are never split, the patient on every page.
  Patient names are not known to MelaScreen and never appear.
"""

from __future__ import annotations

import base64
import calendar
import csv
import html
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from core.common.paths import atomic_target, make_private_folder, write_file_atomically
from core.decision.results import ScreeningResult, named_class
from core.decision.vocabulary import (
    NOT_DERMOSCOPY,
    NOT_SCREENED,
    class_name,
    outcome,
    outcome_code_of,
    outcome_label,
    review_choice,
)
from core.files.body_sites import SiteMatch, site_from_text
from core.files.images import resize_longest_side
from core.imaging.body_map import VIEW_BOX, figure_svg, place_pins
from core.imaging.cam import overlay
from core.imaging.pictures import case_picture
from core.inference.manifest import DISCLAIMER
from core.records.clinic import Clinic, load_clinic
from core.records.patients import (
    LesionSummary,
    TimelineEntry,
    lesion_timeline,
    patient_images,
    patient_lesions,
)
from core.records.provenance import UNSIGNED, Provenance, provenance_of_run
from core.records.report import spreadsheet_safe
from core.records.store import Review, ReviewStore, local_time

PATIENT_CSV_COLUMNS = (
    "patient_id",
    "age",
    "sex",
    "lesion_id",
    "body_site",
    "body_site_vocabulary",
    "visit_date",
    "file",
    "sha256",
    "p_malignant",
    "outcome",
    "review",
    "reviewer",
    "reviewed",
    "review_note",
    "follow_up_by",
    "urgency",
    "heat_map",
    "confirmed_diagnosis",
    "p_rose_from",
    "confidence",
    "bundle",
    "bundle_version",
    "signature",
    "engine",
)
REPORT_FORMATS = (".csv", ".html", ".htm", ".pdf")


@dataclass(frozen=True)
class LesionRecord:
    lesion: LesionSummary
    timeline: tuple[TimelineEntry, ...]


# ------------------------------------------------------------------------------- one patient's report


@dataclass(frozen=True)
class Urgency:
    """What the clinician's decision asks for, in words, most urgent first (`rank` 0)."""

    rank: int
    words: str
    colour: str


URGENT = Urgency(0, "URGENT", "#c62828")
_AWAITING = Urgency(1, "awaiting review", "#e65100")
_FOLLOW_UP = Urgency(2, "follow-up", "#1565c0")
_RETAKE = Urgency(3, "picture to retake", "#616161")
_ROUTINE = Urgency(4, "no action", "#2e7d32")


def urgency_of(review: Review | None) -> Urgency:
    """From the clinician's decision: excise or refer is urgent; monitor is a follow-up; no review yet is
    'awaiting review' (the gate alone never makes a report urgent: a clinician decides)."""
    if review is None:
        return _AWAITING
    code = review_choice(review.decision).code
    if code in ("excise", "refer"):
        return URGENT
    if code == "monitor":
        return _FOLLOW_UP
    if code == "retake":
        return _RETAKE
    return _ROUTINE


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has fewer days)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def follow_up_date(review: Review | None) -> date | None:
    """When a 'monitor' review asks to see the lesion again: the review's date plus its months."""
    if review is None or review.follow_up_months is None or review_choice(review.decision).code != "monitor":
        return None
    try:
        reviewed = datetime.fromisoformat(review.created).astimezone().date()
    except ValueError:
        return None
    return add_months(reviewed, int(review.follow_up_months))


# The class whose heat map the store keeps with a result (core.decision.results: the melanoma class's CAM).
STORED_CAM_CLASS = "mel"
REPORT_PICTURE_SIDE = 480  # px, longest side of each picture put in a report (printed about 4.5 cm wide)


@dataclass(frozen=True)
class VisitRecord:
    """One picture of a lesion at one visit, as the report shows it."""

    entry: TimelineEntry
    outcome_text: str  # "suspicious for melanoma", "not a dermoscopy image: check the file", "not screened"
    outcome_code: str  # core.decision.vocabulary code, for the badge's colour
    p_malignant: float | None  # None for a picture that is not dermoscopy (no probability is shown)
    picture_jpeg: bytes  # b"" when neither the file nor a thumbnail is left
    picture_note: str  # why the picture is the stored thumbnail, if it is
    heat_map_jpeg: bytes  # the heat map over the picture; b"" when none is stored (or not dermoscopy)
    heat_map_class: str  # the class code whose map is shown
    named_class: str  # the class code the outcome names ("" when it names none)
    follow_up: date | None
    provenance: Provenance | None  # what made the result; None: not recorded
    age: int | None
    confirmed: str = ""  # the confirmed diagnosis that applies to the picture (core.records.evidence), in words

    @property
    def heat_map_words(self) -> str:
        if not self.heat_map_jpeg:
            return ""
        shown = class_name(self.heat_map_class)
        if self.named_class and self.named_class != self.heat_map_class:
            return f"heat map of {shown} (the map of {class_name(self.named_class)} is not stored with this result)"
        return f"heat map of {shown}"


@dataclass(frozen=True)
class LesionReport:
    lesion: LesionSummary
    site: SiteMatch
    urgency: Urgency
    review: Review | None  # the lesion's latest review (of its latest visit's most urgent picture)
    visits: tuple[VisitRecord, ...]

    @property
    def title(self) -> str:
        le = self.lesion
        return f"Lesion {le.label}" if le.labelled else f"Lesion without an id ({le.label})"

    @property
    def site_words(self) -> str:
        written = self.lesion.body_site
        if not written:
            return "body site not recorded"
        if self.site.site is None:
            return f"{written} (not on the body map: unknown site)"
        label = self.site.site.label
        return label if label.casefold() == written.casefold() else f"{label} (written: {written})"


@dataclass(frozen=True)
class PatientReport:
    patient_id: str
    age: int | None  # at the latest visit that recorded it
    sex: str | None
    clinic: Clinic
    created: str  # local time, when the report was made
    reviewer: str  # who made it
    summary: str  # the clinician's free text
    lesions: tuple[LesionReport, ...]

    @property
    def provenances(self) -> list[Provenance]:
        """Every distinct model bundle, signer and confidence that made a result in the report."""
        seen: list[Provenance] = []
        for le in self.lesions:
            for v in le.visits:
                if v.provenance is not None and v.provenance not in seen:
                    seen.append(v.provenance)
        return seen

    @property
    def unsigned(self) -> bool:
        return any(p.unsigned for p in self.provenances)

    @property
    def who(self) -> str:
        """ "Patient P001 · age 54 · sex F": on every page."""
        age = "age not recorded" if self.age is None else f"age {self.age}"
        sex = f"sex {_SEX_WORDS.get(self.sex or '', self.sex)}" if self.sex else "sex not recorded"
        return f"Patient {self.patient_id} · {age} · {sex}"


_SEX_WORDS = {"F": "F (female)", "M": "M (male)", "O": "O (other)"}


def patient_record(store: ReviewStore, patient_id: str) -> list[LesionRecord]:
    """Every lesion of the patient (most urgent first) with its timeline; ValueError for an unknown id."""
    lesions = patient_lesions(store, patient_id)
    if not lesions:
        raise ValueError(f"there is no patient '{patient_id}' in {store.path} (or no image is filed under them)")
    return [LesionRecord(le, tuple(lesion_timeline(store, le.lesion_key))) for le in lesions]


def _ages(store: ReviewStore, patient_id: str) -> tuple[dict[str, int | None], int | None]:
    """Each image's recorded age, and the age at the latest visit that recorded one."""
    images = patient_images(store, patient_id)
    ages = {a.sha256: a.age for a in images}
    dated = sorted((a.visit_date or date.min, a.age) for a in images if a.age is not None)
    return ages, (dated[-1][1] if dated else None)


def _provenance(store: ReviewStore, result_id: int, cache: dict) -> Provenance | None:
    run_id = store.first_run_of(result_id)
    if run_id is None:
        return None
    if run_id not in cache:
        run = store.get_run(run_id)
        cache[run_id] = None if run is None else provenance_of_run(run)
    return cache[run_id]


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return buf.tobytes() if ok else b""


# (result, class code) -> that class's heat map (H x W, 0..1) or None: a source of maps besides the stored one
HeatMapSource = Callable[[ScreeningResult, str], "np.ndarray | None"]


def _heat_map(result: ScreeningResult, named: str, source: HeatMapSource | None) -> tuple[np.ndarray | None, str]:
    """The map of the class the outcome names: the one stored with the result (screening keeps it, schema 6),
    else what `source` gives (e.g. the app's models, for a result stored before), else the stored melanoma
    map (the caption then says the named class's map is not stored)."""
    stored, stored_class = result.heat_map(STORED_CAM_CLASS)
    if not named or stored_class == named:
        return stored, stored_class
    if source is not None:
        cam = source(result, named)
        if cam is not None:
            return cam, named
    return stored, stored_class


def _confirmed_words(confirmed: dict, e: TimelineEntry) -> str:
    c = confirmed.get(e.sha256)
    return c.shown if c is not None else ""


def _visit(
    store: ReviewStore, e: TimelineEntry, age: int | None, cache: dict, heat_maps: HeatMapSource | None = None
) -> VisitRecord:
    result = store.get_result(e.result_id) if e.result_id is not None else None
    if result is None or not result.ok:
        return VisitRecord(e, "not screened", NOT_SCREENED.code, None, b"", "", b"", "", "", None, None, age)
    code = outcome_code_of(result.decision, result.intake, result.ok)
    not_dermoscopy = code == NOT_DERMOSCOPY.code
    words = outcome_label(result.decision, result.malignant_class, result.band, result.intake)
    picture = case_picture(e.path, e.sha256, store.thumbnail(e.result_id))  # type: ignore[arg-type]  # result_id is set: a row without one returned above
    rgb = picture.rgb
    if rgb is not None:
        rgb = resize_longest_side(rgb, REPORT_PICTURE_SIDE, enlarge=False)
    named = "" if not_dermoscopy else named_class(result, STORED_CAM_CLASS)
    heat, heat_class = b"", ""
    if rgb is not None and not not_dermoscopy:
        cam, cam_class = _heat_map(result, named, heat_maps)
        if cam is not None:
            heat, heat_class = _jpeg(overlay(rgb, cam, 0.5)), cam_class
    return VisitRecord(
        entry=e,
        outcome_text=words,
        outcome_code=code,
        p_malignant=None if not_dermoscopy else e.p_malignant,
        picture_jpeg=_jpeg(rgb) if rgb is not None else b"",
        picture_note=picture.note if picture.from_thumbnail else "",
        heat_map_jpeg=heat,
        heat_map_class=heat_class,
        named_class=named,
        follow_up=follow_up_date(e.review),
        provenance=_provenance(store, e.result_id, cache),  # type: ignore[arg-type]  # result_id is set: a row without one returned above
        age=age,
    )


def build_patient_report(
    store: ReviewStore,
    patient_id: str,
    reviewer: str = "",
    clinic: Clinic | None = None,
    summary: str = "",
    heat_maps: HeatMapSource | None = None,
) -> PatientReport:
    """Everything a patient's report shows, read from the store (ValueError for an unknown patient).
    `heat_maps(result, class_code)`: the map of the class an outcome names (e.g. the app, which has the
    models); without it, or when it gives none, the stored map (melanoma's) is shown and captioned so."""
    from core.records.evidence import confirmed_for_images

    records = patient_record(store, patient_id)
    ages, age = _ages(store, patient_id)
    cache: dict = {}
    lesions = []
    confirmed = confirmed_for_images(store, [e.sha256 for rec in records for e in rec.timeline])
    for rec in records:
        visits = tuple(
            replace(_visit(store, e, ages.get(e.sha256), cache, heat_maps), confirmed=_confirmed_words(confirmed, e))
            for e in rec.timeline
        )
        review = rec.lesion.latest_review
        lesions.append(
            LesionReport(rec.lesion, site_from_text(rec.lesion.body_site), urgency_of(review), review, visits)
        )
    lesions.sort(key=lambda le: le.urgency.rank)  # stable: most urgent outcome first within each urgency
    return PatientReport(
        patient_id=patient_id,
        age=age,
        sex=store.patient_sex(patient_id),
        clinic=clinic if clinic is not None else load_clinic(),
        created=datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %z"),
        reviewer=reviewer,
        summary=summary.strip(),
        lesions=tuple(lesions),
    )


# --------------------------------------------------------------------------------------------- CSV


def patient_csv(
    store: ReviewStore,
    patient_id: str,
    path: str | Path,
    report: PatientReport | None = None,
    *,
    private: bool = True,
) -> Path:
    """One row per picture of the patient: lesion, visit, p(malignant), outcome, review, follow-up,
    urgency and what made the result. Written whole or not at all (0600 unless `private=False`)."""
    report = report or build_patient_report(store, patient_id)
    path = Path(path)
    make_private_folder(path.parent, private)
    with atomic_target(path, private=private) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=PATIENT_CSV_COLUMNS)
            writer.writeheader()
            for le in report.lesions:
                for v in le.visits:
                    e = v.entry
                    made = v.provenance.fields() if v.provenance is not None else {}
                    row = {
                        "patient_id": patient_id,
                        "age": "" if v.age is None else str(v.age),
                        "sex": report.sex or "",
                        "lesion_id": le.lesion.label if le.lesion.labelled else "",
                        "body_site": le.lesion.body_site or "",
                        "body_site_vocabulary": le.site.site.label if le.site.site else "",
                        "visit_date": e.visit_date.isoformat() if e.visit_date else "",
                        "file": e.path,
                        "sha256": e.sha256,
                        "p_malignant": "" if v.p_malignant is None else f"{v.p_malignant:.4f}",
                        "outcome": v.outcome_text,
                        **_review_fields(e),
                        "follow_up_by": v.follow_up.isoformat() if v.follow_up else "",
                        "urgency": le.urgency.words,
                        "heat_map": v.heat_map_words,
                        "confirmed_diagnosis": v.confirmed,
                        "p_rose_from": "" if e.rose_from is None else f"{e.rose_from:.4f}",
                        "confidence": made.get("confidence", "not recorded"),
                        "bundle": made.get("bundle", ""),
                        "bundle_version": made.get("bundle_version", ""),
                        "signature": made.get("signature", "not recorded"),
                        "engine": made.get("engine", ""),
                    }
                    writer.writerow({k: spreadsheet_safe(str(val)) for k, val in row.items()})
    return path


def _review_fields(e: TimelineEntry) -> dict:
    r = e.review
    if r is None:
        return {"review": "", "reviewer": "", "reviewed": "", "review_note": ""}
    return {"review": r.words, "reviewer": r.reviewer, "reviewed": local_time(r.created), "review_note": r.note}


# --------------------------------------------------------------------------- pages: HTML blocks


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


def patient_html(
    store: ReviewStore, patient_id: str, reviewer: str = "", clinic: Clinic | None = None, summary: str = ""
) -> str:
    """A self-contained HTML report of one patient, ready to print."""
    return paged_report(build_patient_report(store, patient_id, reviewer, clinic, summary)).html()


def write_patient_report(
    store: ReviewStore,
    patient_id: str,
    out: str | Path,
    pdf_writer=None,
    reviewer: str = "",
    clinic: Clinic | None = None,
    summary: str = "",
    heat_maps: HeatMapSource | None = None,
    *,
    private: bool = True,
) -> Path:
    """Write one patient's report as .csv, .html or .pdf (`pdf_writer(PagedReport, path)`: the desktop's,
    Qt). Written whole or not at all, owner-only (0600; `private=False`: shared as the umask allows): a
    full disk leaves the earlier report in place, and the error (core.common.paths.FileWriteError) names the file."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise ValueError(f"the report file must end in {', '.join(REPORT_FORMATS)}; got '{out.name}'")
    if suffix == ".pdf" and pdf_writer is None:
        raise ValueError(
            "a PDF needs the desktop part of MelaScreen (PySide6): run `melascreen report ...` from a full "
            "install, or write --out FILE.html and print it to PDF from a browser"
        )
    report = build_patient_report(store, patient_id, reviewer, clinic, summary, heat_maps)
    if suffix == ".csv":
        return patient_csv(store, patient_id, out, report, private=private)
    paged = paged_report(report)
    make_private_folder(out.parent, private)
    if suffix == ".pdf":
        with atomic_target(out, private=private) as temp:
            pdf_writer(paged, temp)
        return out
    return write_file_atomically(out, paged.html(), private=private)
