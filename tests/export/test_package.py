"""A tiny training run -> calibrated bundle -> loaded and screened through core."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export tests need the train extra (torch, timm, grad-cam)")
timm = pytest.importorskip("timm")

from core.decision.results import Decision  # noqa: E402
from core.inference.bundle import load_bundle  # noqa: E402
from core.inference.calibration import softmax  # noqa: E402
from core.screening import Screener  # noqa: E402
from evalkit.metrics import roc_auc  # noqa: E402
from export.calibrate import CONFIDENCES  # noqa: E402
from export.onnx_export import read_member_metadata  # noqa: E402
from export.package import EVALUATION_BEGIN, EVALUATION_END, main, package  # noqa: E402
from tests.support.synthetic_bundle import TEST_SIGNING_KEY  # noqa: E402

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "dermoscopy"
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
SIZE = 64
SEEDS = (0, 1)


def pick_cases() -> list[dict]:
    """Twelve validation images (four melanoma) and a few train/test rows, from the shared labels."""
    with open(DATA / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    mel = [r for r in rows if r["dx"] == "mel"][:4]
    other = [r for r in rows if r["dx"] != "mel"][:8]
    cases = [{**r, "split": "val"} for r in mel + other]
    cases += [{**r, "split": s} for r, s in zip(rows[-4:], ("train", "train", "test", "test"))]
    return cases


def make_run(run_dir: Path) -> Path:
    """What training/train.py leaves behind: split.csv and member-<seed>/best.pt (export_record keys)."""
    run_dir.mkdir(parents=True)
    split = run_dir / "split.csv"
    with open(split, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "lesion_id", "dx", "melanoma", "split"])
        for r in pick_cases():
            w.writerow([r["image_id"], r["lesion_id"], r["dx"], int(r["dx"] == "mel"), r["split"]])
    config = {
        "data": {"images_dir": str(DATA / "images"), "input_size": SIZE, "augment": "flips"},
        "model": {"arch": "convnext_atto", "pretrained_path": "none", "drop_rate": 0.0},
        "phase1": {"epochs": 1, "lr": 0.001, "batch_size": 8},
    }
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = timm.create_model("convnext_atto", pretrained=False, num_classes=len(CLASSES))
        with torch.no_grad():  # ConvNeXt layer scale starts at 1e-6: make the blocks matter
            for name, p in model.named_parameters():
                if name.endswith("gamma"):
                    p.fill_(0.2)
        (run_dir / f"member-{seed}").mkdir()
        torch.save(
            {
                "state_dict": model.state_dict(),
                "arch": "convnext_atto",
                "num_classes": len(CLASSES),
                "class_names": list(CLASSES),
                "input_size": SIZE,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "preprocess": {"working_size": 256},
                "seed": seed,
                "val_metrics": {
                    "val_loss": 1.0,
                    "val_mel_auc": 0.5,
                    "val_balanced_accuracy": 0.2,
                    "phase": 1,
                    "epoch": 1,
                },
                "config": config,
            },
            run_dir / f"member-{seed}" / "best.pt",
        )
    return run_dir


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    if not (DATA / "labels.csv").is_file():
        pytest.fail(f"the shared data set is missing at {DATA}; these tests screen real images")
    tmp = tmp_path_factory.mktemp("pkg")
    run = make_run(tmp / "run")
    return package(
        run,
        tmp / "bundle",
        weights_dtype="float16",
        workers=1,
        version="test",
        sign_key=TEST_SIGNING_KEY,
        save_logits=tmp / "val-logits.npz",
    )


def test_bundle_loads_with_verified_members_and_fitted_calibration(bundle_dir):
    bundle = load_bundle(bundle_dir)  # verifies every checksum
    m = bundle.manifest
    assert [mem.file for mem in m.members] == ["member-0.onnx", "member-1.onnx"]
    assert m.class_names == CLASSES and m.positive_class == "mel" and m.input_size == SIZE
    assert m.preprocessing.working_size == 256  # from the checkpoint, not the default
    assert set(m.gate.fitted) == set(CONFIDENCES)
    for mem in m.members:
        assert mem.temperature > 0 and mem.val_metrics["calibration_cases"] == 12
        assert mem.val_metrics["nll_after_temperature"] <= mem.val_metrics["nll_before_temperature"] + 1e-9
        assert read_member_metadata(bundle.member_path(mem))["weights_dtype"] == "float16"
    prov = m.provenance
    assert prov["split_sha256"] and prov["git"]["commit"] and prov["versions"]["torch"] == torch.__version__
    assert prov["calibration"]["split"] == "val" and prov["calibration"]["n"] == 12
    parity = prov["export"]["parity"]
    assert len(parity) == 2 and all(p["logits_max_abs"] <= 1e-4 and p["cam_max_abs"] <= 1e-4 for p in parity)
    assert "validation images" in parity[0]["input_kinds"] and "rounded" in parity[0]["reference"]
    assert not Path(str(bundle_dir) + ".unfitted").exists()


def test_the_validation_logits_are_saved_for_a_later_refit(bundle_dir):
    """What export.refit --raw-npz reads: ids and dx of the validation images, member logits N x M x K
    that give back the calibration's p(melanoma) with the fitted temperatures."""
    data = np.load(bundle_dir.parent / "val-logits.npz")
    m = load_bundle(bundle_dir).manifest
    assert data["logits"].shape == (12, 2, len(CLASSES)) and len(data["ids"]) == len(data["dx"]) == 12
    temps = np.array([mem.temperature for mem in m.members], np.float32)
    p = softmax(data["logits"].transpose(1, 0, 2) / temps[:, None, None])[:, :, CLASSES.index("mel")].mean(0)
    assert m.provenance["calibration"]["ensemble_validation"]["mel_auc"] == pytest.approx(
        roc_auc(data["dx"] == "mel", p), abs=1e-6
    )


def test_model_card_leaves_a_marked_section_for_the_evaluation(bundle_dir):
    card = (bundle_dir / "model_card.md").read_text()
    assert card.index(EVALUATION_BEGIN) < card.index(EVALUATION_END)
    assert "not an approved medical device" in card and "validation" in card.lower()
    assert "member-0.onnx" in card and "0.99" in card


def test_bundle_screens_a_real_image_through_core(bundle_dir):
    image = DATA / "images" / f"{pick_cases()[0]['image_id']}.jpg"
    result, thumbnail = Screener(load_bundle(bundle_dir)).screen_image(image)
    assert result.status == "ok" and result.decision in set(Decision)
    assert 0.0 <= result.p_melanoma <= 1.0 and len(result.member_p) == 2
    assert result.cam.shape == (result.height, result.width) and thumbnail


def test_bundle_stays_small(bundle_dir):
    total = sum(p.stat().st_size for p in bundle_dir.iterdir())
    assert total < 2 * 8e6  # two fp16 convnext_atto members, about 7 MB each


def test_cli_reports_a_run_without_checkpoints(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--run", str(tmp_path / "empty"), "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path):
    from export.package import PackagingError

    keep = tmp_path / "documents"
    keep.mkdir()
    (keep / "notes.txt").write_text("not a bundle")
    with pytest.raises(PackagingError, match="not a bundle"):
        package(make_run(tmp_path / "run"), keep)
    assert (keep / "notes.txt").read_text() == "not a bundle"


def test_named_members_are_found_and_a_missing_one_is_named(tmp_path):
    from export.package import PackagingError, find_checkpoints

    for name in ("member-1", "member-2", "early-member-0"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "best.pt").write_bytes(b"x")
    assert [p.parent.name for p in find_checkpoints(tmp_path)] == ["member-1", "member-2"]
    chosen = find_checkpoints(tmp_path, ["early-member-0", "member-2"])
    assert [p.parent.name for p in chosen] == ["early-member-0", "member-2"]
    with pytest.raises(PackagingError, match="member-7"):
        find_checkpoints(tmp_path, ["member-7"])


def test_two_snapshot_chains_with_one_seed_get_their_own_files_and_card_lines(tmp_path):
    """Two chains' snapshots can record the same cycle as seed: files are named by position, and the
    model card names each chain's starting checkpoint."""
    import shutil

    run = make_run(tmp_path / "run")
    shutil.copytree(run / "member-0", run / "other-chain-member-0")
    for folder, init in (("member-0", "chain-a/best.pt"), ("other-chain-member-0", "chain-b/best.pt")):
        record = torch.load(run / folder / "best.pt", map_location="cpu", weights_only=True)
        record["val_metrics"] = {**record["val_metrics"], "snapshot_cycle": 1, "init": init}
        torch.save(record, run / folder / "best.pt")
    bundle = load_bundle(
        package(run, tmp_path / "bundle", members=["member-0", "other-chain-member-0"]), allow_unsigned=True
    )
    assert [(m.file, m.seed) for m in bundle.manifest.members] == [("member-0.onnx", 0), ("member-1.onnx", 0)]
    assert {p.name for p in (tmp_path / "bundle").glob("*.onnx")} == {"member-0.onnx", "member-1.onnx"}
    assert "continued from `chain-a/best.pt`: cycle 1" in bundle.model_card
    assert "continued from `chain-b/best.pt`: cycle 1" in bundle.model_card
    assert "| member-1.onnx | cycle 1 from chain-b |" in bundle.model_card
    # Relative to the run folder: a bundle carries no absolute path of the machine that built it.
    assert bundle.manifest.provenance["checkpoints"] == ["member-0/best.pt", "other-chain-member-0/best.pt"]
    assert not any(str(tmp_path) in json.dumps(v) for v in bundle.manifest.provenance.values())
    from export.onnx_export import read_member_metadata

    assert read_member_metadata(tmp_path / "bundle" / "member-1.onnx")["checkpoint"] == "run/other-chain-member-0"
