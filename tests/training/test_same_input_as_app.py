"""Issue 16 acceptance: training and the app give a model the same input for the same file, for an
EXIF-rotated JPEG, a grayscale PNG and a PNG with an alpha channel (written here)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from PIL import Image  # noqa: E402

from core.files.images import read_image  # noqa: E402
from core.imaging.model_input import InputSpec, model_input_from_file  # noqa: E402
from core.imaging.preprocess import PreprocessParams, preprocess, to_model_input  # noqa: E402
from training.cache import image_cache  # noqa: E402
from training.data import DermoscopyDataset, normalise  # noqa: E402

SIZE = 64
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _lesion(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([180 + 0 * xx, 140 + yy % 40, 120 + xx % 30], axis=-1).astype(np.int32)
    img[(yy - h // 3) ** 2 + (xx - w // 2) ** 2 < (min(h, w) // 4) ** 2] = (60, 30, 20)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    stored = _lesion(80, 120, 0)  # landscape as stored; EXIF says rotate 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(folder / "rotated.jpg", exif=exif.tobytes(), quality=95)
    Image.fromarray(_lesion(90, 90, 1)[:, :, 0]).save(folder / "grey.png")
    rgba = np.dstack(
        [_lesion(100, 70, 2), np.where(np.arange(70) < 35, 255, 128).astype(np.uint8)[None, :].repeat(100, 0)]
    )
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    return folder, ["rotated", "grey", "alpha"]


@pytest.mark.parametrize(
    "params",
    [PreprocessParams(), PreprocessParams(colour_constancy=True, hair_threshold=20), None],
    ids=["preprocessed", "colour-constancy", "raw"],
)
def test_training_and_app_give_the_same_model_input(odd_images, tmp_path, params):
    folder, ids = odd_images
    assert read_image(folder / "rotated.jpg").rgb.shape[:2] == (120, 80)  # the EXIF rotation was applied
    cache = image_cache(ids, folder, params, SIZE, tmp_path / "cache", workers=1)
    dataset = DermoscopyDataset(cache, [0, 1, 2], MEAN, STD, augment=None)
    spec = InputSpec(params, SIZE, MEAN, STD)
    for i, iid in enumerate(ids):
        path = next(folder.glob(f"{iid}.*"))
        trained_on = dataset[i][0].numpy()
        app = model_input_from_file(path, spec)
        np.testing.assert_array_equal(trained_on, app, err_msg=iid)
        # The app's screening steps written out (read, preprocess, to_model_input): the same bytes.
        rgb = read_image(path).rgb
        steps = to_model_input(preprocess(rgb, params) if params is not None else rgb, SIZE, MEAN, STD)
        np.testing.assert_array_equal(app, steps, err_msg=iid)
        # Validation batches (training.data.normalise) agree too.
        np.testing.assert_array_equal(normalise(np.asarray(cache[i : i + 1]), MEAN, STD)[0].numpy(), app)


def test_the_screener_feeds_the_engine_what_training_trained_on(odd_images, tmp_path, synthetic_bundle):
    """The app end to end (core.screening.screener.Screener.prepare, what goes to the engine) against the
    training Dataset built from the bundle's own input description."""
    from core.inference.bundle import load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.screening import Screener

    folder, ids = odd_images
    bundle = load_bundle(synthetic_bundle)
    m = bundle.manifest
    screener = Screener(bundle, EnsembleSettings(provider="cpu"))
    cache = image_cache(ids, folder, m.preprocessing, m.input_size, tmp_path / "cache", workers=1)
    dataset = DermoscopyDataset(cache, [0, 1, 2], m.mean, m.std, augment=None)
    for i, iid in enumerate(ids):
        prepared = screener.prepare(str(next(folder.glob(f"{iid}.*"))))
        np.testing.assert_array_equal(dataset[i][0].numpy(), prepared.model_input, err_msg=iid)
