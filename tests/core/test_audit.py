"""The local audit (core/screening/audit.py) on a simulated clinic: screen a folder, import its labels as confirmed
diagnoses, audit; its figures equal evalkit's evaluation (training.evaluate) for the same images, bundle and gate."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from core.decision.gate import GateSettings, Thresholds
from core.decision.results import Decision
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble
from core.records.evidence import import_csv
from core.records.store import ReviewStore
from core.screening import GateChoice, Screener, screen_folder
from core.screening.audit import MIN_CASES, run_audit
from core.screening.audit_report import audit_html, write_audit_csv
from core.screening.holding import HELD_MARK, hold
from evalkit.evaluation import build_evaluation, triage_metrics
from evalkit.labelled import case
from evalkit.metrics import bootstrap_auc_ci, roc_auc
from evalkit.scoring import score_images

N = 24
LEVELS = list(range(30, 246, 9))[:N]  # dark to bright: the synthetic members' p(malignant) varies with it
DX = ["mel", "nv", "bcc", "nv", "bkl", "mel", "nv", "df", "akiec", "nv", "vasc", "mel",
      "nv", "other", "mel", "nv", "bkl", "bcc", "nv", "mel", "nv", "df", "nv", "mel"]  # fmt: skip
# A gate for the synthetic members (p(malignant) 0.40-0.57): some pictures are cleared, malignant ones too.
GATE = GateSettings(fitted={0.99: Thresholds(0.425, 0.5), 0.9: Thresholds(0.43, 0.49)}, max_member_spread=0.5)


@pytest.fixture(scope="module")
def simulated_clinic(synthetic_bundle, tmp_path_factory):
    from tests.support.synthetic_bundle import make_bundle

    folder = tmp_path_factory.mktemp("clinic")
    bundle_dir = make_bundle(tmp_path_factory.mktemp("audit-bundle") / "b", gate=GATE)
    for i, level in enumerate(LEVELS):
        rng = np.random.default_rng(i)
        img = np.clip(rng.normal(level, 45, (96, 96, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{i:02d}.png"), img)
    labels = folder.parent / f"{folder.name}-labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "diagnosis", "method", "date"])
        for i, dx in enumerate(DX):
            w.writerow([str(folder / f"img{i:02d}.png"), dx, "histopathology", "2026-11-30"])
    bundle = load_bundle(bundle_dir)
    db = folder.parent / f"{folder.name}.sqlite"
    with ReviewStore.open(db) as store:
        results, _ = screen_folder(Screener(bundle), folder, store)
        report = import_csv(store, labels, "test")
        assert not report.problems and len(report.imported) == N
        audit = run_audit(store, bundle)
    return bundle, folder, db, results, audit


def test_the_audit_equals_training_evaluate_on_the_same_images_bundle_and_gate(simulated_clinic):
    bundle, folder, _, results, audit = simulated_clinic
    (group,) = audit.groups
    f = group.figures
    ids = [f"img{i:02d}" for i in range(N)]
    scored = score_images(bundle, Ensemble(bundle), ids, folder)
    ev = build_evaluation(bundle, Ensemble(bundle), [case(i, dx) for i, dx in zip(ids, DX)], scored)
    t = triage_metrics(ev, n_bootstrap=2000)
    level = t["gate"][f"{bundle.manifest.gate.default_confidence:g}"]
    assert f["n"] == t["n_images"] == N and f["n_malignant"] == t["n_malignant"]
    assert f["malignant_cleared_n"] == level["malignant_auto_cleared_n"]
    assert f["melanoma_cleared_n"] == level["melanomas_auto_cleared_n"]
    assert f["benign_cleared_n"] == level["benign_cleared_n"]
    assert f["suspicious_n"] == level["suspicious_n"] and f["review_n"] == level["review_n"]
    assert f["malignant_auc"] == pytest.approx(t["malignant_auc"]["auc"], abs=1e-6)
    assert f["malignant_auc_ci95"] == pytest.approx(t["malignant_auc"]["ci95"], abs=1e-6)
    assert f["melanoma_auc"] == pytest.approx(t["melanoma_auc"]["auc"], abs=1e-6)
    # evalkit.metrics' AUC is core/common/auc.py's (one implementation): the same numbers on the stored outputs.
    mal = np.array([c.malignant for c in group.cases])
    p = np.array([c.result.p_malignant for c in group.cases])
    assert f["malignant_auc"] == roc_auc(mal, p)
    assert tuple(f["malignant_auc_ci95"]) == bootstrap_auc_ci(mal, p, None, 2000, 0)
    assert f["cleared_n"] == sum(r.decision is Decision.NO_CANCER_SUSPECTED for r in results) > 0


def test_a_cleared_malignancy_is_listed_first_in_red(simulated_clinic):
    _, _, _, results, audit = simulated_clinic
    names = {f"img{i:02d}.png" for i, dx in enumerate(DX) if dx in ("mel", "bcc", "akiec")}
    cleared = sorted(
        r.path for r in results if r.decision is Decision.NO_CANCER_SUSPECTED and r.path.rsplit("/", 1)[-1] in names
    )
    assert cleared and sorted(c.result.path for _, c in audit.missed) == cleared
    page = audit_html(audit)
    red = page.index("color:#c62828")
    assert red < min(page.index(p) for p in cleared) < page.index("p(malignant) AUC")
    assert "too few confirmed cases to conclude anything" in page  # 24 < MIN_CASES
    assert N < MIN_CASES


def test_the_what_if_table_regates_the_stored_probabilities(simulated_clinic):
    bundle, _, _, _, audit = simulated_clinic
    (group,) = audit.groups
    levels = [w["confidence"] for w in group.what_if]
    assert levels == sorted({bundle.manifest.gate.default_confidence, *bundle.manifest.gate.fitted})
    at_default = next(w for w in group.what_if if w["confidence"] == bundle.manifest.gate.default_confidence)
    assert at_default["malignant_cleared_n"] == group.figures["malignant_cleared_n"]
    assert at_default["benign_cleared_n"] == group.figures["benign_cleared_n"]


def test_the_csv_lists_cleared_malignancies_first(simulated_clinic, tmp_path):
    _, _, _, _, audit = simulated_clinic
    write_audit_csv(audit, tmp_path / "audit.csv")
    rows = list(csv.reader(open(tmp_path / "audit.csv")))
    n_missed = len(audit.missed)
    assert [r[13] for r in rows[1 : 2 + n_missed]] == ["1"] * n_missed + ["0"]


def test_auto_clearing_off_clears_nothing_and_the_audit_counts_what_it_held(simulated_clinic):
    bundle, folder, db, results, _ = simulated_clinic
    with ReviewStore.open(db) as store:
        held, summary = screen_folder(Screener(bundle), folder, store, gate=GateChoice(auto_clearing=False))
        audit = run_audit(store, bundle)
    assert not any(r.decision is Decision.NO_CANCER_SUSPECTED for r in held)
    would = [r for r in results if r.decision is Decision.NO_CANCER_SUSPECTED]
    assert sum(HELD_MARK in r.details for r in held) == len(would) > 0
    assert all(r.band == "low" and "auto-clearing off (" in r.reason for r in held if HELD_MARK in r.details)
    assert summary.clearing["auto_clearing"] == "off"
    off = next(g for g in audit.groups if g.figures["held_n"])
    on = next(g for g in audit.groups if not g.figures["held_n"])
    assert off.figures["cleared_n"] == 0 and off.figures["held_malignant_n"] == on.figures["malignant_cleared_n"] > 0
    assert sorted(c.result.sha256 for c in off.held_malignant) == sorted(c.result.sha256 for c in on.missed)
    assert off.what_if  # a held run is still re-gated from its stored probabilities
    assert hold(held[0], "x") == held[0]  # nothing left to hold


def test_since_leaves_out_results_made_before_it(simulated_clinic):
    from datetime import date, timedelta

    bundle, _, db, _, _ = simulated_clinic
    with ReviewStore.open(db) as store:
        assert run_audit(store, bundle, since=date.today() + timedelta(days=1), n_bootstrap=0).groups == ()
        assert run_audit(store, bundle, since=date.today(), n_bootstrap=0).groups


def test_evalkit_auc_is_core_auc():
    import core.common.auc
    import evalkit.metrics

    assert evalkit.metrics.roc_auc is core.common.auc.roc_auc
    assert evalkit.metrics.bootstrap_auc_ci is core.common.auc.bootstrap_auc_ci
