"""Views of saved per-view outputs: which TTA views a saved run holds, and member logits averaged over a
subset of them, so a bundle with fewer views is re-fitted and scored without running the models again.

evalkit.view_outputs saves logits N x members x views x classes (before temperature) in the order of the
bundle it ran (meta.json "views"); a bundle with fewer views (a subset of those) is decided from the same
numbers by averaging over its own views, which is what core's Ensemble computes for it.

    python -m evalkit.cascade_views raw --outputs ../cache/cascade/outputs --sets ham_val --views id,flip \
        --out ham_val.npz      # arrays ids, dx, logits (N x members x classes): export.refit / training.evaluate
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

META = "meta.json"


def saved_views(folder: Path) -> tuple[str, ...] | None:
    """The views of a saved run, in the order its logits hold them (None: no meta.json there)."""
    meta = Path(folder) / META
    if not meta.is_file():
        return None
    return tuple(json.loads(meta.read_text())["views"])


class _QualityUnpickler(pickle.Unpickler):
    """Saved quality reports name the module their class lived in when saved; core's modules have moved
    since (core.results -> core.decision.results), so a class core no longer has there is looked up by name."""

    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ModuleNotFoundError, AttributeError):
            if not module.startswith("core."):
                raise
            from core.decision import results

            return getattr(results, name)


def load_quality(path: Path) -> list:
    """The per-image QualityReports (None: a file that could not be used) of one saved chunk."""
    with open(path, "rb") as fh:
        return _QualityUnpickler(fh).load()


def view_index(saved: Sequence[str], views: Sequence[str]) -> list[int]:
    """Positions of `views` among the saved views; a view the run did not save cannot be scored."""
    missing = [v for v in views if v not in saved]
    if missing:
        raise ValueError(f"views {missing} were not saved (saved: {', '.join(saved)}); run evalkit.view_outputs again")
    return [list(saved).index(v) for v in views]


def average_views(logits: np.ndarray, saved: Sequence[str], views: Sequence[str]) -> np.ndarray:
    """N x M x V x K saved logits -> N x M x K averaged over `views` (before temperature, as core averages)."""
    if logits.shape[2] != len(saved):
        raise ValueError(f"logits hold {logits.shape[2]} views, the run saved {len(saved)}")
    return logits[:, :, view_index(saved, views)].mean(axis=2)


def write_raw(folder: Path, sets: Sequence[str], views: Sequence[str], out: Path) -> int:
    """The raw-outputs file that export.refit (--raw-npz) and training.evaluate (--raw-npz) read, for a bundle
    with `views`; images that could not be used (no quality report) are left out. Returns the image count."""
    from .cascade_fit import load_outputs

    saved = saved_views(folder)
    if saved is None:
        raise SystemExit(f"{folder}: no {META} (not written by evalkit.view_outputs)")
    data = load_outputs(Path(folder), tuple(sets))
    np.savez(
        out,
        ids=np.array(data.ids),
        dx=np.array(data.dx),
        logits=average_views(data.logits, saved, views).astype(np.float32),
    )
    return len(data.ids)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("raw",))
    ap.add_argument("--outputs", required=True, type=Path)
    ap.add_argument("--sets", required=True, help="comma-separated: ham_val,isic2017_val,ham_test,derm7pt")
    ap.add_argument("--views", required=True, help="comma-separated view names, e.g. id,flip")
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args(argv)
    n = write_raw(a.outputs, a.sets.split(","), a.views.split(","), a.out)
    print(f"wrote {a.out}: {n} images x views {a.views}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
