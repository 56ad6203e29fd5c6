"""Tiny end-to-end runs: random-init lite0 at 64 px on ~35 real images, a few steps per epoch."""

import csv

import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from training import train  # noqa: E402
from training.config import load_config  # noqa: E402
from training.data import CLASS_NAMES  # noqa: E402


def _summary(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_phase_runs_and_best_pt_holds_what_export_needs(tiny_overrides, tmp_path):
    # Phase 1 and 2 on cached frozen features, phase 3 on images.
    cfg = load_config(None, tiny_overrides(phase1__epochs=2))
    train.run(cfg)
    member = tmp_path / "run" / "member-0"
    rows = _summary(member / "summary.csv")
    assert [(r["phase"], r["epoch"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"), ("3", "1")]
    assert set(rows[0]) == set(train.SUMMARY_FIELDS)
    assert all(0.0 <= float(r["val_mel_auc"]) <= 1.0 for r in rows)
    # export/package.py reads it with weights_only=True: plain types only.
    best = torch.load(member / "best.pt", map_location="cpu", weights_only=True)
    assert best["class_names"] == list(CLASS_NAMES)
    assert best["arch"] == "tf_efficientnet_lite0" and best["num_classes"] == 7
    assert best["input_size"] == 64 and best["mean"] == [0.5] * 3 and best["std"] == [0.5] * 3
    assert best["seed"] == 0 and "val_mel_auc" in best["val_metrics"]
    best_auc = max(float(r["val_mel_auc"]) for r in rows)
    assert best["val_metrics"]["val_mel_auc"] == pytest.approx(best_auc, abs=1e-5)
    model = train.build_model(best["arch"], best["num_classes"], "none")
    model.load_state_dict(best["state_dict"], strict=True)
    assert (tmp_path / "run" / "config.yaml").exists() and (tmp_path / "run" / "split.csv").exists()
    # A finished member is skipped on resume.
    before = (member / "last.pt").stat().st_mtime_ns
    train.run(cfg, resume=True)
    assert (member / "last.pt").stat().st_mtime_ns == before


def test_uncached_phases_freeze_what_they_should(tiny_overrides, tmp_path):
    cfg = load_config(None, tiny_overrides(phase1__cached="false", phase2__cached="false", phase3__epochs=0))
    train.run(cfg)
    best = torch.load(tmp_path / "run" / "member-0" / "last.pt", map_location="cpu", weights_only=False)["model"]
    # The stem never trains in phases 1-2 (frozen, BN statistics kept); the head and last blocks do.
    torch.manual_seed(0)  # member 0 builds its model right after seeding with 0
    seeded = train.build_model(cfg.model.arch, 7, "none").state_dict()
    for key in ("conv_stem.weight", "bn1.running_mean", "blocks.0.0.conv_dw.weight"):
        torch.testing.assert_close(best[key], seeded[key])
    assert not torch.allclose(best["blocks.6.0.conv_pw.weight"], seeded["blocks.6.0.conv_pw.weight"])
    assert not torch.allclose(best["classifier.weight"], seeded["classifier.weight"])


class _Crash(Exception):
    pass


def test_resume_continues_at_the_next_epoch_with_the_same_result(tiny_overrides, tmp_path, monkeypatch):
    over = tiny_overrides(phase1__epochs=2, phase2__epochs=2, phase3__epochs=0)
    cfg = load_config(None, over)
    # Reference: uninterrupted.
    train.run(load_config(None, over + [f"output_dir={tmp_path / 'ref'}"]))
    ref = torch.load(tmp_path / "ref" / "member-0" / "last.pt", map_location="cpu", weights_only=False)

    # Crash right after the checkpoint of phase 2 epoch 1 is written.
    real_write = train.write_summary

    def crash_after_third(path, rows):
        real_write(path, rows)
        if len(rows) == 3:
            raise _Crash()

    monkeypatch.setattr(train, "write_summary", crash_after_third)
    with pytest.raises(_Crash):
        train.run(cfg)
    monkeypatch.setattr(train, "write_summary", real_write)
    last = torch.load(tmp_path / "run" / "member-0" / "last.pt", map_location="cpu", weights_only=False)
    assert (last["phase"], last["epoch"]) == (2, 1)
    with pytest.raises(train.ConfigError, match="--resume"):
        train.run(cfg)
    train.run(cfg, resume=True)
    rows = _summary(tmp_path / "run" / "member-0" / "summary.csv")
    assert [(r["phase"], r["epoch"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    done = torch.load(tmp_path / "run" / "member-0" / "last.pt", map_location="cpu", weights_only=False)
    for key, value in ref["model"].items():
        torch.testing.assert_close(done["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_resume_extends_a_finished_member_when_the_config_asks_for_more(tiny_overrides, tmp_path):
    train.run(load_config(None, tiny_overrides(phase2__epochs=0)))
    member = tmp_path / "run" / "member-0"
    assert len(_summary(member / "summary.csv")) == 2
    more = load_config(None, tiny_overrides(phase2__epochs=0, phase3__epochs=2))
    train.run(more)  # without --resume a finished member stays as it is
    assert len(_summary(member / "summary.csv")) == 2
    train.run(more, resume=True)
    rows = _summary(member / "summary.csv")
    assert [(r["phase"], r["epoch"]) for r in rows] == [("1", "1"), ("3", "1"), ("3", "2")]
