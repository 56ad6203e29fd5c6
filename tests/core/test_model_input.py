"""core.imaging.model_input: one file -> one model input, with training's augmentation hook."""

import numpy as np
import pytest
from PIL import Image

from core.common.errors import ImageReadError
from core.imaging.model_input import InputSpec, model_input, model_input_from_file, square_from_file
from core.imaging.preprocess import PreprocessParams, normalize, preprocess, resize_square

SPEC = InputSpec(PreprocessParams(), 48, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _image(h=70, w=90):
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), (190, 150, 130), np.uint8)
    img[20:50, 30:60] = (50, 30, 20)
    return np.clip(img.astype(int) + rng.integers(-15, 15, img.shape), 0, 255).astype(np.uint8)


def test_model_input_is_preprocess_resize_normalise():
    rgb = _image()
    x = model_input(rgb, SPEC)
    assert x.shape == (3, 48, 48) and x.dtype == np.float32
    expected = normalize(resize_square(preprocess(rgb, SPEC.preprocessing), 48), SPEC.mean, SPEC.std)
    np.testing.assert_array_equal(x, expected)
    raw = InputSpec(None, 48, SPEC.mean, SPEC.std)  # a bundle trained without preprocessing
    np.testing.assert_array_equal(model_input(rgb, raw), normalize(resize_square(rgb, 48), raw.mean, raw.std))


def test_augmentation_hook_sees_the_square_uint8_image():
    rgb = _image()
    seen = []

    def flip(square):
        seen.append((square.shape, square.dtype))
        return square[:, ::-1]

    x = model_input(rgb, SPEC, augment=flip)
    assert seen == [((48, 48, 3), np.uint8)]
    np.testing.assert_array_equal(x, model_input(rgb, SPEC)[:, :, ::-1])
    with pytest.raises(ValueError, match="augmentation"):
        model_input(rgb, SPEC, augment=lambda s: s[:10])


def test_file_path_goes_through_read_image(tmp_path):
    rgba = np.dstack([_image(), np.full((70, 90), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    square = square_from_file(tmp_path / "a.png", SPEC.preprocessing, 48)
    assert square.shape == (48, 48, 3) and square.dtype == np.uint8
    np.testing.assert_array_equal(
        model_input_from_file(tmp_path / "a.png", SPEC), normalize(square, SPEC.mean, SPEC.std)
    )
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError):
        model_input_from_file(tmp_path / "bad.jpg", SPEC)


def test_spec_from_a_manifest_and_its_checks(synthetic_bundle):
    from core.inference.bundle import load_bundle

    m = load_bundle(synthetic_bundle).manifest
    spec = InputSpec.from_manifest(m)
    assert spec.size == m.input_size and spec.preprocessing == m.preprocessing
    with pytest.raises(ValueError):
        InputSpec(None, 4, (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError):
        InputSpec(None, 32, (0, 0, 0), (1, 0, 1))
