"""`python -m training.evaluate ...`: the evaluation command, kept under this name because README, the recipes
and the model cards name it. The evaluation itself is torch-free and lives in evalkit (evalkit/evaluate.py)."""

from __future__ import annotations

import sys

from evalkit.evaluate import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m training.evaluate"))
