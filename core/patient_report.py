"""Reports for a clinic's files: a run's CSV with each file's patient, and one patient's report.

- `write_run_csv`: the screening CSV of `core.report` plus patient_id, lesion_id, body_site and
  visit_date columns, and one row per intake issue (`status` "intake", the reason in `reason`),
  so that a bad sidecar row is in the report beside the files.
- `patient_csv` / `patient_html`: one patient's lesions, each visit's pictures with p(malignant),
  the decision of the gate and the clinician's review, ready to file. The HTML is self-contained
  (pictures embedded) and simple enough for Qt's rich-text engine, which the desktop app uses to
  turn it into a PDF. Patient names are not known to MelaScreen and never appear.
"""

from __future__ import annotations

import base64
import csv
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .intake import IntakeIssue
from .patients import AttachedIdentity, LesionSummary, TimelineEntry, lesion_timeline, patient_lesions
from .report import CSV_COLUMNS, by_risk, csv_rows, spreadsheet_safe
from .results import ScreeningResult
from .store import ReviewStore, local_time

IDENTITY_COLUMNS = ("patient_id", "lesion_id", "body_site", "visit_date")
PATIENT_CSV_COLUMNS = (
    "patient_id",
    "lesion_id",
    "body_site",
    "visit_date",
    "file",
    "sha256",
    "p_malignant",
    "outcome",
    "review",
    "reviewer",
    "reviewed",
    "review_note",
    "p_rose_from",
)
REPORT_FORMATS = (".csv", ".html", ".htm", ".pdf")


def write_run_csv(
    results: Iterable[ScreeningResult],
    path: str | Path,
    class_names: Iterable[str] = (),
    identities: Mapping[str, AttachedIdentity] | None = None,
    issues: Iterable[IntakeIssue] = (),
    reviews: Mapping[str, object] | None = None,
) -> Path:
    """core.report's CSV (highest risk first, with reviews) plus each file's patient columns, then
    one row per intake issue (status "intake", the problem in `reason`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = list(class_names)
    identities = identities or {}
    results = by_risk(results)
    with open(path, "w", newline="", encoding="utf-8") as f:
        fields = [*CSV_COLUMNS, *(f"p_{c}" for c in classes), *IDENTITY_COLUMNS]
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        for r, row in zip(results, csv_rows(results, classes, reviews)):
            a = identities.get(r.sha256 or "")
            if a is not None:
                row.update(
                    patient_id=spreadsheet_safe(a.patient_id),
                    lesion_id=spreadsheet_safe(a.lesion_label) if a.labelled else "",
                    body_site=spreadsheet_safe(a.body_site or ""),
                    visit_date=a.visit_date.isoformat() if a.visit_date else "",
                )
            writer.writerow(row)
        for issue in issues:
            where = f"sidecar line {issue.row}: " if issue.row is not None else ""
            writer.writerow(
                {
                    "path": spreadsheet_safe(issue.file),
                    "status": "intake",
                    "reason": spreadsheet_safe(where + issue.message),
                }
            )
    return path


@dataclass(frozen=True)
class LesionRecord:
    lesion: LesionSummary
    timeline: tuple[TimelineEntry, ...]


def patient_record(store: ReviewStore, patient_id: str) -> list[LesionRecord]:
    """Every lesion of the patient (most urgent first) with its timeline; ValueError for an unknown id."""
    lesions = patient_lesions(store, patient_id)
    if not lesions:
        raise ValueError(f"there is no patient '{patient_id}' in {store.path} (or no image is filed under them)")
    return [LesionRecord(le, tuple(lesion_timeline(store, le.lesion_key))) for le in lesions]


def _review_fields(e: TimelineEntry) -> dict:
    r = e.review
    if r is None:
        return {"review": "", "reviewer": "", "reviewed": "", "review_note": ""}
    return {"review": r.words, "reviewer": r.reviewer, "reviewed": local_time(r.created), "review_note": r.note}


def patient_csv(store: ReviewStore, patient_id: str, path: str | Path) -> Path:
    """One row per picture of the patient: lesion, visit, p(malignant), outcome and review."""
    records = patient_record(store, patient_id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=PATIENT_CSV_COLUMNS)
        writer.writeheader()
        for rec in records:
            for e in rec.timeline:
                row = {
                    "patient_id": patient_id,
                    "lesion_id": rec.lesion.label if rec.lesion.labelled else "",
                    "body_site": rec.lesion.body_site or "",
                    "visit_date": e.visit_date.isoformat() if e.visit_date else "",
                    "file": e.path,
                    "sha256": e.sha256,
                    "p_malignant": "" if e.p_malignant is None else f"{e.p_malignant:.4f}",
                    "outcome": e.words if e.decision is not None else "not screened",
                    **_review_fields(e),
                    "p_rose_from": "" if e.rose_from is None else f"{e.rose_from:.4f}",
                }
                writer.writerow({k: spreadsheet_safe(str(v)) for k, v in row.items()})
    return path


def _thumb_uri(store: ReviewStore, e: TimelineEntry) -> str:
    data = store.thumbnail(e.result_id) if e.result_id is not None else None
    return "" if not data else "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def patient_html(store: ReviewStore, patient_id: str, reviewer: str = "") -> str:
    """A self-contained HTML report of one patient, ready to print or to turn into a PDF."""
    from .bundle import DISCLAIMER
    from .outcomes import outcome

    records = patient_record(store, patient_id)
    esc = html.escape
    created = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %z")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>MelaScreen report, patient {esc(patient_id)}</title>",
        "<style>body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10pt; color: #212121; }"
        " h1 { font-size: 15pt; } h2 { font-size: 12pt; margin-top: 14pt; }"
        " table { border-collapse: collapse; }"
        " td, th { border: 1px solid #9e9e9e; padding: 3px 5px; vertical-align: top; }"
        " th { background: #eceff1; text-align: left; } .rose { color: #c62828; font-weight: bold; }"
        " .disclaimer { color: #b71c1c; font-weight: bold; } .small { font-size: 8pt; color: #616161; }</style>",
        "</head><body>",
        f"<h1>MelaScreen screening report: patient {esc(patient_id)}</h1>",
        f"<p class='disclaimer'>{esc(DISCLAIMER)}</p>",
        f"<p>Patient id: <b>{esc(patient_id)}</b> &nbsp; Lesions: {len(records)} &nbsp; "
        f"Pictures: {sum(len(r.timeline) for r in records)} &nbsp; Report created: {esc(created)}"
        + (f" by {esc(reviewer)}" if reviewer else "")
        + "</p>",
    ]
    for rec in records:
        le = rec.lesion
        title = f"Lesion {le.label}" if le.labelled else f"Lesion without an id ({le.label})"
        o = outcome(le.latest_decision)
        latest = le.latest.words if le.latest is not None and le.latest.decision is not None else "not screened"
        parts.append(
            f"<h2>{esc(title)}: {esc(le.body_site or 'body site not recorded')}</h2>"
            f"<p>{le.visits} visit(s), latest {le.last_visit.isoformat() if le.last_visit else 'undated'}; "
            f"latest outcome: <span style='background:{o.colour};color:{o.text_colour}'>"
            f"&nbsp;{esc(latest)}&nbsp;</span>"
            + (f"; reviewed: {esc(le.latest_review.words)}" if le.latest_review else "; not reviewed yet")
            + "</p>"
        )
        parts.append(
            "<table width='100%' cellspacing='0'><tr><th width='15%'>Visit</th><th width='20%'>Picture</th>"
            "<th width='13%'>p(malignant)</th><th width='17%'>Outcome then</th><th width='20%'>Review</th>"
            "<th>File</th></tr>"
        )
        for e in rec.timeline:
            uri = _thumb_uri(store, e)
            pic = f"<img src='{uri}' width='120'>" if uri else "<span class='small'>no picture stored</span>"
            p = "—" if e.p_malignant is None else f"{e.p_malignant:.3f}"
            if e.rose_from is not None:
                p += f"<br><span class='rose'>rose from {e.rose_from:.3f}</span>"
            rv = e.review
            review = (
                "not reviewed"
                if rv is None
                else (
                    f"{esc(rv.words)}<br><span class='small'>{esc(rv.reviewer)}, {esc(local_time(rv.created))}"
                    + (f"<br>{esc(rv.note)}" if rv.note else "")
                    + "</span>"
                )
            )
            parts.append(
                f"<tr><td nowrap>{e.visit_date.isoformat() if e.visit_date else 'undated'}</td><td>{pic}</td>"
                f"<td>{p}</td><td>{esc(e.words) if e.decision is not None else 'not screened'}</td><td>{review}</td>"
                f"<td><span class='small'>{esc(Path(e.path).name)}<br>sha256 {e.sha256[:12]}…</span></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_patient_report(
    store: ReviewStore, patient_id: str, out: str | Path, pdf_writer=None, reviewer: str = ""
) -> Path:
    """Write one patient's report as .csv or .html; .pdf needs `pdf_writer(html, path)` (the desktop's, Qt)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise ValueError(f"the report file must end in {', '.join(REPORT_FORMATS)}; got '{out.name}'")
    if suffix == ".csv":
        return patient_csv(store, patient_id, out)
    doc = patient_html(store, patient_id, reviewer)
    if suffix == ".pdf":
        if pdf_writer is None:
            raise ValueError(
                "a PDF needs the desktop part of MelaScreen (PySide6): run `melascreen report ...` from a full "
                "install, or write --out FILE.html and print it to PDF from a browser"
            )
        return Path(pdf_writer(doc, out))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
