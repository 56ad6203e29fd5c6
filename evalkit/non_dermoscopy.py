"""A set of 50 images that are not dermoscopy, for measuring the intake (out-of-distribution) check.

Half are real photographs and scans that scikit-image ships inside its package (nothing is
downloaded), half are made here: renders of text, screenshots of a window, noise, flat colours,
gradients, checkerboards, circuit-like line drawings and diagrams. `write_set(folder)` writes
them as PNG files named by kind, so an evaluation or a test can screen the folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

# Photos and scans that scikit-image ships in its package folder (skimage/data), not fetched.
SKIMAGE_FILES = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "chessboard_RGB.png",
    "clock_motion.png", "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png",
    "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png",
    "motorcycle_right.png",
)  # fmt: skip
SET_SIZE = 50


def _skimage_folder() -> Path:
    try:
        import skimage
    except ImportError as exc:  # dev extra
        raise RuntimeError("scikit-image is not installed: install the 'dev' extra for the sample photos") from exc
    return Path(skimage.__file__).resolve().parent / "data"


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return image


def skimage_photos() -> Iterator[tuple[str, np.ndarray]]:
    folder = _skimage_folder()
    for name in SKIMAGE_FILES:
        bgr = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        if bgr is None:
            continue
        if bgr.dtype != np.uint8:
            bgr = cv2.convertScaleAbs(bgr, alpha=255.0 / max(float(bgr.max()), 1.0))
        rgb = _to_rgb(bgr[..., ::-1] if bgr.ndim == 3 else bgr)
        yield f"photo_{Path(name).stem}", np.ascontiguousarray(rgb)


def _text_render(rng: np.random.Generator, w: int = 384, h: int = 288) -> np.ndarray:
    img = np.full((h, w, 3), 250, np.uint8)
    words = ["Patient", "report", "dermoscopy", "lesion", "follow-up", "invoice", "total", "2026", "clinic"]
    for y in range(24, h, 22):
        line = " ".join(rng.choice(words, size=4))
        cv2.putText(img, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def _screenshot(rng: np.random.Generator, w: int = 384, h: int = 288) -> np.ndarray:
    img = np.full((h, w, 3), 236, np.uint8)
    cv2.rectangle(img, (0, 0), (w, 24), (52, 101, 164), -1)
    cv2.putText(img, "Settings", (8, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    for i in range(int(rng.integers(4, 8))):
        y = 40 + i * 30
        cv2.rectangle(img, (12, y), (w - 12, y + 22), (255, 255, 255), -1)
        cv2.rectangle(img, (12, y), (w - 12, y + 22), (180, 180, 180), 1)
        cv2.putText(img, f"Option {i + 1}", (18, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (30, 30, 30), 1)
    cv2.rectangle(img, (w - 100, h - 36), (w - 16, h - 12), (52, 101, 164), -1)
    return img


def _circuit(rng: np.random.Generator, w: int = 384, h: int = 288) -> np.ndarray:
    img = np.full((h, w, 3), (30, 90, 40), np.uint8)
    for _ in range(60):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        dx, dy = (int(rng.integers(20, 120)), 0) if rng.random() < 0.5 else (0, int(rng.integers(20, 120)))
        cv2.line(img, (x, y), (x + dx, y + dy), (190, 170, 90), 2)
        cv2.circle(img, (x, y), 4, (200, 200, 200), -1)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 30))
        cv2.rectangle(img, (x, y), (x + 60, y + 30), (20, 20, 20), -1)
    return img


def _diagram(rng: np.random.Generator, w: int = 384, h: int = 288) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    boxes = [(int(rng.integers(10, w - 110)), int(rng.integers(10, h - 50))) for _ in range(4)]
    for x, y in boxes:
        cv2.rectangle(img, (x, y), (x + 100, y + 40), (60, 60, 200), 2)
    for (x1, y1), (x2, y2) in zip(boxes, boxes[1:]):
        cv2.arrowedLine(img, (x1 + 50, y1 + 40), (x2 + 50, y2), (0, 0, 0), 1)
    return img


def synthetic_images(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    h, w = 288, 384
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(4):
        yield f"text_{i}", _text_render(rng)
    for i in range(4):
        yield f"screenshot_{i}", _screenshot(rng)
    for i, colour in enumerate([(128, 128, 128), (200, 40, 40), (30, 60, 200), (235, 200, 170)]):
        yield f"flat_{i}", np.full((h, w, 3), colour, np.uint8)
    yield "noise_uniform", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yield "noise_gaussian", np.clip(rng.normal(128, 50, (h, w, 3)), 0, 255).astype(np.uint8)
    yield "noise_skin", np.clip(np.array([210, 160, 140]) + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    grad = (xx / w * 255).astype(np.uint8)
    yield "gradient_grey", np.dstack([grad] * 3)
    yield "gradient_colour", np.dstack([grad, (yy / h * 255).astype(np.uint8), 255 - grad])
    for i, cell in enumerate((16, 48)):
        board = ((((yy // cell) + (xx // cell)) % 2) * 255).astype(np.uint8)
        yield f"checkerboard_{i}", np.dstack([board] * 3)
    for i in range(2):
        yield f"circuit_{i}", _circuit(rng)
    for i in range(2):
        yield f"diagram_{i}", _diagram(rng)
    rects = np.full((h, w, 3), 255, np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(rects, (x, y), (x + int(rng.integers(20, 140)), y + int(rng.integers(20, 110))), fill, -1)
    yield "rectangles", rects
    yield "stripes", np.dstack([((xx // 12) % 2 * 255).astype(np.uint8)] * 3)


def non_dermoscopy_images(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """The set: up to 25 shipped photos, filled to 50 with made images."""
    photos = list(skimage_photos())[: SET_SIZE // 2]
    made = list(synthetic_images(seed))
    return (photos + made)[:SET_SIZE]


def write_set(folder: str | Path, seed: int = 0) -> list[Path]:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in non_dermoscopy_images(seed):
        p = out / f"{name}.png"
        cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths
