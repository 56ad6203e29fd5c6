"""export.intake reads a further training source's parts (ISIC 2017's challenge_split) beside the
HAM10000 split: its train part joins the statistics' sample, its val part the thresholds."""

import csv

from export.intake import extra_source_images, split_images


def test_a_further_source_adds_its_parts(tmp_path):
    labels = tmp_path / "isic" / "labels.csv"
    labels.parent.mkdir()
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "dx", "melanoma", "challenge_split"])
        for i in range(10):
            w.writerow([f"I{i}", "mel" if i % 3 == 0 else "nv", int(i % 3 == 0), "train" if i < 7 else "val"])
    split = tmp_path / "split.csv"
    with open(split, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "lesion_id", "dx", "melanoma", "split"])
        for i in range(4):
            w.writerow([f"H{i}", f"L{i}", "bcc", 0, "train"])
    train = split_images(split, tmp_path / "ham", "train") + extra_source_images(labels, "train", 5)
    assert len(train.paths) == 4 + 5 and train.labels[:4] == ("bcc",) * 4
    assert all(p.parent == labels.parent / "images" for p in train.paths[4:])
    val = extra_source_images(labels, "val", None)
    assert [p.stem for p in val.paths] == ["I7", "I8", "I9"] and val.labels == ("nv", "nv", "mel")


def test_features_are_the_same_whatever_the_batch(tmp_path):
    import numpy as np

    from core.inference.bundle import load_bundle
    from export.intake import LabelledImages, member_features
    from tests.support.intake_bundle import skin_like, write_rgb
    from tests.support.synthetic_bundle import make_bundle

    bundle = load_bundle(make_bundle(tmp_path / "b", members=2))
    paths = tuple(write_rgb(tmp_path / "img" / f"{i}.jpg", skin_like(i)) for i in range(5))
    images = LabelledImages(paths, ("nv",) * 5)
    one_by_one = member_features(bundle, images, batch_size=1)
    batched = member_features(bundle, images, batch_size=3)
    assert one_by_one.shape == (5, 2, batched.shape[2]) and batched.shape[2] > 0
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-5)
