"""Shades of Gray colour constancy (a preprocessing option that travels in the bundle): a picture
taken under a tinted light comes out close to the same picture under white light, white light
changes nothing, and bundles without the option see the very same pixels as before."""

from __future__ import annotations

import numpy as np
import pytest

from core.imaging.preprocess import PreprocessParams, colour_constancy, illuminant, preprocess


def lesion(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.zeros((120, 160, 3), np.float32) + (190, 160, 150)
    inside = (yy - 60) ** 2 + (xx - 80) ** 2 < 35**2
    img[inside] = (110, 70, 50)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def tinted(rgb: np.ndarray, gains=(1.0, 0.8, 0.9)) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * np.array(gains, np.float32), 0, 255).astype(np.uint8)


def chromaticity(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float64) + 1.0
    return x / x.sum(axis=-1, keepdims=True)


def test_a_tinted_light_is_divided_out():
    """The colours (chromaticity) come back; overall brightness is CLAHE's job, not this one's."""
    white = lesion()
    cast = tinted(white)
    before = np.abs(chromaticity(cast) - chromaticity(white)).mean()
    after = np.abs(chromaticity(colour_constancy(cast)) - chromaticity(colour_constancy(white))).mean()
    assert after < before / 4, (before, after)


def test_the_illuminant_estimate_follows_the_cast():
    e = illuminant(tinted(lesion(), (1.2, 1.0, 0.8)))
    assert e.mean() == pytest.approx(1.0)
    assert e[0] > e[1] > e[2]


def test_a_grey_picture_is_left_as_it_is():
    grey = np.full((40, 50, 3), 128, np.uint8)
    np.testing.assert_array_equal(colour_constancy(grey), grey)


def test_pixels_to_ignore_do_not_pull_the_estimate():
    img = lesion()
    img[:, :20] = (0, 0, 255)  # a blue strip, e.g. a ruler or a vignette
    mask = np.zeros(img.shape[:2], bool)
    mask[:, :20] = True
    np.testing.assert_allclose(illuminant(img, ignore=mask), illuminant(img[:, 20:]), rtol=1e-9)


def test_it_is_off_by_default_and_old_bundles_see_the_same_pixels():
    img = lesion(1)
    assert PreprocessParams().colour_constancy is False
    assert PreprocessParams.from_dict({}) == PreprocessParams()
    balanced = preprocess(img, PreprocessParams(colour_constancy=True))
    assert not np.array_equal(balanced, preprocess(img, PreprocessParams()))


def test_the_option_round_trips_through_the_manifest_and_is_checked():
    params = PreprocessParams(colour_constancy=True, colour_constancy_p=4.0)
    assert PreprocessParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match="colour_constancy_p"):
        PreprocessParams.from_dict({"colour_constancy_p": 0.0})
    with pytest.raises(ValueError, match="colour_constancy"):
        PreprocessParams.from_dict({"colour_constancy": "yes"})
