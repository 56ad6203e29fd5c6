"""scripts/build_source.py on a tiny synthetic git repository: extraction, label mapping, held-out drops."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import build_source  # noqa: E402

GT_HEADER = ["image", "MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]


def blocky(seed: int, size: int) -> Image.Image:
    """An 8x8 pattern of random greys blown up: its mean hash survives resizing and re-encoding."""
    grid = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize((size, size), Image.Resampling.NEAREST)


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(tmp_path: Path) -> tuple[Path, str, Path, Path, Path]:
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q")
    # (image id, folder, official class, lesion id, pattern seed)
    pictures = [
        ("ISIC_0053454", "MEL", "MEL", "BCN_0000001", 1),
        ("ISIC_0053456", "MEL", "NV", "BCN_0000002", 2),  # folder disagrees: the official NV wins
        ("ISIC_0053457", "SCC", "SCC", "BCN_0000003", 3),
        ("ISIC_0053458", "NV", "NV", "BCN_0000004", 4),  # its id is in the held-out labels
        ("ISIC_0034500", "NV", "NV", "BCN_0000005", 5),  # ISIC 2018 Task 3 validation/test range
        ("ISIC_0053459", "BCC", "BCC", "BCN_0000006", 6),  # a copy of a held-out picture
        ("ISIC_0000001", "NV", "NV", "", 7),  # not a BCN lesion
        ("ISIC_0053460", "BKL", "BKL", "BCN_0000007", 8),  # already in another source by id
    ]
    truth, meta = [GT_HEADER], [["image", "age_approx", "anatom_site_general", "lesion_id", "sex"]]
    for image_id, folder, code, lesion, seed in pictures:
        (repo / "Train" / folder).mkdir(parents=True, exist_ok=True)
        blocky(seed, 64).save(repo / "Train" / folder / f"{image_id}.jpg", quality=90)
        truth.append([image_id] + ["1.0" if c == code else "0.0" for c in GT_HEADER[1:]])
        meta.append([image_id, "50", "back", lesion, "female"])
    for name, rows in (("ISIC_2019_Training_GroundTruth.csv", truth), ("ISIC_2019_Training_Metadata.csv", meta)):
        with open(repo / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "data")
    commit = git(repo, "rev-parse", "HEAD")

    heldout_images = tmp_path / "heldout"
    heldout_images.mkdir()
    blocky(6, 200).save(heldout_images / "d7_copy.png")  # re-sized, re-encoded: only the mean hash matches
    blocky(99, 64).save(heldout_images / "d7_other.png")
    heldout_labels = tmp_path / "heldout.csv"
    heldout_labels.write_text("image_id,dx\nISIC_0053458,nv\n")
    other_labels = tmp_path / "other.csv"
    other_labels.write_text("image_id,dx\nISIC_0053460,bkl\n")
    return repo / ".git", commit, heldout_images, heldout_labels, other_labels


def test_build_source_extracts_maps_and_drops_held_out(tmp_path):
    git_dir, commit, heldout_images, heldout_labels, other_labels = make_repo(tmp_path)
    out = tmp_path / "out"
    summary = build_source.main(
        [
            *("--images-git-dir", str(git_dir), "--images-commit", commit),
            *("--labels-git-dir", str(git_dir), "--labels-commit", commit),
            *("--out", str(out), "--exclude-labels", str(other_labels)),
            *("--heldout-labels", str(heldout_labels), "--heldout-images", str(heldout_images)),
        ]
    )
    with open(out / "labels.csv", newline="") as f:
        rows = {r["image_id"]: r for r in csv.DictReader(f)}

    assert set(rows) == {"ISIC_0053454", "ISIC_0053456", "ISIC_0053457"}
    assert {k: rows[k]["dx"] for k in rows} == {"ISIC_0053454": "mel", "ISIC_0053456": "nv", "ISIC_0053457": "other"}
    assert rows["ISIC_0053454"]["melanoma"] == "1" and rows["ISIC_0053456"]["melanoma"] == "0"
    assert rows["ISIC_0053457"]["lesion_id"] == "BCN_0000003"
    assert {r["part"] for r in rows.values()} <= {"train", "val"}
    assert summary["dropped"] == {
        "held out by id": 2,
        "lesion id not BCN_*": 1,
        "in another source by id": 1,
        "held out by hash": 1,
    }
    assert summary["folder_disagrees"] == 1
    # Images are the repository's bytes, unchanged; nothing held out was written.
    committed = git_dir.parent / "Train" / "MEL" / "ISIC_0053454.jpg"
    assert (out / "images" / "ISIC_0053454.jpg").read_bytes() == committed.read_bytes()
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{k}.jpg" for k in sorted(rows)]
    assert "ISIC_0034321-ISIC_0036064" in (out / "SOURCES.md").read_text()


def test_parts_are_grouped_by_lesion_and_seeded():
    rows = [{"image_id": f"ISIC_{i:07d}", "lesion_id": f"BCN_{i // 3}"} for i in range(60)]
    build_source.grouped_parts(rows, 0.25, seed=3)
    by_lesion = {}
    for r in rows:
        by_lesion.setdefault(r["lesion_id"], set()).add(r["part"])
    assert all(len(parts) == 1 for parts in by_lesion.values())
    assert sum(r["part"] == "val" for r in rows) == 15
    again = [dict(r) for r in rows]
    build_source.grouped_parts(again, 0.25, seed=3)
    assert [r["part"] for r in again] == [r["part"] for r in rows]
