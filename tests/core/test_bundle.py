import json
import shutil
import zipfile

import pytest

from core.bundle import MANIFEST, SCHEMA_VERSION, load_bundle
from core.errors import BundleError


def _copy(src, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    return dst


def test_bundle_loads_and_carries_its_settings(synthetic_bundle):
    b = load_bundle(synthetic_bundle)
    m = b.manifest
    assert m.positive_class == "mel" and m.class_names[m.positive_index] == "mel"
    assert m.input_size == 64 and len(m.members) == 2
    assert m.preprocessing.working_size == 256
    assert m.gate.thresholds(0.99).low == pytest.approx(0.2)
    assert "not an approved medical device" in m.disclaimer
    assert len(b.fingerprint) == 16


def test_one_altered_byte_in_a_member_is_refused_naming_the_file(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    f = b / "member-1.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        load_bundle(b)
    assert "member-1.onnx" in str(err.value) and "checksum" in str(err.value)


def test_missing_member_and_missing_manifest(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    (b / "member-0.onnx").unlink()
    with pytest.raises(BundleError, match="member-0.onnx.*missing"):
        load_bundle(b)
    with pytest.raises(BundleError, match="not a MelaScreen model bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nope")


def test_wrong_schema_version_and_bad_json(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    data = json.loads((b / MANIFEST).read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    (b / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="schema_version"):
        load_bundle(b)
    (b / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(b)


def test_manifest_with_unknown_tta_view_or_bad_class_is_refused(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    data = json.loads((b / MANIFEST).read_text())
    data["tta_views"] = ["id", "spin"]
    data["positive_class"] = "melanoma"
    (b / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BundleError) as err:
        load_bundle(b)
    assert "spin" in str(err.value) and "positive_class" in str(err.value)


def test_zip_bundle_loads(synthetic_bundle, tmp_path):
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in synthetic_bundle.iterdir():
            zf.write(f, f"synthetic/{f.name}")
    b = load_bundle(z)
    assert b.source == z and b.manifest.name == "synthetic-test-bundle"


def test_a_non_onnx_member_is_refused_when_sessions_start(synthetic_bundle, tmp_path):
    from core.bundle import sha256_file
    from core.ensemble import Ensemble

    b = _copy(synthetic_bundle, tmp_path)
    (b / "member-0.onnx").write_bytes(b"this is not a model")
    data = json.loads((b / MANIFEST).read_text())
    data["members"][0]["sha256"] = sha256_file(b / "member-0.onnx")
    (b / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="member-0.onnx"):
        Ensemble(load_bundle(b))
