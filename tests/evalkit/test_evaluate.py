"""evalkit.evaluate (also run as `python -m training.evaluate`): the report folder a person opens, and the
metrics it is built from.

No torch: the bundle is tests/support/synthetic_bundle.py's ONNX ensemble (it calls dark lesions
melanoma), the images are small synthetic dermoscopy-like pictures written to tmp_path.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the evaluation report's figures need matplotlib (train extra)")

from sklearn.metrics import balanced_accuracy_score, roc_auc_score  # noqa: E402
from sklearn.metrics import roc_curve as sk_roc_curve  # noqa: E402

from evalkit import evaluate as ev  # noqa: E402
from evalkit.figures import FIGURES  # noqa: E402
from evalkit.labelled import LabelsError, read_cases  # noqa: E402
from evalkit.metrics import (  # noqa: E402
    balanced_accuracy,
    bootstrap_auc_ci,
    brier_score,
    clearing_curve,
    expected_calibration_error,
    gate_metrics,
    reliability_bins,
    roc_auc,
    roc_curve,
    selective_risk_curve,
)

# ---------------------------------------------------------------------------------- metrics


def test_auc_by_hand_and_against_sklearn():
    # Pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3 of 4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))  # one class: undefined, not 0 or 1
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.2
    s = np.round(rng.random(300) + 0.4 * y, 1)  # rounding makes many ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr = roc_curve(y, s)
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_balanced_accuracy_by_hand_and_against_sklearn():
    truth = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2])
    # recalls 3/4, 1/2, 1/1
    assert balanced_accuracy(truth, pred) == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 7, 200), rng.integers(0, 7, 200)
    assert balanced_accuracy(t, p) == pytest.approx(balanced_accuracy_score(t, p))
    # Images whose diagnosis is not one of the model's classes (-1) are left out.
    assert balanced_accuracy(np.r_[truth, -1], np.r_[pred, 3]) == pytest.approx(balanced_accuracy(truth, pred))


def test_ece_and_brier_by_hand():
    p = np.array([0.05, 0.05, 0.95, 0.95])
    y = np.array([0, 1, 1, 1])
    # Bin 0: predicted 0.05, observed 0.5 (2 images); bin 14: predicted 0.95, observed 1 (2 images).
    assert expected_calibration_error(y, p, 15) == pytest.approx((2 * 0.45 + 2 * 0.05) / 4)
    bins = reliability_bins(y, p, 15)
    assert bins.counts.sum() == 4 and bins.counts[0] == 2 and bins.counts[14] == 2
    assert brier_score(y, p) == pytest.approx((0.05**2 + 0.95**2 + 0.05**2 + 0.05**2) / 4)
    # p == 1 falls in the last bin, not outside.
    assert reliability_bins([1], [1.0], 15).counts[14] == 1
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == 0.0


def test_gate_metrics_counts_the_dangerous_number_over_all_melanomas():
    decisions = ["benign", "uncertain", "suspicious", "suspicious", "benign", "benign", "uncertain", "suspicious"]
    mel = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    g = gate_metrics(decisions, mel)
    assert g["counts"] == {"benign": 3, "uncertain": 2, "suspicious": 3}
    assert g["melanomas_auto_cleared_n"] == 1
    assert g["melanomas_auto_cleared_share"] == pytest.approx(1 / 4)
    assert g["benign_auto_cleared_share"] == pytest.approx(2 / 4)
    assert g["sensitivity_sent_to_human"] == pytest.approx(3 / 4)
    assert g["review_n"] == 5 and g["review_share"] == pytest.approx(5 / 8)
    co = g["confident_only"]
    # Confident cases: 3 benign + 3 suspicious; melanomas among them: 1 cleared + 2 suspicious.
    assert co["coverage"] == pytest.approx(6 / 8)
    assert co["melanoma_precision"] == pytest.approx(2 / 3)
    assert co["melanoma_recall"] == pytest.approx(2 / 3)
    assert g["all_cases"]["melanoma_recall_suspicious_only"] == pytest.approx(2 / 4)
    assert g["all_cases"]["melanoma_share_of_review_queue"] == pytest.approx(3 / 5)
    empty = gate_metrics(["benign"], np.array([False]))
    assert empty["melanomas_auto_cleared_share"] is None  # no melanoma: undefined, not 0 %


def test_lesion_bootstrap_is_not_fooled_by_duplicate_images():
    rng = np.random.default_rng(2)
    y = rng.random(80) < 0.3
    s = rng.random(80) + 0.5 * y
    per_image = bootstrap_auc_ci(y, s, None, n_resamples=300, seed=0)
    assert per_image[0] < roc_auc(y, s) < per_image[1]
    # Five images of every lesion: resampling lesions gives the same interval as the
    # de-duplicated set; resampling images pretends there is five times the evidence.
    y5, s5, lesions = np.repeat(y, 5), np.repeat(s, 5), np.repeat([f"L{i:03d}" for i in range(80)], 5)
    grouped = bootstrap_auc_ci(y5, s5, lesions, n_resamples=300, seed=0)
    naive = bootstrap_auc_ci(y5, s5, None, n_resamples=300, seed=0)
    assert grouped == pytest.approx(per_image)
    assert naive[1] - naive[0] < 0.7 * (grouped[1] - grouped[0])


def test_risk_curves_by_hand():
    p = np.array([0.01, 0.02, 0.03, 0.5, 0.9])
    mel = np.array([False, True, False, False, True])
    clearable = np.array([True, True, True, False, True])
    coverage, rate, missed = clearing_curve(p, mel, clearable)
    np.testing.assert_allclose(coverage, [1 / 5, 2 / 5, 3 / 5, 4 / 5])
    np.testing.assert_allclose(rate, [0, 1 / 2, 1 / 3, 2 / 4])
    np.testing.assert_allclose(missed, [0, 1 / 2, 1 / 2, 1])
    cov, risk = selective_risk_curve(p, mel)
    # Confidence order: 0.01, 0.02, 0.03, 0.9, 0.5; wrong: 0.02 (mel called not), 0.5 (not called mel).
    np.testing.assert_allclose(cov, [0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(risk, [0, 1 / 2, 1 / 3, 1 / 4, 2 / 5])


# ------------------------------------------------------------------------------ labelled set


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_read_cases_split_file_and_plain_labels(tmp_path):
    split = tmp_path / "split.csv"
    _write_csv(
        split,
        ["image_id", "lesion_id", "dx", "melanoma", "split"],
        [["a", "L1", "mel", 1, "test"], ["b", "L2", "nv", 0, "train"], ["c", "L2", "nv", 0, "test"]],
    )
    cases, used = read_cases(split, "test")
    assert [c.image_id for c in cases] == ["a", "c"] and "test" in used
    assert cases[0].melanoma and not cases[1].melanoma and cases[1].lesion_id == "L2"
    with pytest.raises(LabelsError, match="no rows in split 'val'"):
        read_cases(split, "val")
    plain = tmp_path / "labels.csv"
    _write_csv(plain, ["image_id", "dx"], [["x", "mel"], ["y", "bkl"]])
    cases, used = read_cases(plain, "test")  # no split column: every row, and it says so
    assert [c.melanoma for c in cases] == [True, False] and "no split column" in used
    bad = tmp_path / "bad.csv"
    _write_csv(bad, ["file", "label"], [["x", 1]])
    with pytest.raises(LabelsError, match="image_id"):
        read_cases(bad)


# ------------------------------------------------------------------------------ the report


def _lesion_image(rng, darkness: int, radius: int) -> np.ndarray:
    """A 64 px 'lesion' on skin, textured enough to pass the sharpness check."""
    img = np.full((64, 64, 3), (205, 175, 160), np.uint8)
    centre = tuple(int(v) for v in rng.integers(28, 36, 2))
    cv2.circle(img, centre, radius, (darkness, int(darkness * 0.7), int(darkness * 0.5)), -1)
    noise = rng.integers(-50, 50, (64, 64, 1))
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """20 images: 8 melanomas (dark), 12 others (light), split test/train, some lesions twice."""
    root = tmp_path_factory.mktemp("labelled")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    rows = []
    for i in range(20):
        mel = i < 8
        # Big dark lesions for melanomas, as the synthetic members expect; some overlap on purpose.
        darkness = int(rng.integers(0, 60)) if mel else int(rng.integers(40, 230))
        radius = int(rng.integers(18, 29)) if mel else int(rng.integers(10, 24))
        iid = f"IMG_{i:03d}"
        image = _lesion_image(rng, darkness, radius)
        cv2.imwrite(str(images / f"{iid}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        dx = "mel" if mel else ("nv", "bkl", "bcc")[i % 3]
        rows.append([iid, f"LES_{i // 2}", dx, int(mel), "train" if i in (3, 9, 10) else "test"])
    (images / "IMG_019.jpg").write_bytes(b"not a jpeg at all")  # an unreadable file is reported, not fatal
    split = root / "split.csv"
    _write_csv(split, ["image_id", "lesion_id", "dx", "melanoma", "split"], rows)
    return root, split


def test_report_folder_holds_metrics_and_every_figure(synthetic_bundle, labelled_folder, tmp_path, capsys):
    root, split = labelled_folder
    out = tmp_path / "report"
    argv = [
        "--bundle",
        str(synthetic_bundle),
        "--split-file",
        str(split),
        "--split",
        "test",
        "--out",
        str(out),
        "--images",
        str(root / "images"),
        "--bootstrap",
        "200",
        "--provider",
        "cpu",
    ]
    assert ev.main(argv) == 0
    printed = capsys.readouterr()
    assert "Melanomas auto-cleared as benign" in printed.out and "Confident cases only" in printed.out
    assert "scoring 17 images" in printed.err

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 16 and metrics["n_failed"] == 1  # 17 test rows, one unreadable
    assert "IMG_019" in metrics["failed"] and "not a picture" in metrics["failed"]["IMG_019"]
    assert metrics["n_melanomas"] == 7
    auc = metrics["melanoma_auc"]
    assert 0.5 < auc["ensemble"] <= 1.0  # the synthetic members do call dark lesions melanoma
    lo, hi = auc["ensemble_ci95"]
    assert lo <= auc["ensemble"] <= hi and "lesions" in auc["ci_method"]
    assert len(auc["members"]) == 2
    for key in ("balanced_accuracy_7class", "ece", "brier", "n_lesions"):
        assert metrics[key] is not None
    g = metrics["gate"]["0.99"]
    assert metrics["gate_default_confidence"] == 0.99 and g["fitted_on_validation"]
    assert sum(g["counts"].values()) == 16
    for key in (
        "melanomas_auto_cleared_share",
        "benign_auto_cleared_share",
        "sensitivity_sent_to_human",
        "review_n",
        "review_share",
        "confident_only",
        "all_cases",
    ):
        assert key in g
    assert g["confident_only"]["coverage"] is not None

    # The numbers agree with the per-image table the report writes beside them.
    with open(out / "predictions.csv", newline="") as f:
        table = [r for r in csv.DictReader(f) if r["decision"] != "error"]
    mel_cleared = sum(r["melanoma"] == "1" and r["decision"] == "benign" for r in table)
    assert g["melanomas_auto_cleared_n"] == mel_cleared
    y = np.array([r["melanoma"] == "1" for r in table])
    assert auc["ensemble"] == pytest.approx(roc_auc_score(y, [float(r["p_melanoma"]) for r in table]), abs=1e-4)

    for name in FIGURES:
        png = cv2.imread(str(out / name))
        assert png is not None and png.shape[0] > 100 and png.shape[1] > 100, name
        assert png.std() > 10, f"{name} is blank"
    summary = (out / "summary.md").read_text()
    assert "![" in summary and "auto-cleared" in summary

    # Redrawing from the cache scores nothing again and gives the same numbers.
    stamp = (out / ev.CACHE_FILE).stat().st_mtime_ns
    (out / "roc.png").unlink()
    assert ev.main(argv + ["--reuse"]) == 0
    assert "scoring" not in capsys.readouterr().err
    assert (out / ev.CACHE_FILE).stat().st_mtime_ns == stamp
    assert json.loads((out / "metrics.json").read_text())["melanoma_auc"] == auc
    assert cv2.imread(str(out / "roc.png")) is not None


def test_reuse_refuses_a_cache_from_another_bundle(synthetic_bundle, labelled_folder, tmp_path, capsys):
    from tests.support.synthetic_bundle import make_bundle

    root, split = labelled_folder
    out = tmp_path / "report"
    base = [
        "--split-file",
        str(split),
        "--out",
        str(out),
        "--images",
        str(root / "images"),
        "--bootstrap",
        "0",
        "--limit",
        "4",
        "--provider",
        "cpu",
    ]
    assert ev.main(["--bundle", str(synthetic_bundle), *base]) == 0
    other = make_bundle(tmp_path / "other", members=3)
    assert ev.main(["--bundle", str(other), *base, "--reuse"]) == 2
    assert "another bundle" in capsys.readouterr().err


def test_evaluation_runs_without_torch():
    """The lead may evaluate on a machine with only the app's dependencies and matplotlib."""
    code = "import sys, training.evaluate, evalkit.evaluate; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def test_the_evaluation_command_keeps_its_name():
    """README, the recipes and the model cards name `python -m training.evaluate`: it is evalkit's command."""
    run = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--help"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: python -m training.evaluate")


def test_model_card_section_is_replaced_with_the_test_figures(tmp_path, monkeypatch):
    from core.inference.bundle import EVALUATION_BEGIN, EVALUATION_END, load_bundle
    from evalkit.model_card import update_model_card
    from tests.support.synthetic_bundle import make_bundle

    root = make_bundle(tmp_path / "b")
    bundle = load_bundle(root)  # before editing the card: it is signed, and editing it is the point here
    card = root / "model_card.md"
    card.write_text(f"# Card\n\n## Test-set evaluation\n{EVALUATION_BEGIN}\n_not yet_\n{EVALUATION_END}\n\n## After\n")
    metrics = {"placeholder": True}
    from evalkit import report

    # The figures' wording is summary_markdown's (tested above); here: where they land.
    monkeypatch.setattr(report, "summary_markdown", lambda m, b, u: ["- melanoma AUC 0.5 (test)"])
    update_model_card(card, metrics, bundle, "test rows", "python -m training.evaluate --x")
    update_model_card(card, metrics, bundle, "test rows", "python -m training.evaluate --y")
    text = card.read_text()
    assert "_not yet_" not in text and text.count(EVALUATION_BEGIN) == 1 and "## After" in text
    assert "--y" in text and "--x" not in text and "melanoma AUC 0.5 (test)" in text


def test_several_sets_in_one_report_and_raw_outputs_rescored(
    synthetic_bundle, labelled_folder, tmp_path, monkeypatch, capsys
):
    """--sets writes a column per set; --raw-npz re-scores logits computed elsewhere, with no model run."""
    from evalkit import evaluate as cli

    root, split = labelled_folder
    plain = tmp_path / "labels.csv"
    rows = list(csv.DictReader(open(split)))
    _write_csv(plain, ["image_id", "dx", "melanoma"], [[r["image_id"], r["dx"], r["melanoma"]] for r in rows])
    sets = {
        "ham10000": cli.LabelledSet("ham10000", split, root / "images", "test"),
        "derm7pt": cli.LabelledSet("derm7pt", plain, root / "images", None),
    }
    monkeypatch.setattr(cli, "TEST_SETS", sets)
    out = tmp_path / "multi"
    base = ["--bundle", str(synthetic_bundle), "--out", str(out), "--bootstrap", "50", "--provider", "cpu"]
    assert ev.main([*base, "--sets", "ham10000,derm7pt"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["sets"]
    assert set(metrics) == {"ham10000", "derm7pt"}
    d7 = metrics["derm7pt"]
    assert d7["n_images"] == 19 and d7["n_melanomas"] == 8 and d7["n_malignant"] == 8 + 4  # bcc are i % 3 == 2
    g = d7["gate"]["0.99"]
    assert sum(g["review_by_band"].values()) == g["review_n"]
    assert set(g["auto_cleared_share_by_class"]) == {"akiec", "bcc", "mel"}
    summary = (out / "summary.md").read_text()
    assert "| ham10000 | derm7pt |" in summary and "all malignancies auto-cleared" in summary

    # The same logits as a lead's raw file (N x members x classes): identical numbers, no images read.
    with np.load(out / "derm7pt" / ev.CACHE_FILE) as z:
        ids, logits = z["image_ids"], z["member_logits"]
    raw = tmp_path / "raw.npz"
    dx_of = {r["image_id"]: r["dx"] for r in rows}
    np.savez(raw, ids=ids, dx=np.array([dx_of[str(i)] for i in ids]), logits=logits.transpose(1, 0, 2))
    again = tmp_path / "again"
    monkeypatch.setattr(cli, "score_images", lambda *a, **k: pytest.fail("the models ran"))
    assert (
        ev.main(
            [
                *base[:2],
                "--out",
                str(again),
                "--bootstrap",
                "50",
                "--provider",
                "cpu",
                "--sets",
                "derm7pt",
                "--raw-npz",
                f"derm7pt={raw}",
            ]
        )
        == 0
    )
    rescored = json.loads((again / "metrics.json").read_text())["sets"]["derm7pt"]
    assert rescored["melanoma_auc"] == d7["melanoma_auc"] and rescored["gate"]["0.99"]["review_n"] == g["review_n"]
    assert ev.main([*base, "--sets", "derm7pt", "--raw-npz", str(raw)]) == 2  # a set name is required
    # An evaluation's own cache works as raw outputs too (quality flags kept): same numbers again.
    own = tmp_path / "own"
    assert (
        ev.main(
            [
                *base[:2],
                "--out",
                str(own),
                "--bootstrap",
                "50",
                "--provider",
                "cpu",
                "--sets",
                "derm7pt",
                "--raw-npz",
                f"derm7pt={out / 'derm7pt' / ev.CACHE_FILE}",
            ]
        )
        == 0
    )
    assert json.loads((own / "metrics.json").read_text())["sets"]["derm7pt"]["gate"] == d7["gate"]
    # Two reports side by side: the model card's comparison table.
    from evalkit.compare import main as compare

    capsys.readouterr()
    assert compare([str(out), str(own)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| bundle | ham10000 mel AUC") and len(table) == 4
    assert "not scored" in table[3]  # the second report scored derm7pt only
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, ids=ids, dx=np.array(["nv"] * len(ids)), logits=logits.transpose(1, 0, 2))
    assert ev.main([*base, "--sets", "derm7pt", "--raw-npz", f"derm7pt={wrong}"]) == 2  # labels disagree
