"""export.generalist: a frozen backbone + fitted head becomes one bundle member (logits and the
Grad-CAM of every class, fp16 weights, parity-checked) that takes a given bundle's input, merges with
it, and runs in core unchanged; a head fitted on other pixels is refused."""

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch", reason="export tests need the train extra (torch, timm)")


from core.imaging.preprocess import PreprocessParams  # noqa: E402
from core.inference.bundle import load_bundle  # noqa: E402
from core.inference.ensemble import Ensemble, EnsembleSettings  # noqa: E402
from export import generalist, merge  # noqa: E402
from tests.support.synthetic_bundle import make_bundle  # noqa: E402
from training.generalist.features import FeatureKey  # noqa: E402
from training.generalist.fit import model_with_head, save_checkpoint  # noqa: E402
from training.generalist.heads import LinearHead  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.05, (7, 1280)).astype(np.float32), rng.normal(0, 0.1, 7).astype(np.float32))
    path = tmp_path_factory.mktemp("gen") / "generalist.pt"
    model = model_with_head("lite0", head)
    save_checkpoint(path, model, FeatureKey("lite0", 64, "seed"), {"fitted_on": ["synthetic"]})
    return path, model, head


def test_the_generalist_member_computes_backbone_then_head_and_merges_into_the_bundle(tmp_path, checkpoint):
    path, model, head = checkpoint
    base = load_bundle(make_bundle(tmp_path / "base", members=1, preprocessing=PreprocessParams()))
    gen = generalist.export_generalist(path, base, tmp_path / "gen")
    m = gen.manifest
    assert len(m.members) == 1 and m.members[0].arch == "tf_efficientnet_lite0"
    assert m.input_size == 64 and m.preprocessing == base.manifest.preprocessing
    assert m.provenance["parity"]["logits_max_abs"] <= 1e-4
    x = np.random.default_rng(1).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(gen.member_path(m.members[0])), providers=["CPUExecutionProvider"])
    logits, cam = sess.run(["logits", "cam"], {"image": x})
    assert cam.shape == (2, 7, 2, 2) and (cam >= 0).all()
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(torch.from_numpy(x)), pre_logits=True).numpy()
    # fp16 weights: the file's logits are the head on the features of the fp16-rounded backbone
    np.testing.assert_allclose(logits, head.logits(feats), atol=0.05)
    union = merge.merge([base, gen], tmp_path / "union")
    ens = Ensemble(load_bundle(union.root, allow_unsigned=True), EnsembleSettings(engine="onnxruntime"))
    raw = ens.run(x, with_cam=False)  # (the synthetic member's heat map has another grid than lite0's)
    assert raw.member_logits.shape == (2, 2, 7)


def test_a_head_fitted_on_other_pixels_is_refused(tmp_path, checkpoint):
    path, _, _ = checkpoint
    other = load_bundle(make_bundle(tmp_path / "b", members=1, preprocessing=PreprocessParams(hair_threshold=20)))
    with pytest.raises(generalist.GeneralistExportError, match="preprocessing"):
        generalist.export_generalist(path, other, tmp_path / "g1")
    bigger = load_bundle(make_bundle(tmp_path / "c", members=1, input_size=96, preprocessing=PreprocessParams()))
    with pytest.raises(generalist.GeneralistExportError, match="64 px"):
        generalist.export_generalist(path, bigger, tmp_path / "g2")
    assert generalist.main(["--head", str(path), "--like", str(other.root), "--out", str(tmp_path / "g3")]) == 2
    assert not (tmp_path / "g1").exists()
