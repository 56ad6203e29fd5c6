"""The case panel's "Similar training images" strip: shown from a signed index, absent without one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from PIL import Image

from core.decision.vocabulary import class_name
from core.inference.bundle import load_bundle, sign_bundle
from core.inference.similar import LICENCE
from desktop.views.case_data import CaseData
from desktop.views.case_panel import CasePanel
from desktop.workers import WorkerPool
from export.similar import add_index
from tests.core.test_similar import _images
from tests.support.synthetic_bundle import CLASSES, TEST_SIGNING_KEY, make_bundle


def _panel(qtbot) -> CasePanel:
    panel = CasePanel(lambda: None, WorkerPool(), lambda: "tester")
    qtbot.addWidget(panel)
    return panel


def _case(path) -> CaseData:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return CaseData(result_id=None, result=SimpleNamespace(ok=True), rgb=rgb)  # type: ignore[arg-type]


def test_strip_shows_six_neighbours_from_the_signed_index(qtbot, tmp_path):
    paths = _images(tmp_path / "images", 8)
    labels = [CLASSES[i % len(CLASSES)] for i in range(len(paths))]
    out = add_index(make_bundle(tmp_path / "plain"), tmp_path / "indexed", paths, labels, [p.stem for p in paths], 6)
    sign_bundle(out, TEST_SIGNING_KEY)
    panel = _panel(qtbot)
    panel.show()
    panel.set_similar_bundle(load_bundle(out))
    qtbot.waitUntil(lambda: panel.similar_cases is not None, timeout=10_000)
    panel._find_similar(_case(paths[2]))
    qtbot.waitUntil(panel.similar.isVisible, timeout=10_000)
    picture, words = panel.similar.cells[0]
    assert words.text() == class_name(labels[2]) and paths[2].stem in words.toolTip()
    assert all(not p.pixmap().isNull() for p, _ in panel.similar.cells)
    assert panel.similar.licence.text() == LICENCE
    panel.pool.shutdown()


def test_no_strip_without_an_index(qtbot, synthetic_bundle, tmp_path):
    panel = _panel(qtbot)
    panel.show()
    panel.set_similar_bundle(load_bundle(synthetic_bundle))
    assert panel.similar_cases is None
    panel._find_similar(_case(_images(tmp_path / "images", 1)[0]))
    qtbot.wait(200)
    assert not panel.similar.isVisible()
    panel.pool.shutdown()


def test_about_box_names_the_licence_only_with_an_index(qtbot, tmp_path, synthetic_bundle):
    from desktop.dialogs import AboutDialog

    paths = _images(tmp_path / "images", 3)
    out = add_index(make_bundle(tmp_path / "plain"), tmp_path / "indexed", paths, ["nv"] * 3, ["a", "b", "c"], 2)
    sign_bundle(out, TEST_SIGNING_KEY)
    with_index = AboutDialog(load_bundle(out), True, None)
    without = AboutDialog(load_bundle(synthetic_bundle), True, None)
    qtbot.addWidget(with_index)
    qtbot.addWidget(without)
    assert LICENCE in with_index.head.text() and LICENCE not in without.head.text()
