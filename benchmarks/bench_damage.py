"""How often a damaged picture is refused, held for review or passed, per kind of damage; and how
often an intact picture is refused or held (the false alarms).

    nice -n 15 .venv/bin/python benchmarks/bench_damage.py            # 100 images per kind, 1,500 intact
    nice -n 15 .venv/bin/python benchmarks/bench_damage.py --every-intact   # all 13,776 intact images
    .venv/bin/python benchmarks/bench_damage.py -n 10 --intact 100    # a quick look

Each kind damages every one of `-n` HAM10000 images once (its own seeded random place) and reads it
with `core.files.images.read_image`, exactly as a screening run does: "refused" is an ImageReadError (an
error row with the reason), "held" a picture read with `LoadedImage.damage` set (the gate sends it to
review: "the picture may be damaged"), "passed" a picture read as intact; of those, "visibly changed"
ones differ from the intact picture by more than 16 grey levels in more than 1% of their pixels.
Damage that changes a picture no more than a real photograph varies (e.g. one flipped bit inside one
coefficient) passes by nature; the table says how often. The images used to set core.files.damage's thresholds (a
seeded sample of 300, `TUNING_SEED`) are left out of both the damaged and the intact samples.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.common.errors import ImageReadError  # noqa: E402
from core.files.images import read_image  # noqa: E402
from tests.support import damage_cases as dc  # noqa: E402
from tests.support.dicom_files import write_dicom  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
HAM = DATA / "dermoscopy" / "images"
DERM7PT = DATA / "derm7pt" / "images"
TUNING_SEED = 12345  # core.files.damage.PictureDamageLimits was set on random.Random(12345).sample(HAM10000, 300)


def _decode_rgb(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _jpeg_kind(damage: Callable[[bytes, random.Random], bytes | None]):
    def make(path: Path, data: bytes, rng: random.Random, work: Path) -> Path | None:
        damaged = damage(data, rng)
        if damaged is None:
            return None
        out = work / "damaged.jpg"
        out.write_bytes(damaged)
        return out

    return make


def _progressive_kind(add_end_marker: bool):
    def make(path: Path, data: bytes, rng: random.Random, work: Path) -> Path | None:
        damaged = dc.cut_at_scan(dc.progressive(_decode_rgb(data)), rng, add_end_marker)
        if damaged is None:
            return None
        out = work / "cut.jpg"
        out.write_bytes(damaged)
        return out

    return make


def _dicom_jpeg_kind(damage: Callable[[bytes, random.Random], bytes | None]):
    """The damage is done to the JPEG inside the DICOM file (its header and item tags stay intact)."""

    def make(path: Path, data: bytes, rng: random.Random, work: Path) -> Path | None:
        damaged = damage(data, rng)
        if damaged is None:
            return None
        return write_dicom(work / "damaged.dcm", _decode_rgb(data), encoding="jpeg", jpeg_data=damaged)

    return make


def _dicom_truncated(path: Path, data: bytes, rng: random.Random, work: Path) -> Path:
    whole = write_dicom(work / "whole.dcm", _decode_rgb(data), encoding="jpeg", jpeg_data=data).read_bytes()
    out = work / "cut.dcm"
    out.write_bytes(whole[: rng.randrange(len(whole) // 2, len(whole) - 16)])
    return out


def _dicom_rgb_zero_band(path: Path, data: bytes, rng: random.Random, work: Path) -> Path:
    whole = write_dicom(work / "rgb.dcm", _decode_rgb(data), encoding="rgb").read_bytes()
    start, end = dc._picture_span(whole)
    at = rng.randrange(start, end - 20_480)
    out = work / "band.dcm"
    out.write_bytes(whole[:at] + bytes(20_480) + whole[at + 20_480 :])
    return out


def _tiff_kind(damage: Callable[[bytes, random.Random], bytes | None]):
    def make(path: Path, data: bytes, rng: random.Random, work: Path) -> Path | None:
        damaged = damage(dc.uncompressed_tiff(_decode_rgb(data)), rng)
        if damaged is None:
            return None
        out = work / "damaged.tif"
        out.write_bytes(damaged)
        return out

    return make


KINDS: dict[str, Callable] = {
    "JPEG: 512 zero bytes at 70% of the data (the red team's case)": _jpeg_kind(
        lambda d, r: dc.zero_at_fraction(d, 512, 0.7)
    ),
    **{
        f"JPEG: {size} zero bytes at a random place": _jpeg_kind(lambda d, r, s=size: dc.zero_block(d, r, s))
        for size in (256, 512, 1024, 2048, 4096, 8192)
    },
    **{
        f"JPEG: {size} random bytes": _jpeg_kind(lambda d, r, s=size: dc.random_bytes(d, r, s))
        for size in (32, 256, 1024)
    },
    **{
        f"JPEG: {n} flipped bit{'s' if n > 1 else ''}": _jpeg_kind(lambda d, r, k=n: dc.bit_flips(d, r, k))
        for n in (1, 2, 4)
    },
    "progressive JPEG cut at a scan boundary, end marker added": _progressive_kind(True),
    "progressive JPEG cut at a scan boundary": _progressive_kind(False),
    "DICOM (JPEG): 512 zero bytes in its JPEG": _dicom_jpeg_kind(lambda d, r: dc.zero_block(d, r, 512)),
    "DICOM (JPEG): 4096 zero bytes in its JPEG": _dicom_jpeg_kind(lambda d, r: dc.zero_block(d, r, 4096)),
    "DICOM (JPEG): 256 random bytes in its JPEG": _dicom_jpeg_kind(lambda d, r: dc.random_bytes(d, r, 256)),
    "DICOM (JPEG): 1 flipped bit in its JPEG": _dicom_jpeg_kind(lambda d, r: dc.bit_flips(d, r, 1)),
    "DICOM (JPEG): file cut short": _dicom_truncated,
    "DICOM (uncompressed): 20 KB zero band": _dicom_rgb_zero_band,
    "TIFF (uncompressed): 20 KB zero band": _tiff_kind(lambda d, r: dc.zero_block(d, r, 20_480)),
    "TIFF (uncompressed): 2 KB zero band": _tiff_kind(lambda d, r: dc.zero_block(d, r, 2048)),
    "TIFF (uncompressed): 20 KB random bytes": _tiff_kind(lambda d, r: dc.random_bytes(d, r, 20_480)),
    "TIFF (uncompressed): 2 KB random bytes": _tiff_kind(lambda d, r: dc.random_bytes(d, r, 2048)),
}


def outcome(path: Path, intact: np.ndarray | None = None) -> tuple[str, str]:
    """("refused" | "held" | "passed" | "passed, visibly changed", the reason). Visibly changed: more
    than 1% of the pixels differ from the intact picture by more than 16 grey levels."""
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return "refused", exc.reason
    if image.damage:
        return "held", image.damage
    if intact is not None and intact.shape == image.rgb.shape:
        changed = np.abs(image.rgb.astype(np.int16) - intact).max(axis=2) > 16
        if changed.mean() > 0.01:
            return "passed, visibly changed", ""
    return "passed", ""


def samples(n: int, n_intact: int) -> tuple[list[Path], list[Path]]:
    ham = sorted(HAM.glob("*.jpg"))
    tuning = set(random.Random(TUNING_SEED).sample(ham, 300))
    rest = [p for p in ham if p not in tuning]
    rng = random.Random(0)
    damaged = rng.sample(rest, n)
    others = [p for p in rest if p not in set(damaged)]
    n_ham = min(len(others), round(n_intact * 2 / 3))
    intact = rng.sample(others, n_ham) + random.Random(1).sample(sorted(DERM7PT.glob("*.jpg")), n_intact - n_ham)
    return damaged, intact


def every_intact() -> int:
    """Every image the project has: a false alarm here would also stop an export that reads them."""
    for name, folder in (("HAM10000", HAM), ("ISIC 2017", DATA / "isic2017" / "images"), ("Derm7pt", DERM7PT)):
        paths = sorted(folder.glob("*.jpg"))
        flagged = [(p.name, *outcome(p)) for p in paths]
        flagged = [f for f in flagged if f[1] not in ("passed", "passed, visibly changed")]
        print(
            f"{name}: {len(paths)} images, {sum(f[1] == 'refused' for f in flagged)} refused, "
            f"{sum(f[1] == 'held' for f in flagged)} held",
            flush=True,
        )
        for line in flagged:
            print("  ", *line)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100, help="HAM10000 images per kind of damage")
    parser.add_argument("--intact", type=int, default=1500, help="intact images (2/3 HAM10000, 1/3 Derm7pt)")
    parser.add_argument(
        "--every-intact",
        action="store_true",
        help="only read every image of HAM10000, ISIC 2017 and Derm7pt and count the refused and held",
    )
    args = parser.parse_args(argv)
    if not HAM.is_dir():
        print(f"no images at {HAM}", file=sys.stderr)
        return 2
    if args.every_intact:
        return every_intact()
    damaged, intact = samples(args.n, args.intact)
    start = time.perf_counter()
    print(f"| damage ({args.n} HAM10000 images each) | refused | held | passed | of which visibly changed |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-damage-") as tmp:
        work = Path(tmp)
        for name, make in KINDS.items():
            counts = {"refused": 0, "held": 0, "passed": 0, "passed, visibly changed": 0}
            for i, path in enumerate(damaged):
                data = path.read_bytes()
                made = make(path, data, random.Random(f"{name}|{i}"), work)
                if made is not None:
                    reference = None if name.startswith("progressive") else _decode_rgb(data).astype(np.int16)
                    counts[outcome(made, reference)[0]] += 1
            total = sum(counts.values()) or 1
            counts["passed"] += counts["passed, visibly changed"]
            cells = " | ".join(
                f"{100 * counts[k] / total:.0f}%" for k in ("refused", "held", "passed", "passed, visibly changed")
            )
            print(f"| {name} | {cells} |", flush=True)
        false = {"refused": [], "held": []}
        intact_start = time.perf_counter()
        for path in intact:
            verdict, reason = outcome(path)
            if verdict not in ("passed", "passed, visibly changed"):
                false[verdict].append(f"{path.name}: {reason}")
    per_image = (time.perf_counter() - intact_start) / max(1, len(intact))
    n_derm = sum(1 for p in intact if p.parent == DERM7PT)
    print(
        f"\nintact pictures ({len(intact) - n_derm} HAM10000 + {n_derm} Derm7pt): "
        f"{len(false['refused'])} refused, {len(false['held'])} held for review"
    )
    for line in false["refused"] + false["held"]:
        print("  ", line)
    print(f"read_image with every check: {1000 * per_image:.1f} ms per intact picture (mean)")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
