"""A run's report a clinic can file, by patient (a core.records.paged.PagedReport: blocks never split across
pages, the header on every page, "page x of y" by the PDF writer): patients ordered by their most urgent
picture, each patient's lesions and visits together; then pictures with no patient, images to check (not
dermoscopy: no class, probability, band or heat map) and files that could not be screened. The header and
every page's footer say what made the results (core/records/provenance.py; UNSIGNED BUNDLE on every row too)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from core.common.paths import atomic_target, make_private_folder
from core.decision.results import ScreeningResult, risk_probability
from core.decision.vocabulary import ALL_OUTCOMES, NOT_DERMOSCOPY, class_name, outcome, risk_order
from core.inference.manifest import DISCLAIMER
from core.records.paged import Block, PagedReport
from core.records.patients import AttachedIdentity
from core.records.report import local_stamp, result_words
from core.records.report_pictures import data_uri_jpeg, heat_map_caption, report_pictures
from core.records.store import Review

RUN_PICTURE_WIDTH = 110  # CSS px of each picture and heat map in a run report row


def _img(rgb, width: int) -> str:
    return f'<img src="{data_uri_jpeg(rgb)}" width="{width}" alt="">' if rgb is not None else ""


def _identity_words(a) -> str:
    parts = [f"Patient {a.patient_id}"]
    if a.age is not None:
        parts.append(f"{a.age} y")
    if getattr(a, "sex", None):
        parts.append(a.sex)
    return " · ".join(parts)


def _urgency(r: ScreeningResult) -> tuple:
    return risk_order(r.decision, r.band, risk_probability(r))


def _case_lines(r: ScreeningResult, a, badge: str) -> list[str]:
    """Whose picture (every row says it: a row at the top of a page has no heading above it), the outcome,
    the reason, the most likely class, the confidence and the file's name."""
    lines = []
    if a is not None:
        visit = a.visit_date.isoformat() if a.visit_date else "visit date unknown"
        lines.append(f"<b>{html.escape(a.patient_id)} · lesion {html.escape(a.lesion_label)} · visit {visit}</b>")
    lines.append(badge)
    if r.reason:
        lines.append(html.escape(r.reason))
    if r.is_case and r.likely_class:
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
    return lines


def _run_row(r: ScreeningResult, thumb, a, review, made_by, with_heatmaps: bool, width: int) -> str:
    """One picture as a table row that is never split: picture, heat map, visit, outcome, reason, review."""
    unsigned = made_by is not None and made_by.unsigned
    case = r.is_case
    pic, heat = report_pictures(r, thumb, with_heatmaps and case) if r.ok else (None, None)
    o = outcome(r.outcome_code if r.ok else None)
    words = result_words(r) + (" · UNSIGNED BUNDLE" if unsigned and r.ok else "")
    badge = (
        f"<span style='background:{o.colour};color:{o.text_colour};font-weight:bold'>&nbsp;{html.escape(words)}"
        "&nbsp;</span>"
    )
    lines = _case_lines(r, a, badge)
    if review is not None:
        who = f"{html.escape(review.reviewer)}, {html.escape(local_stamp(review.created))}"
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


def _heading(text: str, level: int = 2) -> Block:
    return Block(f"<h{level}>{html.escape(text)}</h{level}>", keep_with_next=True)


def _patient_blocks(filed: Sequence[ScreeningResult], identities: Mapping[str, AttachedIdentity], row) -> list[Block]:
    """Patients with the most urgent picture first; in each, its lesions the same way, each lesion's pictures
    by visit date."""
    patients: dict[str, list[ScreeningResult]] = {}
    for r in filed:
        patients.setdefault(identities[r.sha256 or ""].patient_id, []).append(r)
    blocks: list[Block] = []
    for _pid, rs in sorted(patients.items(), key=lambda kv: (min(_urgency(r) for r in kv[1]), kv[0])):
        blocks.append(_heading(_identity_words(identities[rs[0].sha256 or ""])))
        lesions: dict[int, list[ScreeningResult]] = {}
        for r in rs:
            lesions.setdefault(identities[r.sha256 or ""].lesion_key, []).append(r)
        for _, ls in sorted(lesions.items(), key=lambda kv: (min(_urgency(r) for r in kv[1]), kv[0])):
            a = identities[ls[0].sha256 or ""]
            site = f" · {a.body_site}" if a.body_site else ""
            # The patient id in every lesion heading: a lesion continued on the next page still says whose.
            blocks.append(_heading(f"{a.patient_id} · lesion {a.lesion_label}{site}", 3))
            blocks.extend(
                row(r) for r in sorted(ls, key=lambda r: (identities[r.sha256 or ""].visit_date or date.max, r.path))
            )
    return blocks


def _count_block(results: Sequence[ScreeningResult], n_filed: int, n_patients: int, n_reviewed: int) -> Block:
    counts = {o.code: 0 for o in ALL_OUTCOMES}
    for r in results:
        counts[r.outcome_code] += 1
    summary = " · ".join(f"{o.short}: {counts[o.code]}" for o in ALL_OUTCOMES if counts[o.code])
    return Block(
        f"<p>{len(results)} files ({html.escape(summary)}); {n_filed} pictures filed under {n_patients} "
        f"patients; reviewed by a clinician: {n_reviewed}. Patients with the most urgent picture first.</p>"
    )


def _header_and_footer(made_by, details: Mapping[str, str] | None, title: str) -> tuple[str, str]:
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
    return header, footer


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
) -> PagedReport:
    """A run's report a clinic can file (see the module docstring). `provenance`: what made the results
    (core.records.provenance.Provenance). `clearing` is the run's recorded camera check and auto-clearing
    (RunClearing.to_dict(), in the run's settings): when the check fired or clearing was off, its words
    come first, in red."""
    results = list(results)
    thumbs = list(thumbnails) if thumbnails is not None else [None] * len(results)
    identities = identities or {}
    reviews = reviews or {}
    thumb_of = {id(r): t for r, t in zip(results, thumbs)}

    def row(r: ScreeningResult) -> Block:
        a = identities.get(r.sha256 or "")
        review = reviews.get(r.sha256) if r.sha256 else None
        return Block(_run_row(r, thumb_of.get(id(r)), a, review, provenance, with_heatmaps, picture_width))

    cases = [r for r in results if r.is_case]
    filed = [r for r in cases if (r.sha256 or "") in identities]
    unfiled = [r for r in cases if (r.sha256 or "") not in identities]
    to_check = [r for r in results if r.ok and not r.is_case]
    failed = [r for r in results if not r.ok]
    blocks: list[Block] = []
    warning = camera_warning_html(clearing)
    if warning:
        blocks.append(Block(warning))
    n_patients = len({identities[r.sha256 or ""].patient_id for r in filed})
    n_reviewed = sum(1 for r in results if r.sha256 and r.sha256 in reviews)
    blocks.append(_count_block(results, len(filed), n_patients, n_reviewed))
    blocks += _patient_blocks(filed, identities, row)
    if unfiled:
        blocks.append(_heading(f"Pictures with no patient ({len(unfiled)})"))
        blocks.extend(row(r) for r in sorted(unfiled, key=_urgency))
    if to_check:
        blocks.append(_heading(f"Images to check: {NOT_DERMOSCOPY.name} ({len(to_check)})"))
        blocks.extend(row(r) for r in to_check)
    if failed:
        blocks.append(_heading(f"Files that could not be screened ({len(failed)})"))
        blocks.extend(Block(f"<p>{html.escape(Path(r.path).name)}: {html.escape(r.reason)}</p>") for r in failed)
    header, footer = _header_and_footer(provenance, details, title)
    return PagedReport(title=title, header_html=header, blocks=tuple(blocks), footer=footer)


def write_run_report_html(report: PagedReport, path: str | Path, *, private: bool = True) -> Path:
    """A run report (run_report) as one self-contained HTML file, whole or not at all, private (0600)
    unless `private=False`."""
    path = Path(path)
    make_private_folder(path.parent, private)
    with atomic_target(path, private=private) as temp:
        temp.write_text(report.html(), encoding="utf-8")
    return path
