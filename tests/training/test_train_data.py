import random
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from core.imaging.preprocess import PreprocessParams  # noqa: E402
from training.cache import image_cache  # noqa: E402
from training.data import CLASS_NAMES, DermoscopyDataset, balanced_rows, random_resized_crop  # noqa: E402
from training.splits import load_labels, make_split, read_split, resolve_split, write_split  # noqa: E402


@pytest.fixture(scope="module")
def full_split(labels_csv):
    return make_split(load_labels(labels_csv), seed=20240607)


def test_no_lesion_in_two_splits(full_split):
    split_of = {}
    for im in full_split:
        assert split_of.setdefault(im.lesion_id, im.split) == im.split, im.lesion_id


def test_split_sizes_and_class_proportions_close_to_the_whole(full_split):
    n = len(full_split)
    sizes = Counter(im.split for im in full_split)
    assert sizes["train"] / n == pytest.approx(0.70, abs=0.02)
    assert sizes["val"] / n == pytest.approx(0.15, abs=0.02)
    assert sizes["test"] / n == pytest.approx(0.15, abs=0.02)
    whole = Counter(im.dx for im in full_split)
    for split in ("train", "val", "test"):
        part = Counter(im.dx for im in full_split if im.split == split)
        for dx in CLASS_NAMES:
            assert part[dx] / sizes[split] == pytest.approx(whole[dx] / n, abs=0.015), (split, dx)


def test_split_is_reproducible_and_round_trips(full_split, labels_csv, tmp_path):
    again = make_split(load_labels(labels_csv), seed=20240607)
    assert again == full_split
    other = make_split(load_labels(labels_csv), seed=1)
    assert [im.split for im in other] != [im.split for im in full_split]
    write_split(tmp_path / "s.csv", full_split)
    assert read_split(tmp_path / "s.csv") == full_split
    header = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert header == "image_id,lesion_id,dx,melanoma,split"


def test_resolve_split_reuses_the_run_split_and_a_given_file(tiny_labels, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    first = resolve_split(tiny_labels, run, None, 3, 0.15, 0.15)
    # A different seed does not re-split a run that already has split.csv.
    assert resolve_split(tiny_labels, run, None, 4, 0.15, 0.15) == first
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_split(tiny_labels, other, str(run / "split.csv"), 99, 0.15, 0.15) == first
    assert (other / "split.csv").read_text() == (run / "split.csv").read_text()


def test_image_cache_is_built_once_and_matches_core_preprocessing(tmp_path, labels_csv):
    from core.files.images import read_image
    from core.imaging.preprocess import preprocess, resize_square

    images_dir = labels_csv.parent / "images"
    ids = [im.image_id for im in load_labels(labels_csv, max_images=4)]
    params = PreprocessParams()
    arr = image_cache(ids, images_dir, params, 64, tmp_path, workers=2)
    assert arr.shape == (4, 64, 64, 3) and arr.dtype == np.uint8
    # The app's decoder and preprocessing, step by step.
    expected = resize_square(preprocess(read_image(images_dir / f"{ids[2]}.jpg").rgb, params), 64)
    np.testing.assert_array_equal(arr[2], expected)
    files = sorted(p.name for p in tmp_path.glob("images-64-*.npy"))
    assert len(files) == 1
    mtime = (tmp_path / files[0]).stat().st_mtime_ns
    again = image_cache(ids, images_dir, params, 64, tmp_path, workers=2)
    assert (tmp_path / files[0]).stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(np.asarray(again), np.asarray(arr))
    # Other parameters are another cache entry.
    image_cache(ids, images_dir, PreprocessParams(hair=False), 64, tmp_path, workers=1)
    assert len(list(tmp_path.glob("images-64-*.npy"))) == 2


def test_dataset_normalises_and_flips():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    plain = DermoscopyDataset(images, [0, 4, 5], (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), augment=None)
    x, y = plain[1]
    assert y == 4 and x.dtype == torch.float32 and x.shape == (3, 8, 8)
    torch.testing.assert_close(x, torch.from_numpy(images[1]).permute(2, 0, 1).float() / 127.5 - 1.0)
    flips = DermoscopyDataset(images, [0, 4, 5], (0.5,) * 3, (0.5,) * 3, augment="flips")
    ref = torch.from_numpy(images[0]).permute(2, 0, 1).float() / 127.5 - 1.0
    allowed = [ref, ref.flip(-1), ref.flip(-2), ref.flip(-1).flip(-2)]
    seen = set()
    for _ in range(40):
        x, _ = flips[0]
        matches = [i for i, a in enumerate(allowed) if torch.allclose(x, a)]
        assert matches, "an augmented view that is not a flip"
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


def test_balanced_rows_caps_every_class_afresh_each_epoch():
    labels = np.array([5] * 100 + [4] * 10 + [0] * 3)
    a = balanced_rows(labels, 20, np.random.default_rng(1))
    b = balanced_rows(labels, 20, np.random.default_rng(2))
    assert Counter(labels[a].tolist()) == {5: 20, 4: 10, 0: 3}
    assert len(set(a.tolist())) == len(a)
    assert set(a.tolist()) != set(b.tolist())
    assert sorted(balanced_rows(labels, None, np.random.default_rng(0)).tolist()) == list(range(len(labels)))


def test_rich_augmentation_crops_and_jitters_but_keeps_size_and_range():
    rng = np.random.default_rng(0)
    # A smooth image (a crop of it resized back is still close to some part of it) with a dark blob.
    yy, xx = np.mgrid[0:32, 0:32]
    base = np.stack([xx * 6, yy * 6, (xx + yy) * 3], axis=-1).astype(np.uint8)
    base[10:20, 12:22] = 20
    images = np.stack([base, rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)])
    rich = DermoscopyDataset(images, [4, 5], (0.5,) * 3, (0.5,) * 3, augment="rich")
    ref = torch.from_numpy(base).permute(2, 0, 1).float() / 127.5 - 1.0
    dihedral = [ref.rot90(k, (-2, -1)) for k in range(4)] + [ref.flip(-1).rot90(k, (-2, -1)) for k in range(4)]
    random.seed(3)
    outs = [rich[0][0] for _ in range(30)]
    for x in outs:
        assert x.shape == (3, 32, 32) and x.min() >= -1.0 and x.max() <= 1.0
    # Not just the dihedral views: crops and colour changes happen...
    assert sum(any(torch.allclose(x, d) for d in dihedral) for x in outs) < 5
    # ...but gently: the mean colour stays within the +-15% jitter of the original's.
    for x in outs:
        assert abs(float(x.mean()) - float(ref.mean())) < 0.35
    with pytest.raises(ValueError, match="rich"):
        DermoscopyDataset(images, [4, 5], (0.5,) * 3, (0.5,) * 3, augment="mixup")


def test_random_resized_crop_covers_the_requested_share():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = 255  # right half white: a crop's white share tells where it was taken
    for seed in range(20):
        r = random.Random(seed)
        out = random_resized_crop(img, r, scale=(1.0, 1.0), ratio=(1.0, 1.0))
        np.testing.assert_array_equal(out, img)  # full-area square crop of a square image = itself
    out = random_resized_crop(img, random.Random(0), scale=(0.25, 0.25), ratio=(1.0, 1.0))
    assert out.shape == img.shape
    # Quarter-area (50 px wide) crops land at random places: mostly black, mostly white, across the edge.
    shares = {
        round(float((random_resized_crop(img, random.Random(s), (0.25, 0.25), (1.0, 1.0)) > 127).mean()), 2)
        for s in range(40)
    }
    assert min(shares) < 0.2 and max(shares) > 0.8 and any(0.3 < v < 0.7 for v in shares)
