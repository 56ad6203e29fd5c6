"""Tiny real-data fixtures for the training tests: a few lesions of every class, 64 px."""

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from tiny_labels import write_labels

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dermoscopy"


@pytest.fixture(scope="session")
def labels_csv() -> Path:
    if not (DATA / "labels.csv").is_file():
        pytest.fail(f"HAM10000 labels not found at {DATA}; the training tests need the shared data")
    return DATA / "labels.csv"


@pytest.fixture(scope="session")
def tiny_labels(tmp_path_factory, labels_csv) -> Path:
    """labels.csv restricted to 4 lesions per diagnosis (all their images): about 35 images."""
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    lesions = defaultdict(list)
    for r in rows:
        lesions[(r["dx"], r["lesion_id"])].append(r)
    chosen, per_dx = [], defaultdict(int)
    for (dx, _), imgs in sorted(lesions.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1])):
        if per_dx[dx] < 4 and len(imgs) <= 3:
            per_dx[dx] += 1
            chosen.extend(imgs)
    return write_labels(tmp_path_factory.mktemp("tiny") / "labels.csv", chosen)


def _tiny_overrides(tmp: Path, labels: Path, **extra) -> list[str]:
    """--set overrides of a seconds-long run: random-init lite0 at 64 px, a few steps per epoch."""
    base = {
        "output_dir": str(tmp / "run"),
        "data.cache_dir": str(tmp / "cache"),
        "data.labels_csv": str(labels),
        "data.images_dir": str(DATA / "images"),
        "data.input_size": 64,
        "data.preprocess": "false",
        "data.cache_workers": 1,
        "model.pretrained_path": "none",
        "seeds": "[0]",
        "eval_batch_size": 16,
        "max_steps_per_epoch": 2,
        "phase1.epochs": 1,
        "phase2.epochs": 1,
        "phase3.epochs": 1,
        "phase1.batch_size": 8,
        "phase2.batch_size": 8,
        "phase3.batch_size": 8,
        "cached_views": "[id, flip]",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def tiny_overrides(tmp_path, tiny_labels):
    """Call with key=value extras (dots as '__'): the --set list of a tiny run in tmp_path."""

    def make(**extra) -> list[str]:
        return _tiny_overrides(tmp_path, tiny_labels, **{k.replace("__", "."): v for k, v in extra.items()})

    return make
