"""A patient's report (PDF, HTML or CSV) written from a worker: building it reads the store and, for results
stored before screening kept a named class's map, the picture files again (read and hashed). Only Qt's PDF
writer draws on the GUI thread, as for the run report."""

from __future__ import annotations

from pathlib import Path

from core import (
    ReviewStore,
    atomic_target,
    build_patient_report,
    make_private_folder,
    paged_report,
    write_patient_report,
)

from .pdf import html_to_pdf


def patient_report_job(
    store: ReviewStore, patient_id: str, path: str, reviewer: str, summary: str, heat_maps, private: bool
):
    """A CSV or HTML report is written by the job (core.records.patient_report.write_patient_report); for a PDF
    the job returns the laid-out report, and write_patient_pdf draws it on the GUI thread."""

    def job(report, should_stop):
        if Path(path).suffix.lower() != ".pdf":
            return write_patient_report(
                store, patient_id, path, reviewer=reviewer, summary=summary, heat_maps=heat_maps, private=private
            )
        return paged_report(build_patient_report(store, patient_id, reviewer, None, summary, heat_maps))

    return job


def write_patient_pdf(paged, path: str, private: bool) -> Path:
    """The report as a PDF, whole or not at all, owner-only unless shared (as write_patient_report writes it)."""
    out = Path(path)
    make_private_folder(out.parent, private)
    with atomic_target(out, private=private) as temp:
        html_to_pdf(paged, temp)
    return out
