"""Dermoscopy preprocessing: what a clinician would notice if it went wrong (a dark lesion erased
as if it were a vignette, hairs left in, contrast lost), plus the contract training relies on
(shapes, dtypes, determinism, parameters that round-trip through the bundle)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.imaging.preprocess import (
    PreprocessParams,
    apply_clahe,
    corner_mask,
    hair_mask,
    normalize,
    preprocess,
    remove_corners,
    remove_hair,
    resize_square,
    scaled_kernel,
    scaled_radius,
    scaled_sizes,
    to_model_input,
    to_working_size,
)

HAM_IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "dermoscopy" / "images"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ONLY_CORNERS = PreprocessParams(hair=False, clahe=False)
ONLY_HAIR = PreprocessParams(corners=False, clahe=False)
ONLY_CLAHE = PreprocessParams(corners=False, hair=False)
SKIN = (205, 150, 135)


def skin(height: int = 288, width: int = 384, seed: int = 0, texture: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, texture, (height, width)).astype(np.float32), (0, 0), 1.5)
    return np.clip(np.array(SKIN, np.float32) + noise[:, :, None], 0, 255).astype(np.uint8)


def disk(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def vignetted_lesion(height: int = 288, width: int = 384) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skin seen through a round dermoscope (black outside the circle) with a very dark lesion in
    the middle. Returns the image, the lesion mask and the vignette mask."""
    rgb = skin(height, width)
    lesion = disk((height, width), (height / 2, width / 2), 40)
    rgb[lesion] = (25, 15, 15)  # darker than corner_threshold (50): the seed would inpaint it
    vignette = ~disk((height, width), (height / 2, width / 2), 0.55 * np.hypot(height, width) / 1.05)
    rgb[vignette] = (8, 8, 8)
    return rgb, lesion, vignette


def hairy_lesion(height: int = 288, width: int = 384, hair_width: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skin with a brown lesion blob and thin dark hairs crossing the skin. Returns the image, the
    lesion mask and the hair mask."""
    rgb = skin(height, width)
    lesion = disk((height, width), (height / 2, width / 2), min(height, width) / 5)
    rgb[lesion] = (120, 70, 50)
    hairs = np.zeros((height, width), np.uint8)
    for k in range(5):
        x0 = int(width * (0.1 + 0.2 * k))
        cv2.line(hairs, (x0, 0), (x0 + width // 6, height - 1), 1, hair_width)
    cv2.line(hairs, (0, height // 6), (width - 1, height // 4), 1, hair_width)
    hairs = hairs.astype(bool) & ~cv2.dilate(lesion.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    rgb[hairs] = (45, 35, 30)
    return rgb, lesion, hairs


def real_images(count: int = 3) -> list[np.ndarray]:
    if not HAM_IMAGES.is_dir():
        return []
    # Chosen for what they show: a vignette, a dark lesion the seed's threshold would erase, hairs.
    names = ["ISIC_0033621.jpg", "ISIC_0034049.jpg", "ISIC_0027237.jpg"][:count]
    paths = [HAM_IMAGES / n for n in names if (HAM_IMAGES / n).exists()]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


# -------------------------------------------------------------------------------------- corners


def test_dark_lesion_survives_while_vignette_corners_are_filled():
    rgb, lesion, vignette = vignetted_lesion()
    assert (grey(rgb)[lesion] < ONLY_CORNERS.corner_threshold).all()  # the seed's mask would take it

    mask = corner_mask(rgb, ONLY_CORNERS)
    assert not (mask & lesion).any()
    assert mask[vignette].all()

    out = preprocess(rgb, ONLY_CORNERS)
    assert grey(out)[lesion].max() < 40  # the lesion stays as dark as it was
    for corner in (out[:10, :10], out[:10, -10:], out[-10:, :10], out[-10:, -10:]):
        assert grey(corner).mean() > 120  # black corners now look like skin


def test_tiny_vignette_under_min_fraction_is_left_alone():
    rgb = skin()
    rgb[:3, :3] = 0  # 9 of 110,592 pixels, under 0.1 %
    assert not corner_mask(rgb, ONLY_CORNERS).any()
    np.testing.assert_array_equal(remove_corners(rgb, ONLY_CORNERS), rgb)


def test_no_corner_inpainting_without_dark_pixels():
    rgb = skin()
    np.testing.assert_array_equal(preprocess(rgb, ONLY_CORNERS), rgb)


def test_real_images_keep_dark_pixels_not_connected_to_the_border():
    pictures = real_images() or [vignetted_lesion()[0]]
    checked = 0
    for rgb in pictures:
        working = to_working_size(rgb, ONLY_CORNERS.working_size)
        dark = (grey(working) < ONLY_CORNERS.corner_threshold).astype(np.uint8)
        count, labels = cv2.connectedComponents(dark, connectivity=8)
        border_labels = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))) - {0}
        inner = np.isin(labels, [label for label in range(1, count) if label not in border_labels])
        # Dilation may reach pixels within a kernel radius of the vignette; a bit further is untouched.
        vignette = np.isin(labels, list(border_labels)).astype(np.uint8)
        inner &= ~cv2.dilate(vignette, np.ones((25, 25), np.uint8)).astype(bool)
        out = preprocess(rgb, ONLY_CORNERS)
        np.testing.assert_array_equal(out[inner], working[inner])
        checked += int(inner.sum())
    assert checked > 1000  # the pictures do have dark pigment away from the border


# ----------------------------------------------------------------------------------------- hair


def line_contrast(rgb: np.ndarray, hairs: np.ndarray) -> float:
    """Mean grey difference between hair pixels and the skin just beside them."""
    near = cv2.dilate(hairs.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~cv2.dilate(
        hairs.astype(np.uint8), np.ones((3, 3), np.uint8)
    ).astype(bool)
    g = grey(rgb)
    return float(g[near].mean() - g[hairs].mean())


def test_hairs_fade_while_the_lesion_stays():
    rgb, lesion, hairs = hairy_lesion()
    before = line_contrast(rgb, hairs)
    out = preprocess(rgb, ONLY_HAIR)
    after = line_contrast(out, hairs)
    assert before > 80 and after < 0.15 * before
    core = cv2.erode(lesion.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert abs(grey(out)[core].mean() - grey(rgb)[core].mean()) < 3  # the blob is not painted over
    assert not hair_mask(rgb, ONLY_HAIR)[core].any()


@pytest.mark.parametrize("working_size", [192, 384, 768])
def test_hair_removal_scales_with_resolution(working_size: int):
    # The same picture at three resolutions: hair width scales with it, and so must the kernel.
    scale = working_size / 384
    rgb, _, hairs = hairy_lesion(int(288 * scale), working_size, hair_width=max(1, round(5 * scale)))
    params = replace(ONLY_HAIR, working_size=working_size)
    out = preprocess(rgb, params)
    assert line_contrast(out, hairs) < 0.2 * line_contrast(rgb, hairs)


def test_no_hair_no_change():
    rgb = np.full((200, 300, 3), SKIN, np.uint8)
    np.testing.assert_array_equal(remove_hair(rgb, ONLY_HAIR), rgb)


# ---------------------------------------------------------------------------------------- CLAHE


def local_contrast(rgb: np.ndarray) -> float:
    g = grey(rgb)
    return float(np.mean([g[y : y + 32, x : x + 32].std() for y in range(0, 256, 32) for x in range(0, 352, 32)]))


def test_clahe_raises_local_contrast_and_keeps_hue():
    rgb = skin(texture=3.0)
    out = preprocess(rgb, ONLY_CLAHE)
    assert local_contrast(out) > 1.5 * local_contrast(rgb)
    # Lightness changes, colour does not: a and b of LAB stay within a couple of levels.
    lab_in, lab_out = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB), cv2.cvtColor(out, cv2.COLOR_RGB2LAB)
    assert np.abs(lab_in[:, :, 1:].astype(int) - lab_out[:, :, 1:]).mean() < 3
    np.testing.assert_array_equal(apply_clahe(rgb, ONLY_CLAHE), out)


# ---------------------------------------------------------------------- shapes, dtypes, contract


def test_preprocess_works_at_bounded_resolution_and_keeps_aspect():
    params = PreprocessParams()
    large = cv2.resize(skin(), (1200, 900))
    out = preprocess(large, params)
    assert out.shape == (336, 448, 3) and out.dtype == np.uint8
    small = skin(150, 200)
    assert preprocess(small, params).shape == (150, 200, 3)  # never enlarged
    tall = cv2.resize(skin(), (300, 1000))
    assert preprocess(tall, params).shape == (448, 134, 3)


def test_all_steps_off_returns_the_working_image():
    rgb = skin()
    off = PreprocessParams(corners=False, hair=False, clahe=False)
    np.testing.assert_array_equal(preprocess(rgb, off), rgb)


def test_preprocess_is_deterministic_and_leaves_its_input_alone():
    rgb, _, _ = vignetted_lesion()
    rgb[100:102, :] = (40, 30, 30)  # and a hair
    before = rgb.copy()
    first = preprocess(rgb, PreprocessParams())
    second = preprocess(rgb.copy(), PreprocessParams())
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(rgb, before)


def test_real_images_preprocess_to_working_resolution():
    for rgb in real_images() or [hairy_lesion()[0]]:
        out = preprocess(rgb, PreprocessParams())
        assert out.dtype == np.uint8
        assert max(out.shape[:2]) == min(max(rgb.shape[:2]), 448)
        assert out.shape[0] / out.shape[1] == pytest.approx(rgb.shape[0] / rgb.shape[1], rel=0.01)


def test_resize_square_shapes_and_interpolation():
    rgb = skin()
    shrunk = resize_square(rgb, 224)
    assert shrunk.shape == (224, 224, 3) and shrunk.dtype == np.uint8
    np.testing.assert_array_equal(shrunk, cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA))
    grown = resize_square(rgb, 512)
    np.testing.assert_array_equal(grown, cv2.resize(rgb, (512, 512), interpolation=cv2.INTER_LINEAR))


def test_normalize_matches_the_formula():
    rgb = skin(64, 64)
    x = normalize(rgb, MEAN, STD)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and x.flags.c_contiguous
    expected = (rgb[5, 7] / 255.0 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(x[:, 5, 7], expected, rtol=1e-5)


def test_to_model_input_is_resize_then_normalize():
    rgb = skin()
    np.testing.assert_array_equal(to_model_input(rgb, 224, MEAN, STD), normalize(resize_square(rgb, 224), MEAN, STD))


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError):
        preprocess(np.zeros((10, 10), np.uint8), PreprocessParams())
    with pytest.raises(ValueError):
        resize_square(np.zeros((10, 10, 3), np.float32), 8)


def test_params_round_trip_through_a_dict():
    params = PreprocessParams(working_size=320, hair=False, clahe_clip=3.0)
    assert PreprocessParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match="unknown"):
        PreprocessParams.from_dict({"working_sise": 320})


# ------------------------------------------------------------------------------ kernel scaling


def test_kernels_at_reference_size_are_the_seeds():
    sizes = scaled_sizes(600, PreprocessParams())
    assert sizes.scale == 1.0
    assert (sizes.hair_kernel, sizes.corner_inpaint_radius, sizes.hair_inpaint_radius) == (17, 15, 3)
    assert sizes.corner_dilate_kernel == 3


def test_kernels_scale_stay_odd_and_at_least_three():
    params = PreprocessParams()
    assert scaled_sizes(300, params).hair_kernel == 9  # 17 * 0.5 = 8.5 -> nearest odd
    assert scaled_sizes(384, params).hair_kernel == 11  # 17 * 0.64 = 10.9
    assert scaled_sizes(1200, params).hair_kernel == 35
    for side in range(16, 2000, 7):
        sizes = scaled_sizes(side, params)
        assert sizes.hair_kernel % 2 == 1 and sizes.hair_kernel >= 3
        assert sizes.corner_dilate_kernel % 2 == 1 and sizes.corner_dilate_kernel >= 3
        assert sizes.corner_inpaint_radius >= 1 and sizes.hair_inpaint_radius >= 1
    assert scaled_kernel(17, 0.01) == 3 and scaled_radius(3, 0.01) == 1
    assert scaled_radius(15, 0.5) == 8 and scaled_radius(3, 0.5) == 2  # halves round up


def test_kernels_grow_monotonically_with_resolution():
    params = PreprocessParams()
    kernels = [scaled_sizes(side, params).hair_kernel for side in range(100, 2000, 50)]
    radii = [scaled_sizes(side, params).corner_inpaint_radius for side in range(100, 2000, 50)]
    assert kernels == sorted(kernels) and radii == sorted(radii)
