"""The app's gate path, in one place: from the ensemble's numbers for one image to its outcome.

The screener (core/screening/screener.py), re-gating (core/screening/regate.py) and the evaluation
(evalkit) all decide through here, so an evaluation's figures are those of the app: the bundle's
member-spread limit, what its probability is a probability of (`Manifest.risk_scope`), and the intake
check's finding (the model's score and the picture statistics) with its thresholds in the details.
"""

from __future__ import annotations

import numpy as np

from core.decision.gate import Thresholds, decide
from core.decision.intake_check import IntakeFinding, assess
from core.decision.results import GateOutcome, Prediction, QualityReport
from core.inference.manifest import Manifest


def intake_finding(
    manifest: Manifest, prediction: Prediction, statistics: np.ndarray | None = None
) -> IntakeFinding | None:
    """What the bundle's intake check says of one image; None when the bundle has no check."""
    check = manifest.ood
    if check is None or prediction.ood_score is None:
        return None
    return assess(prediction.ood_score, check, statistics)


def picture_flagged(manifest: Manifest, statistics: np.ndarray | None) -> bool:
    """The intake check's picture statistics flag the image (no model involved)."""
    check = manifest.ood
    if check is None or not check.has_image_part or statistics is None:
        return False
    score = check.image_score(statistics)
    return not np.isfinite(score) or score > check.image_threshold  # type: ignore[operator]  # image part: set


def decide_finding(
    manifest: Manifest,
    prediction: Prediction,
    thresholds: Thresholds,
    quality: QualityReport | None,
    intake: IntakeFinding | None,
) -> GateOutcome:
    """The gate with this bundle's spread limit, risk scope and intake check, on a finding already made
    (re-gating decides stored results with their stored finding)."""
    return decide(
        prediction,
        thresholds,
        quality,
        manifest.gate.max_member_spread,
        scope=manifest.risk_scope,
        intake=intake,
        intake_check=manifest.ood,
    )


def decide_image(
    manifest: Manifest,
    prediction: Prediction,
    thresholds: Thresholds,
    quality: QualityReport | None,
    statistics: np.ndarray | None = None,
) -> tuple[GateOutcome, IntakeFinding | None]:
    """One image's outcome from the ensemble's prediction, its quality report and its picture statistics
    (None when the bundle's check has no picture part or they are unknown), and the intake finding."""
    intake = intake_finding(manifest, prediction, statistics)
    return decide_finding(manifest, prediction, thresholds, quality, intake), intake
