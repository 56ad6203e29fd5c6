"""Issue 16: training on several sources. ISIC 2017 images carry only mel/nv/bkl labels, so their
loss runs over those classes only; every source's classes are capped in a balanced epoch; the run
records its sources; a shipped bundle's members can be read back as the starting weights."""

import csv
from pathlib import Path

import numpy as np
import pytest
from tiny_labels import write_labels

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from training import snapshots, train  # noqa: E402
from training.config import load_config  # noqa: E402
from training.data import CLASS_NAMES, balanced_rows  # noqa: E402
from training.distributed import init_distributed  # noqa: E402
from training.from_bundle import MemberWeightsError, load_member_weights  # noqa: E402
from training.losses import FocalLoss, SourceMaskedFocalLoss  # noqa: E402
from training.models import NO_WEIGHTS, build_model  # noqa: E402
from training.run_data import prepare_data  # noqa: E402

ISIC = Path(__file__).resolve().parents[3] / "shared" / "data" / "isic2017"
DEFAULT_MEMBER = Path(__file__).resolve().parents[2] / "core" / "models" / "default" / "member-0.onnx"
C = len(CLASS_NAMES)
MEL, NV, BKL, BCC = (CLASS_NAMES.index(c) for c in ("mel", "nv", "bkl", "bcc"))


@pytest.fixture(scope="module")
def tiny_isic(tmp_path_factory) -> Path:
    """8 ISIC 2017 rows: mel, nv and bkl in its train part, two in its val part."""
    if not (ISIC / "labels.csv").is_file():
        pytest.fail(f"ISIC 2017 labels not found at {ISIC}; the multi-source tests need the shared data")
    rows = list(csv.DictReader(open(ISIC / "labels.csv", newline="")))
    pick = []
    for part, n in (("train", 2), ("val", 1)):
        for dx in ("mel", "nv", "bkl"):
            pick += [r for r in rows if r["challenge_split"] == part and r["dx"] == dx][:n]
    return write_labels(tmp_path_factory.mktemp("isic") / "labels.csv", pick)


def two_source_overrides(tiny_overrides, isic_labels: Path, **extra) -> list[str]:
    source = f"[{{name: ISIC 2017, labels_csv: '{isic_labels}', images_dir: '{ISIC / 'images'}', max_per_class: 1}}]"
    return tiny_overrides(data__extra_sources=source, **extra)


def test_one_source_with_every_class_is_the_plain_focal_loss():
    logits = torch.randn(12, C)
    y = torch.randint(0, C, (12,))
    w = torch.rand(C) + 0.5
    masked = SourceMaskedFocalLoss(np.ones((1, C), bool), 2.0, w)(logits, y)
    assert masked.item() == pytest.approx(FocalLoss(2.0, w)(logits, y).item(), rel=1e-6)


def test_a_source_without_bcc_labels_teaches_nothing_about_bcc():
    masks = np.ones((2, C), bool)
    masks[1] = False
    masks[1, [MEL, NV, BKL]] = True
    loss_fn = SourceMaskedFocalLoss(masks, 2.0)
    logits = torch.zeros(1, C, requires_grad=True)
    loss_fn(logits, torch.tensor([NV + C * 1])).backward()  # an ISIC naevus
    grad = logits.grad[0]
    assert grad[BCC] == 0 and grad[MEL] > 0 and grad[NV] < 0
    # Its loss is the focal loss over the three classes it labels.
    three = FocalLoss(2.0)(torch.zeros(1, 3), torch.tensor([1]))
    assert loss_fn(torch.zeros(1, C), torch.tensor([NV + C])).item() == pytest.approx(three.item(), rel=1e-6)
    # The same naevus from HAM10000 (source 0) is also taught "not a BCC".
    logits.grad = None
    loss_fn(logits, torch.tensor([NV])).backward()
    assert logits.grad[0][BCC] > 0


def test_each_source_keeps_its_own_cap_per_class():
    labels = np.array([NV] * 50 + [MEL] * 10 + [NV] * 30 + [MEL] * 5)
    sources = np.array([0] * 60 + [1] * 35)
    rows = balanced_rows(labels, 20, np.random.default_rng(0), sources, (20, 4))
    picked = [(int(sources[r]), int(labels[r])) for r in rows]
    assert picked.count((0, NV)) == 20 and picked.count((0, MEL)) == 10
    assert picked.count((1, NV)) == 4 and picked.count((1, MEL)) == 4
    assert len(set(rows.tolist())) == len(rows)


def test_the_run_data_carries_both_sources(tiny_overrides, tiny_isic, tmp_path):
    cfg = load_config(None, two_source_overrides(tiny_overrides, tiny_isic))
    (tmp_path / "run").mkdir()
    data = prepare_data(cfg, tmp_path / "run", init_distributed())
    assert data.source_names == ("HAM10000", "ISIC 2017")
    isic_rows = np.flatnonzero(data.source_of == 1)
    assert len(isic_rows) == 9 and data.images.shape[0] == len(data.labels)
    assert sorted(np.flatnonzero(data.masks()[1]).tolist()) == sorted([MEL, NV, BKL])
    assert data.masks()[0].all()
    np.testing.assert_array_equal(data.targets[isic_rows], data.labels[isic_rows] + C)
    described = data.describe()
    assert described["ISIC 2017"]["train"] == 6 and described["ISIC 2017"]["val"] == 3
    assert described["ISIC 2017"]["classes"] == ["bkl", "mel", "nv"]


def test_a_two_source_run_trains_and_reports_each_source(tiny_overrides, tiny_isic, tmp_path):
    cfg = load_config(None, two_source_overrides(tiny_overrides, tiny_isic, phase2__epochs=0, phase3__epochs=0))
    train.run(cfg)
    out = tmp_path / "snap"
    history = snapshots.run_snapshots(
        cfg, tmp_path / "run" / "member-0" / "best.pt", out, cycles=1, keep=1, lr=1e-3, resume=False
    )
    assert np.isfinite(history[0]["train_loss"])
    record = torch.load(out / "member-0" / "best.pt", map_location="cpu", weights_only=False)
    assert "val_mel_auc_ISIC 2017" in record["val_metrics"] and "val_mel_auc_HAM10000" in record["val_metrics"]
    assert record["config"]["data"]["extra_sources"][0]["name"] == "ISIC 2017"
    # the per-source figures reach summary.csv too, so a chain stopped early can still be read
    header = (out / "summary.csv").read_text().splitlines()[0].split(",")
    assert "val_mel_auc_ISIC 2017" in header and "val_mel_auc_HAM10000" in header


def test_a_shipped_member_is_read_back_exactly(tmp_path):
    import onnxruntime as ort

    model = build_model("tf_efficientnet_lite0", C, NO_WEIGHTS)
    load_member_weights(model, DEFAULT_MEMBER)
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 192, 192)).astype(np.float32)
    session = ort.InferenceSession(str(DEFAULT_MEMBER), providers=["CPUExecutionProvider"])
    want = session.run(["logits"], {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    bad = tmp_path / "member.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(MemberWeightsError, match="member.onnx"):
        load_member_weights(model, bad)


def test_camera_augmentation_zooms_blurs_and_keeps_the_shape():
    import random

    from training.data import DermoscopyDataset, sharpness_jitter

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    ds = DermoscopyDataset(img[None], [0], (0.5,) * 3, (0.5,) * 3, augment="camera")
    random.seed(1)
    views = [ds.augment(img) for _ in range(8)]
    assert all(v.shape == img.shape and v.dtype == np.uint8 for v in views)
    assert sum(not np.array_equal(v, img) for v in views) == 8
    # Blur lowers the local contrast, sharpening raises it; a small amount leaves the picture alone.
    lap = lambda x: float(np.abs(np.diff(x.astype(float), axis=1)).mean())  # noqa: E731

    class Fixed:
        def __init__(self, v):
            self.v = v

        def uniform(self, a, b):
            return self.v

    assert lap(sharpness_jitter(img, Fixed(-0.9))) < lap(img) < lap(sharpness_jitter(img, Fixed(0.9)))
    assert np.array_equal(sharpness_jitter(img, Fixed(0.05)), img)
