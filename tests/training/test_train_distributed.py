"""Two CPU processes (gloo) train a tiny model with DistributedDataParallel and stay in sync."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

ROOT = Path(__file__).resolve().parents[2]


def test_two_ranks_finish_with_identical_weights(tiny_overrides, tmp_path):
    overrides = tiny_overrides(
        num_threads=1, phase1__cached="false", phase2__epochs=0, phase3__epochs=1, max_steps_per_epoch=2
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "training.train"]
    for o in overrides:
        cmd += ["--set", o]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # train.check_in_sync all-gathers weight checksums at the end of each member and raises on a mismatch.
    assert "weights in sync across 2 ranks" in out, out[-4000:]
    assert "rank 0/2 finished" in out and "rank 1/2 finished" in out, out[-4000:]
    member = tmp_path / "run" / "member-0"
    rows = (member / "summary.csv").read_text().splitlines()
    assert len(rows) == 1 + 2  # header, phase 1 epoch 1, phase 3 epoch 1
    best = torch.load(member / "best.pt", map_location="cpu", weights_only=False)
    assert best["num_classes"] == 7
