"""Run a bundle's training recipe (configs/recipes/*.yaml): the progressive run and the snapshot
chains, in order, each resumed where it stopped.

    python -m training.recipe configs/recipes/default-2026.11.26b.yaml [--only NAME] [--dry-run]

A recipe replaces the one-off shell wrappers: what a bundle was trained with is data, read by this
runner and by people, and the model card points to it.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import ConfigError

COMMANDS = ("train", "snapshots")


@dataclass(frozen=True)
class Step:
    name: str
    command: str  # "train" or "snapshots"
    config: str
    out: str  # relative to the runs folder
    after: str | None = None
    # snapshots: member folder (relative to runs) whose best.pt starts the chain, or a bundle member
    # file (.onnx, relative to the project root)
    init: str | None = None
    cycles: int | None = None
    keep: int = 5
    lr: float = 3e-4
    split_from: str | None = None  # reuse this run's split.csv (relative to runs)
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    runs: Path
    steps: tuple[Step, ...]


def load_recipe(path: str | Path, runs: str | None = None) -> Recipe:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: the recipe cannot be read ({exc})") from None
    defaults = data.get("snapshot_defaults", {}) or {}
    steps, names = [], set()
    for raw in data.get("steps", []) or []:
        raw = dict(raw)
        unknown = set(raw) - {
            "name",
            "command",
            "config",
            "out",
            "after",
            "init",
            "cycles",
            "split_from",
            "set",
            "keep",
            "lr",
        }
        if unknown:
            raise ConfigError(f"{p}: step {raw.get('name')!r} has unknown keys {sorted(unknown)}")
        if raw.get("command") not in COMMANDS:
            raise ConfigError(f"{p}: step {raw.get('name')!r}: command must be one of {COMMANDS}")
        if raw.get("after") and raw["after"] not in names:
            raise ConfigError(f"{p}: step {raw['name']!r} comes after {raw['after']!r}, which is not an earlier step")
        if raw["command"] == "snapshots" and not (raw.get("init") and raw.get("cycles")):
            raise ConfigError(f"{p}: snapshot step {raw['name']!r} needs init and cycles")
        names.add(raw["name"])
        steps.append(
            Step(
                name=str(raw["name"]),
                command=raw["command"],
                config=str(raw["config"]),
                out=str(raw["out"]),
                after=raw.get("after"),
                init=raw.get("init"),
                cycles=raw.get("cycles"),
                keep=int(raw.get("keep", defaults.get("keep", 5))),
                lr=float(raw.get("lr", defaults.get("lr", 3e-4))),
                split_from=raw.get("split_from"),
                overrides=tuple(raw.get("set", []) or ()),
            )
        )
    base = runs or os.environ.get("MELASCREEN_RUNS") or data.get("runs", "../runs")
    return Recipe(Path(base), tuple(steps))


def step_argv(step: Step, runs: Path) -> list[str]:
    """The training.train / training.snapshots command line of one step."""
    out = runs / step.out
    sets = [f"output_dir={out}"]
    if step.split_from:
        sets.append(f"data.split_file={out / 'split.csv'}")
    sets += list(step.overrides)
    argv = ["--config", step.config]
    for s in sets:
        argv += ["--set", s]
    if step.command == "train":
        return [*argv, "--resume"]
    # A bundle member (.onnx, relative to the project root) or a member folder under runs.
    init = Path(step.init) if step.init.endswith(".onnx") else runs / step.init / "best.pt"
    argv += [
        "--init",
        str(init),
        "--out",
        str(out),
        "--cycles",
        str(step.cycles),
        "--keep",
        str(step.keep),
        "--lr",
        f"{step.lr:g}",
    ]
    return [*argv, "--resume"] if (out / "last.pt").exists() else argv


def run_step(step: Step, runs: Path) -> int:
    out = runs / step.out
    out.mkdir(parents=True, exist_ok=True)
    if step.split_from and not (out / "split.csv").exists():
        source = runs / step.split_from / "split.csv"
        if not source.is_file():
            raise ConfigError(f"step {step.name}: {source} does not exist yet; run step {step.after or 'before'} first")
        (out / "split.csv").write_bytes(source.read_bytes())
    if step.command == "train":
        from .train import main as command
    else:
        from .snapshots import main as command
    return command(step_argv(step, runs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.recipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", help="configs/recipes/<bundle>.yaml")
    ap.add_argument("--only", help="run this step only (its `after` step must have finished)")
    ap.add_argument("--runs", help="runs folder (default: the recipe's, or $MELASCREEN_RUNS)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    args = ap.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.runs)
        steps = [s for s in recipe.steps if args.only in (None, s.name)]
        if not steps:
            raise ConfigError(f"no step named {args.only!r}; steps: {[s.name for s in recipe.steps]}")
        for step in steps:
            module = "training.train" if step.command == "train" else "training.snapshots"
            if args.dry_run:
                print(f"[{step.name}] python -m {module} " + " ".join(step_argv(step, recipe.runs)))
                continue
            code = run_step(step, recipe.runs)
            if code:
                return code
    except ConfigError as exc:
        print(f"recipe error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
