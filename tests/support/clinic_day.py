"""A clinic's day as a folder (issue 24): 5 patients in a `melascreen.csv` sidecar with body sites, ages,
sexes and two visit dates; 20 lesions photographed at both visits (40 pictures); 3 pictures that are not
dermoscopy (scikit-image's sample photos: a portrait, a cup of coffee, a scanned page); a truncated JPEG
and a text file named `.jpg`. 45 files in all.

`lesion_pictures`: "synthetic" (fast, for tests with the synthetic intake bundle) or "ham" (HAM10000
lesions photographed twice, from ../shared, for the real bundle's run by hand).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests.support.intake_bundle import skin_like, write_rgb

PATIENTS = (("P001", 54, "F"), ("P002", 67, "M"), ("P003", 38, "F"), ("P004", 72, "M"), ("P005", 45, "O"))
SITES = ("back", "chest", "left forearm", "right thigh", "face", "abdomen", "scalp", "left shoulder")
VISITS = ("2026-06-02", "2026-12-01")
N_LESIONS = 20
NOT_DERMOSCOPY_FILES = ("holiday_portrait.jpg", "coffee_cup.jpg", "scanned_letter.png")
BROKEN_FILES = ("truncated.jpg", "notes_not_an_image.jpg")
HAM_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dermoscopy" / "labels.csv"
HAM_IMAGES = HAM_LABELS.parent / "images"


@dataclass(frozen=True)
class ClinicDay:
    folder: Path
    lesion_files: tuple[str, ...]  # the 40 pictures of patients' lesions
    not_dermoscopy: tuple[str, ...]
    broken: tuple[str, ...]
    patients: tuple[str, ...]

    @property
    def n_files(self) -> int:
        return len(self.lesion_files) + len(self.not_dermoscopy) + len(self.broken)


def _ham_pairs(n: int) -> list[tuple[Path, Path]]:
    """n HAM10000 lesions with two pictures each (lesion_id in labels.csv), melanomas among them."""
    by_lesion: dict[str, list[tuple[str, str]]] = {}
    with open(HAM_LABELS, newline="") as f:
        for row in csv.DictReader(f):
            by_lesion.setdefault(row["lesion_id"], []).append((row["image_id"], row["dx"]))
    twice = [(k, v) for k, v in sorted(by_lesion.items()) if len(v) >= 2]
    mel = [p for p in twice if p[1][0][1] == "mel"][: n // 4]
    other = [p for p in twice if p[1][0][1] != "mel"][: n - len(mel)]
    return [(HAM_IMAGES / f"{v[0][0]}.jpg", HAM_IMAGES / f"{v[1][0]}.jpg") for _, v in (mel + other)]


def _lesion_picture(seed: int) -> np.ndarray:
    """A synthetic lesion with grain over the lesion too (a flat fill reads as a damaged picture)."""
    rgb = skin_like(seed).astype(np.float32)
    rgb += np.random.default_rng(seed).normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _not_dermoscopy_pictures() -> list[np.ndarray]:
    import skimage.data

    page = skimage.data.page()
    return [skimage.data.astronaut(), skimage.data.coffee(), np.repeat(page[:, :, None], 3, axis=2)]


def make_clinic_day(folder: Path, lesion_pictures: str = "synthetic") -> ClinicDay:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = _ham_pairs(N_LESIONS) if lesion_pictures == "ham" else None
    rows, files = [], []
    for i in range(N_LESIONS):
        pid, age, sex = PATIENTS[i % len(PATIENTS)]
        lesion = f"L{i // len(PATIENTS) + 1}"
        for v, visit in enumerate(VISITS):
            name = f"IMG_{1000 + 2 * i + v}.jpg"  # a camera's names: the identity comes from the sidecar
            if pairs is not None:
                (folder / name).write_bytes(pairs[i][v].read_bytes())
            else:
                write_rgb(folder / name, _lesion_picture(7000 + 2 * i + v))
            files.append(name)
            rows.append([name, pid, lesion, SITES[i % len(SITES)], visit, age, sex, ""])
    for name, rgb in zip(NOT_DERMOSCOPY_FILES, _not_dermoscopy_pictures()):
        write_rgb(folder / name, rgb)
    ok, jpeg = cv2.imencode(".jpg", skin_like(99))
    (folder / BROKEN_FILES[0]).write_bytes(jpeg.tobytes()[: len(jpeg) // 3])
    (folder / BROKEN_FILES[1]).write_text("Referral letter, typed by hand, saved with the wrong name.\n")
    with open(folder / "melascreen.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "patient_id", "lesion_id", "body_site", "visit_date", "age", "sex", "note"])
        w.writerows(rows)
    return ClinicDay(folder, tuple(files), NOT_DERMOSCOPY_FILES, BROKEN_FILES, tuple(p[0] for p in PATIENTS))
