"""export.merge: one bundle from the members of several, each member computing what it computed
before; the intake output removed (it is re-fitted for the union), the gate marked for re-fitting."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from core.imaging.preprocess import PreprocessParams
from core.inference.bundle import load_bundle
from export import merge
from export.ood import OOD_OUTPUT, strip_ood_output
from tests.support.intake_bundle import make_intake_bundle
from tests.support.synthetic_bundle import make_bundle


def run_member(path, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"image": x})))


@pytest.fixture
def image_batch():
    return np.random.default_rng(0).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)


def test_the_union_keeps_every_member_and_what_it_computes(tmp_path, image_batch):
    a = load_bundle(make_bundle(tmp_path / "a", members=2))
    b = load_bundle(make_intake_bundle(tmp_path / "b"))
    merged = merge.merge([a, b], tmp_path / "m", version="2026.12.01-test")
    m = merged.manifest
    assert len(m.members) == 4 and m.version == "2026.12.01-test"
    assert [x.file for x in m.members] == [f"member-{i}.onnx" for i in range(4)]
    sources = [(a, mem) for mem in a.manifest.members] + [(b, mem) for mem in b.manifest.members]
    for new, (bundle, old) in zip(m.members, sources):
        assert new.temperature == old.temperature and new.seed == old.seed
        before = run_member(bundle.member_path(old), image_batch)
        after = run_member(merged.member_path(new), image_batch)
        assert set(after) == {"logits", "cam"}  # the intake output is gone from b's members
        np.testing.assert_array_equal(after["logits"], before["logits"])
        np.testing.assert_array_equal(after["cam"], before["cam"])
    assert m.ood is None
    assert m.gate == a.manifest.gate
    assert "not yet re-fitted" in m.provenance["gate"]
    assert [s["version"] for s in m.provenance["merged_from"]] == [a.manifest.version, b.manifest.version]
    assert merged.unsigned
    # core reads it back strictly (checksums of the rewritten member files included)
    assert load_bundle(merged.root, allow_unsigned=True).manifest == m
    assert "member-2.onnx: member-0.onnx of" in merged.model_card


def test_bundles_that_give_their_members_other_pixels_are_refused(tmp_path):
    a = load_bundle(make_bundle(tmp_path / "a"))
    b = load_bundle(make_bundle(tmp_path / "b", preprocessing=PreprocessParams(working_size=256, hair_threshold=20)))
    with pytest.raises(merge.MergeError, match="preprocessing differ"):
        merge.merge([a, b], tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert merge.main(["--bundle", str(a.root), "--bundle", str(b.root), "--out", str(tmp_path / "m")]) == 2
    with pytest.raises(merge.MergeError, match="at least two"):
        merge.merge([a], tmp_path / "m")


def test_the_intake_output_can_be_fitted_again_after_stripping(tmp_path, image_batch):
    b = load_bundle(make_intake_bundle(tmp_path / "b"))
    path = b.member_path(b.manifest.members[0])
    model = onnx.load(str(path))
    stripped = strip_ood_output(model)
    assert [o.name for o in stripped.graph.output] == ["logits", "cam"]
    assert not any(t.name.startswith("ood_") for t in stripped.graph.initializer)
    assert not any(OOD_OUTPUT in n.output for n in stripped.graph.node)
    before = run_member(path, image_batch)
    after = run_member_proto(stripped, image_batch)
    np.testing.assert_array_equal(after["logits"], before["logits"])
    # a model without the output comes back as it was
    assert strip_ood_output(stripped) == stripped


def run_member_proto(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": x})))


def test_a_merged_bundle_gets_one_intake_check_for_the_union(tmp_path, image_batch):
    from export.intake import add_intake_check
    from tests.support.intake_bundle import _features, skin_like

    a = load_bundle(make_intake_bundle(tmp_path / "a"))
    b = load_bundle(make_intake_bundle(tmp_path / "b"))
    merged = merge.merge([a, b], tmp_path / "m")
    train = [skin_like(3000 + i) for i in range(40)]
    val = [skin_like(7000 + i) for i in range(30)]
    labels = np.array(["nv" if i % 2 else "mel" for i in range(40)])
    checked = add_intake_check(merged, tmp_path / "c", _features(merged, train), labels, _features(merged, val), "t")
    assert checked.manifest.ood is not None
    for mem in checked.manifest.members:
        outputs = run_member(checked.member_path(mem), image_batch)
        assert set(outputs) == {"logits", "cam", OOD_OUTPUT}
    # fitting it again over an existing check replaces it rather than failing
    again = add_intake_check(checked, tmp_path / "d", _features(merged, train), labels, _features(merged, val), "t")
    assert again.manifest.ood == checked.manifest.ood
