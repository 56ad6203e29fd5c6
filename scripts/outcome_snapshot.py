"""Screen one labelled split with the installed `melascreen` command and write what was stored.

A refactor that claims "behaviour unchanged" runs this before and after and compares the two JSON
files with `--compare`: the same decisions, reasons and probabilities (to 1e-6) for every image.

    .venv/bin/python scripts/outcome_snapshot.py --out before.json
    .venv/bin/python scripts/outcome_snapshot.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_COLUMNS = ("decision", "reason", "p_melanoma", "member_p_json", "spread", "class_probs_json", "quality_json")


def _split_images(split_csv: Path, split: str, images: Path, limit: int) -> list[Path]:
    with split_csv.open(newline="") as f:
        ids = [row["image_id"] for row in csv.DictReader(f) if row["split"] == split]
    paths = [images / f"{image_id}.jpg" for image_id in ids[: limit or None]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"{len(missing)} images of the split are missing, e.g. {missing[0]}")
    return paths


def _stored(db: Path) -> dict[str, dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = con.execute(f"SELECT path, status, {', '.join(_COLUMNS)}, cam_png FROM results ORDER BY path").fetchall()
    out = {}
    for row in rows:
        item = {c: row[c] for c in ("status", *_COLUMNS)}
        item["cam_sha256"] = hashlib.sha256(row["cam_png"]).hexdigest() if row["cam_png"] else None
        out[Path(row["path"]).name] = item
    return out


def snapshot(args: argparse.Namespace) -> None:
    paths = _split_images(args.split_csv, args.split, args.images, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for p in paths:
            shutil.copyfile(p, folder / p.name)
        db = Path(tmp) / "results.sqlite"
        melascreen = Path(sys.executable).with_name("melascreen")
        cmd = [str(melascreen), "screen", str(folder), "--db", str(db), "--cascade", "off", "--engine", args.engine]
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
        stored = _stored(db)
    args.out.write_text(json.dumps(stored, indent=1, sort_keys=True))
    print(f"{len(stored)} results written to {args.out}")


def _numbers(text):
    return json.loads(text) if isinstance(text, str) and text[:1] in "[{" else text


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-6
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b


def compare(before_path: Path, after_path: Path) -> int:
    before, after = json.loads(before_path.read_text()), json.loads(after_path.read_text())
    problems = [f"only before: {n}" for n in sorted(before.keys() - after.keys())]
    problems += [f"only after: {n}" for n in sorted(after.keys() - before.keys())]
    cams_differ = 0
    for name in sorted(before.keys() & after.keys()):
        b, a = before[name], after[name]
        for column in ("status", *_COLUMNS):
            if not _close(_numbers(b[column]), _numbers(a[column])):
                problems.append(f"{name}: {column} {b[column]!r} -> {a[column]!r}")
        cams_differ += b["cam_sha256"] != a["cam_sha256"]
    for line in problems[:50]:
        print(line)
    print(f"{len(before)} before, {len(after)} after, {len(problems)} differences, {cams_differ} heat-map PNGs differ")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split-csv", type=Path, default=_ROOT / "configs/splits/ham10000_lesion_split.csv")
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=Path, default=_ROOT.parent / "shared/data/dermoscopy/images")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if not args.out:
        parser.error("--out or --compare is needed")
    snapshot(args)


if __name__ == "__main__":
    main()
