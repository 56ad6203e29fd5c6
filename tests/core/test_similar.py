"""Similar cases: an index built by export.similar, signed with the bundle, loaded strictly, queried."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.common.errors import BundleError
from core.imaging.model_input import InputSpec, model_input_from_file
from core.inference.bundle import load_bundle, sign_bundle
from core.inference.similar import INDEX, SimilarCases, has_index
from export.similar import add_index
from tests.support.synthetic_bundle import CLASSES, TEST_SIGNING_KEY, make_bundle


def _images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        base = rng.integers(0, 256, size=3)
        img = np.clip(base + rng.normal(0, 40, size=(80, 80, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"syn_{i}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("similar")
    src = make_bundle(tmp / "plain")
    paths = _images(tmp / "images", 10)
    labels = [CLASSES[i % len(CLASSES)] for i in range(len(paths))]
    out = add_index(src, tmp / "indexed", paths, labels, [p.stem for p in paths], dims=6)
    sign_bundle(out, TEST_SIGNING_KEY)
    return out, paths, labels


def test_indexed_image_is_its_own_nearest_neighbour(indexed):
    out, paths, labels = indexed
    bundle = load_bundle(out)
    assert has_index(bundle) and dict(bundle.files)[INDEX]
    similar = SimilarCases(bundle)
    spec = InputSpec.from_manifest(bundle.manifest)
    for i in (0, 4, 9):
        hits = similar.query(model_input_from_file(paths[i], spec))
        assert len(hits) == 6
        assert hits[0].image_id == paths[i].stem and hits[0].diagnosis == labels[i]
        assert hits[0].similarity == pytest.approx(1.0, abs=1e-4)
        assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
        assert all(h.thumbnail[:2] == b"\xff\xd8" for h in hits)  # JPEG


def test_bundle_without_index_has_none(synthetic_bundle):
    bundle = load_bundle(synthetic_bundle)
    assert not has_index(bundle)
    with pytest.raises(BundleError):
        SimilarCases(bundle)


def test_tampered_index_is_refused(indexed, tmp_path):
    import shutil

    out, _, _ = indexed
    copy = tmp_path / "tampered"
    shutil.copytree(out, copy)
    data = bytearray((copy / INDEX).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / INDEX).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="similar-index.npz"):
        load_bundle(copy)


def test_index_changed_after_loading_is_refused(indexed, tmp_path):
    import shutil

    out, _, _ = indexed
    copy = tmp_path / "late"
    shutil.copytree(out, copy)
    bundle = load_bundle(copy)
    (copy / INDEX).write_bytes((copy / INDEX).read_bytes() + b"x")
    with pytest.raises(BundleError, match="changed since the bundle was verified"):
        SimilarCases(bundle)


def test_malformed_index_is_refused_with_one_line(indexed, tmp_path):
    import shutil

    out, _, _ = indexed
    copy = tmp_path / "malformed"
    shutil.copytree(out, copy)
    with np.load(copy / INDEX) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["vectors"] = arrays["vectors"].copy()
    arrays["vectors"][0, 0] = np.nan
    np.savez(copy / INDEX, **arrays)
    sign_bundle(copy, TEST_SIGNING_KEY)
    with pytest.raises(BundleError, match="finite") as err:
        SimilarCases(load_bundle(copy))
    assert "\n" not in str(err.value)


def test_default_bundle_index_answers_when_present():
    from core.inference.bundle import default_bundle_path

    bundle = load_bundle(default_bundle_path())
    if not has_index(bundle):
        pytest.skip("the default bundle carries no similar-cases index")
    img = Path("../shared/data/dermoscopy/images/ISIC_0024306.jpg")
    if not img.is_file():
        img = _images(Path(__file__).parent.parent.parent / ".." / "cache" / "h11-test", 1)[0]
    hits = SimilarCases(bundle).query(model_input_from_file(img, InputSpec.from_manifest(bundle.manifest)))
    assert len(hits) == 6 and all(h.diagnosis in bundle.manifest.class_names for h in hits)
