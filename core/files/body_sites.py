"""Body sites: one fixed anatomic vocabulary, read from sidecar words and DICOM region codes, and
where each site lies on the project's front/back figure (drawn by core.imaging.body_map).

A site is a region ("forearm") and, for paired regions, a side ("left forearm"). The words a clinic
writes ("L forearm", "lt. shin", "Forearm (left)" from a DICOM file, HAM10000's "upper extremity")
are mapped onto it by `site_from_text`; a word that maps to nothing is returned as unknown, so that
the sidecar check can say so, and is kept as written (never guessed onto the figure).

The figure lives in a 440 x 470 box (core.imaging.body_map.VIEW_BOX): the front view on the left,
the back view on the right, each figure 200 wide. Coordinates of a region are given for the
patient's RIGHT side in the front view (the viewer's left); the left side and the back view are
mirrored from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

FRONT, BACK = "front", "back"
FIGURE_WIDTH = 200.0
BACK_OFFSET = 240.0  # x where the back view's figure starts
TOP = 30.0  # room for the "Front" / "Back" titles


@dataclass(frozen=True)
class Region:
    key: str  # the region's name in words, e.g. "forearm"
    paired: bool  # a left and a right one
    points: tuple[tuple[str, float, float], ...]  # (view, x, y) on the patient's right side, figure coordinates
    sideable: bool = False  # one region, but a side says where on it ("left chest"): the pin moves that way


# The vocabulary. Order matters only for display; every region has at least one point on the figure.
REGIONS: tuple[Region, ...] = (
    Region("scalp", False, ((FRONT, 100, 14), (BACK, 100, 22)), sideable=True),
    Region("face", False, ((FRONT, 100, 44),), sideable=True),
    Region("ear", True, ((FRONT, 76, 44), (BACK, 76, 44))),
    Region("neck", False, ((FRONT, 100, 74), (BACK, 100, 74)), sideable=True),
    Region("shoulder", True, ((FRONT, 70, 96), (BACK, 70, 96))),
    Region("chest", False, ((FRONT, 100, 116),), sideable=True),
    Region("abdomen", False, ((FRONT, 100, 192),), sideable=True),
    Region("trunk", False, ((FRONT, 100, 156),), sideable=True),
    Region("upper back", False, ((BACK, 100, 120),), sideable=True),
    Region("back", False, ((BACK, 100, 165),), sideable=True),
    Region("lower back", False, ((BACK, 100, 218),), sideable=True),
    Region("buttock", True, ((BACK, 86, 252),)),
    Region("genital area", False, ((FRONT, 100, 248),)),
    Region("upper arm", True, ((FRONT, 56, 132), (BACK, 56, 132))),
    Region("forearm", True, ((FRONT, 45, 204), (BACK, 45, 204))),
    Region("hand", True, ((BACK, 36, 260),)),
    Region("palm", True, ((FRONT, 36, 262),)),
    Region("thigh", True, ((FRONT, 80, 284), (BACK, 80, 284))),
    Region("knee", True, ((FRONT, 78, 330),)),
    Region("lower leg", True, ((FRONT, 77, 372), (BACK, 77, 372))),
    Region("foot", True, ((FRONT, 72, 421),)),
    Region("sole", True, ((BACK, 73, 424),)),
)
_REGIONS = {r.key: r for r in REGIONS}
SIDES = ("left", "right")
SIDE_SHIFT = 22.0  # how far a side moves the pin of a one-piece region ("left chest") from its middle

# Words clinics write -> a region of the vocabulary. Matched on whole words after the side is taken
# out; longer phrases first, so "lower back" is not read as "back".
_SYNONYMS: dict[str, str] = {
    "scalp": "scalp",
    "head": "scalp",
    "face": "face",
    "forehead": "face",
    "cheek": "face",
    "nose": "face",
    "chin": "face",
    "lip": "face",
    "eyelid": "face",
    "temple": "face",
    "ear": "ear",
    "neck": "neck",
    "shoulder": "shoulder",
    "chest": "chest",
    "breast": "chest",
    "anterior torso": "chest",
    "thorax": "chest",
    "abdomen": "abdomen",
    "belly": "abdomen",
    "flank": "abdomen",
    "trunk": "trunk",
    "torso": "trunk",
    "upper back": "upper back",
    "posterior torso": "back",
    "back": "back",
    "lower back": "lower back",
    "lumbar": "lower back",
    "buttock": "buttock",
    "gluteal": "buttock",
    "genital": "genital area",
    "genitals": "genital area",
    "groin": "genital area",
    "upper arm": "upper arm",
    "arm": "upper arm",
    "elbow": "upper arm",
    "upper extremity": "upper arm",
    "upper limb": "upper arm",
    "forearm": "forearm",
    "wrist": "forearm",
    "hand": "hand",
    "back of hand": "hand",
    "finger": "hand",
    "thumb": "hand",
    "palm": "palm",
    "thigh": "thigh",
    "lower extremity": "thigh",
    "lower limb": "thigh",
    "hip": "thigh",
    "knee": "knee",
    "lower leg": "lower leg",
    "leg": "lower leg",
    "shin": "lower leg",
    "calf": "lower leg",
    "ankle": "lower leg",
    "foot": "foot",
    "toe": "foot",
    "sole": "sole",
    "acral": "sole",
    "heel": "sole",
}
# SNOMED CT codes (DICOM Anatomic Region Sequence, CodeValue) of the regions, for files that carry
# the code without its meaning.
SNOMED_CODES: dict[str, str] = {
    "41695006": "scalp",
    "89545001": "face",
    "117590005": "ear",
    "45048000": "neck",
    "16982005": "shoulder",
    "51185008": "chest",
    "818983003": "abdomen",
    "113345001": "abdomen",
    "22943007": "trunk",
    "77568009": "back",
    "46862004": "buttock",
    "40983000": "upper arm",
    "14975008": "forearm",
    "85562004": "hand",
    "21547004": "palm",
    "68367000": "thigh",
    "72696002": "knee",
    "30021000": "lower leg",
    "56459004": "foot",
    "57999000": "sole",
}
# Words that say the site is not known: no site, and nothing to report.
_NOT_RECORDED = {"", "unknown", "not known", "not recorded", "n a", "na", "none"}  # as _normal writes them
_SIDE_WORDS = {"left": "left", "l": "left", "lt": "left", "right": "right", "r": "right", "rt": "right"}
_NOISE = {
    "of",
    "the",
    "on",
    "side",
    "both",
    "sides",
    "unpaired",
    "region",
    "structure",
    "skin",
    "anterior",
    "posterior",
}


@dataclass(frozen=True)
class BodySite:
    """A site of the vocabulary: a region and, for a paired one, its side (None: side not recorded)."""

    region: str
    side: str | None = None

    @property
    def label(self) -> str:
        """ "left forearm", "back", "forearm (side not recorded)"."""
        if self.side:
            return f"{self.side} {self.region}"
        if _REGIONS[self.region].paired:
            return f"{self.region} (side not recorded)"
        return self.region

    def points(self) -> list[tuple[str, float, float]]:
        """(view, x, y) where the site is on the figure, in core.imaging.body_map.VIEW_BOX; an unsided
        paired site is drawn on the patient's right."""
        out = []
        left = self.side == "left"
        region = _REGIONS[self.region]
        for view, x, y in region.points:
            # front view: the patient's right is the viewer's left; back view: the other way round
            mirrored = left if view == FRONT else not left
            if region.paired:
                fx = FIGURE_WIDTH - x if mirrored else x
            elif self.side:
                fx = x + (SIDE_SHIFT if mirrored else -SIDE_SHIFT)
            else:
                fx = x
            out.append((view, fx + (BACK_OFFSET if view == BACK else 0.0), y + TOP))
        return out


@dataclass(frozen=True)
class SiteMatch:
    text: str  # as written
    site: BodySite | None  # None: not recorded, or unknown

    @property
    def unknown(self) -> bool:
        """Written, but not a site of the vocabulary."""
        return self.site is None and _normal(self.text) not in _NOT_RECORDED


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9]+", " ", text.casefold())).strip()


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def site_from_text(text: str | None) -> SiteMatch:
    """The vocabulary's site for words a clinic or a DICOM file wrote: "left forearm", "L forearm",
    "Forearm (left)", "shin, right", "14975008 (left)", HAM10000's "upper extremity"."""
    raw = "" if text is None else str(text)
    words = [_singular(w) for w in _normal(raw).split()]
    side = None
    rest = []
    for w in words:
        if w in _SIDE_WORDS and side is None:
            side = _SIDE_WORDS[w]
        elif w not in _NOISE:
            rest.append(w)
    phrase = " ".join(rest)
    region = SNOMED_CODES.get(phrase) or _SYNONYMS.get(phrase)
    if region is None:
        # the longest known phrase inside the words ("dorsal forearm" -> forearm)
        for n in range(len(rest), 0, -1):
            for i in range(len(rest) - n + 1):
                part = " ".join(rest[i : i + n])
                region = SNOMED_CODES.get(part) or _SYNONYMS.get(part)
                if region:
                    break
            if region:
                break
    if region is None:
        return SiteMatch(raw, None)
    r = _REGIONS[region]
    return SiteMatch(raw, BodySite(region, side if (r.paired or r.sideable) else None))


def site_from_dicom(code_value: str | None, code_meaning: str | None, laterality: str | None = None) -> SiteMatch:
    """The site of a DICOM Anatomic Region Sequence item (meaning first, else the SNOMED code) and the
    Laterality / Image Laterality letter (L, R, B, U)."""
    side = {"L": "left", "R": "right"}.get((laterality or "").strip().upper(), "")
    for text in (code_meaning, code_value):
        if text:
            match = site_from_text(f"{text} {side}".strip())
            if match.site is not None:
                return match
    return SiteMatch(code_meaning or code_value or "", None)


def unknown_site_words(texts: Iterable[str | None]) -> list[str]:
    """The distinct written sites that are not in the vocabulary, in the order first met."""
    out: list[str] = []
    for t in texts:
        if t and site_from_text(t).unknown and t not in out:
            out.append(t)
    return out


def vocabulary() -> list[str]:
    """Every site label the vocabulary knows (sided ones both ways), for help texts and pick lists."""
    out = []
    for r in REGIONS:
        out += [f"{s} {r.key}" for s in SIDES] if r.paired else [r.key]
    return out
