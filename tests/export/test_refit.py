"""export.refit: the gate (and on request the temperatures) re-fitted on the validation parts of
several sources, from cached member logits; the members themselves are untouched."""

import numpy as np
import pytest
from synthetic_bundle import CLASSES, make_bundle

from core.bundle import load_bundle
from core.ensemble import softmax
from export import refit


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
