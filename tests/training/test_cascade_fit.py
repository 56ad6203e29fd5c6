"""The cascade's margin fit (evalkit/cascade_fit.py): review intervals keep clear of every image the full
ensemble does not hold for review, with the recipe's safety factors, inside the gate's review range."""

import numpy as np
import pytest

from core.decision.gate import Thresholds
from evalkit.cascade_fit import CLEAR_FACTOR, SUSPICIOUS_FACTOR, review_intervals


def test_review_intervals_avoid_every_image_not_held_for_review():
    t = Thresholds(0.1, 0.9)
    pm = np.array([0.05, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.95])
    full = [
        "benign",
        "uncertain",
        "uncertain",
        "uncertain",
        "suspicious",
        "uncertain",
        "uncertain",
        "uncertain",
        "suspicious",
    ]
    eligible = np.ones(len(pm), dtype=bool)
    got = review_intervals(pm, eligible, full, t)
    # the suspicious image at 0.4 splits review: [1.25 x 0.1, 0.8 x 0.4) and [1.25 x 0.4, 0.8 x 0.9)
    expected = [SUSPICIOUS_FACTOR * 0.1, CLEAR_FACTOR * 0.4, SUSPICIOUS_FACTOR * 0.4, CLEAR_FACTOR * 0.9]
    assert [x for pair in got for x in pair] == pytest.approx(expected, abs=1e-6)
    for lo, hi in got:
        inside = (pm >= lo) & (pm < hi)
        assert all(full[i] == "uncertain" for i in np.flatnonzero(inside))


def test_an_image_that_is_not_eligible_does_not_split_review():
    t = Thresholds(0.1, 0.9)
    pm = np.array([0.3, 0.4, 0.5])
    full = ["uncertain", "suspicious", "uncertain"]
    eligible = np.array([True, False, True])  # e.g. a quality flag: it always runs the whole ensemble
    assert [x for pair in review_intervals(pm, eligible, full, t) for x in pair] == pytest.approx(
        [0.125, 0.72], abs=1e-6
    )
