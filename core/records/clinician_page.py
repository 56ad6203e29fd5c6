"""A clinician's page: half a page in plain words, written from the figures a bundle carries (never
by hand), for the top of the About box and of the model card.

What it says, and where each figure comes from:
- good at: the test set of a source the members learned from (the model card's evaluation table,
  between EVALUATION_BEGIN/END): melanomas missed and benign lesions cleared at the default setting;
- bad at: a test set from a clinic none of the members saw (a set whose source the manifest does not
  list among the training data): the same figures, as "about 1 in N";
- learned from: the training sources named in the manifest's provenance; ages, sexes and skin types
  only as far as the bundle records them (a `population` record in its provenance, or the card's
  own words on skin); what is not recorded is said to be not recorded;
- not for clinical (non-dermoscopic) photographs, with the intake check's catch rate when the card
  gives it.
Figures the page needs but cannot find are listed in `missing`, and the page says so.
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


def _walk(value) -> Iterable[tuple[str, object]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k), v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def training_sources(provenance: Mapping) -> list[str]:
    """The data sets the members learned from, as the manifest's provenance names them (merged bundles
    included): `dataset` and `extra_sources[].name`, in the order first met."""
    names: list[str] = []
    for key, value in _walk(provenance):
        found = []
        if key == "dataset" and isinstance(value, str):
            found = [value]
        elif key == "extra_sources" and isinstance(value, list):
            found = [s.get("name") for s in value if isinstance(s, Mapping) and isinstance(s.get("name"), str)]  # type: ignore[misc]  # names filtered to str in the same comprehension
        for n in found:
            if n and n not in names:
                names.append(n)
    return names


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def recorded_population(provenance: Mapping) -> dict | None:
    """A `population` record of the training pictures (see `population_from_metadata`), if the bundle has one."""
    for key, value in _walk(provenance):
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


# ---------------------------------------------------------------------------------------- words


def one_in(count: int, total: int) -> str:
    """ "about 1 in 80" (3 of 252), "about 1 in 9" (84 of 717), "none of 168", "about 5 in 10"."""
    if total <= 0:
        return "none"
    if count <= 0:
        return f"none of {total}"
    share = count / total
    if 0.45 <= share <= 0.55:
        return "about half of the"
    if share >= 0.3:
        return f"about {round(share * 10)} in 10"
    n = total / count
    n = round(n, -1) if n >= 20 else round(n)
    return f"about 1 in {n:.0f}"


def _auc_words(auc: float) -> str:
    if auc >= 0.85:
        return "well"
    if auc >= 0.75:
        return "fairly well"
    return "poorly"


@dataclass(frozen=True)
class ClinicianPage:
    title: str
    paragraphs: tuple[tuple[str, str], ...]  # (heading, plain words)
    missing: tuple[str, ...] = field(default=())  # figures the page needed and did not find

    def html(self) -> str:
        parts = [f"<h3>{html.escape(self.title)}</h3>"]
        for heading, text in self.paragraphs:
            parts.append(f"<p><b>{html.escape(heading)}</b> {html.escape(text)}</p>")
        return "".join(parts)

    def markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        for heading, text in self.paragraphs:
            lines += [f"**{heading}** {text}", ""]
        return "\n".join(lines)


def _set_sentence(s: SetFigures) -> tuple[str, list[str]]:
    """ "it missed about 1 in 80 melanomas (3 of 252) and cleared about 1 in 9 benign lesions (84 of 717)";
    the figures it lacks."""
    missing = []
    parts = []
    if s.melanomas_cleared is not None and s.melanomas:
        parts.append(
            f"it missed {one_in(s.melanomas_cleared, s.melanomas)} melanomas ({s.melanomas_cleared} of {s.melanomas})"
        )
    else:
        missing.append(f"{s.name}: melanomas auto-cleared at the default setting")
    benign = s.benign
    if s.benign_cleared is not None and benign:
        parts.append(f"cleared {one_in(s.benign_cleared, benign)} benign lesions ({s.benign_cleared} of {benign})")
    else:
        missing.append(f"{s.name}: benign lesions cleared at the default setting")
    return " and ".join(parts) or "its figures are not in the card", missing


def clinician_page(manifest, card: str) -> ClinicianPage:
    """The page for a bundle (`manifest`: core.inference.bundle.Manifest or alike; `card`: its model_card.md)."""
    confidence = manifest.gate.default_confidence
    sets = card_test_sets(card or "", confidence)
    sources = training_sources(manifest.provenance or {})
    seen = {_squash(s) for s in sources}
    missing: list[str] = []  # for engineers (the exporter, tests): what the page needed and did not find
    unsaid: list[str] = []  # the same, for the page, in plain words
    paragraphs: list[tuple[str, str]] = []

    def source_of(s: SetFigures) -> str:
        """The training source a test set comes from ("" when none of them)."""
        for name in sources:
            if _squash(name) and (
                _squash(s.key).startswith(_squash(name)) or _squash(s.name).startswith(_squash(name))
            ):
                return name
        return ""

    familiar = [s for s in sets.values() if source_of(s)]
    unseen = [s for s in sets.values() if s not in familiar] if seen else []
    if not seen:
        missing.append("the training data sets (manifest provenance: dataset, extra_sources)")
        unsaid.append("which data sets it learned from")
    if not sets:
        missing.append("test-set figures (the model card's evaluation table)")
        unsaid.append("how it did on pictures it had not seen")

    if familiar:
        s = max(familiar, key=lambda x: x.images or 0)
        sentence, lacking = _set_sentence(s)
        missing += lacking
        unsaid += lacking
        auc = (
            f" It ranks melanomas {_auc_words(s.melanoma_auc)} there (AUC {s.melanoma_auc:.2f})."
            if s.melanoma_auc is not None
            else ""
        )
        paragraphs.append(
            (
                "Good at:",
                "sorting dermoscopy pictures like those it learned from. On "
                + (f"{s.images} pictures" if s.images else "pictures")
                + " from "
                + f"{source_of(s)} that it had not seen, at the default setting (confidence {confidence:g}), "
                f"{sentence}.{auc} 'Missed' means called 'no cancer suspected', which no clinician then sees; "
                "everything it is unsure of goes to review.",
            )
        )
    if unseen:
        s = max(unseen, key=lambda x: x.images or 0)
        sentence, lacking = _set_sentence(s)
        missing += lacking
        unsaid += lacking
        auc = ""
        if s.melanoma_auc is not None:
            best = max((f.melanoma_auc for f in familiar if f.melanoma_auc is not None), default=None)
            auc = f" It ranks melanomas {_auc_words(s.melanoma_auc)} on that camera (AUC {s.melanoma_auc:.2f}" + (
                f", against {best:.2f} on familiar pictures)." if best is not None else ")."
            )
        paragraphs.append(
            (
                "Less good at:",
                f"pictures from other clinics and dermoscopes. On pictures from a clinic it has never seen "
                f"({s.name}, {s.images or '?'} pictures), at the default setting, {sentence}.{auc} Expect "
                "most pictures from a new camera to go to review until it has been checked on them.",
            )
        )
    elif seen and sets:
        missing.append("a test set from a clinic the model never saw")
        unsaid.append("how it does on pictures from another clinic")

    learned = ", ".join(sources) if sources else "data sets the bundle does not name"
    population = recorded_population(manifest.provenance or {})
    if population:
        who = []
        if population.get("age_median") is not None:
            lo, hi = (population.get("age_range") or [None, None])[:2]
            quart = population.get("age_quartiles") or [None, None]
            who.append(
                f"ages: median {population['age_median']:.0f} years"
                + (f", half between {quart[0]:.0f} and {quart[1]:.0f}" if None not in quart else "")
                + (f", from {lo:.0f} to {hi:.0f}" if lo is not None and hi is not None else "")
            )
        if population.get("sex"):
            total = sum(population["sex"].values()) or 1
            who.append("sexes: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in population["sex"].items()))
        people = "; ".join(who) + "."
    else:
        people = "The bundle does not record the ages or sexes of the people in its training pictures."
        missing.append("ages and sexes of the training pictures (a `population` record in the provenance)")
    skin = card_skin_words(card or "")
    skin_text = (
        f" Skin: the model card says {skin}."
        if skin
        else " The bundle does not record the skin types of its training pictures."
    )
    if not skin:
        missing.append("skin types of the training pictures")
    paragraphs.append(("Learned from:", f"{learned}. {people}{skin_text}"))

    catch = card_intake_catch(card or "")
    intake = (
        f" Its intake check caught {catch[0]} of {catch[1]} test pictures that were not dermoscopy; it does not "
        "catch every one."
        if catch
        else ""
    )
    paragraphs.append(
        (
            "Use it for:",
            "dermoscopy pictures of single skin lesions only. It is not for clinical (non-dermoscopic) "
            f"photographs of skin, nor for pictures of anything else.{intake} It is a research tool: its "
            "output is not a diagnosis.",
        )
    )
    # what the page could not say (ages, sexes and skin are said above, in their own words)
    if unsaid:
        paragraphs.append(("Not known from this bundle:", "; ".join(unsaid) + "."))
    return ClinicianPage(
        title=f"For clinicians: {manifest.name} {manifest.version}",
        paragraphs=tuple(paragraphs),
        missing=tuple(missing),
    )
