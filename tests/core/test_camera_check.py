"""The per-run camera check (core/screening/camera_check.py) and what it does to auto-clearing
(core/screening/auto_clearing.py)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from core.decision.intake_check import IntakeCheck
from core.imaging.picture_statistics import image_statistics
from core.screening.auto_clearing import CameraValidation, run_clearing
from core.screening.camera_check import MIN_IMAGES, CameraCheck, check_files, check_statistics
from tests.support.intake_bundle import skin_like


def fitted_check(stats: np.ndarray) -> IntakeCheck:
    cov = np.cov(stats.T) + 1e-6 * np.eye(stats.shape[1])
    return IntakeCheck(
        threshold=1.0, clear_threshold=2.0, image_mean=tuple(stats.mean(0)),
        image_precision=tuple(map(tuple, np.linalg.inv(cov))), image_threshold=35.0, image_clear_threshold=200.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def training_like():
    """The picture statistics of 120 skin-like pictures, and a check fitted on them."""
    stats = np.array([image_statistics(skin_like(1000 + i, (144, 192))) for i in range(120)])
    return stats, fitted_check(stats)


def greener_and_sharper(rgb: np.ndarray) -> np.ndarray:
    out = rgb.astype(np.float32)
    out[..., 0] -= 25  # less red
    out[..., 1] += 10
    blurred = cv2.GaussianBlur(out, (0, 0), 2)
    return np.clip(out + 1.5 * (out - blurred), 0, 255).astype(np.uint8)


def test_quiet_on_pictures_like_the_training_ones_and_says_which_way_others_differ(training_like):
    _, check = training_like
    same = check_statistics(np.array([image_statistics(skin_like(i, (144, 192))) for i in range(40)]), check)
    assert same.enough and not same.fired and "look like the training images" in same.words
    other = check_statistics(
        np.array([image_statistics(greener_and_sharper(skin_like(i, (144, 192)))) for i in range(40)]), check
    )
    assert other.fired and other.shift > 10 * max(same.shift, 0.1)
    assert "greener" in other.differences
    assert "sharper" in other.differences or "more fine texture" in other.differences
    assert other.words.startswith("these images differ from the training images (")
    assert "expect more reviews and weaker ranking" in other.words and "shift" in other.measures
    again = CameraCheck.from_dict(other.to_dict())  # as the run summary keeps it
    assert again.fired and again.words == other.words and again.shift == pytest.approx(other.shift, abs=1e-3)


def test_too_few_pictures_is_said_not_judged(training_like):
    _, check = training_like
    few = check_statistics(
        np.array([image_statistics(greener_and_sharper(skin_like(i, (144, 192)))) for i in range(MIN_IMAGES - 1)]),
        check,
    )
    assert not few.enough and not few.fired and "needs at least" in few.words


def test_many_pictures_over_the_per_image_limit_fire_it_too(training_like):
    stats, check = training_like
    weird = stats[:40].copy()
    weird[:12, 0] += 12 * np.sqrt(np.cov(stats.T)[0, 0])  # 30% far brighter
    result = check_statistics(weird, check)
    assert result.unfamiliar_share >= 0.3 and result.fired


def test_a_run_on_a_new_camera_turns_auto_clearing_off_unless_validated(training_like, tmp_path):
    _, check = training_like
    bundle = SimpleNamespace(manifest=SimpleNamespace(ood=check, name="b", version="1"))
    same, other = tmp_path / "same", tmp_path / "other"
    for folder, make in (
        (same, lambda i: skin_like(i, (144, 192))),
        (other, lambda i: greener_and_sharper(skin_like(i, (144, 192)))),
    ):
        folder.mkdir()
        for i in range(MIN_IMAGES + 2):
            cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(make(i), cv2.COLOR_RGB2BGR))
        (folder / "notes.txt").write_text("not a picture")  # skipped, never counted
    quiet = run_clearing(bundle, sorted(same.iterdir()), True)
    assert quiet.allowed and not quiet.camera.fired and quiet.camera.n_images == MIN_IMAGES + 2
    fired = run_clearing(bundle, sorted(other.iterdir()), True)
    assert not fired.allowed and "AUTO-CLEARING OFF" in fired.words and "not validated" in fired.why
    assert fired.to_dict()["camera_check"]["fired"] is True
    off = run_clearing(bundle, sorted(same.iterdir()), False)
    assert not off.allowed and "until this camera is validated" in off.why
    assert check_files(sorted(same.iterdir()), None) is None  # a bundle without picture statistics


def test_validation_needs_enough_confirmed_cases_and_no_cleared_malignancy():
    assert CameraValidation(250, 40, 0).validated
    assert (
        not CameraValidation(250, 40, 1).validated and "would have been cleared" in CameraValidation(250, 40, 1).words
    )
    assert not CameraValidation(150, 40, 0).validated and "needs 200" in CameraValidation(150, 40, 0).words
    assert not CameraValidation(250, 20, 0).validated
