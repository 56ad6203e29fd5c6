"""Folders of synthetic lesion images (plus the usual broken files) for screening tests and benchmarks."""

from pathlib import Path

import cv2
import numpy as np

BROKEN = {"empty.jpg", "notes.jpg", "truncated.jpg", "readme.txt", "tiny.png"}


def synthetic_lesion(seed, size=(288, 384), dark=0.5):
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.full((h, w, 3), (200, 160, 150), np.uint8)
    img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    cy, cx = h // 2 + rng.integers(-30, 30), w // 2 + rng.integers(-40, 40)
    colour = tuple(int(c * dark) for c in (120, 70, 60))
    cv2.ellipse(img, (int(cx), int(cy)), (int(rng.integers(30, 90)), int(rng.integers(25, 70))), 0, 0, 360, colour, -1)
    return img


def make_folder(folder, n_images, real_paths=(), broken=True):
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(real_paths[:n_images]):
        (folder / f"real_{i:02d}.jpg").write_bytes(Path(src).read_bytes())
    for i in range(len(real_paths[:n_images]), n_images):
        img = synthetic_lesion(i, dark=0.2 + 0.8 * (i % 5) / 4)
        cv2.imwrite(str(folder / f"synthetic_{i:02d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if broken:
        (folder / "empty.jpg").write_bytes(b"")
        (folder / "notes.jpg").write_text("this is a text file with an image extension")
        ok, jpg = cv2.imencode(".jpg", synthetic_lesion(99))
        (folder / "truncated.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
        (folder / "readme.txt").write_text("not an image")
        (folder / "tiny.png").write_bytes(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    return folder
