"""evalkit.labelled (the one split.csv / labels.csv reader) and the training recipes in configs."""

from pathlib import Path

import pytest

from evalkit.labelled import (
    PROJECT_ROOT,
    LabelledCase,
    LabelsError,
    image_path,
    project_relative,
    read_cases,
    read_split,
    write_split,
)

pytest.importorskip("yaml", reason="recipes are YAML (train extra)")

from training.recipe import load_recipe, main, step_argv  # noqa: E402


def test_split_round_trip_and_refusals(tmp_path):
    cases = [LabelledCase("a", "mel", True, "L1", "test"), LabelledCase("b", "nv", False, "L2", "train")]
    write_split(tmp_path / "s.csv", cases)
    assert read_split(tmp_path / "s.csv") == cases
    (tmp_path / "bad.csv").write_text("image_id,lesion_id,dx,melanoma,split\na,L1,mel,1,holdout\n")
    with pytest.raises(LabelsError, match="unknown split names"):
        read_split(tmp_path / "bad.csv")
    (tmp_path / "plain.csv").write_text("image_id,dx\na,mel\n")
    with pytest.raises(LabelsError, match="not a split file"):
        read_split(tmp_path / "plain.csv")
    with pytest.raises(LabelsError, match="cannot be read"):
        read_cases(tmp_path / "missing.csv")


def test_another_split_column_and_no_lesion_ids(tmp_path):
    """ISIC 2017: challenge_split, no lesion ids; Derm7pt: no split at all."""
    (tmp_path / "isic.csv").write_text(
        "image_id,dx,melanoma,challenge_split\nx,mel,1,test\ny,nv,0,train\nz,bkl,0,test\n"
    )
    cases, used = read_cases(tmp_path / "isic.csv", "test", split_column="challenge_split")
    assert [c.image_id for c in cases] == ["x", "z"] and cases[0].melanoma and cases[0].lesion_id == ""
    assert "challenge_split 'test'" in used


def test_image_path_finds_the_extension(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    assert image_path(tmp_path, "a") == tmp_path / "a.png"
    assert image_path(tmp_path, "b") == tmp_path / "b.jpg"  # named in the error that follows


def test_provenance_paths_are_relative_to_the_project():
    assert project_relative(PROJECT_ROOT / "configs" / "x.yaml") == "configs/x.yaml"
    assert project_relative(PROJECT_ROOT.parent / "runs" / "r" / "best.pt") == "../runs/r/best.pt"
    assert project_relative("/somewhere/else/best.pt") == "<elsewhere>/best.pt"


def test_the_default_bundle_recipe_reads_and_prints_its_steps(capsys):
    recipe = load_recipe(PROJECT_ROOT / "configs" / "recipes" / "default-2026.11.26b.yaml", runs="/r")
    names = [s.name for s in recipe.steps]
    assert names == ["progressive", "chain_a", "chain_a_rich", "chain_b", "chain_c"]
    chain_c = recipe.steps[-1]
    argv = step_argv(chain_c, Path("/r"))
    assert argv[argv.index("--init") + 1] == "/r/default/member-2/best.pt" and argv[argv.index("--cycles") + 1] == "27"
    assert "data.augment=rich" in argv and "--keep" in argv
    for step in recipe.steps:  # every config a step names exists
        assert (PROJECT_ROOT / step.config).is_file()
    assert main([str(PROJECT_ROOT / "configs" / "recipes" / "default-2026.11.26b.yaml"), "--dry-run"]) == 0
    assert "training.snapshots" in capsys.readouterr().out
    assert main([str(PROJECT_ROOT / "configs" / "recipes" / "default-2026.11.26b.yaml"), "--only", "nope"]) == 2


def test_no_committed_file_of_training_export_or_configs_holds_a_build_machine_path():
    roots = ["training", "export", "configs", "scripts", "evalkit"]
    offenders = [
        str(p)
        for r in roots
        for p in (PROJECT_ROOT / r).rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".yaml", ".sh", ".md")
        and "/work/" in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []
