"""export.refit: the gate (and on request the temperatures) re-fitted on the validation parts of
several sources, from cached member logits; the members themselves are untouched."""

import numpy as np
import pytest

from core.inference.bundle import load_bundle
from core.inference.calibration import softmax
from export import refit
from tests.support.synthetic_bundle import CLASSES, make_bundle


def overconfident(n: int, members: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Logits 4x too sharp for their accuracy, labels drawn from the softened probabilities."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1.2, (n, len(CLASSES)))
    dx = [CLASSES[rng.choice(len(CLASSES), p=p)] for p in softmax(base)]
    logits = np.stack([base * 4 + rng.normal(0, 0.2, base.shape) for _ in range(members)], axis=1)
    return logits.astype(np.float32), dx


def write_set(tmp_path, name: str, n: int, seed: int):
    logits, dx = overconfident(n, 2, seed)
    ids = [f"{name}_{i}" for i in range(n)]
    items = [(tmp_path / f"{i}.jpg", i, d) for i, d in zip(ids, dx)]
    return items, logits


@pytest.fixture
def bundle(tmp_path):
    return load_bundle(make_bundle(tmp_path / "b"))


def test_the_gate_is_fitted_on_every_source_and_the_members_stay(bundle, tmp_path):
    sets = {"a": write_set(tmp_path, "a", 400, 0), "b": write_set(tmp_path, "b", 200, 1)}
    new, fits = refit.refit(bundle, tmp_path / "out", sets)
    assert new.manifest.provenance["gate_refit"]["validation"] == {"a": 400, "b": 200}
    assert [m.temperature for m in new.manifest.members] == [m.temperature for m in bundle.manifest.members]
    assert [m.sha256 for m in new.manifest.members] == [m.sha256 for m in bundle.manifest.members]
    assert new.manifest.gate.fitted and fits


def test_temperatures_are_refitted_on_request(bundle, tmp_path):
    sets = {"a": write_set(tmp_path, "a", 600, 2)}
    new, _ = refit.refit(bundle, tmp_path / "out", sets, temperatures=True)
    temps = [m.temperature for m in new.manifest.members]
    # The logits are about 4x too confident: each member's temperature comes out well above 1.
    assert all(t > 2.0 for t in temps), temps
    assert new.manifest.provenance["gate_refit"]["temperatures_refit"] is True


def test_computed_logits_can_be_saved_and_reused(bundle, tmp_path, monkeypatch):
    items, logits = write_set(tmp_path, "a", 50, 3)
    monkeypatch.setattr(refit, "read_part", lambda spec: ("a", items))
    monkeypatch.setattr(refit, "member_logits", lambda b, it, threads=0: logits)
    saved = tmp_path / "a.npz"
    argv = ["--bundle", str(bundle.root), "--out", str(tmp_path / "o1"), "--validation", "a=x.csv:val"]
    assert refit.main([*argv, "--save-raw", f"a={saved}"]) == 0
    data = np.load(saved)
    np.testing.assert_array_equal(data["logits"], logits)
    assert list(data["ids"]) == [i for _, i, _ in items]
    # Read back instead of computed: the same gate.
    monkeypatch.setattr(refit, "member_logits", lambda *a, **k: pytest.fail("should reuse the saved logits"))
    argv2 = ["--bundle", str(bundle.root), "--out", str(tmp_path / "o2"), "--validation", "a=x.csv:val"]
    assert refit.main([*argv2, "--raw-npz", f"a={saved}"]) == 0
    a, b = load_bundle(tmp_path / "o1", allow_unsigned=True), load_bundle(tmp_path / "o2", allow_unsigned=True)
    assert a.manifest.gate == b.manifest.gate


def test_the_ensemble_validation_auc_is_recorded_per_source(bundle, tmp_path):
    a = write_set(tmp_path, "a", 400, 4)
    items, logits = a
    # Source b labels melanoma only by the first member's argmax: its melanoma AUC is near 1.
    dx_b = ["mel" if CLASSES[int(np.argmax(lg[0]))] == "mel" else "nv" for lg in logits]
    b = ([(p, f"b{i}", d) for (p, i, _), d in zip(items, dx_b)], logits)
    new, _ = refit.refit(bundle, tmp_path / "out", {"a": a, "b": b}, temperatures=True)
    per_set = new.manifest.provenance["gate_refit"]["ensemble_validation"]
    assert set(per_set) == {"a", "b"}
    assert per_set["a"]["n"] == 400 and per_set["a"]["n_melanoma"] == sum(d == "mel" for _, _, d in items)
    assert 0.5 < per_set["a"]["mel_auc"] < per_set["b"]["mel_auc"] and per_set["b"]["mel_auc"] > 0.95
    # b labels no akiec/bcc: its malignancies are its melanomas.
    assert per_set["b"]["n_malignant"] == per_set["b"]["n_melanoma"] and 0.5 < per_set["b"]["malignant_auc"] <= 1


def test_a_set_with_one_class_records_no_auc(bundle, tmp_path):
    items, logits = write_set(tmp_path, "a", 30, 5)
    only_nv = [(p, i, "nv") for p, i, _ in items]
    per_set = refit.ensemble_validation({"a": (only_nv, logits)}, [1.0, 1.0], CLASSES, "mel")
    assert per_set["a"]["mel_auc"] is None and per_set["a"]["n_melanoma"] == 0  # stored as JSON null, not NaN
