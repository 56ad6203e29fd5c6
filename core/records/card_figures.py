"""What a bundle says about itself, as figures a clinician's page can use (core.records.clinician_page):
the test sets of its model card's evaluation table (between EVALUATION_BEGIN/END), the intake check's catch
rate and the card's words on skin; the training sources and the `population` record of its manifest's
provenance (and how an exporter makes that record from HAM10000-style metadata)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.inference.bundle import EVALUATION_BEGIN, EVALUATION_END

# ------------------------------------------------------------------------------- reading the card


@dataclass(frozen=True)
class SetFigures:
    """One test set's figures at the default setting, as the card's evaluation table gives them."""

    key: str  # the table's column name, e.g. "derm7pt"
    name: str  # in words, e.g. "Derm7pt"
    description: str  # the card's line about the set ("another clinic and dermoscope" ...)
    images: int | None = None
    melanomas: int | None = None
    malignant: int | None = None
    melanoma_auc: float | None = None
    melanomas_cleared: int | None = None  # auto-cleared ("no cancer suspected") at the default setting
    benign_cleared: int | None = None
    benign_cleared_share: float | None = None  # 0..1

    @property
    def benign(self) -> int | None:
        if self.images is None or self.malignant is None:
            return None
        return self.images - self.malignant


_NUMBER = r"(\d+(?:\.\d+)?)"


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                rows.append(cells)
    return rows


def _int(text: str, pattern: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1)) if m else None


def _evaluation_part(card: str) -> str:
    begin, end = card.find(EVALUATION_BEGIN), card.find(EVALUATION_END)
    if begin < 0 or end < begin:
        return ""
    return card[begin + len(EVALUATION_BEGIN) : end]


def card_test_sets(card: str, default_confidence: float) -> dict[str, SetFigures]:
    """The test sets of the card's evaluation table with their default-setting figures; {} without one."""
    part = _evaluation_part(card)
    rows = _table_rows(part)
    if not rows:
        return {}
    keys = [k for k in rows[0][1:] if k]
    described: dict[str, tuple[str, str]] = {}
    for key in keys:
        m = re.search(rf"^-\s*{re.escape(key)}\s*:\s*([^,:(]+)(.*)$", part, re.MULTILINE)
        if m:
            described[key] = (m.group(1).strip(), m.group(2).strip(" ,:"))
    level = f"{default_confidence:g}"
    values: dict[str, dict[str, str]] = {k: {} for k in keys}
    for row in rows[1:]:
        label = row[0].casefold()
        for key, cell in zip(keys, row[1:]):
            values[key][label] = cell
    out = {}
    for key in keys:
        v = values[key]

        def at_default(what: str, v=v) -> str:
            for label, cell in v.items():
                if re.match(rf"gate {re.escape(level)}\b.*\(default\): {what}$", label):
                    return cell
            return ""

        counts = v.get("images (melanomas / all malignant)", "")
        m = re.match(r"(\d+)\s*\(\s*(\d+)\s*/\s*(\d+)\s*\)", counts)
        auc = re.match(_NUMBER, v.get("melanoma auc (95% ci)", ""))
        mel = at_default("melanomas auto-cleared")
        benign = at_default("benign lesions cleared")
        share = re.match(rf"{_NUMBER}%", benign)
        name, description = described.get(key, (key, ""))
        out[key] = SetFigures(
            key=key,
            name=name,
            description=description,
            images=int(m.group(1)) if m else None,
            melanomas=int(m.group(2)) if m else None,
            malignant=int(m.group(3)) if m else None,
            melanoma_auc=float(auc.group(1)) if auc else None,
            melanomas_cleared=_int(mel, r"\((\d+)\)"),
            benign_cleared=_int(benign, r"\((\d+)\)"),
            benign_cleared_share=float(share.group(1)) / 100 if share else None,
        )
    return out


def card_intake_catch(card: str) -> tuple[int, int] | None:
    """(pictures flagged, pictures) of the card's 'not dermoscopy' test row of the intake check, if any."""
    for row in _table_rows(card):
        if row and re.match(r"not dermoscopy\b", row[0], re.IGNORECASE) and len(row) >= 3:
            n = re.match(r"(\d+)", row[1])
            share = re.match(rf"{_NUMBER}%", row[2])
            if n and share:
                total = int(n.group(1))
                return round(float(share.group(1)) / 100 * total), total
    return None


def card_skin_words(card: str) -> str:
    """The card's own words on its training pictures' skin ("mostly fair skin"), or ""."""
    m = re.search(r"\b((?:mostly|mainly|predominantly|largely|only)\s+[a-z-]+(?:\s+[a-z-]+)?\s+skin)\b", card)
    return m.group(1) if m else ""


# -------------------------------------------------------------------------- reading the manifest


def walk_items(value) -> Iterable[tuple[str, object]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k), v
            yield from walk_items(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_items(v)


def training_sources(provenance: Mapping) -> list[str]:
    """The data sets the members learned from, as the manifest's provenance names them (merged bundles
    included): `dataset` and `extra_sources[].name`, in the order first met."""
    names: list[str] = []
    for key, value in walk_items(provenance):
        found = []
        if key == "dataset" and isinstance(value, str):
            found = [value]
        elif key == "extra_sources" and isinstance(value, list):
            found = [s.get("name") for s in value if isinstance(s, Mapping) and isinstance(s.get("name"), str)]  # type: ignore[misc]  # names filtered to str in the same comprehension
        for n in found:
            if n and n not in names:
                names.append(n)
    return names


def squash(name: str) -> str:
    """A name compared loosely: lower case, letters and digits only ("HAM-10000" == "ham10000")."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def recorded_population(provenance: Mapping) -> dict | None:
    """A `population` record of the training pictures (see `population_from_metadata`), if the bundle has one."""
    for key, value in walk_items(provenance):
        if key == "population" and isinstance(value, Mapping):
            return dict(value)
    return None


def population_from_metadata(metadata_csv: str | Path, image_ids: Iterable[str] | None = None) -> dict:
    """Ages, sexes and body sites of training pictures from HAM10000-style metadata (columns image_id,
    age, sex, localization), for an exporter to record in a bundle's provenance as `population`.
    `image_ids`: only those pictures (e.g. the training split); None: every row."""
    wanted = None if image_ids is None else set(image_ids)
    ages: list[float] = []
    sexes: dict[str, int] = {}
    sites: dict[str, int] = {}
    n = 0
    with open(metadata_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if wanted is not None and row.get("image_id") not in wanted:
                continue
            n += 1
            try:
                ages.append(float(row.get("age") or ""))
            except ValueError:
                pass
            sex = (row.get("sex") or "unknown").strip() or "unknown"
            sexes[sex] = sexes.get(sex, 0) + 1
            site = (row.get("localization") or "unknown").strip() or "unknown"
            sites[site] = sites.get(site, 0) + 1
    ages.sort()

    def q(p: float) -> float | None:
        return ages[min(len(ages) - 1, int(p * len(ages)))] if ages else None

    return {
        "source": Path(metadata_csv).name,
        "images": n,
        "age_known": len(ages),
        "age_median": q(0.5),
        "age_quartiles": [q(0.25), q(0.75)],
        "age_range": [ages[0], ages[-1]] if ages else None,
        "sex": dict(sorted(sexes.items(), key=lambda kv: -kv[1])),
        "sites": dict(sorted(sites.items(), key=lambda kv: -kv[1])),
    }
