"""Rebuild a third training source (ISIC 2019's BCN20000 part) from fetched public git snapshots.

    python scripts/build_source.py --images-git-dir DIR --images-commit SHA \
        --labels-git-dir DIR --labels-commit SHA --out OUT \
        [--exclude-labels ../shared/data/dermoscopy/labels.csv ../shared/data/isic2017/labels.csv] \
        [--exclude-images ../shared/data/dermoscopy/images ../shared/data/isic2017/images] \
        [--heldout-labels ../shared/data/derm7pt/labels.csv] [--heldout-images ../shared/data/derm7pt/images]

Reads the images (any `<class>/ISIC_nnnnnnn.jpg` path) straight out of the images repository's git
objects at the named commit, and the labels from the official `ISIC_2019_Training_GroundTruth.csv`
and `ISIC_2019_Training_Metadata.csv` in the labels repository (the folder names are not trusted;
disagreements are counted). Keeps only images whose official lesion id starts with `--lesion-prefix`
(BCN_ = Hospital Clinic de Barcelona), drops every image that is held out (ISIC 2018 Task 3
validation/test ids, ids in --heldout-labels, or a picture whose sha256 or 8x8 mean hash matches a
held-out picture) or already in another source (ids in --exclude-labels, or a hash match with
--exclude-images), and writes OUT/images/<id>.jpg (bytes unchanged), OUT/labels.csv (the columns of
the ISIC 2017 labels plus lesion_id, diagnosis and a seeded train/val `part` grouped by lesion) and
OUT/SOURCES.md. Torch-free: stdlib, numpy and Pillow only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# ISIC 2019 ground-truth columns -> the bundle's classes. SCC (invasive squamous cell carcinoma) is not
# HAM10000's akiec (actinic keratosis / intraepithelial carcinoma), so it stays apart as `other`.
CLASS_MAP = {"MEL": "mel", "NV": "nv", "BCC": "bcc", "AK": "akiec", "BKL": "bkl", "DF": "df", "VASC": "vasc"}
OTHER = {"SCC": "other", "UNK": "other"}
# The ISIC 2018 Task 3 validation and test images: held out to test the product.
HELDOUT_ID_RANGES = ((34321, 36064),)
ID_RE = re.compile(r"(ISIC_\d{7}(?:_downsampled)?)\.(?:jpe?g|png)$", re.IGNORECASE)
LABEL_COLUMNS = ["image_id", "dx", "melanoma", "challenge_split", "age", "sex", "localization"]
EXTRA_COLUMNS = ["lesion_id", "diagnosis", "part"]


@dataclass(frozen=True)
class Picture:
    image_id: str
    path: str
    blob: str


def git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True).stdout


def list_pictures(git_dir: Path, commit: str) -> list[Picture]:
    out = git(git_dir, "ls-tree", "-r", "-z", commit).decode()
    pictures = {}
    for entry in filter(None, out.split("\0")):
        meta, path = entry.split("\t", 1)
        kind, blob = meta.split()[1:3]
        m = ID_RE.search(path)
        if kind == "blob" and m:
            pictures.setdefault(m.group(1), Picture(m.group(1), path, blob))
    return sorted(pictures.values(), key=lambda p: p.image_id)


def read_blobs(git_dir: Path, blobs: list[str]) -> list[bytes]:
    """Reads many blobs with one `git cat-file --batch` (one process, not one per image)."""
    proc = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
        input="".join(b + "\n" for b in blobs).encode(),
        check=True,
        capture_output=True,
    )
    data, pos, out = proc.stdout, 0, []
    for _ in blobs:
        header_end = data.index(b"\n", pos)
        header = data[pos:header_end].split()
        if header[-1] == b"missing":
            out.append(b"")
            pos = header_end + 1
            continue
        size = int(header[2])
        out.append(data[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
    return out


def fingerprint(data: bytes) -> tuple[int, np.ndarray]:
    """8x8 mean hash of the greyscale picture, and its 16x16 greyscale thumbnail (zero mean, unit norm).

    Both survive resizing and re-encoding, unlike sha256. The mean hash alone is too coarse for
    dermoscopy (a dark blob on lighter skin): a copy must also match thumbnail for thumbnail.
    """
    with Image.open(io.BytesIO(data)) as im:
        grey = im.convert("L")
        small = np.asarray(grey.resize((8, 8), Image.Resampling.BOX), dtype=np.float32)
        thumb = np.asarray(grey.resize((16, 16), Image.Resampling.BOX), dtype=np.float32).ravel()
    bits = (small > small.mean()).ravel()
    thumb = thumb - thumb.mean()
    return int(sum(1 << i for i, b in enumerate(bits) if b)), thumb / (np.linalg.norm(thumb) + 1e-6)


@dataclass(frozen=True)
class Fingerprints:
    shas: list[str]
    ahashes: np.ndarray
    thumbs: np.ndarray

    @classmethod
    def of(cls, blobs: list[bytes]) -> Fingerprints:
        prints = [fingerprint(b) for b in blobs]
        return cls(
            [hashlib.sha256(b).hexdigest() for b in blobs],
            np.array([p[0] for p in prints], dtype=np.uint64),
            np.array([p[1] for p in prints], dtype=np.float32).reshape(len(prints), 256),
        )


def folder_fingerprints(folders: list[Path]) -> Fingerprints:
    files = [f for d in folders for f in sorted(d.iterdir()) if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"}]
    return Fingerprints.of([f.read_bytes() for f in files])


def nearest(prints: Fingerprints, reference: Fingerprints) -> tuple[np.ndarray, np.ndarray]:
    """Per picture: the smallest mean-hash Hamming distance (65 where there is no reference) and the
    highest thumbnail correlation (-1 where there is none) to any reference picture."""
    n = len(prints.shas)
    dist, corr = np.full(n, 65, dtype=np.int64), np.full(n, -1.0, dtype=np.float32)
    for start in range(0, len(reference.shas), 1024):
        ah, th = reference.ahashes[start : start + 1024], reference.thumbs[start : start + 1024]
        dist = np.minimum(dist, np.bitwise_count(prints.ahashes[:, None] ^ ah[None, :]).min(axis=1))
        corr = np.maximum(corr, (prints.thumbs @ th.T).max(axis=1))
    return dist, corr


def read_csv_at(git_dir: Path, commit: str, path: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(git(git_dir, "show", f"{commit}:{path}").decode("utf-8-sig"))))


def ids_in(label_files: list[Path]) -> set[str]:
    ids = set()
    for f in label_files:
        with open(f, newline="") as fh:
            ids.update(r["image_id"] for r in csv.DictReader(fh))
    return ids


def in_heldout_range(image_id: str) -> bool:
    n = int(image_id[5:12])
    return any(lo <= n <= hi for lo, hi in HELDOUT_ID_RANGES)


def grouped_parts(rows: list[dict], val_fraction: float, seed: int) -> None:
    """Seeded train/val parts by lesion (images without a lesion id are their own group)."""
    groups = sorted({r["lesion_id"] or r["image_id"] for r in rows})
    random.Random(seed).shuffle(groups)
    val = set(groups[: round(len(groups) * val_fraction)])
    for r in rows:
        r["part"] = "val" if (r["lesion_id"] or r["image_id"]) in val else "train"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images-git-dir", type=Path, required=True)
    p.add_argument("--images-commit", required=True)
    p.add_argument("--images-repo", default="", help="owner/name, for SOURCES.md")
    p.add_argument("--labels-git-dir", type=Path, required=True)
    p.add_argument("--labels-commit", required=True)
    p.add_argument("--labels-repo", default="", help="owner/name, for SOURCES.md")
    p.add_argument("--ground-truth", default="ISIC_2019_Training_GroundTruth.csv")
    p.add_argument("--metadata", default="ISIC_2019_Training_Metadata.csv")
    p.add_argument("--lesion-prefix", default="BCN_", help="keep images whose official lesion id starts so")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--exclude-labels", type=Path, nargs="*", default=[], help="labels.csv of other sources")
    p.add_argument("--exclude-images", type=Path, nargs="*", default=[], help="image folders of other sources")
    p.add_argument("--heldout-labels", type=Path, nargs="*", default=[])
    p.add_argument("--heldout-images", type=Path, nargs="*", default=[])
    p.add_argument("--hash-distance", type=int, default=4, help="mean-hash Hamming distance of a copy, at most")
    p.add_argument("--min-correlation", type=float, default=0.95, help="16x16 thumbnail correlation of a copy")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    a = parse_args(argv)
    truth = {r["image"]: r for r in read_csv_at(a.labels_git_dir, a.labels_commit, a.ground_truth)}
    meta = {r["image"]: r for r in read_csv_at(a.labels_git_dir, a.labels_commit, a.metadata)}
    pictures = list_pictures(a.images_git_dir, a.images_commit)
    dropped: Counter = Counter()
    excluded_ids, heldout_ids = ids_in(a.exclude_labels), ids_in(a.heldout_labels)
    kept = []
    for p in pictures:
        lesion = meta.get(p.image_id, {}).get("lesion_id", "")
        if in_heldout_range(p.image_id) or p.image_id in heldout_ids:
            dropped["held out by id"] += 1
        elif p.image_id not in truth:
            dropped["no official label"] += 1
        elif not lesion.startswith(a.lesion_prefix):
            dropped[f"lesion id not {a.lesion_prefix}*"] += 1
        elif p.image_id in excluded_ids:
            dropped["in another source by id"] += 1
        else:
            kept.append(p)
    blobs = read_blobs(a.images_git_dir, [p.blob for p in kept])
    dropped["image bytes absent from the snapshot"] += sum(1 for b in blobs if not b)
    kept, blobs = zip(*[(p, b) for p, b in zip(kept, blobs) if b]) if any(blobs) else ((), ())
    prints = Fingerprints.of(list(blobs))
    held, other = folder_fingerprints(a.heldout_images), folder_fingerprints(a.exclude_images)
    held_d, held_c = nearest(prints, held)
    other_d, other_c = nearest(prints, other)
    held_sha, other_sha = set(held.shas), set(other.shas)

    def copy_of(sha: str, d: int, c: float, shas: set[str]) -> bool:
        return sha in shas or (d <= a.hash_distance and c >= a.min_correlation)

    # Copies inside the source itself (same picture under two ids): keep the first.
    seen_sha, rows, images_dir = set(), [], a.out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    folder_disagrees, sizes = 0, Counter()
    checks = zip(kept, blobs, prints.shas, held_d, held_c, other_d, other_c)
    for p, data, sha, hd, hc, od, oc in checks:
        if copy_of(sha, hd, hc, held_sha):
            dropped["held out by hash"] += 1
            continue
        if copy_of(sha, od, oc, other_sha):
            dropped["in another source by hash"] += 1
            continue
        if sha in seen_sha:
            dropped["duplicate bytes within the source"] += 1
            continue
        seen_sha.add(sha)
        t, m = truth[p.image_id], meta.get(p.image_id, {})
        code = max((c for c in t if c != "image"), key=lambda c: float(t[c] or 0))
        dx = CLASS_MAP.get(code) or OTHER.get(code, "other")
        folder = p.path.split("/")[-2].upper() if "/" in p.path else ""
        folder_disagrees += bool(folder) and folder != code
        (images_dir / f"{p.image_id}.jpg").write_bytes(data)
        with Image.open(io.BytesIO(data)) as im:
            sizes[f"{im.width}x{im.height}"] += 1
        rows.append(
            {
                "image_id": p.image_id,
                "dx": dx,
                "melanoma": int(dx == "mel"),
                "challenge_split": "train",
                "age": m.get("age_approx", ""),
                "sex": m.get("sex", ""),
                "localization": m.get("anatom_site_general", ""),
                "lesion_id": m.get("lesion_id", ""),
                "diagnosis": code,
            }
        )
    grouped_parts(rows, a.val_fraction, a.seed)
    with open(a.out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LABEL_COLUMNS + EXTRA_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    summary = {
        "listed": len(pictures),
        "kept": len(rows),
        "dropped": {k: v for k, v in dropped.items() if v},
        "per_class": dict(sorted(Counter(r["dx"] for r in rows).items())),
        "per_part": dict(sorted(Counter(r["part"] for r in rows).items())),
        "lesions": len({r["lesion_id"] for r in rows}),
        "picture_sizes": dict(sizes.most_common(3)),
        "folder_disagrees": folder_disagrees,
        "near_heldout": neighbours(held_d, held_c, a.min_correlation),
        "near_other": neighbours(other_d, other_c, a.min_correlation),
    }
    write_sources(a, summary)
    return summary


def neighbours(dist: np.ndarray, corr: np.ndarray, min_correlation: float) -> dict:
    """How many pictures have a reference picture this close, by mean hash and by thumbnail."""
    out = {f"mean hash <={d}": int((dist <= d).sum()) for d in (0, 2, 4)}
    out |= {f"thumbnail r >={r}": int((corr >= r).sum()) for r in (0.9, min_correlation, 0.98)}
    return out


def write_sources(a: argparse.Namespace, s: dict) -> None:
    per_class = ", ".join(f"{k} {v:,}" for k, v in sorted(s["per_class"].items(), key=lambda kv: -kv[1]))
    dropped = "; ".join(f"{k}: {v:,}" for k, v in s["dropped"].items()) or "none"
    text = f"""# ISIC 2019 training images of the BCN20000 part (Hospital Clinic de Barcelona)

Built by `scripts/build_source.py` (MelaScreen repository); rebuild it with the same command rather than
editing this folder.

## Contents
- `images/<image_id>.jpg`: {s["kept"]:,} dermoscopic images, bytes exactly as in the images repository.
- `labels.csv`: image_id, dx (HAM10000 codes; ISIC 2019 SCC and UNK -> `other`), melanoma, challenge_split
  (`train`: all are ISIC 2019 training images), age, sex, localization (official ISIC 2019 metadata),
  lesion_id (official, BCN_...), diagnosis (the ISIC 2019 class), part (seeded train/val, grouped by
  lesion_id: seed {a.seed}, val fraction {a.val_fraction}).

Picture sizes (most common, px): {s["picture_sizes"]}.
Per-class counts: {per_class}. Lesions: {s["lesions"]:,}. Parts: {s["per_part"]}.
Folder name vs official label disagreements: {s["folder_disagrees"]} (the official label is used).

## What was dropped and how
{s["listed"]:,} pictures listed in the images repository; dropped: {dropped}.
- Held out by id: ISIC 2018 Task 3 validation/test ids ISIC_0034321-ISIC_0036064 and every id in
  {", ".join(str(p) for p in a.heldout_labels) or "(none given)"}.
- Held out by hash: the sha256 of the bytes, or a re-encoded copy (8x8 mean hash of the greyscale picture
  within Hamming distance {a.hash_distance} AND correlation of the 16x16 greyscale thumbnails >= {a.min_correlation})
  of any picture in {", ".join(str(p) for p in a.heldout_images) or "(none given)"}.
  Pictures with a held-out neighbour that close (before dropping): {s["near_heldout"]}.
- Another source: ids in {", ".join(str(p) for p in a.exclude_labels) or "(none given)"}, or a copy (same
  rule) of a picture in {", ".join(str(p) for p in a.exclude_images) or "(none given)"}; neighbours: {s["near_other"]}.
- Only images whose official lesion id starts with `{a.lesion_prefix}` are kept (HAM10000 and MSK
  images of ISIC 2019 are other sources).

## Source
- Images: public GitHub repository `{a.images_repo}`, commit {a.images_commit}.
- Labels: official `{a.ground_truth}` and `{a.metadata}` in `{a.labels_repo}`, commit {a.labels_commit}.

## License and citation
"ISIC 2019: Training" images and metadata: CC BY-NC 4.0 (non-commercial, with attribution).
BCN_20000 Dataset: (c) Department of Dermatology, Hospital Clinic de Barcelona. Do not commit these
images into the project repository.
- Combalia M. et al. BCN20000: Dermoscopic lesions in the wild. arXiv:1908.02288 (2019).
- Tschandl P. et al. The HAM10000 dataset. Sci. Data 5, 180161 (2018); Codella N. et al. arXiv:1710.05006.
"""
    (a.out / "SOURCES.md").write_text(text)


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=1))
