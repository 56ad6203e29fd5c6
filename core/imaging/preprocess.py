"""Dermoscopy preprocessing: black-corner inpainting, hair removal, CLAHE. One implementation for
the app and for training; every parameter travels in the model bundle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from core.common.resizing import resize_longest_side
from core.common.schema import read_fields, rule


@dataclass(frozen=True)
class PreprocessParams:
    """Every field is declared with its JSON rule: a bundle's `preprocessing` section is read strictly."""

    # Work at a bounded resolution: inpainting cost is linear in masked pixels.
    working_size: int = field(default=448, metadata=rule("int", lo=32, hi=4096))  # longest side, pixels
    # Kernel sizes below are the seed's, given for a 600 px wide image; they scale with working_size.
    reference_size: int = field(default=600, metadata=rule("int", lo=32, hi=4096))
    corners: bool = field(default=True, metadata=rule("bool"))
    corner_threshold: int = field(default=50, metadata=rule("int", lo=0, hi=255))
    corner_min_fraction: float = field(default=0.001, metadata=rule("float", lo=0.0, hi=1.0))
    corner_inpaint_radius: int = field(default=15, metadata=rule("int", lo=1, hi=100))
    # Shades of Gray colour constancy (Finlayson & Trezzi 2004): divides out the light source's cast,
    # which differs between dermatoscopes. Off by default so bundles trained without it see the same pixels.
    colour_constancy: bool = field(default=False, metadata=rule("bool"))
    colour_constancy_p: float = field(default=6.0, metadata=rule("float", lo=1.0, hi=32.0))
    hair: bool = field(default=True, metadata=rule("bool"))
    hair_kernel: int = field(default=17, metadata=rule("int", lo=1, hi=101))
    hair_threshold: int = field(default=10, metadata=rule("int", lo=0, hi=255))
    hair_inpaint_radius: int = field(default=3, metadata=rule("int", lo=1, hi=50))
    clahe: bool = field(default=True, metadata=rule("bool"))
    clahe_clip: float = field(default=2.0, metadata=rule("float", lo=0.0, hi=40.0, lo_open=True))
    clahe_tiles: int = field(default=8, metadata=rule("int", lo=1, hi=64))  # 0 tiles: OpenCV divides by zero

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "preprocessing") -> PreprocessParams:
        """Strict: unknown keys, wrong types and out-of-range values raise SchemaError (a ValueError)."""
        return cls(**read_fields(cls, data, where))


# The functions below are pure: RGB uint8 arrays in, new arrays out, the same bytes every run.
# Training builds its cache with `preprocess` + `resize_square`; the app runs the very same code.


@dataclass(frozen=True)
class ScaledSizes:
    """The seed's kernel sizes and inpainting radii, scaled to one working resolution."""

    scale: float  # working longest side / reference_size
    corner_dilate_kernel: int
    corner_inpaint_radius: int
    hair_kernel: int
    hair_inpaint_radius: int


def scaled_kernel(size: int, scale: float) -> int:
    """A kernel side scaled by `scale`: the nearest odd integer, at least 3."""
    return max(3, 2 * int(size * scale / 2.0) + 1)


def scaled_radius(radius: int, scale: float) -> int:
    """An inpainting radius scaled by `scale`, rounded half up, at least 1."""
    return max(1, int(radius * scale + 0.5))


def scaled_sizes(longest_side: int, params: PreprocessParams) -> ScaledSizes:
    scale = longest_side / params.reference_size
    return ScaledSizes(
        scale=scale,
        corner_dilate_kernel=scaled_kernel(3, scale),
        corner_inpaint_radius=scaled_radius(params.corner_inpaint_radius, scale),
        hair_kernel=scaled_kernel(params.hair_kernel, scale),
        hair_inpaint_radius=scaled_radius(params.hair_inpaint_radius, scale),
    )


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got {getattr(rgb, 'shape', rgb)}")


def to_working_size(rgb: np.ndarray, working_size: int) -> np.ndarray:
    """Shrink so the longest side is at most `working_size`, keeping the aspect ratio; never enlarge."""
    _check_rgb(rgb)
    return np.ascontiguousarray(resize_longest_side(rgb, working_size, enlarge=False))


def corner_mask(rgb: np.ndarray, params: PreprocessParams, sizes: ScaledSizes | None = None) -> np.ndarray:
    """Dark pixels connected to the image border (the dermoscope's vignette), dilated; bool H x W.

    Unlike the seed's global threshold this never takes dark pigment inside the lesion, which is
    what a melanoma looks like. Empty when the vignette covers under `corner_min_fraction`.
    """
    _check_rgb(rgb)
    sizes = sizes or scaled_sizes(max(rgb.shape[:2]), params)
    dark = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < params.corner_threshold).astype(np.uint8)
    if not dark.any():
        return np.zeros(dark.shape, bool)
    count, labels = cv2.connectedComponents(dark, connectivity=8)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touching = np.unique(border[border > 0])
    keep = np.zeros(count, bool)
    keep[touching] = True
    mask = keep[labels]
    if np.count_nonzero(mask) < params.corner_min_fraction * mask.size:
        return np.zeros(dark.shape, bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (sizes.corner_dilate_kernel,) * 2)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def remove_corners(rgb: np.ndarray, params: PreprocessParams, sizes: ScaledSizes | None = None) -> np.ndarray:
    """Fill the dark vignette from its surroundings (Navier-Stokes inpainting)."""
    sizes = sizes or scaled_sizes(max(rgb.shape[:2]), params)
    mask = corner_mask(rgb, params, sizes)
    if not mask.any():
        return rgb.copy()
    return cv2.inpaint(rgb, mask.astype(np.uint8), sizes.corner_inpaint_radius, cv2.INPAINT_NS)


def hair_mask(rgb: np.ndarray, params: PreprocessParams, sizes: ScaledSizes | None = None) -> np.ndarray:
    """Thin dark structures narrower than the hair kernel (black-hat above threshold); bool H x W."""
    _check_rgb(rgb)
    sizes = sizes or scaled_sizes(max(rgb.shape[:2]), params)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (sizes.hair_kernel,) * 2)
    blackhat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    return blackhat > params.hair_threshold


def remove_hair(rgb: np.ndarray, params: PreprocessParams, sizes: ScaledSizes | None = None) -> np.ndarray:
    """Paint hairs over from their surroundings (Telea inpainting)."""
    sizes = sizes or scaled_sizes(max(rgb.shape[:2]), params)
    mask = hair_mask(rgb, params, sizes)
    if not mask.any():
        return rgb.copy()
    return cv2.inpaint(rgb, mask.astype(np.uint8), sizes.hair_inpaint_radius, cv2.INPAINT_TELEA)


def apply_clahe(rgb: np.ndarray, params: PreprocessParams) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of lightness (L of LAB); colours kept."""
    _check_rgb(rgb)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=params.clahe_clip, tileGridSize=(params.clahe_tiles, params.clahe_tiles))
    lab[:, :, 0] = clahe.apply(np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def illuminant(rgb: np.ndarray, p: float = 6.0, ignore: np.ndarray | None = None) -> np.ndarray:
    """Shades of Gray estimate of the light source: the Minkowski p-norm mean of each channel,
    scaled to unit mean (p=1 is grey world, p=inf is max-RGB). `ignore`: pixels left out."""
    _check_rgb(rgb)
    x = rgb.reshape(-1, 3)
    if ignore is not None and ignore.any() and not ignore.all():
        x = x[~ignore.reshape(-1)]
    x = x.astype(np.float64) / 255.0
    e = np.power(np.mean(np.power(x, p), axis=0), 1.0 / p)
    e = np.maximum(e, 1e-6)
    return e / e.mean()


def colour_constancy(rgb: np.ndarray, p: float = 6.0, ignore: np.ndarray | None = None) -> np.ndarray:
    """Divide out the Shades of Gray illuminant estimate: a white light source leaves the image as it is."""
    e = illuminant(rgb, p, ignore)
    out = rgb.astype(np.float32) / e.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def preprocess(rgb: np.ndarray, params: PreprocessParams) -> np.ndarray:
    """Corners, colour constancy, hair, CLAHE (each switchable) at working resolution; RGB uint8,
    aspect ratio kept."""
    image = to_working_size(rgb, params.working_size)
    sizes = scaled_sizes(max(image.shape[:2]), params)
    if params.corners:
        image = remove_corners(image, params, sizes)
    if params.colour_constancy:
        # After the corners are filled: a black vignette would pull the estimate towards dark pixels.
        image = colour_constancy(image, params.colour_constancy_p)
    if params.hair:
        image = remove_hair(image, params, sizes)
    if params.clahe:
        image = apply_clahe(image, params)
    return image


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """size x size RGB uint8; the aspect ratio is not kept (as the models were trained)."""
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    # Area averaging only when both sides shrink; it degenerates to nearest-neighbour when enlarging.
    shrinking = size <= height and size <= width
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def normalize(rgb_square: np.ndarray, mean, std) -> np.ndarray:
    """float32 3 x S x S: (x / 255 - mean) / std per channel."""
    _check_rgb(rgb_square)
    mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(std, np.float32).reshape(3, 1, 1)
    chw = rgb_square.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray((chw - mean) / std, dtype=np.float32)


def to_model_input(rgb: np.ndarray, size: int, mean, std) -> np.ndarray:
    """A preprocessed RGB image as one model input: float32 3 x size x size."""
    return normalize(resize_square(rgb, size), mean, std)
