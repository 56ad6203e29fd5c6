"""`melascreen outcome add|import` and `melascreen audit` (cli/evidence.py)."""

from __future__ import annotations

import cv2
import numpy as np

from cli.main import main
from core.inference.bundle import load_bundle
from core.records.store import ReviewStore
from core.screening import Screener, screen_folder


def test_outcome_add_import_and_audit(synthetic_bundle, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(3):
        img = np.clip(np.random.default_rng(i).normal(120, 40, (96, 96, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i}.png"), img)
    db = tmp_path / "r.sqlite"
    with ReviewStore.open(db) as store:
        screen_folder(Screener(load_bundle(synthetic_bundle)), folder, store)
    assert main(["outcome", "add", "--db", str(db), "--file", str(folder / "0.png"), "--diagnosis", "melanoma",
                 "--method", "histopathology", "--date", "2026-11-30", "--by", "AB"]) == 0  # fmt: skip
    assert "recorded: melanoma (histopathology on 2026-11-30)" in capsys.readouterr().out
    (tmp_path / "o.csv").write_text("file,diagnosis,method,date\nscans/1.png,nv,histopathology,\nscans/2.png,??,x,\n")
    assert main(["outcome", "import", "--db", str(db), "--by", "AB", str(tmp_path / "o.csv")]) == 1
    out = capsys.readouterr()
    assert "line 3: unknown diagnosis" in out.err and "imported 1 confirmed diagnoses" in out.out
    assert main(["audit", "--db", str(db), "--bundle", str(synthetic_bundle), "--out", str(tmp_path / "a.html")]) == 0
    out = capsys.readouterr().out
    assert "too few confirmed cases" in out and (tmp_path / "a.html").read_text().count("<table") >= 1
    assert main(["audit", "--db", str(db), "--out", str(tmp_path / "a.txt")]) == 2
