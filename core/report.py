"""Exporting results: one CSV row per file found."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from .results import ScreeningResult

CSV_COLUMNS = ("path", "status", "p_melanoma", "decision", "reason", "spread", "quality_flags", "sha256")


def csv_rows(results: Iterable[ScreeningResult], class_names: Iterable[str] = ()) -> Iterable[dict]:
    classes = list(class_names)
    for r in results:
        row = {
            "path": r.path,
            "status": r.status,
            "p_melanoma": f"{r.p_melanoma:.4f}" if r.p_melanoma is not None else "",
            "decision": r.decision.value if r.decision is not None else "",
            "reason": r.reason,
            "spread": f"{r.spread:.4f}" if r.spread is not None else "",
            "quality_flags": ";".join(r.quality.flags) if r.quality else "",
            "sha256": r.sha256 or "",
        }
        for c in classes:
            p = r.class_probs.get(c)
            row[f"p_{c}"] = f"{p:.4f}" if p is not None else ""
        yield row


def write_csv(results: Iterable[ScreeningResult], path: str | Path, class_names: Iterable[str] = ()) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = list(class_names)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*CSV_COLUMNS, *(f"p_{c}" for c in classes)])
        writer.writeheader()
        writer.writerows(csv_rows(results, classes))
    return path


# ------------------------------------------------------------------------------------ HTML report

_DECISION_STYLE = {
    "suspicious": ("SUSPICIOUS", "#c62828", "#fff"),
    "uncertain": ("UNCERTAIN", "#f9a825", "#000"),
    "benign": ("BENIGN", "#2e7d32", "#fff"),
    "error": ("NOT SCREENED", "#616161", "#fff"),
}
REPORT_IMAGE_SIDE = 220  # px, longest side of each picture in the report


def _data_uri_jpeg(rgb) -> str:
    import base64

    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _report_pictures(result: ScreeningResult, thumbnail: bytes | None, with_heatmap: bool):
    """(picture, heat map overlay) as RGB arrays at report size: from the file if it still matches,
    else from the stored thumbnail; (None, None) when neither is available."""
    import cv2
    import numpy as np

    from .cam import overlay
    from .errors import ImageReadError
    from .images import read_image

    rgb = None
    try:
        image = read_image(result.path)
        if not result.sha256 or image.sha256 == result.sha256:
            rgb = image.rgb
    except ImageReadError:
        pass
    if rgb is None and thumbnail:
        bgr = cv2.imdecode(np.frombuffer(thumbnail, dtype=np.uint8), cv2.IMREAD_COLOR)
        rgb = None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb is None:
        return None, None
    h, w = rgb.shape[:2]
    scale = min(1.0, REPORT_IMAGE_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    heat = overlay(rgb, result.cam, 0.5) if (with_heatmap and result.cam is not None) else None
    return rgb, heat


def write_html(
    results: Iterable[ScreeningResult],
    path: str | Path,
    thumbnails: Iterable[bytes | None] | None = None,
    title: str = "MelaScreen screening report",
    details: dict[str, str] | None = None,
    disclaimer: str = "",
    with_heatmaps: bool = True,
) -> Path:
    """A printable, self-contained HTML report: one row per file, with the picture and its heat map
    embedded as base64 JPEG (no side files to lose). `thumbnails` (parallel to `results`) is used
    when the original file can no longer be read; `details` are label/value lines for the header
    (run, folder, bundle, settings). Most urgent first: suspicious, uncertain, benign, errors."""
    import html
    from datetime import datetime, timezone

    from .bundle import DISCLAIMER

    results = list(results)
    thumbs = list(thumbnails) if thumbnails is not None else [None] * len(results)
    if len(thumbs) != len(results):
        raise ValueError(f"got {len(thumbs)} thumbnails for {len(results)} results; pass one (or None) per result")
    order = {"suspicious": 0, "uncertain": 1, "benign": 2, "error": 3}

    def key_of(r: ScreeningResult) -> str:
        return r.decision.value if (r.ok and r.decision is not None) else "error"

    counts = {k: 0 for k in order}
    for r in results:
        counts[key_of(r)] += 1
    rows = []
    ranked = sorted(zip(results, thumbs), key=lambda rt: (order[key_of(rt[0])], -(rt[0].p_melanoma or 0.0)))
    for r, thumb in ranked:
        key = key_of(r)
        label, bg, fg = _DECISION_STYLE[key]
        pic, heat = _report_pictures(r, thumb, with_heatmaps) if r.ok else (None, None)
        pic_html = f'<img src="{_data_uri_jpeg(pic)}" alt="image">' if pic is not None else '<span class="na">no picture</span>'
        heat_html = f'<img src="{_data_uri_jpeg(heat)}" alt="heat map">' if heat is not None else '<span class="na">—</span>'
        p = "—" if r.p_melanoma is None else f"{r.p_melanoma:.3f}"
        flags = ", ".join(r.quality.flags) if (r.quality and r.quality.flags) else ""
        extra = f"<br><span class='flags'>quality: {html.escape(flags)}</span>" if flags else ""
        if r.member_p:
            extra += f"<br><span class='small'>members: {', '.join(f'{x:.3f}' for x in r.member_p)}</span>"
        rows.append(
            "<tr>"
            f"<td class='pic'>{pic_html}</td><td class='pic'>{heat_html}</td>"
            f"<td><b>{html.escape(Path(r.path).name)}</b><br><span class='small'>{html.escape(r.path)}</span></td>"
            f"<td class='num'>{p}</td>"
            f"<td><span class='badge' style='background:{bg};color:{fg}'>{label}</span></td>"
            f"<td>{html.escape(r.reason)}{extra}</td>"
            "</tr>"
        )
    head_lines = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in (details or {}).items()
    )
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = " · ".join(f"{_DECISION_STYLE[k][0].title()}: {n}" for k, n in counts.items())
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; margin: 1.5em; color: #212121; }}
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
<tr><th>Files</th><td>{len(results)} ({summary})</td></tr></table>
<p class="small">Heat map: Grad-CAM of the melanoma score; red marks the regions that raised p(melanoma) most.
It shows where the models looked, not the outline of a lesion.</p>
<table class="results"><thead><tr><th>Image</th><th>Heat map</th><th>File</th><th>p(melanoma)</th>
<th>Decision</th><th>Reason</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table></body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
