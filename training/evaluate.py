"""`python -m training.evaluate ...`: the evaluation command (training/evaluation/cli.py).

No torch here: only core, evalkit, numpy and matplotlib."""

from __future__ import annotations

import sys

from evalkit.labelled import read_cases
from training.evaluation.cli import TEST_SETS, EvaluationSettings, main, run_evaluation, run_sets
from training.evaluation.figures import FIGURES
from training.evaluation.model_card import update_model_card
from training.evaluation.predict import CACHE_FILE, EvaluationError

__all__ = [
    "CACHE_FILE",
    "FIGURES",
    "TEST_SETS",
    "EvaluationError",
    "EvaluationSettings",
    "main",
    "read_cases",
    "run_evaluation",
    "run_sets",
    "update_model_card",
]

if __name__ == "__main__":
    sys.exit(main())
