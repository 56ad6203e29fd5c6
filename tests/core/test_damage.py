"""Damaged pictures are refused or held for review, never read as intact (issue 26, item 1 and 10).

The sweep at the end is the small CI version of benchmarks/bench_damage.py: real HAM10000 images when
../shared is present, synthetic photograph-like ones otherwise, each damaged in ways the checks catch
reliably (the benchmark's table in the README says how often the harder kinds are caught).
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.common.errors import ImageReadError
from core.decision.gate import Thresholds, decide
from core.decision.results import Decision, Prediction
from core.files.damage import (
    DAMAGED,
    MAY_BE_DAMAGED,
    PictureDamageLimits,
    jpeg_decoder_damage,
    jpeg_structure_damage,
    picture_damage,
)
from core.files.images import read_image
from core.imaging.quality import assess_quality
from tests.support import damage_cases as dc
from tests.support.dicom_files import write_dicom

SHARED_IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "dermoscopy" / "images"


def pictures(n: int) -> list[bytes]:
    """n JPEG files: real HAM10000 images when ../shared is present, synthetic ones otherwise."""
    if SHARED_IMAGES.is_dir():
        paths = random.Random(7).sample(sorted(SHARED_IMAGES.glob("*.jpg")), n)
        return [p.read_bytes() for p in paths]
    return [dc.jpeg(dc.photo_like(seed)) for seed in range(n)]


def rgb_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def verdict(path: Path) -> str:
    try:
        image = read_image(path)
    except ImageReadError:
        return "refused"
    return "held" if image.damage else "passed"


# ------------------------------------------------------------------------------ the JPEG checks


def test_zero_bytes_in_the_coded_data_are_caught_by_the_strict_decoder_though_the_markers_are_intact():
    data = pictures(1)[0]
    damaged = dc.zero_at_fraction(data, 512, 0.7)
    assert jpeg_structure_damage(damaged) is None  # zeros break no marker rule: the old check passed them
    assert jpeg_decoder_damage(damaged) == DAMAGED
    assert jpeg_decoder_damage(data) is None


def test_a_progressive_jpeg_cut_at_a_scan_boundary_is_incomplete_with_or_without_an_end_marker(tmp_path):
    whole = dc.progressive(rgb_of(pictures(1)[0]))
    assert jpeg_structure_damage(whole) is None
    for end_marker in (True, False):
        cut = dc.cut_at_scan(whole, random.Random(3), end_marker)
        reason = jpeg_structure_damage(cut)
        assert reason is not None and "incomplete" in reason
        with pytest.raises(ImageReadError, match="incomplete"):
            read_image(tmp_path.joinpath(f"cut{end_marker}.jpg").write_bytes(cut) and tmp_path / f"cut{end_marker}.jpg")


def test_an_intact_progressive_jpeg_is_read(tmp_path):
    path = tmp_path / "p.jpg"
    path.write_bytes(dc.progressive(rgb_of(pictures(1)[0])))
    assert read_image(path).damage is None


# --------------------------------------------------------------------------- the pixel checks


def test_one_textured_block_repeated_along_a_row_is_damage():
    rgb = dc.photo_like(1)
    block = rgb[40:48, 40:48].copy()
    for j in range(10, 20):
        rgb[80:88, j * 8 : j * 8 + 8] = block
    finding = picture_damage(rgb, from_jpeg=True)
    assert finding is not None and finding.strong and "repeated" in finding.reason
    assert picture_damage(rgb, from_jpeg=False) is None  # drawn PNGs may repeat tiles; JPEG damage does


def test_a_flat_band_cutting_through_the_picture_is_damage_in_any_format():
    rgb = dc.photo_like(2)
    flat = rgb.reshape(-1, 3)
    flat[100 * 384 + 50 : 103 * 384 + 70] = 0  # a zeroed stretch of an uncompressed file
    finding = picture_damage(rgb, from_jpeg=False)
    assert finding is not None and finding.strong and "band" in finding.reason


def test_a_band_of_noise_in_a_smooth_picture_is_damage_but_a_picture_of_noise_is_not():
    rgb = dc.photo_like(9)
    flat = rgb.reshape(-1, 3)
    flat[120 * 384 + 30 : 130 * 384] = np.random.default_rng(0).integers(0, 256, (10 * 384 - 30, 3))
    finding = picture_damage(rgb, from_jpeg=False)
    assert finding is not None and finding.strong and "noise" in finding.reason
    noise = np.random.default_rng(1).integers(0, 256, (288, 384, 3), dtype=np.uint8)
    assert picture_damage(noise, from_jpeg=False) is None


def test_a_brightness_step_along_a_block_row_to_the_end_is_weak_or_strong_evidence():
    rgb = dc.photo_like(3).astype(np.int16)
    shifted = rgb.copy()
    shifted[160:, :, :] += 40  # every later block brighter: a DC difference gone wrong
    finding = picture_damage(np.clip(shifted, 0, 255).astype(np.uint8), from_jpeg=True)
    assert finding is not None and finding.strong
    partly = rgb.copy()
    partly[160:, : int(384 * 0.55)] += 40  # along about half the width
    finding = picture_damage(np.clip(partly, 0, 255).astype(np.uint8), from_jpeg=True)
    assert finding is not None and not finding.strong and finding.reason == MAY_BE_DAMAGED


def test_drawn_pictures_with_flat_areas_and_straight_edges_are_not_damage():
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:48, :64], rgb[:48, 64:], rgb[48:, :64], rgb[48:, 64:] = (
        (220, 40, 40),
        (40, 200, 60),
        (40, 60, 210),
        (230, 220, 60),
    )
    assert picture_damage(rgb_of(dc.jpeg(rgb)), from_jpeg=True) is None
    assert picture_damage(rgb, from_jpeg=False) is None
    gap = np.full((96, 128, 3), 170, np.uint8)
    gap[10:30, 20:100] = 60
    gap[60:90, 20:100] = 60  # two shapes with whole background rows between them
    assert picture_damage(gap, from_jpeg=False) is None


def test_weak_evidence_sends_the_picture_to_review_with_the_reason_never_no_cancer_suspected():
    quality = assess_quality(dc.photo_like(4), damage=MAY_BE_DAMAGED)
    assert MAY_BE_DAMAGED in quality.flags
    prediction = Prediction(p_melanoma=0.01, member_p=(0.01, 0.01), spread=0.0, class_probs={"nv": 0.99, "mel": 0.01})
    outcome = decide(prediction, Thresholds(low=0.1, high=0.9), quality)
    assert outcome.decision is Decision.REVIEW and outcome.reason.startswith(MAY_BE_DAMAGED)
    assert decide(prediction, Thresholds(low=0.1, high=0.9), assess_quality(dc.photo_like(4))).decision is (
        Decision.NO_CANCER_SUSPECTED
    )


def test_the_limits_are_the_documented_defaults():
    limits = PictureDamageLimits()
    assert limits.step_weak < limits.step_strong <= 1.0 and limits.repeated_textured_blocks >= 4


# ------------------------------------------------------------------ several pictures in one file


def test_a_multi_page_tiff_and_an_animated_png_are_refused_with_the_page_count(tmp_path):
    white = Image.fromarray(np.full((96, 128, 3), 255, np.uint8))
    lesion = Image.fromarray(dc.photo_like(5, 96, 128))
    white.save(tmp_path / "pages.tif", save_all=True, append_images=[lesion])
    white.save(tmp_path / "anim.png", save_all=True, append_images=[lesion])
    with pytest.raises(ImageReadError, match="holds 2 pictures"):
        read_image(tmp_path / "pages.tif")
    with pytest.raises(ImageReadError, match="holds 2 pictures"):
        read_image(tmp_path / "anim.png")


def test_a_camera_mpo_is_screened_on_its_primary_picture_and_damage_checked(tmp_path):
    primary, second = dc.photo_like(6, 96, 128), np.full((96, 128, 3), 255, np.uint8)
    Image.fromarray(primary).save(tmp_path / "cam.jpg", "MPO", save_all=True, append_images=[Image.fromarray(second)])
    image = read_image(tmp_path / "cam.jpg")
    assert np.abs(image.rgb.astype(int) - primary).mean() < 8 and any("primary" in n for n in image.notes)
    data = (tmp_path / "cam.jpg").read_bytes()
    (tmp_path / "bad.jpg").write_bytes(dc.zero_at_fraction(data, 512, 0.5))
    assert verdict(tmp_path / "bad.jpg") == "refused"


# -------------------------------------------------------------------------- pipes and devices


@pytest.mark.timeout(60)
def test_a_pipe_named_like_an_image_gets_an_error_row_and_never_blocks_the_run(tmp_path, synthetic_bundle):
    from core.inference.bundle import load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.screening import RunSettings, Screener, screen_folder

    folder = tmp_path / "visit"
    folder.mkdir()
    Image.fromarray(dc.photo_like(7)).save(folder / "lesion.png")
    os.mkfifo(folder / "pipe.jpg")  # opening it for reading would wait for a writer forever
    os.mkfifo(folder / "pipe.dcm")
    from core.records.store import ReviewStore

    screener = Screener(load_bundle(synthetic_bundle), EnsembleSettings(provider="cpu"))
    with ReviewStore.open(tmp_path / "review.sqlite") as store:  # with a store, each file is hashed first
        results, summary = screen_folder(screener, folder, store, run=RunSettings(with_cam=False))
    rows = {Path(r.path).name: r for r in results}
    assert sorted(rows) == ["lesion.png", "pipe.dcm", "pipe.jpg"] and summary.total == 3
    assert rows["lesion.png"].ok
    for name in ("pipe.jpg", "pipe.dcm"):
        assert not rows[name].ok and "pipe" in rows[name].reason


# ------------------------------------------------------------------------------- the CI sweep

SWEEP = {
    "512 zero bytes": lambda d, r, w: dc.zero_block(d, r, 512),
    "2 KB zero bytes": lambda d, r, w: dc.zero_block(d, r, 2048),
    "256 random bytes": lambda d, r, w: dc.random_bytes(d, r, 256),
    "1 KB random bytes": lambda d, r, w: dc.random_bytes(d, r, 1024),
    "progressive cut, end marker added": lambda d, r, w: dc.cut_at_scan(dc.progressive(rgb_of(d)), r, True),
}
DICOM_SWEEP = {
    "DICOM JPEG, 512 zero bytes": lambda d, r, w: write_dicom(
        w / "z.dcm", rgb_of(d), encoding="jpeg", jpeg_data=dc.zero_block(d, r, 512)
    ),
    "DICOM RGB, 20 KB zero band": lambda d, r, w: _zero_band(write_dicom(w / "b.dcm", rgb_of(d), encoding="rgb"), r),
    "TIFF, 20 KB zero band": lambda d, r, w: _zero_band(_write(w / "b.tif", dc.uncompressed_tiff(rgb_of(d))), r),
    "TIFF, 20 KB random bytes": lambda d, r, w: _write(
        w / "n.tif", dc.random_bytes(dc.uncompressed_tiff(rgb_of(d)), r, 20_480)
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zero_band(path: Path, rng: random.Random) -> Path:
    return _write(path, dc.zero_block(path.read_bytes(), rng, 20_480))


@pytest.mark.parametrize("kind", [*SWEEP, *DICOM_SWEEP])
def test_sweep_no_damaged_picture_is_read_as_intact(tmp_path, kind):
    for i, data in enumerate(pictures(5)):
        rng = random.Random(f"{kind}|{i}")
        if kind in SWEEP:
            path = _write(tmp_path / f"{i}.jpg", SWEEP[kind](data, rng, tmp_path))
        else:
            path = DICOM_SWEEP[kind](data, rng, tmp_path)
        assert verdict(path) != "passed", f"{kind}: picture {i} was read as intact"


def test_sweep_the_intact_pictures_are_read_as_intact(tmp_path):
    for i, data in enumerate(pictures(5)):
        assert verdict(_write(tmp_path / f"{i}.jpg", data)) == "passed"
        assert verdict(_write(tmp_path / f"{i}.tif", dc.uncompressed_tiff(rgb_of(data)))) == "passed"
        assert verdict(write_dicom(tmp_path / f"{i}.dcm", rgb_of(data), encoding="jpeg", jpeg_data=data)) == "passed"


def test_a_picture_that_may_be_damaged_is_screened_but_held_for_review(tmp_path, synthetic_bundle):
    from core.inference.bundle import load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.screening import RunSettings, Screener, screen_folder

    rgb = dc.photo_like(8).astype(np.int16)
    rgb[160:, : int(384 * 0.55)] += 40  # a step along half the width: weak evidence
    folder = tmp_path / "visit"
    folder.mkdir()
    _write(folder / "stepped.jpg", dc.jpeg(np.clip(rgb, 0, 255).astype(np.uint8), quality=95))
    assert read_image(folder / "stepped.jpg").damage == MAY_BE_DAMAGED
    screener = Screener(load_bundle(synthetic_bundle), EnsembleSettings(provider="cpu"))
    (result,), _ = screen_folder(screener, folder, None, run=RunSettings(with_cam=False))
    assert result.ok and MAY_BE_DAMAGED in result.quality.flags
    assert result.decision is Decision.REVIEW and MAY_BE_DAMAGED in result.reason
