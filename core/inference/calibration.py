"""Calibrated probabilities from member logits: computed one way, for the app and for the export's fits.

Each member's TTA-averaged logits are divided by its temperature (fitted on the validation split,
export/calibrate.py) and passed through a softmax; the ensemble's probability of a class is the mean of
the members'. A member's p(malignant) is the sum of its malignant classes' probabilities. The export
fits the gate on exactly these numbers, so a threshold means the same in the app.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def calibrated_probs(member_logits: np.ndarray, temperatures: Sequence[float] | np.ndarray) -> np.ndarray:
    """M x N x K raw logits (one row of N per member) and one temperature per member -> M x N x K
    probabilities, softmax(logits / T_m). The temperatures are applied as float32; the logits keep their type."""
    temps = np.asarray(temperatures, dtype=np.float32)
    return softmax(member_logits / temps[:, None, None])


def malignant_sum(probs: np.ndarray, malignant_indices: Sequence[int]) -> np.ndarray:
    """Probabilities (classes on the last axis) -> p(malignant): the sum over the malignant classes."""
    return probs[..., list(malignant_indices)].sum(axis=-1)
