import json
import shutil

import pytest

from core.common.errors import BundleError
from core.decision.gate import MALIGNANCY, MELANOMA_ONLY, MELANOMA_ONLY_NOTE
from core.inference.bundle import load_bundle, sign_bundle
from core.inference.digests import sha256_file
from core.inference.manifest import MANIFEST, Manifest
from core.inference.signing import SIGNATURE
from core.inference.upgrade import SCHEMA_VERSION, upgrade
from tests.support.synthetic_bundle import TEST_SIGNING_KEY


def _copy(src, tmp_path, name="b"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _edit_manifest(folder, change, resign=True):
    data = json.loads((folder / MANIFEST).read_text())
    change(data)
    (folder / MANIFEST).write_text(json.dumps(data))
    if resign:
        sign_bundle(folder, TEST_SIGNING_KEY)


def _message(err) -> str:
    """The reason without the file path (a pytest tmp path can contain any word)."""
    exc = err.value
    return str(exc).removeprefix(f"{exc.file}: ") if exc.file else str(exc)


def test_bundle_loads_and_carries_its_settings(synthetic_bundle):
    b = load_bundle(synthetic_bundle)
    m = b.manifest
    assert m.positive_class == "mel" and m.class_names[m.positive_index] == "mel"
    assert m.malignant_classes == ("akiec", "bcc", "mel") and m.risk_scope is MALIGNANCY
    assert m.input_size == 64 and len(m.members) == 2
    assert m.preprocessing.working_size == 256
    assert m.gate.thresholds(0.99).low == pytest.approx(0.2)
    assert "not an approved medical device" in m.disclaimer
    assert len(b.identity) == 64 and not b.unsigned and b.signer is not None
    assert m.schema_version == SCHEMA_VERSION == 2


def test_one_altered_byte_in_a_member_is_refused_naming_the_file(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    f = b / "member-1.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        load_bundle(b)
    assert err.value.file.endswith("member-1.onnx") and "checksum" in _message(err)


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
    _edit_manifest(b, lambda d: d.update(schema_version=SCHEMA_VERSION + 1), resign=False)
    (b / SIGNATURE).unlink()
    with pytest.raises(BundleError) as err:
        load_bundle(b, allow_unsigned=True)
    assert "schema_version 3 is not supported" in _message(err)
    (b / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError) as err:
        load_bundle(b, allow_unsigned=True)
    assert "not valid JSON" in _message(err)


def test_manifest_with_unknown_tta_view_or_bad_class_is_refused(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    # A trusted publisher's signature does not make a bad manifest good: signed, then refused on content.
    with pytest.raises(BundleError):
        _edit_manifest(b, lambda d: d.update(tta_views=["id", "spin"], positive_class="melanoma"))
    (b / SIGNATURE).unlink()
    with pytest.raises(BundleError) as err:
        load_bundle(b, allow_unsigned=True)
    assert "spin" in _message(err) and "positive_class" in _message(err)


def test_a_non_onnx_member_is_refused_when_sessions_start(synthetic_bundle, tmp_path):
    from core.inference.ensemble import Ensemble

    b = _copy(synthetic_bundle, tmp_path)
    (b / "member-0.onnx").write_bytes(b"this is not a model")

    def fix_checksum(d):
        d["members"][0]["sha256"] = sha256_file(b / "member-0.onnx")

    _edit_manifest(b, fix_checksum)
    with pytest.raises(BundleError, match="member-0.onnx"):
        Ensemble(load_bundle(b))


def test_schema_1_manifest_loads_as_a_melanoma_only_gate(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)

    def to_v1(d):
        d["schema_version"] = 1
        del d["malignant_classes"]

    _edit_manifest(b, to_v1)
    m = load_bundle(b).manifest
    assert m.schema_version == 1 and m.malignant_classes == ("mel",) and m.risk_scope is MELANOMA_ONLY
    assert "before malignancy triage" in MELANOMA_ONLY_NOTE
    written = m.to_dict()  # read 1, write 2
    assert written["schema_version"] == 2 and written["malignant_classes"] == ["mel"]
    assert Manifest.from_dict(written).malignant_classes == ("mel",)


def test_an_old_manifest_is_upgraded_once_as_it_is_read_and_the_document_is_left_alone(synthetic_bundle):
    current = json.loads((synthetic_bundle / MANIFEST).read_text())
    assert upgrade(current, MANIFEST) is current  # nothing to do for the current schema
    old = {k: v for k, v in current.items() if k != "malignant_classes"} | {"schema_version": 1}
    upgraded = upgrade(old, MANIFEST)
    assert upgraded["malignant_classes"] == ["mel"] and upgraded["schema_version"] == 1
    assert "malignant_classes" not in old
    # Reading a document upgrades it: an old bundle's gate is on melanoma, read from its malignant classes.
    assert Manifest.from_dict(old).risk_scope is MELANOMA_ONLY
    assert Manifest.from_dict(current).risk_scope is MALIGNANCY


def test_schema_2_needs_malignant_classes_and_schema_1_may_not_have_them(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    (b / SIGNATURE).unlink()
    _edit_manifest(b, lambda d: d.pop("malignant_classes"), resign=False)
    with pytest.raises(BundleError) as err:
        load_bundle(b, allow_unsigned=True)
    assert "malignant_classes" in _message(err) and "missing" in _message(err)
    _edit_manifest(b, lambda d: d.update(schema_version=1, malignant_classes=["mel"]), resign=False)
    with pytest.raises(BundleError, match="needs schema_version 2"):
        load_bundle(b, allow_unsigned=True)
    _edit_manifest(b, lambda d: d.update(schema_version=2, malignant_classes=["bcc", "nv"]), resign=False)
    with pytest.raises(BundleError, match="positive_class 'mel' must be one of the malignant_classes"):
        load_bundle(b, allow_unsigned=True)


def test_the_default_bundle_loads_and_says_whether_it_is_signed():
    from core.inference.bundle import DEFAULT_BUNDLE_SIGNED, default_bundle_path

    if not (default_bundle_path() / MANIFEST).exists():
        pytest.fail("the default bundle is part of the repository")
    b = load_bundle(default_bundle_path(), verify=False)
    if DEFAULT_BUNDLE_SIGNED:
        assert not b.unsigned, "DEFAULT_BUNDLE_SIGNED is set: the default bundle must verify with a committed key"
    else:
        assert b.unsigned and "not signed yet" in b.trust_text


def test_the_optional_intake_check_section_round_trips(synthetic_bundle, tmp_path):
    from core.decision.intake_check import IntakeCheck

    b = _copy(synthetic_bundle, tmp_path)
    assert load_bundle(b).manifest.ood is None and "ood" not in load_bundle(b).manifest.to_dict()
    check = {
        "method": "mahalanobis",
        "threshold": 2.5,
        "clear_threshold": 40.0,
        "validation_flagged": 0.01,
        "fitted_on": "synthetic",
    }
    _edit_manifest(b, lambda d: d.update(ood=check))
    m = load_bundle(b).manifest
    assert m.ood == IntakeCheck(**check) and m.to_dict()["ood"] == check
