"""Labelled image sets: the one reader and the one dataclass for split.csv and labels.csv files.

A split file (training writes it, export and evaluation read it) has the columns image_id,
lesion_id, dx, melanoma, split. A plain labels file has image_id and dx (or melanoma), optionally
lesion_id and a split column under another name (ISIC 2017: challenge_split).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from core.common.errors import MelaScreenError

# Data sets sit beside the project (../shared/data), as on the development and CI machines.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_DATA_DIR = SHARED_DATA / "dermoscopy"  # HAM10000: labels.csv, images/<image_id>.jpg
SPLITS = ("train", "val", "test")
SPLIT_COLUMNS = ("image_id", "lesion_id", "dx", "melanoma", "split")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".tif", ".tiff")

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class LabelsError(MelaScreenError):
    """A labels or split file cannot be used as asked; the message names the file and the row."""


@dataclass(frozen=True)
class LabelledCase:
    """One labelled image. `lesion_id` is empty where the source publishes none."""

    image_id: str
    dx: str
    melanoma: bool
    lesion_id: str = ""
    split: str = ""


def case(image_id: str, dx: str, lesion_id: str = "", split: str = "", positive_class: str = "mel") -> LabelledCase:
    """A case whose melanoma label follows from its diagnosis."""
    return LabelledCase(image_id, dx, dx == positive_class, lesion_id, split)


def _read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise LabelsError(f"{path}: the labels file cannot be read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise LabelsError(f"{path}: not a readable CSV file ({exc})") from None


def read_cases(
    path: str | os.PathLike,
    split: str | None = None,
    positive_class: str = "mel",
    split_column: str = "split",
) -> tuple[list[LabelledCase], str]:
    """Rows of a split or labels CSV, those of `split` only when the file has `split_column`.

    Returns the cases and a sentence saying which rows were used (for reports)."""
    path = Path(path)
    rows = _read_rows(path)
    columns = set(rows[0]) if rows else set()
    if "image_id" not in columns or not ({"dx", "melanoma"} & columns):
        raise LabelsError(
            f"{path}: a labels file needs an image_id column and a dx or melanoma column; found {sorted(columns)}"
        )
    used = f"all {len(rows)} rows of {path.name}"
    if split_column in columns and split:
        names = sorted({r[split_column] for r in rows})
        rows = [r for r in rows if r[split_column] == split]
        if not rows:
            raise LabelsError(f"{path}: no rows in split {split!r}; the file has splits {names}")
        used = f"the {len(rows)} rows of {split_column} {split!r} in {path.name}"
    elif split_column in columns:
        used += " (every split: pass a split to pick one)"
    elif split:
        used += f" (the file has no {split_column} column, so split {split} does not apply)"
    cases = []
    for line, r in enumerate(rows, start=2):
        dx = (r.get("dx") or "").strip()
        raw = (r.get("melanoma") or "").strip().lower()
        if raw in _TRUE:
            mel = True
        elif raw in _FALSE:
            mel = False
        elif dx:
            mel = dx == positive_class
        else:
            raise LabelsError(f"{path}, row {line}: no diagnosis (dx) and no melanoma label for {r['image_id']!r}")
        cases.append(
            LabelledCase(
                r["image_id"].strip(), dx, mel, (r.get("lesion_id") or "").strip(), (r.get(split_column) or "").strip()
            )
        )
    return cases, used


def read_split(path: str | os.PathLike) -> list[LabelledCase]:
    """Every row of a split file, which must name a lesion, a diagnosis and a known split for each image."""
    path = Path(path)
    rows = _read_rows(path)
    missing = [c for c in ("image_id", "lesion_id", "dx", "split") if rows and c not in rows[0]]
    if not rows or missing:
        raise LabelsError(f"{path}: not a split file (needs columns {list(SPLIT_COLUMNS)}; lacks {missing or 'rows'})")
    cases, _ = read_cases(path)
    bad = sorted({c.split for c in cases} - set(SPLITS))
    if bad:
        raise LabelsError(f"{path}: unknown split names {bad}; use {list(SPLITS)}")
    return cases


def write_split(path: str | os.PathLike, cases: list[LabelledCase]) -> None:
    """Atomic: a half-written split file would silently move images between splits."""
    tmp = Path(str(path) + ".partial")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SPLIT_COLUMNS)
        for c in cases:
            w.writerow([c.image_id, c.lesion_id, c.dx, int(c.melanoma), c.split])
    os.replace(tmp, path)


def image_path(images_dir: str | os.PathLike, image_id: str) -> Path:
    """<images>/<image_id> with its extension, or the first of .jpg/.jpeg/.png/... that exists
    (external test sets are not all JPEG); .jpg when none does, so the error names that file."""
    direct = Path(images_dir) / image_id
    if direct.suffix and direct.is_file():
        return direct
    for ext in IMAGE_SUFFIXES:
        candidate = Path(images_dir) / f"{image_id}{ext}"
        if candidate.is_file():
            return candidate
    return Path(images_dir) / f"{image_id}.jpg"


def project_relative(path: str | os.PathLike) -> str:
    """`path` relative to the project root (e.g. ../shared/data/dermoscopy/images, ../runs/x/best.pt):
    provenance must not carry the build machine's absolute paths. A path outside the folder that
    holds the project keeps only its name."""
    p = Path(path).resolve()
    try:
        p.relative_to(PROJECT_ROOT.parent)
    except ValueError:
        return f"<elsewhere>/{p.name}"
    return Path(os.path.relpath(p, PROJECT_ROOT)).as_posix()
