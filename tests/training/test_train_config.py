import pytest

pytest.importorskip("yaml", reason="training configs are YAML (train extra)")

from training.config import ConfigError, TrainConfig, load_config, save_config  # noqa: E402


def test_overrides_keep_the_rest_of_a_section(tmp_path):
    cfg = load_config(None, ["phase3.epochs=2", "seeds=[7, 8]", "data.mean=[0.5, 0.5, 0.5]", "phase2.lr=3e-4"])
    default = TrainConfig()
    assert cfg.phase3.epochs == 2
    assert cfg.phase3.lr == default.phase3.lr and cfg.phase3.layer_decay == default.phase3.layer_decay
    assert cfg.seeds == (7, 8)
    assert cfg.data.mean == (0.5, 0.5, 0.5)
    assert cfg.phase2.lr == pytest.approx(3e-4)


def test_yaml_file_then_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  arch: convnext_atto\nphase1:\n  epochs: 3\n")
    cfg = load_config(path, ["phase1.epochs=4"])
    assert cfg.model.arch == "convnext_atto" and cfg.phase1.epochs == 4
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg


@pytest.mark.parametrize(
    "override, words",
    [("phase3.epoch=2", "phase3.epoch"), ("phase3.epochs=two", "phase3.epochs"), ("seeds", "key.sub=value")],
)
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        load_config(None, [override])


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    cpu = load_config(root / "cpu_default.yaml")
    gpu = load_config(root / "convnext_base.yaml")
    assert cpu.model.arch == "tf_efficientnet_lite0"
    assert gpu.model.arch == "convnext_base" and len(gpu.seeds) == 5
    assert (gpu.phase1.epochs, gpu.phase2.epochs, gpu.phase3.epochs) == (10, 15, 25)


def test_training_and_export_errors_are_melascreen_errors():
    """Issue 17: one error family, so the CLIs report them as errors a person can act on."""
    from core.common.errors import MelaScreenError
    from evalkit.labelled import LabelsError

    assert issubclass(ConfigError, MelaScreenError) and issubclass(ConfigError, ValueError)
    assert issubclass(LabelsError, MelaScreenError)
