"""The heat map of the class the outcome names (issue 24, item 5): computed on demand from the graph's
per-class Grad-CAM, the same way screening combines the positive class's map."""

from __future__ import annotations

import numpy as np
import pytest
from intake_bundle import skin_like, write_rgb

from core.bundle import load_bundle
from core.class_cam import class_heat_map, named_class
from core.ensemble import EnsembleSettings
from core.images import read_image
from core.results import Decision, ScreeningResult
from core.screening import Screener


def test_the_positive_class_map_is_the_one_screening_stores_and_other_classes_differ(synthetic_bundle, tmp_path):
    screener = Screener(load_bundle(synthetic_bundle), EnsembleSettings(engine="onnxruntime", provider="cpu"))
    path = write_rgb(tmp_path / "lesion.png", skin_like(3))
    result, _ = screener.screen_image(path)
    rgb = read_image(str(path)).rgb
    m = screener.bundle.manifest
    mel = class_heat_map(screener.ensemble, rgb, m.positive_class)
    assert mel.shape == rgb.shape[:2] and np.allclose(mel, result.cam, atol=1e-4)
    other = class_heat_map(screener.ensemble, rgb, next(c for c in m.class_names if c != m.positive_class))
    assert other.shape == mel.shape and 0.0 <= other.min() and other.max() <= 1.0
    assert not np.allclose(other, mel, atol=1e-3)
    with pytest.raises(ValueError, match="no class"):
        class_heat_map(screener.ensemble, rgb, "wart")


def test_the_named_class_is_the_suspicious_class_else_the_most_likely():
    base = ScreeningResult(path="x", sha256="s", status="ok", likely_class="nv", malignant_class="bcc")
    assert named_class(ScreeningResult(**{**base.__dict__, "decision": Decision.SUSPICIOUS})) == "bcc"
    assert named_class(ScreeningResult(**{**base.__dict__, "decision": Decision.UNCERTAIN})) == "nv"
    assert named_class(ScreeningResult(path="x", sha256="s", status="ok", decision=Decision.BENIGN)) == "mel"
