"""Is this picture damaged? Checks of a file's coded data and of the decoded pixels.

A zeroed disk sector, an interrupted copy or a few flipped bits leave a JPEG that libjpeg still
decodes: it warns and fills in, and a screening model then sees a picture whose lower part is
noise, grey or colour-shifted. Such a picture must never be cleared. Three checks, cheapest first:

1. the JPEG's marker structure (`jpeg_structure_damage`): overwritten bytes that break the 0xFF
   stuffing rule, and a progressive JPEG whose scans stop before every coefficient is complete
   (cut at a scan boundary, with or without an end marker);
2. libjpeg-turbo's own warnings as errors (`jpeg_decoder_damage`, through simplejpeg with
   strict=True): zero or random bytes and most flipped bits make the entropy decoder lose step,
   which it reports as "corrupt data" or a premature end;
3. the decoded pixels (`picture_damage`), for every format and for pictures inside DICOM: runs of
   repeated 8x8 blocks, constant bands, bands of noise, and a brightness or colour step along a
   block row that runs across the picture (a flipped bit in a DC difference shifts every later block).

Strong evidence refuses the picture (a reason in words); weak evidence sends it to review with
"the picture may be damaged". Thresholds are set on HAM10000 and ISIC 2017 images (see
`PictureDamageLimits`) and measured on intact HAM10000 and Derm7pt images by benchmarks/bench_damage.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

TRUNCATED = (
    "the image file is incomplete (it ends before the picture does), probably an interrupted copy or "
    "download; copy it again from the original"
)
DAMAGED = "the image data is damaged or incomplete and cannot be trusted; copy it again from the original"
DAMAGED_PIXELS = (
    "the picture is damaged: part of it is {what}, as when bytes of the file were overwritten or lost; "
    "copy it again from the original"
)
INCOMPLETE_PROGRESSIVE = (
    "the image file is incomplete: this progressively stored JPEG stops after {done} of its scans, so "
    "the picture lacks detail (an interrupted copy or download); copy it again from the original"
)
MAY_BE_DAMAGED = "the picture may be damaged"  # the quality flag of weak evidence (core.decision.results.QualityReport)


@dataclass(frozen=True)
class DamageFinding:
    """What a check found: `strong` refuses the picture, weak evidence sends it to review."""

    strong: bool
    reason: str  # in words, for the clinician
    measure: str = ""  # the number behind it, for details and benchmarks


# ----------------------------------------------------------------------------- JPEG coded data

# Markers that may sit between the scans of a (progressive) JPEG; anything else inside the picture
# data means bytes were overwritten or lost.
_BETWEEN_SCANS = {0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xDA, 0xFE, *range(0xE0, 0xF0)}
_PROGRESSIVE_FRAMES = {0xC2, 0xC6, 0xCA, 0xCE}


def _next_marker(data: bytes, pos: int, in_scan: bool, next_restart: int) -> tuple[int, int, int] | str:
    """(position, marker, next restart number) of the next marker from `pos`, past fill bytes and,
    inside the coded data, stuffed zeros and restart markers in sequence; else TRUNCATED or DAMAGED."""
    size = len(data)
    while True:
        if in_scan:
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return TRUNCATED
        if pos + 1 >= size:
            return TRUNCATED
        if data[pos] != 0xFF:
            return DAMAGED  # a segment length pointed at something that is not a marker
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if in_scan and marker == 0x00:
            pos += 2
            continue
        if in_scan and 0xD0 <= marker <= 0xD7:
            if marker - 0xD0 != next_restart:
                return DAMAGED
            next_restart = (next_restart + 1) % 8
            pos += 2
            continue
        return pos, marker, next_restart


def _segment(data: bytes, pos: int, in_scan: bool) -> bytes | str:
    """The payload of the marker segment at `pos`, or TRUNCATED / DAMAGED when its length cannot be."""
    size = len(data)
    if pos + 4 > size:
        return TRUNCATED
    length = struct.unpack_from(">H", data, pos + 2)[0]
    if length < 2:
        return DAMAGED
    if pos + 2 + length > size:
        # Before the picture data this is a header cut off; inside it, a marker made of overwritten bytes.
        return DAMAGED if in_scan else TRUNCATED
    return data[pos + 4 : pos + 2 + length]


def _frame_components(segment: bytes) -> dict[int, int]:
    """A frame header's component ids -> their order."""
    count = segment[5]
    return {segment[6 + 3 * i]: i for i in range(count) if 6 + 3 * i < len(segment)}


def jpeg_structure_damage(data: bytes) -> str | None:
    """Check the JPEG's marker structure through its entropy-coded data (libjpeg decodes broken data
    with only a warning, which Pillow does not pass on). None when intact, else TRUNCATED/DAMAGED or
    INCOMPLETE_PROGRESSIVE in words.

    Inside the coded data a 0xFF byte is always followed by 0x00 (stuffing), a restart marker in
    sequence, or another 0xFF (fill); random bytes written over the data break this with near
    certainty (a 2 KB patch holds about 8 0xFF bytes). A progressive JPEG must also refine every
    coefficient of every component to its last bit before its end marker."""
    pos, in_scan, next_restart = 2, False, 0
    components: dict[int, int]
    scans: list[bytes]
    progressive, components, scans = False, {}, []
    while True:
        found = _next_marker(data, pos, in_scan, next_restart)
        if isinstance(found, str):
            return found
        pos, marker, next_restart = found
        if marker == 0xD9:
            if not in_scan:
                return DAMAGED  # end of image before any scan
            return _progressive_incomplete(components, scans) if progressive else None
        if in_scan and marker not in _BETWEEN_SCANS:
            return DAMAGED
        segment = _segment(data, pos, in_scan)
        if isinstance(segment, str):
            return segment
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(segment) >= 6:
            progressive = marker in _PROGRESSIVE_FRAMES
            components = _frame_components(segment)
        if marker == 0xDA and len(segment) >= 1:
            scans.append(segment)
        pos += 4 + len(segment)
        if marker == 0xDA:
            in_scan, next_restart = True, 0


def _progressive_incomplete(components: dict[int, int], scans: list[bytes]) -> str | None:
    """INCOMPLETE_PROGRESSIVE when some coefficient of some component never reaches its last bit (Al = 0)."""
    complete = {c: np.zeros(64, dtype=bool) for c in components}
    for scan in scans:
        count = scan[0]
        if len(scan) < 1 + 2 * count + 3:
            return DAMAGED
        ss, se, approx = scan[1 + 2 * count], scan[2 + 2 * count], scan[3 + 2 * count]
        if ss > se or se > 63:
            return DAMAGED
        for i in range(count):
            component = scan[1 + 2 * i]
            if component in complete and approx & 0x0F == 0:
                complete[component][ss : se + 1] = True
    if all(done.all() for done in complete.values()):
        return None
    return INCOMPLETE_PROGRESSIVE.format(done=len(scans))


def jpeg_decoder_damage(data: bytes) -> str | None:
    """libjpeg-turbo's warnings as errors (simplejpeg, strict=True): None when the data decodes cleanly.

    Only the brightness is decoded (the entropy decoder still reads every component's data, which
    is where damage shows), so the check costs about a third of a colour decode."""
    import simplejpeg  # a small binding of libjpeg-turbo; imported here so non-JPEG work does not load it

    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except ValueError as exc:
        text = str(exc).lower()
        if "premature end of jpeg file" in text:
            return TRUNCATED
        return DAMAGED
    return None


def grey_filled_end(rgb: np.ndarray) -> bool:
    """True when the last rows are exactly mid-grey, which is how libjpeg fills the blocks it never
    received when an end marker comes too early (a file cut short with an end marker added)."""
    return bool((rgb[-8:] == 128).all())


# ------------------------------------------------------------------------------ decoded pixels


@dataclass(frozen=True)
class PictureDamageLimits:
    """Where pixel patterns stop being natural.

    Set on 600 intact pictures (300 HAM10000, 300 ISIC 2017; none of the benchmark's images), where
    the largest values were: identical textured 8x8 blocks side by side, none; identical pixels in
    raster order inside the picture 0.2 picture widths; a step along a block row 0.25 of the width;
    rows of noise one after another 3; pixels equal to their right neighbour 0.55 of the picture.
    A damaged region gives tens of repeated blocks, whole rows of one value or of noise, or a step
    across most of the width. Drawn pictures (flat areas, straight edges: test charts, screenshots)
    are left to the intake check: these patterns are normal there. With these limits none of the
    13,776 intact images of HAM10000, ISIC 2017 and Derm7pt is refused or held
    (`benchmarks/bench_damage.py --every-intact`).
    """

    repeated_textured_blocks: int = 4  # identical, non-flat 8x8 blocks one after another: strong
    constant_rows: float = 1.0  # identical pixels in raster order, in picture widths, inside the picture
    unlike_level: int = 24  # grey levels from the band's colour ...
    unlike_share: float = 0.5  # ... in this share of the rows beside it: the band cuts through the picture
    step_strong: float = 0.75  # share of the width with a brightness/colour step on one block boundary
    step_weak: float = 0.4
    min_step: float = 4.0  # grey levels: smaller steps are compression and resampling noise
    level_share: float = 0.5  # of the jump at the boundary, the blocks' means must differ by this much
    bar_spread: float = 4.0  # grey levels (interquartile): a side this flat is a bar at the edge, not a picture
    noise_level: float = 30.0  # grey levels between neighbouring rows that only noise reaches ...
    noise_ratio: float = 6.0  # ... when also this many times the picture's typical difference ...
    noise_rows: int = 6  # ... over this many rows one after another (intact pictures: at most 3): strong
    mid_range: tuple[float, float] = (16.0, 239.0)  # block means where clipping cannot make blocks identical
    textured_std: float = 1.0  # grey levels within the block's rows and within its columns: textured both ways
    drawn_share: float = 0.2  # share of flat mid-colour 8x8 blocks that marks a drawn picture
    drawn_pixel_share: float = 0.8  # share of pixels equal to the next that does (photographs: at most 0.55)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _longest_per_row(mask: np.ndarray) -> np.ndarray:
    """The longest run of True in each row of a 2-D mask."""
    counts = np.cumsum(mask, axis=1)
    before = np.maximum.accumulate(np.where(mask, 0, counts), axis=1)  # the count at the last False
    return (counts - before).max(axis=1, initial=0)


def _packed(rgb: np.ndarray) -> np.ndarray:
    """One integer per pixel (R, G, B in its low 24 bits): pixels compare in one operation."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _repeated_blocks(rgb: np.ndarray, limits: PictureDamageLimits) -> DamageFinding | None:
    """Identical 8x8 blocks one after another along a block row, away from black and white (where
    clipping makes blocks identical in intact pictures): zeros in JPEG data decode as one pattern
    repeated."""
    h, w = rgb.shape[0] // 8, rgb.shape[1] // 8
    if w < limits.repeated_textured_blocks or h < 1:
        return None
    packed = _packed(rgb[: h * 8, : w * 8])
    # same[i, j]: block (i, j + 1) equals block (i, j), all 64 pixels
    same = (packed[:, 8:] == packed[:, :-8]).reshape(h, 8, w - 1, 8).all(axis=(1, 3))
    if _longest_per_row(same).max() + 1 < limits.repeated_textured_blocks:
        return None  # the usual case: the statistics below are computed only when needed
    blocks = packed.reshape(h, 8, w, 8)
    flat = blocks.min(axis=(1, 3)) == blocks.max(axis=(1, 3))
    flat_value = blocks[:, 0, :, 0][flat]  # a flat block's one colour
    flat_grey = ((flat_value >> 16) + ((flat_value >> 8) & 255) + (flat_value & 255)) / 3.0
    low, high = limits.mid_range
    if np.count_nonzero((flat_grey >= low) & (flat_grey <= high)) >= limits.drawn_share * h * w:
        return None  # a drawn picture (flat areas, straight edges) repeats blocks; a photograph has noise
    longest = 0
    for i in np.flatnonzero(_longest_per_row(same) + 1 >= limits.repeated_textured_blocks):
        starts, ends = _runs(same[i])
        for start, end in zip(starts, ends, strict=True):
            count = int(end - start + 1)
            block = rgb[i * 8 : i * 8 + 8, start * 8 : start * 8 + 8].astype(np.float32)  # the block repeated
            # Texture in both directions: a block of horizontal stripes repeats along the straight edge
            # of a black bar in intact pictures; zeros in JPEG data give a pattern that varies both ways.
            across, down = block.std(axis=1).mean(axis=0).max(), block.std(axis=0).mean(axis=0).max()
            textured = min(float(across), float(down)) >= limits.textured_std
            if count > longest and textured and low <= float(block.mean()) <= high:
                longest = count
    if longest >= limits.repeated_textured_blocks:
        return DamageFinding(True, DAMAGED_PIXELS.format(what="one small pattern repeated"), f"{longest} blocks")
    return None


def _constant_band(rgb: np.ndarray, limits: PictureDamageLimits) -> DamageFinding | None:
    """Identical pixels in raster order over whole rows, cutting through the picture: a zeroed or lost
    stretch of an uncompressed file. The rows just above and below must be mostly unlike the band
    (a gap between two drawn objects, or a black border at an edge, is not cut into the picture)."""
    height, width = rgb.shape[:2]
    packed = _packed(rgb).ravel()
    same = packed[1:] == packed[:-1]
    starts, ends = _runs(same)
    long_enough = ends - starts + 1 >= limits.constant_rows * width
    if not long_enough.any():
        return None
    in_bands = int((ends - starts)[long_enough].sum())
    if (np.count_nonzero(same) - in_bands) / max(1, len(same) - in_bands) >= limits.drawn_pixel_share:
        return None  # a drawn picture: flat areas everywhere, so a flat band is no sign of damage
    for start, end in zip(starts[long_enough], ends[long_enough], strict=True):
        # pixels start .. end (inclusive) are identical
        if start == 0 or end >= len(packed) - 1:
            continue
        above, below = start // width - 1, end // width + 1  # the whole rows beside the band
        if above < 0 or below >= height or (below - above - 1) < limits.constant_rows:
            continue
        value = rgb.reshape(-1, 3)[start].astype(np.int16)
        unlike = [
            float(np.mean(np.abs(rgb[row].astype(np.int16) - value).max(axis=1) > limits.unlike_level))
            for row in (above, below)
        ]
        if min(unlike) >= limits.unlike_share:
            length = (end - start + 1) / width
            return DamageFinding(True, DAMAGED_PIXELS.format(what="a band of one flat colour"), f"{length:.1f} rows")
    return None


def _noise_band(rgb: np.ndarray, limits: PictureDamageLimits) -> DamageFinding | None:
    """Rows of pure noise in a picture whose rows otherwise follow on smoothly: random bytes written
    over an uncompressed file. A photograph's neighbouring rows differ by a few grey levels; noise rows
    by about 50 in grey (uniform random bytes), and a picture that is noise throughout is left to the intake check."""
    height = rgb.shape[0]
    if height < 8:
        return None
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    difference = cv2.absdiff(grey[1:], grey[:-1])
    step = cv2.reduce(difference, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()  # row y+1 against row y
    typical = float(np.median(step))
    noisy = (step >= limits.noise_level) & (step >= limits.noise_ratio * max(typical, 1.0))
    rows = int(_longest_per_row(noisy[None, :])[0])
    if rows >= limits.noise_rows:
        return DamageFinding(True, DAMAGED_PIXELS.format(what="random noise"), f"{rows} noisy rows")
    return None


def _block_row_step(rgb: np.ndarray, limits: PictureDamageLimits) -> DamageFinding | None:
    """A brightness or colour step on a horizontal 8-pixel block boundary, much larger than the
    changes just above and below it, running along most of the width: a DC value gone wrong shifts
    every later block of the scan by the same amount."""
    height, width = rgb.shape[:2]
    w8 = width // 8
    if height < 40 or w8 < 4:
        return None
    h8 = height // 8
    ys = np.arange(2, h8 - 1) * 8  # two block rows above and one below at least: the last row is often a border
    ycc = cv2.cvtColor(rgb[: h8 * 8, : w8 * 8], cv2.COLOR_RGB2YCrCb)
    blocks = cv2.resize(ycc, (w8, h8), interpolation=cv2.INTER_AREA).astype(np.float32)  # 8x8 block means
    rows = ycc[np.stack([ys - 4, ys - 3, ys - 1, ys, ys + 1, ys + 2])].astype(np.float32)  # only the rows needed
    jump = rows[3] - rows[2]  # across each boundary
    near = (np.abs(rows[1] - rows[0]) + np.abs(rows[5] - rows[4])) / 2  # beside it
    jump = jump.reshape(len(ys), w8, 8, 3).mean(axis=2)
    near = near.reshape(len(ys), w8, 8, 3).mean(axis=2)
    level = blocks[ys // 8] - blocks[ys // 8 - 1]  # block below against block above
    # Beside a step between two perfectly flat areas (a drawn edge) "near" is 0; a photograph has noise.
    floor = np.where(near > 0, np.maximum(limits.min_step, 2.0 * near), np.inf)
    share = np.zeros(len(ys))
    for sign in (1.0, -1.0):
        # A shifted DC value moves the whole block; a thin line (a ruler's edge) that ends on the
        # boundary makes a jump there but hardly moves the block's mean.
        stepped = (sign * jump > floor) & (sign * level > limits.level_share * sign * jump)
        stepped = stepped.transpose(0, 2, 1).reshape(-1, w8)  # (boundary, channel) x blocks
        share = np.maximum(share, _longest_per_row(stepped).reshape(len(ys), 3).max(axis=1) / w8)
    best = 0.0
    grey = None
    for row in np.argsort(-share):
        if share[row] < limits.step_weak:
            break
        # The straight edge of a flat bar (letterboxing, a label strip) is a step too: a shifted DC
        # value has picture content on both sides, all the way to the top and the bottom.
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if grey is None else grey
        spreads = [np.subtract(*np.percentile(side, [75, 25])) for side in (grey[: ys[row]], grey[ys[row] :])]
        if min(spreads) >= limits.bar_spread:  # interquartile: a label's text on the bar does not count
            best = float(share[row])
            break
    if best >= limits.step_strong:
        return DamageFinding(True, DAMAGED_PIXELS.format(what="shifted in brightness or colour"), f"step {best:.2f}")
    if best >= limits.step_weak:
        return DamageFinding(False, MAY_BE_DAMAGED, f"step along {best:.2f} of the width")
    return None


def picture_damage(
    rgb: np.ndarray, from_jpeg: bool, limits: PictureDamageLimits = PictureDamageLimits()
) -> DamageFinding | None:
    """The strongest damage pattern in an H x W x 3 uint8 picture, or None. Repeated blocks and block-row
    steps are how JPEG data fails, so they are looked for only in pictures decoded from JPEG (drawn
    or computer-made PNGs have repeated tiles and straight edges); constant bands in every format."""
    checks = (
        (_repeated_blocks, _block_row_step, _constant_band, _noise_band) if from_jpeg else (_constant_band, _noise_band)
    )
    weak = None
    for check in checks:
        finding = check(rgb, limits)
        if finding is not None and finding.strong:
            return finding
        weak = weak or finding
    return weak
