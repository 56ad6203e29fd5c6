import json

import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from training import snapshots, train  # noqa: E402
from training.config import load_config  # noqa: E402


def test_snapshot_members_are_written_per_cycle_and_resume_continues(tiny_overrides, tmp_path):
    cfg = load_config(None, tiny_overrides(phase2__epochs=0, phase3__epochs=0))
    train.run(cfg)
    init = tmp_path / "run" / "member-0" / "best.pt"
    out = tmp_path / "snap"
    snapshots.run_snapshots(cfg, init, out, cycles=2, keep=2, lr=1e-3, resume=False)
    assert sorted(p.name for p in out.glob("member-*")) == ["member-0", "member-1"]
    first = torch.load(out / "member-1" / "best.pt", map_location="cpu", weights_only=True)
    assert first["seed"] == 1 and first["val_metrics"]["snapshot_cycle"] == 2
    # More cycles with --resume: only the new cycle runs; the oldest snapshot stops being a member.
    history = snapshots.run_snapshots(cfg, init, out, cycles=3, keep=2, lr=1e-3, resume=True)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert sorted(p.name for p in out.glob("member-*")) == ["member-1", "member-2"]
    assert (out / "early-member-0" / "best.pt").exists()
    assert len(json.loads((out / "snapshots.json").read_text())) == 3
    a = torch.load(out / "member-1" / "best.pt", map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(out / "member-2" / "best.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
