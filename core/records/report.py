"""Exporting a run: the one run CSV of the app and the CLI (one row per file, with the clinicians' decisions),
and what every export of a run says the same way: the outcome in words, the risk order, the cascade's word.

Rows come highest risk first, as the app sorts them (p(malignant), highest first; files that could
not be screened last). Words come from core.decision.vocabulary. `reviews` maps an image's sha256 to its latest
review (ReviewStore.latest_reviews): reviews follow the image, whatever run or gate produced the row.
The printable reports: core.records.html_report (one table) and core.records.run_report (by patient).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.common.paths import atomic_target, make_private_folder
from core.decision.cascade import STOP_NOTE, STOPPED
from core.decision.results import ScreeningResult, risk_probability
from core.decision.vocabulary import NOT_SCREENED, class_name, outcome_label
from core.records.patients import AttachedIdentity
from core.records.spreadsheet import spreadsheet_safe
from core.records.store import Review, local_time

# Reader-facing columns first, then the technical ones; p_<class> columns follow for each class, then
# the patient columns, then what made the result (core/records/provenance.py): one layout for the app and the CLI.
CSV_COLUMNS = (
    "path",
    "status",
    "outcome",
    "reason",
    "likely_class",
    "p_malignant",
    "p_melanoma",
    "band",
    "review_decision",
    "reviewer",
    "review_time",
    "review_note",
    "intake",
    "decision",
    "malignant_class",
    "details",
    "spread",
    "ood_score",
    "cascade",
    "quality_flags",
    "sha256",
)
IDENTITY_COLUMNS = ("patient_id", "lesion_id", "body_site", "visit_date", "age", "sex")
PROVENANCE_COLUMNS = ("confidence", "bundle", "bundle_version", "signature", "engine")


def cascade_word(r: ScreeningResult) -> str:
    """ "stopped" (stage 1 of the cascade decided), "full" (the cascade ran, the whole ensemble decided), or ""
    (no cascade); a stored result keeps only its details, which say when stage 1 decided."""
    if r.cascade:
        return r.cascade
    return STOPPED if STOP_NOTE in r.details else ""


def risk_key(r: ScreeningResult) -> tuple:
    """Sort key, most urgent first: cases by p(malignant) highest first (p(melanoma) for old rows), then
    pictures that are not dermoscopy, then files that could not be screened."""
    p = risk_probability(r)
    return (not r.ok, not r.is_case or p is None, -(p or 0.0), r.path)


def by_risk(results: Iterable[ScreeningResult]) -> list[ScreeningResult]:
    return sorted(results, key=risk_key)


def local_stamp(stamp: str | None) -> str:
    """A stored stamp as every export shows it: local time with seconds and the offset."""
    return local_time(stamp, seconds=True)


def _fmt(p: float | None, digits: int = 4) -> str:
    return "" if p is None else f"{p:.{digits}f}"


def result_words(r: ScreeningResult) -> str:
    """The outcome as a user reads it, the same on every surface (core.decision.vocabulary)."""
    if not r.ok:
        return NOT_SCREENED.name
    words = outcome_label(r.decision, r.malignant_class, r.band, r.intake)
    return f"{words} (trial confidence {r.confidence:g})" if r.trial and r.confidence is not None else words


def csv_rows(
    results: Iterable[ScreeningResult], class_names: Iterable[str] = (), reviews: Mapping[str, Review] | None = None
) -> Iterable[dict]:
    """One dict per result, in the order given (write_csv sorts by risk first), every text cell made
    safe for spreadsheets. A picture that is not dermoscopy carries no class, probability or band."""
    classes = list(class_names)
    reviews = reviews or {}
    for r in results:
        review = reviews.get(r.sha256) if r.sha256 else None
        case = r.is_case
        row = {
            "path": r.path,
            "status": r.status,
            "outcome": result_words(r),
            "reason": r.reason,
            "likely_class": class_name(r.likely_class) if case else "",
            "p_malignant": _fmt(r.p_malignant) if case else "",
            "p_melanoma": _fmt(r.p_melanoma) if case else "",
            "band": (r.band or "") if case else "",
            "review_decision": review.words if review is not None else "",
            "reviewer": review.reviewer if review is not None else "",
            "review_time": local_stamp(review.created) if review is not None else "",
            "review_note": review.note if review is not None else "",
            "intake": r.intake or "",  # familiar / unfamiliar / not_dermoscopy; empty: no intake check
            "decision": r.outcome_code if r.ok else "",
            "malignant_class": r.malignant_class if case else "",
            "details": r.details if case else "",
            "spread": _fmt(r.spread) if case else "",
            "ood_score": _fmt(r.ood_score),
            "cascade": cascade_word(r),
            "quality_flags": ";".join(r.quality.flags) if r.quality else "",
            "sha256": r.sha256 or "",
        }
        for c in classes:
            row[f"p_{c}"] = _fmt(r.class_probs.get(c)) if case else ""
        yield {k: spreadsheet_safe(str(v)) for k, v in row.items()}


def _identity_cells(a) -> dict:
    """The patient columns of a filed image (core.records.patients.AttachedIdentity), or none."""
    if a is None:
        return {}
    sex = getattr(a, "sex", None)
    return {
        "patient_id": a.patient_id,
        "lesion_id": a.lesion_label if a.labelled else "",
        "body_site": a.body_site or "",
        "visit_date": a.visit_date.isoformat() if a.visit_date else "",
        "age": "" if a.age is None else str(a.age),
        "sex": sex or "",
    }


def write_run_csv(
    results: Iterable[ScreeningResult],
    path: str | Path,
    class_names: Iterable[str] = (),
    identities: Mapping[str, AttachedIdentity] | None = None,
    issues: Iterable = (),
    reviews: Mapping[str, Review] | None = None,
    provenance=None,
    *,
    private: bool = True,
) -> Path:
    """The one run CSV of the app and the CLI: one row per file, highest risk first, with reviews, each
    file's patient columns and what made it (`provenance`, a core.records.provenance.Provenance: the same on every
    row; an unsigned bundle's rows say UNSIGNED BUNDLE), then one row per intake issue (status "intake",
    the problem and its sidecar line in `reason`). Written whole or not at all, private to the user
    (0600, a new folder 0700) unless `private=False` (the app's Settings: shared with other users)."""
    path = Path(path)
    make_private_folder(path.parent, private)
    classes = list(class_names)
    identities = identities or {}
    results = by_risk(results)
    made_by = {} if provenance is None else dict(provenance.fields())
    fields = [*CSV_COLUMNS, *(f"p_{c}" for c in classes), *IDENTITY_COLUMNS, *PROVENANCE_COLUMNS]
    with atomic_target(path, private=private) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            for r, row in zip(results, csv_rows(results, classes, reviews)):
                cells = {**made_by, **_identity_cells(identities.get(r.sha256 or ""))}
                if r.confidence is not None:  # the confidence that made this row's outcome
                    cells["confidence"] = f"{r.confidence:g}" + (" (trial)" if r.trial else "")
                row.update({k: spreadsheet_safe(v) for k, v in cells.items()})
                writer.writerow(row)
            for issue in issues:
                where = f"sidecar line {issue.row}: " if getattr(issue, "row", None) is not None else ""
                writer.writerow(
                    {
                        "path": spreadsheet_safe(str(getattr(issue, "file", ""))),
                        "status": "intake",
                        "reason": spreadsheet_safe(where + str(getattr(issue, "message", issue))),
                    }
                )
    return path


def write_csv(
    results: Iterable[ScreeningResult],
    path: str | Path,
    class_names: Iterable[str] = (),
    reviews: Mapping[str, Review] | None = None,
) -> Path:
    """The run CSV without patient files or provenance (same columns, those cells empty)."""
    return write_run_csv(results, path, class_names, reviews=reviews)
