"""One patient's report for a clinic's files (a run's CSV is core.records.report.write_run_csv): as a
table (`patient_csv`), a self-contained HTML page (`patient_html`) or, through the desktop's PDF writer,
pages of blocks never split, the patient on every page (`write_patient_report` picks by the file's suffix).
What the report shows is core.records.patient_record; how its pages look, core.records.patient_pages.
Patient names are not known to MelaScreen and never appear.
"""

from __future__ import annotations

import csv
from pathlib import Path

from core.common.paths import atomic_target, make_private_folder, write_file_atomically
from core.records.clinic import Clinic
from core.records.patient_pages import paged_report
from core.records.patient_record import HeatMapSource, PatientReport, build_patient_report
from core.records.patients import TimelineEntry
from core.records.spreadsheet import spreadsheet_safe
from core.records.store import ReviewStore, local_time

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
