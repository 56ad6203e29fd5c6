"""The evaluation decides each image exactly as the app does (issue 27, item 5): the same preparation
(core.screening.preparing), the same gate path (core.screening.deciding.decide_image) with the intake
check's finding, so an image the app sends to review as unlike the training images is reviewed in the
evaluation's figures too, with the same reason, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from core.decision.gate import GateSettings, Thresholds
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble, EnsembleSettings
from core.screening import Screener
from evalkit.evaluation import build_evaluation
from evalkit.labelled import case
from evalkit.scoring import load_scored, save_scored, score_images
from tests.support.intake_bundle import make_intake_bundle, not_dermoscopy, skin_like, write_rgb

ORT = EnsembleSettings(engine="onnxruntime", provider="cpu")


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A bundle with the intake check whose gate would clear every synthetic image without it, and a folder
    of skin-like images and pictures that are not dermoscopy."""
    root = tmp_path_factory.mktemp("evaluation-gate")
    gate = GateSettings(fitted={0.99: Thresholds(0.49, 0.9)}, max_member_spread=0.5)
    bundle = load_bundle(make_intake_bundle(root / "bundle", gate=gate))
    images = root / "images"
    images.mkdir()
    ids = []
    for i in range(4):
        write_rgb(images / f"skin{i}.png", skin_like(100 + i))
        ids.append(f"skin{i}")
    for kind in ("flat", "text"):
        write_rgb(images / f"{kind}.png", not_dermoscopy(kind))
        ids.append(kind)
    return bundle, images, ids


def test_the_evaluation_decides_every_image_as_the_screener_does(clinic, tmp_path):
    bundle, images, ids = clinic
    screener = Screener(bundle, ORT)
    app = {i: screener.screen_image(images / f"{i}.png")[0] for i in ids}
    assert any(r.intake not in (None, "familiar") for r in app.values())  # the check has something to say

    ensemble = Ensemble(bundle, ORT)
    scored = score_images(bundle, ensemble, ids, images, batch_size=4, threads=1)
    save_scored(tmp_path / "raw.npz", scored)  # the cache keeps what the gate needs
    cases = [case(i, "nv") for i in ids]
    for scores in (scored, load_scored(tmp_path / "raw.npz")):
        ev = build_evaluation(bundle, ensemble, cases, scores)
        level = ev.default_confidence
        by_id = dict(zip(ev.image_ids, zip(ev.decisions[level], ev.reasons[level], ev.bands[level])))
        for i in ids:
            r = app[i]
            assert by_id[i] == (r.decision.value, r.reason, r.band or ""), i
            assert ev.p_malignant[ev.image_ids.index(i)] == pytest.approx(r.p_malignant, abs=1e-6)
        assert np.all(np.isfinite(ev.p_malignant))
