"""Strict manifest schema: every bad value is a one-line BundleError (exit 2 in the CLI), never a traceback.

The manifests below are signed by the trusted test publisher, so they pass the signature check and
reach the schema: a trusted signature never makes a bad manifest acceptable.
"""

import copy
import hashlib
import json
import math
import random
import shutil

import pytest

from cli.main import main as cli_main
from core.common.errors import BundleError
from core.imaging.preprocess import PreprocessParams
from core.inference.bundle import load_bundle
from core.inference.manifest import MANIFEST, MODEL_CARD
from core.inference.signing import SIGNATURE, sign_files
from tests.support.synthetic_bundle import TEST_SIGNING_KEY

MEMBERS = ("member-0.onnx", "member-1.onnx")


@pytest.fixture()
def bundle_copy(synthetic_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(synthetic_bundle, dst)
    return dst


def _base(synthetic_bundle) -> dict:
    return json.loads((synthetic_bundle / MANIFEST).read_text())


def _write_signed(folder, text: str | bytes) -> None:
    """Write a manifest as given and sign the folder's files as they are (without reading the manifest)."""
    (folder / MANIFEST).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    files = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in (MANIFEST, MODEL_CARD, *MEMBERS)}
    (folder / SIGNATURE).write_text(json.dumps(sign_files(files, TEST_SIGNING_KEY)))


def _set(path, value):
    def change(d):
        *parents, last = path
        for p in parents:
            d = d[p]
        d[last] = value

    return change


def _delete(path):
    def change(d):
        *parents, last = path
        for p in parents:
            d = d[p]
        del d[last]

    return change


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# A valid intake-check section with the picture part (13 statistics), for mutations of its values.
_OOD = {
    "threshold": 2.0,
    "clear_threshold": 6.0,
    "image_mean": [0.5] * 13,
    "image_precision": [[1.0 if i == j else 0.0 for j in range(13)] for i in range(13)],
    "image_threshold": 60.0,
    "image_clear_threshold": 240.0,
}

# name -> a change to the manifest dict, or a function of the manifest text
MUTATIONS = {
    "clahe_tiles_zero": _set(["preprocessing", "clahe_tiles"], 0),
    "working_size_string": _set(["preprocessing", "working_size"], "448"),
    "temperature_nan": _set(["members", 0, "temperature"], math.nan),
    "temperature_inf": _set(["members", 0, "temperature"], math.inf),
    "temperature_1e999_literal": lambda t: t.replace('"temperature": 1.0', '"temperature": 1e999', 1),
    "temperature_zero": _set(["members", 1, "temperature"], 0),
    "max_member_spread_nan": _set(["gate", "max_member_spread"], math.nan),
    "gate_null": _set(["gate"], None),
    "gate_list": _set(["gate"], []),
    "gate_unknown_key": _set(["gate", "max_member_spead"], 0.5),
    "gate_low_above_high": _set(["gate", "fitted", "0.99"], {"low": 0.9, "high": 0.1}),
    # Issue 26: values that pass type checks but let a gate clear what it must hold, or distort every result.
    "gate_low_equals_high_one": _set(["gate", "fitted", "0.99"], {"low": 1.0, "high": 1.0}),
    "gate_low_0.5": _set(["gate", "fitted", "0.99"], {"low": 0.5, "high": 0.9}),
    "gate_review_too_narrow": _set(["gate", "fitted", "0.99"], {"low": 0.2, "high": 0.22}),
    "gate_band_above_high": _set(
        ["gate", "fitted", "0.99"], {"low": 0.1, "high": 0.8, "bands": {"moderate": 0.2, "high": 0.85}}
    ),
    "gate_levels_not_monotonic": _set(
        ["gate", "fitted"], {"0.9": {"low": 0.1, "high": 0.7}, "0.99": {"low": 0.2, "high": 0.9}}
    ),
    "gate_level_twice_0.990_0.99": lambda t: t.replace(
        '"0.99": {', '"0.990": {"low": 0.45, "high": 0.5}, "0.99": {', 1
    ),
    "gate_level_unicode_digits": lambda t: t.replace('"0.99": {', '"0.\\u0669\\u0669": {', 1),
    "gate_default_confidence_0.5_unfitted": _set(["gate", "default_confidence"], 0.5),
    "temperature_1e-9": _set(["members", 0, "temperature"], 1e-9),
    "temperature_100": _set(["members", 0, "temperature"], 100.0),
    "std_1e-300": _set(["std"], [0.5, 1e-300, 0.5]),
    "provenance_absolute_path": _set(["provenance", "data"], {"images_dir": "/home/lab/ham10000"}),
    "provenance_windows_path": _set(["provenance", "runs"], ["ok/run", "C:\\Users\\lab\\runs"]),
    "provenance_climbs_out": _set(["provenance", "split_file"], "../../../etc/passwd"),
    "nested_200000_deep": lambda t: t.replace('"provenance": {', f'"provenance": {{"deep": {_deep(200_000)}, ', 1),
    "tta_1000_views": _set(["tta_views"], ["id", "flip", "rot90"] * 333 + ["zoom"]),
    "tta_unknown_view": _set(["tta_views"], ["id", "spin"]),
    "input_size_bool": _set(["input_size"], True),
    "input_size_huge": _set(["input_size"], 10**12),
    "input_size_float": _set(["input_size"], 64.5),
    "integer_with_5000_digits": lambda t: t.replace('"input_size": 64', '"input_size": ' + "9" * 5000, 1),
    "std_zero": _set(["std"], [0.5, 0.0, 0.5]),
    "std_two_values": _set(["std"], [0.5, 0.5]),
    "mean_above_one": _set(["mean"], [0.5, 300, 0.5]),
    "mean_null": _set(["mean"], None),
    "one_class": _set(["class_names"], ["mel"]),
    "duplicate_class": _set(["class_names"], ["akiec", "bcc", "bkl", "df", "mel", "nv", "mel"]),
    "positive_class_unknown": _set(["positive_class"], "melanoma"),
    "malignant_class_unknown": _set(["malignant_classes"], ["mel", "scc"]),
    "unknown_top_level_key": _set(["thresholds"], {"low": 0.9}),
    "unknown_member_key": _set(["members", 0, "temprature"], 0.5),
    "unknown_preprocessing_key": _set(["preprocessing", "working_sise"], 320),
    "members_null": _set(["members"], None),
    "members_empty": _set(["members"], []),
    "33_members": lambda t: _many_members(t, 33),
    "member_path_traversal": _set(["members", 0, "file"], "../member-0.onnx"),
    "member_is_the_manifest": _set(["members", 0, "file"], "manifest.json"),
    "sha256_not_hex": _set(["members", 0, "sha256"], "z" * 64),
    "name_100000_chars": _set(["name"], "x" * 100_000),
    "name_missing": _delete(["name"]),
    "provenance_string": _set(["provenance"], "from the lab"),
    "provenance_nan": _set(["provenance", "score"], math.nan),
    "schema_version_string": _set(["schema_version"], "2"),
    "schema_version_3": _set(["schema_version"], 3),
    "ood_null": _set(["ood"], None),
    "ood_threshold_nan": _set(["ood"], {"threshold": math.nan, "clear_threshold": 50.0}),
    "ood_unknown_key": _set(["ood"], {"threshold": 2.0, "clear_threshold": 50.0, "thresold": 1}),
    "ood_threshold_never_flags": _set(["ood"], {"threshold": 1e6, "clear_threshold": 1e7}),
    "ood_precision_zero": _set(["ood"], {**_OOD, "image_precision": [[0.0] * 13 for _ in range(13)]}),
    "ood_precision_negative": _set(
        ["ood"], {**_OOD, "image_precision": [[-1.0 if i == j else 0.0 for j in range(13)] for i in range(13)]}
    ),
    "ood_image_threshold_never_flags": _set(["ood"], {**_OOD, "image_threshold": 1e8, "image_clear_threshold": 1e9}),
    "manifest_is_a_list": lambda t: "[" + t + "]",
    "manifest_of_5_mb": lambda t: t.replace('"provenance": {', '"provenance": {"pad": "' + "x" * (5 << 20) + '", ', 1),
    "manifest_not_utf8": lambda t: t.encode().replace(b'"name": "', b'"name": "\xff', 1),
}


def _many_members(text: str, n: int) -> str:
    d = json.loads(text)
    d["members"] = [dict(d["members"][0], file=f"m{i}.onnx") for i in range(n)]
    return json.dumps(d)


def _apply(base: dict, mutation) -> str:
    if mutation.__name__ == "change":
        d = copy.deepcopy(base)
        mutation(d)
        return json.dumps(d, indent=2)
    return mutation(json.dumps(base, indent=2))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_mutated_manifest_is_refused_with_a_one_line_reason_and_exit_2(
    name, synthetic_bundle, bundle_copy, capsys
):
    _write_signed(bundle_copy, _apply(_base(synthetic_bundle), MUTATIONS[name]))
    with pytest.raises(BundleError) as err:
        load_bundle(bundle_copy)
    message = str(err.value)
    assert "\n" not in message and len(message) < 600 and err.value.file.endswith(MANIFEST)
    assert cli_main(["bundle", "verify", str(bundle_copy)]) == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and out.err.startswith("error: ") and "Traceback" not in out.err


def test_the_reasons_name_the_field(synthetic_bundle, bundle_copy):
    expected = {
        "clahe_tiles_zero": "preprocessing.clahe_tiles: must be an integer in 1..64, got 0",
        "working_size_string": "preprocessing.working_size: must be an integer in 32..4096, got '448'",
        "temperature_nan": "NaN is not a number MelaScreen accepts",
        "temperature_1e999_literal": "members[0].temperature: must be a finite number in [0.05, 20], got inf",
        "temperature_1e-9": "members[0].temperature: must be a finite number in [0.05, 20], got 1e-09",
        "std_1e-300": "manifest.std[1]: must be a finite number in [0.01, 10], got 1e-300",
        "gate_low_equals_high_one": "would clear cases the models call more likely malignant than not",
        "gate_review_too_narrow": "leave review narrower than 0.05",
        "gate_band_above_high": "low <= moderate_from <= high_risk_from <= high",
        "gate_levels_not_monotonic": "levels must be monotonic",
        "gate_level_twice_0.990_0.99": "fitted confidence level '0.99' is given twice",
        "gate_default_confidence_0.5_unfitted": "default_confidence 0.5 has no fitted thresholds",
        "provenance_absolute_path": "manifest.provenance.data.images_dir: '/home/lab/ham10000' is an absolute path",
        "provenance_windows_path": "is an absolute path",
        "provenance_climbs_out": "climbs more than 1 folder above the project",
        "ood_threshold_never_flags": "ood.threshold 1e+06 is above 100",
        "ood_precision_zero": "image_precision must be symmetric positive definite",
        "max_member_spread_nan": "NaN",
        "gate_null": "manifest.gate: must be an object, got null",
        "nested_200000_deep": "nested too deeply",
        "tta_1000_views": "manifest.tta_views: needs 1..16 entries, got 1000",
        "input_size_bool": "manifest.input_size: must be an integer in 32..1024, got true",
        "unknown_top_level_key": "manifest: unknown keys 'thresholds'",
        "33_members": "manifest.members: needs 1..32 entries, got 33",
        "manifest_of_5_mb": "larger than 4 MB",
    }
    base = _base(synthetic_bundle)
    for name, words in expected.items():
        _write_signed(bundle_copy, _apply(base, MUTATIONS[name]))
        with pytest.raises(BundleError) as err:
            load_bundle(bundle_copy)
        assert words in str(err.value), name


def test_preprocess_params_from_dict_is_strict():
    assert PreprocessParams.from_dict({}) == PreprocessParams()
    assert PreprocessParams.from_dict({"clahe_clip": 3}).clahe_clip == 3.0
    for bad in ({"clahe_tiles": 0}, {"working_size": "448"}, {"hair": 1}, {"clahe_clip": math.inf}, {"x": 1}):
        with pytest.raises(ValueError):
            PreprocessParams.from_dict(bad)


# ---------------------------------------------------------------------------------------------- fuzz

_ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    10**30,
    -(10**30),
    0.5,
    1e308,
    -1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "x",
    "448",
    "mel",
    "\x1b[2J",
    "a" * 5000,
    [],
    {},
    [[[[]]]],
    {"a": {"b": {"c": None}}},
    [1, "a", None],
]


def _nodes(d, path=()):
    """Every (path, value) in a JSON document."""
    yield path, d
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _nodes(v, (*path, i))


def _mutate(doc: dict, rng: random.Random) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        nodes = [(p, v) for p, v in _nodes(doc) if p]
        path, value = rng.choice(nodes)
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        key = path[-1]
        op = rng.randrange(6)
        if op == 0:
            del parent[key]
        elif op == 1:
            parent[key] = rng.choice(_ODD_VALUES)
        elif op == 2:
            parent[key] = [value] * rng.choice([2, 50, 1000])
        elif op == 3:
            nested = value
            for _ in range(rng.choice([2, 20, 5000])):
                nested = [nested]
            parent[key] = nested
        elif op == 4 and isinstance(parent, dict):
            parent[rng.choice(["extra", "x" * 300, "gate", "fitted"])] = rng.choice(_ODD_VALUES)
        else:
            parent[key] = {"str": str(value)[:50], "int": 7, "float": -0.0}[rng.choice(["str", "int", "float"])]
    return doc


def test_fuzzed_manifests_raise_only_bundle_errors(synthetic_bundle, bundle_copy):
    base = _base(synthetic_bundle)
    (bundle_copy / SIGNATURE).unlink()
    rng = random.Random(12)
    refused = loaded = 0
    for i in range(400):
        if i % 10 == 9:  # byte-level damage too: truncation and flipped bytes
            raw = bytearray(json.dumps(base).encode())
            if i % 20 == 9:
                raw = raw[: rng.randrange(len(raw))]
            else:
                for _ in range(3):
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
            (bundle_copy / MANIFEST).write_bytes(bytes(raw))
        else:
            try:
                text = json.dumps(_mutate(base, rng))
            except RecursionError:  # the mutation itself is too deep for json.dumps: skip that draw
                continue
            (bundle_copy / MANIFEST).write_text(text)
        try:
            load_bundle(bundle_copy, verify=False, allow_unsigned=True)
            loaded += 1
        except BundleError as exc:
            assert "\n" not in str(exc)
            refused += 1
    assert refused > 250 and refused + loaded > 350


def test_an_unfitted_confidence_near_one_half_still_holds_a_review_band():
    from core.decision.gate import GateSettings, Thresholds

    gate = GateSettings()  # nothing fitted: the probability itself
    assert gate.thresholds(0.5) == Thresholds(low=0.45, high=0.5)  # was 0.5 / 0.5: everything below 0.5 cleared
    assert gate.thresholds(0.51).low == pytest.approx(0.46) and gate.thresholds(0.51).high == 0.51
    assert gate.thresholds(0.6) == Thresholds(low=1.0 - 0.6, high=0.6)  # unchanged from 0.525 up
