"""The heat map of the class the outcome names (issue 24, item 5): computed on demand from the graph's
per-class Grad-CAM, the same way screening combines the positive class's map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.decision.results import Decision, ScreeningResult
from core.files.images import read_image
from core.inference.bundle import load_bundle
from core.inference.class_cam import class_heat_map, named_class
from core.inference.ensemble import EnsembleSettings
from core.screening import Screener
from tests.support.intake_bundle import skin_like, write_rgb


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
    assert named_class(ScreeningResult(**{**base.__dict__, "decision": Decision.REVIEW})) == "nv"
    cleared = ScreeningResult(path="x", sha256="s", status="ok", decision=Decision.NO_CANCER_SUSPECTED)
    assert named_class(cleared) == "mel"


def bcc_picture(path):
    """A pale green picture with a paler disc: the synthetic bundle's most likely class is BCC (a review
    whose reason names it), robustly (checked with and without noise)."""
    import cv2

    img = np.full((200, 240, 3), (191, 251, 190), np.uint8)  # BGR
    cv2.circle(img, (120, 100), 50, (190, 250, 190), -1)
    cv2.imwrite(str(path), img)
    return path


def test_screening_keeps_the_named_class_map_from_the_same_run_and_the_store_keeps_it(synthetic_bundle, tmp_path):
    from core.records.run_report import run_report
    from core.records.store import ReviewStore
    from core.screening import RunSettings, screen_folder

    screener = Screener(load_bundle(synthetic_bundle), EnsembleSettings(engine="onnxruntime", provider="cpu"))
    folder = tmp_path / "day"
    folder.mkdir()
    bcc = bcc_picture(folder / "bcc.png")
    write_rgb(folder / "mel.png", skin_like(3))
    result, _ = screener.screen_image(bcc)
    assert named_class(result) == "bcc" and result.named_cam_class == "bcc"
    rgb = read_image(str(bcc)).rgb
    on_demand = class_heat_map(screener.ensemble, rgb, "bcc")
    assert np.allclose(result.named_cam, on_demand, atol=1e-4)  # the same map, with no second model run
    assert not np.allclose(result.named_cam, result.cam, atol=1e-3)  # and not melanoma's
    # The outcome is what it was without any heat map: same probabilities and decisions.
    plain, _ = screener.infer([screener.prepare(str(bcc))], screener.thresholds(), with_cam=False)[0]
    assert (plain.decision, plain.band, plain.class_probs, plain.p_malignant) == (
        result.decision,
        result.band,
        result.class_probs,
        result.p_malignant,
    )
    assert plain.named_cam is None and plain.cam is None

    store = ReviewStore.open(tmp_path / "r.sqlite")
    _, summary = screen_folder(screener, folder, store, run=RunSettings())
    stored = {Path(r.path).name: r for r in store.run_results(summary.run_id)}
    kept = stored["bcc.png"]
    assert kept.named_cam_class == "bcc" and kept.named_cam.shape == kept.cam.shape  # the cam's size limit
    small = cv2_resize(on_demand, kept.named_cam.shape)
    assert np.abs(kept.named_cam - small).max() < 0.02  # 8-bit PNG at most 128 px: within rounding
    m = stored["mel.png"]
    assert m.named_cam_class == named_class(m)
    if m.named_cam_class == "mel":  # the positive class named: its map is the cam, stored once
        assert m.named_cam is m.cam
    page = run_report(list(stored.values())).html()
    assert "heat map of basal cell carcinoma" in page and "not stored" not in page
    store.close()


def cv2_resize(cam, shape):
    import cv2

    return cv2.resize(cam, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def test_a_result_stored_before_named_maps_shows_melanoma_and_says_so(synthetic_bundle, tmp_path):
    from dataclasses import replace

    from core.records.report_pictures import heat_map_caption

    screener = Screener(load_bundle(synthetic_bundle), EnsembleSettings(engine="onnxruntime", provider="cpu"))
    result, _ = screener.screen_image(bcc_picture(tmp_path / "bcc.png"))
    old = replace(result, named_cam=None, named_cam_class="")
    assert old.heat_map() == (old.cam, "mel")
    assert (
        heat_map_caption(old) == "heat map of melanoma (the map of basal cell carcinoma is not stored with this result)"
    )
    assert heat_map_caption(result) == "heat map of basal cell carcinoma"
