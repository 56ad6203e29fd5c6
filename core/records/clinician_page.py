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

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.records.card_figures import (
    SetFigures,
    card_intake_catch,
    card_skin_words,
    card_test_sets,
    recorded_population,
    squash,
    training_sources,
)


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


def _source_of(s: SetFigures, sources: list[str]) -> str:
    """The training source a test set comes from ("" when none of them)."""
    for name in sources:
        if squash(name) and (squash(s.key).startswith(squash(name)) or squash(s.name).startswith(squash(name))):
            return name
    return ""


def _good_at(s: SetFigures, source: str, confidence: float) -> tuple[tuple[str, str], list[str]]:
    """The paragraph on the test set of a source it learned from, and the figures it lacks."""
    sentence, lacking = _set_sentence(s)
    auc = (
        f" It ranks melanomas {_auc_words(s.melanoma_auc)} there (AUC {s.melanoma_auc:.2f})."
        if s.melanoma_auc is not None
        else ""
    )
    return (
        "Good at:",
        "sorting dermoscopy pictures like those it learned from. On "
        + (f"{s.images} pictures" if s.images else "pictures")
        + " from "
        + f"{source} that it had not seen, at the default setting (confidence {confidence:g}), "
        f"{sentence}.{auc} 'Missed' means called 'no cancer suspected', which no clinician then sees; "
        "everything it is unsure of goes to review.",
    ), lacking


def _less_good_at(s: SetFigures, familiar: list[SetFigures]) -> tuple[tuple[str, str], list[str]]:
    """The paragraph on a test set from a clinic it never saw, and the figures it lacks."""
    sentence, lacking = _set_sentence(s)
    auc = ""
    if s.melanoma_auc is not None:
        best = max((f.melanoma_auc for f in familiar if f.melanoma_auc is not None), default=None)
        auc = f" It ranks melanomas {_auc_words(s.melanoma_auc)} on that camera (AUC {s.melanoma_auc:.2f}" + (
            f", against {best:.2f} on familiar pictures)." if best is not None else ")."
        )
    return (
        "Less good at:",
        f"pictures from other clinics and dermoscopes. On pictures from a clinic it has never seen "
        f"({s.name}, {s.images or '?'} pictures), at the default setting, {sentence}.{auc} Expect "
        "most pictures from a new camera to go to review until it has been checked on them.",
    ), lacking


def _people_words(population: dict) -> str:
    """ "ages: median 50 years, half between 40 and 60, from 0 to 85; sexes: male 54%, female 45%." """
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
    return "; ".join(who) + "."


def _learned_from(sources: list[str], provenance: Mapping, card: str) -> tuple[tuple[str, str], list[str]]:
    """The paragraph on the training pictures (sources, ages, sexes, skin), and what the bundle does not record."""
    missing = []
    learned = ", ".join(sources) if sources else "data sets the bundle does not name"
    population = recorded_population(provenance)
    if population:
        people = _people_words(population)
    else:
        people = "The bundle does not record the ages or sexes of the people in its training pictures."
        missing.append("ages and sexes of the training pictures (a `population` record in the provenance)")
    skin = card_skin_words(card)
    skin_text = (
        f" Skin: the model card says {skin}."
        if skin
        else " The bundle does not record the skin types of its training pictures."
    )
    if not skin:
        missing.append("skin types of the training pictures")
    return ("Learned from:", f"{learned}. {people}{skin_text}"), missing


def _use_it_for(card: str) -> tuple[str, str]:
    catch = card_intake_catch(card)
    intake = (
        f" Its intake check caught {catch[0]} of {catch[1]} test pictures that were not dermoscopy; it does not "
        "catch every one."
        if catch
        else ""
    )
    return (
        "Use it for:",
        "dermoscopy pictures of single skin lesions only. It is not for clinical (non-dermoscopic) "
        f"photographs of skin, nor for pictures of anything else.{intake} It is a research tool: its "
        "output is not a diagnosis.",
    )


def clinician_page(manifest, card: str) -> ClinicianPage:
    """The page for a bundle (`manifest`: core.inference.bundle.Manifest or alike; `card`: its model_card.md)."""
    confidence = manifest.gate.default_confidence
    card = card or ""
    sets = card_test_sets(card, confidence)
    sources = training_sources(manifest.provenance or {})
    seen = {squash(s) for s in sources}
    missing: list[str] = []  # for engineers (the exporter, tests): what the page needed and did not find
    unsaid: list[str] = []  # the same, for the page, in plain words
    paragraphs: list[tuple[str, str]] = []

    familiar = [s for s in sets.values() if _source_of(s, sources)]
    unseen = [s for s in sets.values() if s not in familiar] if seen else []
    if not seen:
        missing.append("the training data sets (manifest provenance: dataset, extra_sources)")
        unsaid.append("which data sets it learned from")
    if not sets:
        missing.append("test-set figures (the model card's evaluation table)")
        unsaid.append("how it did on pictures it had not seen")
    if familiar:
        s = max(familiar, key=lambda x: x.images or 0)
        paragraph, lacking = _good_at(s, _source_of(s, sources), confidence)
        paragraphs.append(paragraph)
        missing += lacking
        unsaid += lacking
    if unseen:
        paragraph, lacking = _less_good_at(max(unseen, key=lambda x: x.images or 0), familiar)
        paragraphs.append(paragraph)
        missing += lacking
        unsaid += lacking
    elif seen and sets:
        missing.append("a test set from a clinic the model never saw")
        unsaid.append("how it does on pictures from another clinic")
    paragraph, lacking = _learned_from(sources, manifest.provenance or {}, card)
    paragraphs.append(paragraph)
    missing += lacking
    paragraphs.append(_use_it_for(card))
    # what the page could not say (ages, sexes and skin are said above, in their own words)
    if unsaid:
        paragraphs.append(("Not known from this bundle:", "; ".join(unsaid) + "."))
    return ClinicianPage(
        title=f"For clinicians: {manifest.name} {manifest.version}",
        paragraphs=tuple(paragraphs),
        missing=tuple(missing),
    )
