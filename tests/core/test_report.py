"""Exports a clinic files: the CSV and the HTML report carry outcomes in words and the clinicians' decisions."""

import csv
import hashlib

import cv2
import numpy as np

from core.decision.results import Decision, ScreeningResult
from core.records.html_report import report_html
from core.records.report import CSV_COLUMNS, by_risk, write_csv
from core.records.spreadsheet import spreadsheet_safe
from core.records.store import ReviewStore


def result(path, p_mal, decision, likely="nv", mal_class="mel", band=None, sha=None, reason="r"):
    return ScreeningResult(
        path=str(path),
        sha256=sha or hashlib.sha256(str(path).encode()).hexdigest(),
        status="ok",
        decision=decision,
        reason=reason,
        p_melanoma=p_mal / 2,
        member_p=(p_mal / 2,),
        spread=0.0,
        class_probs={"mel": p_mal / 2, "bcc": p_mal / 2, "nv": 1 - p_mal},
        p_malignant=p_mal,
        likely_class=likely,
        malignant_class=mal_class,
        band=band,
        details=f"p(malignant)={p_mal:.3f}",
    )


def test_spreadsheet_formulas_are_defused():
    for bad in ("=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert spreadsheet_safe(bad) == "'" + bad
    assert spreadsheet_safe("melanoma") == "melanoma" and spreadsheet_safe("") == ""


def test_csv_has_the_clinic_columns_highest_risk_first_with_the_reviews(tmp_path):
    rows_in = [
        result(tmp_path / "a.jpg", 0.02, Decision.NO_CANCER_SUSPECTED),
        result("=cmd.jpg", 0.93, Decision.SUSPICIOUS, likely="bcc", mal_class="bcc", reason="=1+1"),
        result(tmp_path / "c.jpg", 0.40, Decision.REVIEW, band="high"),
        ScreeningResult(path=str(tmp_path / "bad.png"), sha256=None, status="error", reason="not an image"),
    ]
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        run = store.start_run(str(tmp_path), "demo", "1", "key", {})
        ids = [store.add_result(run, r, "key") for r in rows_in]
        store.add_review(ids[2], "Dr A", "monitor", "=HYPERLINK()", 6)
        reviews = store.latest_reviews([r.sha256 for r in rows_in if r.sha256])
    out = write_csv(rows_in, tmp_path / "out.csv", ["mel", "bcc", "nv"], reviews)
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
        f.seek(0)
        raw = f.read()
    assert list(table[0])[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    assert list(CSV_COLUMNS[:12]) == [
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
    ]
    # Highest p(malignant) first, as the app sorts; errors last.
    assert [r["p_malignant"] for r in table] == ["0.9300", "0.4000", "0.0200", ""]
    top = table[0]
    assert top["path"] == "'=cmd.jpg" and top["reason"] == "'=1+1"
    assert top["outcome"] == "suspicious for basal cell carcinoma" and top["likely_class"] == "basal cell carcinoma"
    review_row = table[1]
    assert review_row["outcome"] == "review (high risk)" and review_row["band"] == "high"
    assert review_row["review_decision"] == "monitor (follow up in 6 months)" and review_row["reviewer"] == "Dr A"
    assert review_row["review_note"] == "'=HYPERLINK()"
    assert review_row["review_time"][-6] in "+-"  # local time with its offset
    assert table[2]["outcome"] == "no cancer suspected" and table[3]["outcome"] == "not screened"
    assert not any(
        line.startswith(("=", "+", "-", "@")) for cell_line in raw.splitlines() for line in cell_line.split(",")
    )


def test_html_report_lists_each_case_with_picture_outcome_and_decision(tmp_path):
    img = np.full((60, 80, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "lesion.png"), img)
    sha = hashlib.sha256((tmp_path / "lesion.png").read_bytes()).hexdigest()
    r1 = result(tmp_path / "lesion.png", 0.7, Decision.REVIEW, likely="mel", band="high", sha=sha)
    r2 = result(tmp_path / "gone.png", 0.95, Decision.SUSPICIOUS, likely="mel")

    class FakeReview:  # the shape of core.records.store.Review the report reads
        decision, words, reviewer, note, created = "excise", "excise / biopsy", "Dr B", "", "2026-11-25T20:46:42+00:00"

    doc = report_html([r1, r2], reviews={sha: FakeReview()})
    assert doc.index("gone.png") < doc.index("lesion.png")  # highest risk first
    assert "review (high risk)" in doc and "suspicious for melanoma" in doc
    assert "excise / biopsy" in doc and "Dr B" in doc and "not reviewed" in doc
    assert doc.count("data:image/jpeg;base64,") == 1  # the file that exists; the other has no picture
    assert [r.path for r in by_risk([r1, r2])] == [r2.path, r1.path]


def test_html_report_and_heat_map_png_are_written_whole_and_private(tmp_path):
    import stat

    from core.imaging.cam import write_png
    from core.records.html_report import write_html

    res = result("a.png", 0.2, Decision.REVIEW, band="low")
    html_path = write_html([res], tmp_path / "new" / "report.html", with_heatmaps=False)
    png = tmp_path / "map.png"
    write_png(png, np.zeros((8, 8, 3), np.uint8))
    assert stat.S_IMODE(html_path.stat().st_mode) == 0o600 and stat.S_IMODE(png.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert cv2.imread(str(png)).shape == (8, 8, 3) and "a.png" in html_path.read_text(encoding="utf-8")
    shared = write_html([res], tmp_path / "shared.html", with_heatmaps=False, private=False)
    assert stat.S_IMODE(shared.stat().st_mode) != 0o600  # 0666 less the umask, as the user chose
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left behind


def test_run_report_puts_a_fired_camera_check_first_in_red(tmp_path):
    from core.records.run_report import run_report

    rows = [result("a.png", 0.3, Decision.REVIEW, band="low")]
    fired = {
        "auto_clearing": "off",
        "words": "these images differ from the training images (yellower): expect more reviews; AUTO-CLEARING OFF",
        "camera_check": {"fired": True, "measures": "40 pictures; shift 6.10 (limit 4.5)"},
    }
    first = run_report(rows, clearing=fired).blocks[0].html
    assert "class='unsigned'" in first and "yellower" in first and "shift 6.10" in first
    passed = {"auto_clearing": "on", "words": "camera check passed", "camera_check": {"fired": False}}
    assert "Camera check" not in run_report(rows, clearing=passed).html()
    assert "Camera check" not in run_report(rows).html()
