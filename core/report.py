"""Exporting results: a CSV (one row per file) and a printable HTML report, both with the clinicians' decisions.

Rows come highest risk first, as the app sorts them (p(malignant), highest first; files that could
not be screened last). Words come from core.outcomes. `reviews` maps an image's sha256 to its latest
review (ReviewStore.latest_reviews): reviews follow the image, whatever run or gate produced the row.
The PDF is drawn by the desktop app from the same HTML (Qt writes PDF without a new dependency).
"""

from __future__ import annotations

import csv
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .outcomes import NOT_SCREENED, OUTCOMES, class_name, intake_level, outcome, outcome_label, review_choice
from .results import ScreeningResult

# Reader-facing columns first, then the technical ones; p_<class> columns follow for each class, then
# the patient columns, then what made the result (core/provenance.py): one layout for the app and the CLI.
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
    "quality_flags",
    "sha256",
)
IDENTITY_COLUMNS = ("patient_id", "lesion_id", "body_site", "visit_date", "age", "sex")
PROVENANCE_COLUMNS = ("confidence", "bundle", "bundle_version", "signature", "engine")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Text a spreadsheet shows as text: a leading ' before = + - @ TAB CR."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def risk_key(r: ScreeningResult) -> tuple:
    """Sort key, most urgent first: cases by p(malignant) highest first (p(melanoma) for old rows), then
    pictures that are not dermoscopy, then files that could not be screened."""
    p = r.p_malignant if r.p_malignant is not None else r.p_melanoma
    return (not r.ok, not r.is_case or p is None, -(p or 0.0), r.path)


def by_risk(results: Iterable[ScreeningResult]) -> list[ScreeningResult]:
    return sorted(results, key=risk_key)


def _local(stamp: str | None) -> str:
    from .store import local_time  # lazy: keeps `import core.report` light for the CLI

    return local_time(stamp, seconds=True)


def _fmt(p: float | None, digits: int = 4) -> str:
    return "" if p is None else f"{p:.{digits}f}"


def result_words(r: ScreeningResult) -> str:
    """The outcome as a user reads it, the same on every surface (core.outcomes)."""
    if not r.ok:
        return NOT_SCREENED.name
    words = outcome_label(r.decision, r.malignant_class, r.band, r.intake)
    return f"{words} (trial confidence {r.confidence:g})" if r.trial and r.confidence is not None else words


def csv_rows(
    results: Iterable[ScreeningResult], class_names: Iterable[str] = (), reviews: Mapping[str, object] | None = None
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
            "review_time": _local(review.created) if review is not None else "",
            "review_note": review.note if review is not None else "",
            "intake": r.intake or "",  # familiar / unfamiliar / not_dermoscopy; empty: no intake check
            "decision": r.outcome_code if r.ok else "",
            "malignant_class": r.malignant_class if case else "",
            "details": r.details if case else "",
            "spread": _fmt(r.spread) if case else "",
            "ood_score": _fmt(r.ood_score),
            "quality_flags": ";".join(r.quality.flags) if r.quality else "",
            "sha256": r.sha256 or "",
        }
        for c in classes:
            row[f"p_{c}"] = _fmt(r.class_probs.get(c)) if case else ""
        yield {k: spreadsheet_safe(str(v)) for k, v in row.items()}


def _identity_cells(a) -> dict:
    """The patient columns of a filed image (core.patients.AttachedIdentity), or none."""
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
    identities: Mapping[str, object] | None = None,
    issues: Iterable = (),
    reviews: Mapping[str, object] | None = None,
    provenance=None,
) -> Path:
    """The one run CSV of the app and the CLI: one row per file, highest risk first, with reviews, each
    file's patient columns and what made it (`provenance`, a core.provenance.Provenance: the same on every
    row; an unsigned bundle's rows say UNSIGNED BUNDLE), then one row per intake issue (status "intake",
    the problem and its sidecar line in `reason`). Written whole or not at all, private to the user."""
    from .paths import atomic_target

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = list(class_names)
    identities = identities or {}
    results = by_risk(results)
    made_by = {} if provenance is None else dict(provenance.fields())
    fields = [*CSV_COLUMNS, *(f"p_{c}" for c in classes), *IDENTITY_COLUMNS, *PROVENANCE_COLUMNS]
    with atomic_target(path) as temp:
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
    reviews: Mapping[str, object] | None = None,
) -> Path:
    """The run CSV without patient files or provenance (same columns, those cells empty)."""
    return write_run_csv(results, path, class_names, reviews=reviews)


# ------------------------------------------------------------------------------------ HTML report

REPORT_IMAGE_SIDE = 220  # px, longest side of each picture in the report


def _data_uri_jpeg(rgb) -> str:
    import base64

    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _report_pictures(result: ScreeningResult, thumbnail: bytes | None, with_heatmap: bool):
    """(picture, heat map overlay) as RGB arrays at report size, or (None, None) (see core.pictures)."""
    from .cam import overlay
    from .images import resize_longest_side
    from .pictures import case_picture

    pic = case_picture(result.path, result.sha256, thumbnail)
    if pic.rgb is None:
        return None, None
    rgb = resize_longest_side(pic.rgb, REPORT_IMAGE_SIDE, enlarge=False)
    heat = overlay(rgb, result.cam, 0.5) if (with_heatmap and result.cam is not None) else None
    return rgb, heat


def _badge(r: ScreeningResult) -> str:
    o = outcome(r.decision) if r.ok else NOT_SCREENED
    words = outcome_label(r.decision, r.malignant_class, r.band) if r.ok else o.name
    return f"<span class='badge' style='background:{o.colour};color:{o.text_colour}'>{html.escape(words)}</span>"


def _review_cell(review) -> str:
    if review is None:
        return "<span class='na'>not reviewed</span>"
    choice = review_choice(review.decision)
    note = f"<br><i>{html.escape(review.note)}</i>" if review.note else ""
    return (
        f"<b style='color:{choice.colour}'>{html.escape(review.words)}</b><br>"
        f"<span class='small'>{html.escape(review.reviewer)}, {html.escape(_local(review.created))}</span>{note}"
    )


def write_html(
    results: Iterable[ScreeningResult],
    path: str | Path,
    thumbnails: Iterable[bytes | None] | None = None,
    title: str = "MelaScreen screening report",
    details: dict[str, str] | None = None,
    disclaimer: str = "",
    with_heatmaps: bool = True,
    reviews: Mapping[str, object] | None = None,
) -> Path:
    """Write `report_html(...)` to `path` (UTF-8); returns the path."""
    doc = report_html(results, thumbnails, title, details, disclaimer, with_heatmaps, reviews)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def report_html(
    results: Iterable[ScreeningResult],
    thumbnails: Iterable[bytes | None] | None = None,
    title: str = "MelaScreen screening report",
    details: dict[str, str] | None = None,
    disclaimer: str = "",
    with_heatmaps: bool = True,
    reviews: Mapping[str, object] | None = None,
    picture_width: int | None = None,
) -> str:
    """A printable, self-contained HTML report: one row per file, highest risk first, with the
    picture and its heat map embedded as base64 JPEG (no side files to lose), the outcome in words,
    the reason, the most likely class and the clinician's latest decision. `thumbnails` (parallel
    to `results`) is used when the original file can no longer be read; `details` are label/value
    lines for the header (run, folder, bundle, settings). `picture_width` sets each picture's width
    attribute: Qt's PDF writer ignores CSS max-width and draws pictures at its own resolution."""
    from datetime import datetime

    from .bundle import DISCLAIMER

    results = list(results)
    thumbs: Sequence = list(thumbnails) if thumbnails is not None else [None] * len(results)
    if len(thumbs) != len(results):
        raise ValueError(f"got {len(thumbs)} thumbnails for {len(results)} results; pass one (or None) per result")
    reviews = reviews or {}
    counts = {o.code: 0 for o in (*OUTCOMES, NOT_SCREENED)}
    for r in results:
        counts[outcome(r.decision).code if r.ok else NOT_SCREENED.code] += 1
    n_reviewed = sum(1 for r in results if r.sha256 and r.sha256 in reviews)
    rows = []
    ranked = sorted(zip(results, thumbs), key=lambda rt: risk_key(rt[0]))
    for r, thumb in ranked:
        pic, heat = _report_pictures(r, thumb, with_heatmaps) if r.ok else (None, None)
        size = f' width="{picture_width}"' if picture_width else ""
        no_pic, no_heat = '<span class="na">no picture</span>', '<span class="na">—</span>'
        pic_html = f'<img src="{_data_uri_jpeg(pic)}"{size} alt="image">' if pic is not None else no_pic
        heat_html = f'<img src="{_data_uri_jpeg(heat)}"{size} alt="heat map">' if heat is not None else no_heat
        p_mal = "—" if r.p_malignant is None else f"{r.p_malignant:.3f}"
        p_mel = "" if r.p_melanoma is None else f", p(melanoma) {r.p_melanoma:.3f}"
        likely = html.escape(class_name(r.likely_class)) if r.likely_class else "—"
        flags = ", ".join(r.quality.flags) if (r.quality and r.quality.flags) else ""
        extra = f"<br><span class='flags'>quality: {html.escape(flags)}</span>" if flags else ""
        if r.intake and r.intake != "familiar":  # the reason says why; the score backs it
            score = "" if r.ood_score is None else f", score {r.ood_score:.3g}"
            extra += f"<br><span class='flags'>intake check: {html.escape(intake_level(r.intake).name)}{score}</span>"
        review = reviews.get(r.sha256) if r.sha256 else None
        rows.append(
            "<tr>"
            f"<td class='pic'>{pic_html}</td><td class='pic'>{heat_html}</td>"
            f"<td><b>{html.escape(Path(r.path).name)}</b><br>{_badge(r)}<br>{html.escape(r.reason)}{extra}"
            f"<br>Most likely: <b>{likely}</b> · p(malignant) {p_mal}{p_mel}"
            f"<br><span class='small'>{html.escape(r.path)}</span></td>"
            f"<td>{_review_cell(review)}</td>"
            "</tr>"
        )
    head_lines = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in (details or {}).items()
    )
    created = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z")
    summary = " · ".join(
        f"{o.short}: {counts[o.code]}" for o in (*OUTCOMES, NOT_SCREENED) if counts[o.code] or o is not NOT_SCREENED
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
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
</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="disclaimer">{html.escape(disclaimer or DISCLAIMER)}</div>
<table class="meta">{head_lines}<tr><th>Report created</th><td>{created}</td></tr>
<tr><th>Files</th><td>{len(results)} ({html.escape(summary)}); reviewed by a clinician: {n_reviewed}</td></tr></table>
<p class="small">Highest risk first. p(malignant): the calibrated probability of a skin cancer (the malignant
classes together). Heat map: Grad-CAM, where the models looked, not the outline of a lesion; its colours are
scaled per image, so even a case at low p shows a red spot.</p>
<table class="results" width="100%"><thead><tr><th>Image</th><th>Heat map</th>
<th>Case: outcome, reason, most likely class</th><th>Clinician's decision</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
