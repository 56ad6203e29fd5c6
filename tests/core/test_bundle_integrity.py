"""The verified model is the model that runs, and it matches its manifest (issue 26, items 2 and 3).

A member file swapped after `load_bundle` verified it is refused when the engines are built; swapped while
they are built, the engines still run the verified bytes. A member whose outputs do not fit the manifest
(class names, heat-map shape, the declared intake output) is refused at load with the file named, and the
command line exits 2 with one line.
"""

import hashlib
import json
import shutil

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cli.main import main as cli_main
from core.common.errors import BundleError
from core.inference import engines
from core.inference.bundle import load_bundle, sign_bundle
from core.inference.engines import open_members, probe_input
from core.inference.ensemble import Ensemble, EnsembleSettings
from core.inference.manifest import MANIFEST
from tests.support.synthetic_bundle import CLASSES, TEST_SIGNING_KEY, make_bundle, make_member_onnx

HAVE_OPENVINO = engines.openvino_version() is not None
ENGINE_CHOICES = ["onnxruntime", "openvino"] if HAVE_OPENVINO else ["onnxruntime"]


@pytest.fixture()
def bundle_copy(synthetic_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(synthetic_bundle, dst)
    return dst


@pytest.fixture()
def other_model(tmp_path):
    """A valid member with other weights: what an attacker would swap in."""
    return make_member_onnx(tmp_path / "other.onnx", input_size=64, seed=99, mel_bias=4.0).read_bytes()


def _outputs(model_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return dict(zip(("logits", "cam"), session.run(["logits", "cam"], {"image": x})))


# ---------------------------------------------------------------------------------------- verified bytes


@pytest.mark.parametrize("engine", ENGINE_CHOICES)
def test_a_member_swapped_after_verification_is_refused_when_the_engines_are_built(bundle_copy, other_model, engine):
    bundle = load_bundle(bundle_copy)  # verified and signed
    assert not bundle.unsigned
    (bundle_copy / "member-0.onnx").write_bytes(other_model)  # the gap the red team raced
    with pytest.raises(BundleError) as err:
        open_members(bundle, engine, "cpu")
    assert err.value.file.endswith("member-0.onnx") and "changed since the bundle was verified" in str(err.value)
    with pytest.raises(BundleError):
        Ensemble(bundle, EnsembleSettings(engine=engine, provider="cpu"))


def test_the_cli_refuses_a_member_swapped_between_load_and_engines(bundle_copy, other_model, tmp_path, monkeypatch):
    """The swap lands right after load_bundle returns (the race's window), before the engines are built."""
    from cli import opening as cli  # the CLI loads bundles through cli/opening.py

    real_load = cli.load_bundle

    def load_then_swap(*args, **kwargs):
        bundle = real_load(*args, **kwargs)
        (bundle_copy / "member-0.onnx").write_bytes(other_model)
        return bundle

    monkeypatch.setattr(cli, "load_bundle", load_then_swap)
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((64, 64, 3), 120, np.uint8))
    code = cli_main(["screen", str(images), "--bundle", str(bundle_copy), "--db", str(tmp_path / "r.sqlite")])
    assert code == 2  # refused: nothing screened under the signed bundle's name


def test_a_member_swapped_while_the_engines_are_built_still_runs_the_verified_model(
    bundle_copy, other_model, monkeypatch
):
    verified = (bundle_copy / "member-0.onnx").read_bytes()
    bundle = load_bundle(bundle_copy)
    real_session = engines.ort.InferenceSession
    swapped = []

    def swap_then_build(model, *args, **kwargs):
        if not swapped:  # the file changes on disk after it was read and hashed, before the session exists
            (bundle_copy / "member-0.onnx").write_bytes(other_model)
            swapped.append(True)
        return real_session(model, *args, **kwargs)

    monkeypatch.setattr(engines.ort, "InferenceSession", swap_then_build)
    members, _ = open_members(bundle, "onnxruntime", "cpu")
    assert swapped
    x = probe_input(64, 2)
    got = members[0].run(x, ("logits", "cam"))
    want, attacker = _outputs(verified, x), _outputs(other_model, x)
    assert not np.allclose(want["logits"], attacker["logits"])  # the swap would be visible
    for name in ("logits", "cam"):
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.skipif(not HAVE_OPENVINO, reason="the openvino package is not installed")
def test_openvino_is_built_from_the_verified_bytes_too(bundle_copy, other_model, monkeypatch):
    import openvino as ov

    verified = (bundle_copy / "member-0.onnx").read_bytes()
    bundle = load_bundle(bundle_copy)
    real_read = ov.Core.read_model
    swapped = []

    def swap_then_read(self, model, *args, **kwargs):
        if not swapped:
            (bundle_copy / "member-0.onnx").write_bytes(other_model)
            swapped.append(True)
        return real_read(self, model, *args, **kwargs)

    monkeypatch.setattr(ov.Core, "read_model", swap_then_read)
    members, info = open_members(bundle, "openvino", "cpu")
    assert swapped and info.engine == "openvino"
    x = probe_input(64, 2)
    got, want = members[0].run(x, ("logits",)), _outputs(verified, x)
    np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-4)


def test_read_member_checks_the_signed_sha256_even_without_verify_at_load(bundle_copy, other_model):
    bundle = load_bundle(bundle_copy, verify=False)  # `bundle info`: checksums taken from the manifest
    member = bundle.manifest.members[0]
    assert hashlib.sha256(bundle.read_member(member)).hexdigest() == bundle.member_sha256(member)
    (bundle_copy / member.file).write_bytes(other_model)
    with pytest.raises(BundleError, match="changed since the bundle was verified"):
        bundle.read_member(member)


# ---------------------------------------------------------------------------------------- model vs manifest


def _resign_with_member(folder, model: onnx.ModelProto, file: str = "member-0.onnx") -> None:
    """Replace a member, put its SHA-256 in the manifest and sign the bundle again (a consistent, signed
    bundle whose model does not fit its manifest)."""
    onnx.save(model, str(folder / file))
    doc = json.loads((folder / MANIFEST).read_text())
    for m in doc["members"]:
        if m["file"] == file:
            m["sha256"] = hashlib.sha256((folder / file).read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(doc, indent=2))
    sign_bundle(folder, TEST_SIGNING_KEY)


@pytest.mark.parametrize("names", [(*CLASSES, "scc"), CLASSES[:-1]], ids=["8 names for 7 logits", "6 names"])
def test_class_names_that_do_not_match_the_logits_are_refused_at_load(tmp_path, names):
    folder = make_bundle(tmp_path / "b", class_names=names, malignant_classes=("mel",))
    bundle = load_bundle(folder)
    with pytest.raises(BundleError) as err:
        Ensemble(bundle, EnsembleSettings(engine="onnxruntime", provider="cpu"))
    message = str(err.value)
    assert err.value.file.endswith("member-0.onnx") and "\n" not in message
    assert f"logits have shape [1, 7] for one image, the manifest's {len(names)} class names" in message


def test_the_cli_exits_2_with_one_line_naming_the_member(tmp_path, capsys):
    folder = make_bundle(tmp_path / "b", class_names=(*CLASSES, "scc"), malignant_classes=("mel",))
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((64, 64, 3), 120, np.uint8))
    code = cli_main(["screen", str(images), "--bundle", str(folder), "--db", str(tmp_path / "r.sqlite")])
    err = capsys.readouterr().err
    assert code == 2
    line = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "member-0.onnx" in line[0] and "class names" in line[0] and "Traceback" not in err


def test_a_heat_map_output_of_the_wrong_shape_is_refused(bundle_copy):
    model = onnx.load(str(bundle_copy / "member-0.onnx"))
    weights = {t.name: t for t in model.graph.initializer}
    cam_w = onnx.numpy_helper.to_array(weights["cam_w"])[:1]  # the positive class only: N x 1 x h x w
    weights["cam_w"].CopyFrom(onnx.numpy_helper.from_array(cam_w, "cam_w"))
    del model.graph.output[1].type.tensor_type.shape.dim[:]
    _resign_with_member(bundle_copy, model)
    with pytest.raises(BundleError, match=r"cam has shape \[1, 1, 16, 16\] for one image") as err:
        open_members(load_bundle(bundle_copy), "onnxruntime", "cpu")
    assert err.value.file.endswith("member-0.onnx")


def test_a_declared_intake_check_without_the_output_is_refused_when_engines_are_built(bundle_copy):
    doc = json.loads((bundle_copy / MANIFEST).read_text())
    doc["ood"] = {"threshold": 2.0, "clear_threshold": 50.0}
    (bundle_copy / MANIFEST).write_text(json.dumps(doc, indent=2))
    sign_bundle(bundle_copy, TEST_SIGNING_KEY)
    with pytest.raises(BundleError, match=r"lacks output\(s\) \['ood'\] \(the manifest declares the intake check\)"):
        open_members(load_bundle(bundle_copy), "onnxruntime", "cpu")


def test_a_member_for_another_input_size_is_refused(tmp_path):
    folder = make_bundle(tmp_path / "b", input_size=64)
    doc = json.loads((folder / MANIFEST).read_text())
    doc["input_size"] = 96
    (folder / MANIFEST).write_text(json.dumps(doc, indent=2))
    sign_bundle(folder, TEST_SIGNING_KEY)
    with pytest.raises(BundleError, match="input size 96") as err:
        open_members(load_bundle(folder), "onnxruntime", "cpu")
    assert err.value.file.endswith("member-0.onnx")


def test_the_shipped_default_bundle_passes_the_checks():
    from core.inference.bundle import default_bundle_path

    bundle = load_bundle(default_bundle_path())
    members, _ = open_members(bundle, "onnxruntime", "cpu")
    assert len(members) == len(bundle.manifest.members)
