"""Bundle identity covers every file: results stored with one bundle are never reused for another."""

import shutil

import numpy as np
import pytest
from PIL import Image

from core.inference.bundle import load_bundle, sign_bundle
from core.inference.manifest import MODEL_CARD
from core.records.store import ReviewStore
from core.screening import Screener, screen_folder
from tests.support.synthetic_bundle import CLASSES, TEST_SIGNING_KEY, make_bundle


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(20 + 60 * i, 90 + 60 * i, (80, 80, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _reused(bundle_path, images, db) -> int:
    with ReviewStore.open(db) as store:
        _, summary = screen_folder(Screener(load_bundle(bundle_path)), images, store)
    assert summary.errors == 0
    return summary.reused


VARIANTS = {
    "mean": {"mean": (0.45, 0.5, 0.5)},
    "std": {"std": (0.5, 0.5, 0.25)},
    "positive_class": {"positive_class": "bcc"},
    "class_names": {"class_names": tuple(c.upper() if c == "df" else c for c in CLASSES)},
    "input_size": {"input_size": 96},
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_bundle_differing_in_one_setting_does_not_reuse_stored_results(name, synthetic_bundle, images, tmp_path):
    db = tmp_path / "results.sqlite"
    assert _reused(synthetic_bundle, images, db) == 0
    assert _reused(synthetic_bundle, images, db) == 3  # same bundle: taken from the earlier run
    variant = make_bundle(tmp_path / name, **VARIANTS[name])
    assert load_bundle(variant).identity != load_bundle(synthetic_bundle).identity
    assert _reused(variant, images, db) == 0


def test_an_identical_copy_reuses_and_a_new_model_card_does_not(synthetic_bundle, images, tmp_path):
    db = tmp_path / "results.sqlite"
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_bundle, copy)
    assert _reused(synthetic_bundle, images, db) == 0
    assert _reused(copy, images, db) == 3  # identity is about content, not where the folder lies
    (copy / MODEL_CARD).write_text("# Re-evaluated\n")
    sign_bundle(copy, TEST_SIGNING_KEY)
    assert _reused(copy, images, db) == 0
