"""Exporting results: a CSV (one row per file) and a printable HTML report, both with the clinicians' decisions.

Rows come highest risk first, as the app sorts them (p(malignant), highest first; files that could
not be screened last). Words come from core.decision.vocabulary. `reviews` maps an image's sha256 to its latest
review (ReviewStore.latest_reviews): reviews follow the image, whatever run or gate produced the row.
The PDF is drawn by the desktop app from the same HTML (Qt writes PDF without a new dependency).
"""

from __future__ import annotations

import csv
import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from core.decision.cascade import STOP_NOTE, STOPPED
from core.decision.results import ScreeningResult
from core.decision.vocabulary import (
    ALL_OUTCOMES,
    NOT_DERMOSCOPY,
    NOT_SCREENED,
    OUTCOMES,
    class_name,
    intake_level,
    outcome,
    outcome_label,
    review_choice,
)

if TYPE_CHECKING:  # for annotations only: the store and the patient records are not needed at run time
    from core.records.patients import AttachedIdentity
    from core.records.store import Review

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
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cascade_word(r: ScreeningResult) -> str:
    """ "stopped" (stage 1 of the cascade decided), "full" (the cascade ran, the whole ensemble decided), or ""
    (no cascade); a stored result keeps only its details, which say when stage 1 decided."""
    if r.cascade:
        return r.cascade
    return STOPPED if STOP_NOTE in r.details else ""


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
    from core.records.store import local_time  # lazy: keeps `import core.records.report` light for the CLI

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
            "review_time": _local(review.created) if review is not None else "",
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
    from core.common.paths import atomic_target, make_private_folder

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


# ------------------------------------------------------------------------------------ HTML report

REPORT_IMAGE_SIDE = 220  # px, longest side of each picture in the report


def _data_uri_jpeg(rgb) -> str:
    import base64

    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _report_pictures(result: ScreeningResult, thumbnail: bytes | None, with_heatmap: bool):
    """(picture, heat map overlay) as RGB arrays at report size, or (None, None) (see core.imaging.pictures). The map
    is the class's the outcome names when the result kept it, else the stored melanoma map."""
    from core.files.images import resize_longest_side
    from core.imaging.cam import overlay
    from core.imaging.pictures import case_picture

    pic = case_picture(result.path, result.sha256, thumbnail)
    if pic.rgb is None:
        return None, None
    rgb = resize_longest_side(pic.rgb, REPORT_IMAGE_SIDE, enlarge=False)
    cam, _ = result.heat_map(STORED_CAM_CLASS)
    heat = overlay(rgb, cam, 0.5) if (with_heatmap and cam is not None) else None
    return rgb, heat


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
    reviews: Mapping[str, Review] | None = None,
    *,
    private: bool = True,
) -> Path:
    """Write `report_html(...)` to `path` (UTF-8), whole or not at all, private (0600) unless
    `private=False`; returns the path."""
    from core.common.paths import make_private_folder, write_file_atomically

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
    from datetime import datetime

    from core.inference.manifest import DISCLAIMER

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
        pic, heat = _report_pictures(r, thumb, with_heatmaps and r.is_case) if r.ok else (None, None)
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
            + (f"<br>Most likely: <b>{likely}</b> · p(malignant) {p_mal}{p_mel}" if r.is_case or not r.ok else "")
            + f"<br><span class='small'>{html.escape(r.path)}</span></td>"
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


# ------------------------------------------------------------------- the run report, by patient

RUN_PICTURE_WIDTH = 110  # CSS px of each picture and heat map in a run report row


def _img(rgb, width: int) -> str:
    return f'<img src="{_data_uri_jpeg(rgb)}" width="{width}" alt="">' if rgb is not None else ""


def _identity_words(a) -> str:
    parts = [f"Patient {a.patient_id}"]
    if a.age is not None:
        parts.append(f"{a.age} y")
    if getattr(a, "sex", None):
        parts.append(a.sex)
    return " · ".join(parts)


def _run_row(r: ScreeningResult, thumb, a, review, made_by, with_heatmaps: bool, width: int) -> str:
    """One picture as a table row that is never split: picture, heat map, visit, outcome, reason, review."""
    unsigned = made_by is not None and made_by.unsigned
    case = r.is_case
    pic, heat = _report_pictures(r, thumb, with_heatmaps and case) if r.ok else (None, None)
    o = outcome(r.outcome_code if r.ok else None)
    words = result_words(r) + (" · UNSIGNED BUNDLE" if unsigned and r.ok else "")
    badge = (
        f"<span style='background:{o.colour};color:{o.text_colour};font-weight:bold'>&nbsp;{html.escape(words)}"
        "&nbsp;</span>"
    )
    lines = []
    if a is not None:  # every row says whose it is: a row at the top of a page has no heading above it
        visit = a.visit_date.isoformat() if a.visit_date else "visit date unknown"
        lines.append(f"<b>{html.escape(a.patient_id)} · lesion {html.escape(a.lesion_label)} · visit {visit}</b>")
    lines.append(badge)
    if r.reason:
        lines.append(html.escape(r.reason))
    if case and r.likely_class:
        p = "—" if r.p_malignant is None else f"{r.p_malignant:.3f}"
        likely = f"Most likely: <b>{html.escape(class_name(r.likely_class))}</b> · p(malignant) {p}"
        if r.intake == "unfamiliar":  # the diagnosis of a picture unlike the training images: secondary detail
            likely = f"<span class='small'>(secondary, on an unfamiliar picture) {likely}</span>"
        lines.append(likely)
    if r.confidence is not None:
        lines.append(
            f"<span class='small'>decided at confidence {r.confidence:g}{' (trial)' if r.trial else ''}</span>"
        )
    lines.append(f"<span class='small'>{html.escape(Path(r.path).name)}</span>")
    if review is not None:
        who = f"{html.escape(review.reviewer)}, {html.escape(_local(review.created))}"
        rev = f"<b>{html.escape(review.words)}</b><br>{who}"
        rev += f"<br><i>{html.escape(review.note)}</i>" if review.note else ""
    else:
        rev = "<span class='small'>not reviewed</span>" if case else ""
    cells = [f"<td width='{width}'>{_img(pic, width)}</td>"]
    if case:
        # Which class's map it is, said under it as the app does: the named class's, or (a result stored
        # before named maps, or re-decided to name another class) melanoma's, and then that it is not the named.
        caption = f"<br><span class='small'>{html.escape(heat_map_caption(r))}</span>" if heat is not None else ""
        cells.append(f"<td width='{width}'>{_img(heat, width)}{caption}</td>")
    cells.append(f"<td>{'<br>'.join(lines)}</td><td width='150'>{rev}</td>")
    mark = " class='unsigned'" if unsigned else ""
    return f"<table width='100%' class='row'{mark}><tr>{''.join(cells)}</tr></table>"


STORED_CAM_CLASS = "mel"  # the class of `cam`, the map every result keeps (core.decision.results)


def heat_map_caption(r: ScreeningResult, positive_class: str = STORED_CAM_CLASS) -> str:
    """e.g. "heat map of basal cell carcinoma"; for an older result whose outcome names another class:
    "heat map of melanoma (the map of X is not stored with this result)"."""
    from core.decision.results import named_class

    _, shown = r.heat_map(positive_class)
    named = named_class(r, positive_class)
    words = f"heat map of {class_name(shown)}"
    if named != shown:
        words += f" (the map of {class_name(named)} is not stored with this result)"
    return words


def camera_warning_html(clearing: Mapping | None) -> str:
    """The run's camera check and auto-clearing in words, in red, when the check fired or clearing was off
    (the reader must know before the first row); "" otherwise."""
    clearing = clearing or {}
    camera = clearing.get("camera_check") or {}
    if clearing.get("auto_clearing") != "off" and not camera.get("fired"):
        return ""
    measures = (
        f"<p class='small'>Camera check: {html.escape(str(camera['measures']))}</p>" if camera.get("measures") else ""
    )
    words = str(clearing.get("words") or camera.get("words") or "")
    return f"<p class='unsigned'>Camera check: {html.escape(words)}</p>{measures}"


def run_report(
    results: Sequence[ScreeningResult],
    thumbnails: Sequence[bytes | None] | None = None,
    identities: Mapping[str, AttachedIdentity] | None = None,
    reviews: Mapping[str, Review] | None = None,
    provenance=None,
    details: Mapping[str, str] | None = None,
    title: str = "MelaScreen screening report",
    with_heatmaps: bool = True,
    picture_width: int = RUN_PICTURE_WIDTH,
    clearing: Mapping | None = None,
):
    """A run's report a clinic can file (a core.records.patient_report.PagedReport: blocks never split across pages,
    the header on every page, "page x of y" by the PDF writer): patients ordered by their most urgent picture,
    each patient's lesions and visits together; then pictures with no patient, images to check (not
    dermoscopy: no class, probability, band or heat map) and files that could not be screened. The header and
    every page's footer say what made the results (core/records/provenance.py; UNSIGNED BUNDLE on every row too).
    `clearing` is the run's recorded camera check and auto-clearing (RunClearing.to_dict(), in the run's
    settings): when the check fired or clearing was off, its words come first, in red."""
    from datetime import datetime

    from core.inference.manifest import DISCLAIMER
    from core.records.patient_report import Block, PagedReport

    results = list(results)
    thumbs = list(thumbnails) if thumbnails is not None else [None] * len(results)
    identities = identities or {}
    reviews = reviews or {}
    thumb_of = {id(r): t for r, t in zip(results, thumbs)}
    made_by = provenance

    def row(r: ScreeningResult) -> Block:
        a = identities.get(r.sha256 or "")
        review = reviews.get(r.sha256) if r.sha256 else None
        return Block(_run_row(r, thumb_of.get(id(r)), a, review, made_by, with_heatmaps, picture_width))

    def heading(text: str, level: int = 2) -> Block:
        return Block(f"<h{level}>{html.escape(text)}</h{level}>", keep_with_next=True)

    cases = [r for r in results if r.is_case]
    filed = [r for r in cases if (r.sha256 or "") in identities]
    unfiled = [r for r in cases if (r.sha256 or "") not in identities]
    to_check = [r for r in results if r.ok and not r.is_case]
    failed = [r for r in results if not r.ok]

    def urgency(r: ScreeningResult) -> tuple:
        from core.decision.vocabulary import risk_rank

        p = r.p_malignant if r.p_malignant is not None else r.p_melanoma
        return (risk_rank(r.decision, r.band), -(p if p is not None else -1.0))

    patients: dict[str, list[ScreeningResult]] = {}
    for r in filed:
        patients.setdefault(identities[r.sha256 or ""].patient_id, []).append(r)
    blocks: list = []
    warning = camera_warning_html(clearing)
    if warning:
        blocks.append(Block(warning))
    counts = {o.code: 0 for o in ALL_OUTCOMES}
    for r in results:
        counts[r.outcome_code] += 1
    summary = " · ".join(f"{o.short}: {counts[o.code]}" for o in ALL_OUTCOMES if counts[o.code])
    n_reviewed = sum(1 for r in results if r.sha256 and r.sha256 in reviews)
    blocks.append(
        Block(
            f"<p>{len(results)} files ({html.escape(summary)}); {len(filed)} pictures filed under {len(patients)} "
            f"patients; reviewed by a clinician: {n_reviewed}. Patients with the most urgent picture first.</p>"
        )
    )
    for _pid, rs in sorted(patients.items(), key=lambda kv: (min(urgency(r) for r in kv[1]), kv[0])):
        blocks.append(heading(_identity_words(identities[rs[0].sha256 or ""])))
        lesions: dict[int, list[ScreeningResult]] = {}
        for r in rs:
            lesions.setdefault(identities[r.sha256 or ""].lesion_key, []).append(r)
        for _, ls in sorted(lesions.items(), key=lambda kv: (min(urgency(r) for r in kv[1]), kv[0])):
            a = identities[ls[0].sha256 or ""]
            site = f" · {a.body_site}" if a.body_site else ""
            # The patient id in every lesion heading: a lesion continued on the next page still says whose.
            blocks.append(heading(f"{a.patient_id} · lesion {a.lesion_label}{site}", 3))
            blocks.extend(
                row(r) for r in sorted(ls, key=lambda r: (identities[r.sha256 or ""].visit_date or date.max, r.path))
            )
    if unfiled:
        blocks.append(heading(f"Pictures with no patient ({len(unfiled)})"))
        blocks.extend(row(r) for r in sorted(unfiled, key=urgency))
    if to_check:
        blocks.append(heading(f"Images to check: {NOT_DERMOSCOPY.name} ({len(to_check)})"))
        blocks.extend(row(r) for r in to_check)
    if failed:
        blocks.append(heading(f"Files that could not be screened ({len(failed)})"))
        blocks.extend(Block(f"<p>{html.escape(Path(r.path).name)}: {html.escape(r.reason)}</p>") for r in failed)
    created = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z")
    made = made_by.line() if made_by is not None else "what made these results is not recorded"
    unsigned = made_by is not None and made_by.unsigned
    meta = "".join(
        f"<tr><td class='small'>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in (details or {}).items()
    )
    header = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='{'unsigned' if unsigned else 'small'}'>{html.escape(made)}</p>"
        f"<table>{meta}<tr><td class='small'>Report created</td><td>{created}</td></tr></table>"
        f"<p class='disclaimer'>{html.escape(DISCLAIMER)}</p>"
    )
    # Short enough to leave room for "page x of y" beside it; the header has the engine too.
    footer = (
        f"{made_by.bundle_name} {made_by.bundle_version}, {made_by.signature_text}, confidence "
        f"{made_by.confidence_text}"
        if made_by is not None
        else made
    )
    return PagedReport(title=title, header_html=header, blocks=tuple(blocks), footer=footer)


def write_run_report_html(report, path: str | Path, *, private: bool = True) -> Path:
    """A run report (run_report) as one self-contained HTML file, whole or not at all, private (0600)
    unless `private=False`."""
    from core.common.paths import atomic_target, make_private_folder

    path = Path(path)
    make_private_folder(path.parent, private)
    with atomic_target(path, private=private) as temp:
        temp.write_text(report.html(), encoding="utf-8")
    return path
