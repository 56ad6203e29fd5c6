"""The body map: the project's front/back figure (SVG) with a patient's lesions pinned where their
body sites are (core.files.body_sites), for the patient report and the app's body-map view.

The figure lives in VIEW_BOX (440 x 470): the front view on the left, the back view on the right,
each figure 200 wide. A site that is unknown or not recorded is listed, never drawn.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.files.body_sites import BACK_OFFSET, FIGURE_WIDTH, TOP, site_from_text

VIEW_BOX = (0.0, 0.0, 440.0, 470.0)


@dataclass(frozen=True)
class Pin:
    """A lesion on the figure: where, its number, colour and what a click opens (`key`)."""

    view: str
    x: float
    y: float
    number: int
    colour: str
    key: object = None  # e.g. the store's lesion key
    label: str = ""  # tooltip / legend text


def place_pins(items: Sequence[tuple[str | None, str, object, str]]) -> tuple[list[Pin], list[int]]:
    """Pins for (written site, colour, key, label) items, numbered 1.. in the given order; lesions at
    the same place are fanned out so that every pin stays visible and clickable. Returns the pins and
    the numbers of the items whose site is unknown or not recorded (they are listed, never drawn)."""
    pins: list[Pin] = []
    off: list[int] = []
    taken: dict[tuple[str, int, int], int] = {}
    for number, (text, colour, key, label) in enumerate(items, start=1):
        match = site_from_text(text)
        if match.site is None:
            off.append(number)
            continue
        for view, x, y in match.site.points():
            spot = (view, round(x), round(y))
            k = taken.get(spot, 0)
            taken[spot] = k + 1
            # the n-th pin at one spot goes round it at 13 units, 6 to a turn
            if k:
                angle = (k - 1) * math.pi / 3
                x, y = x + 13 * math.cos(angle), y + 13 * math.sin(angle)
            pins.append(Pin(view, x, y, number, colour, key, label))
    return pins, off


_SKIN = "#eceff1"
_LINE = "#78909c"


def _figure_svg(dx: float) -> str:
    """One standing figure (the same outline serves front and back), shifted right by dx."""

    def pt(x, y):
        return f"{x + dx:.0f},{y + TOP:.0f}"

    limbs = []
    # shoulder -> elbow -> wrist, hip -> knee -> ankle (patient's right; mirrored below)
    for side in (1, -1):

        def m(x, _side=side):
            return x if _side == 1 else FIGURE_WIDTH - x

        limbs.append((f"M{pt(m(66), 94)} L{pt(m(50), 168)} L{pt(m(40), 238)}", 20))
        limbs.append((f"M{pt(m(82), 240)} L{pt(m(78), 330)} L{pt(m(76), 406)}", 30))
    outline = "".join(
        f"<path d='{d}' fill='none' stroke='{_LINE}' stroke-width='{w + 3}' stroke-linecap='round' "
        "stroke-linejoin='round'/>"
        for d, w in limbs
    )
    fill = "".join(
        f"<path d='{d}' fill='none' stroke='{_SKIN}' stroke-width='{w}' stroke-linecap='round' "
        "stroke-linejoin='round'/>"
        for d, w in limbs
    )
    torso = (
        f"M{pt(64, 84)} Q{pt(100, 74)} {pt(136, 84)} Q{pt(148, 90)} {pt(142, 130)} L{pt(138, 180)} "
        f"Q{pt(142, 215)} {pt(136, 250)} L{pt(64, 250)} Q{pt(58, 215)} {pt(62, 180)} L{pt(58, 130)} "
        f"Q{pt(52, 90)} {pt(64, 84)} Z"
    )
    parts = [
        outline,
        f"<path d='{torso}' fill='{_SKIN}' stroke='{_LINE}' stroke-width='1.5'/>",
        fill,
        f"<rect x='{91 + dx}' y='{60 + TOP}' width='18' height='26' fill='{_SKIN}' stroke='{_LINE}' "
        "stroke-width='1.5'/>",
        f"<ellipse cx='{100 + dx}' cy='{40 + TOP}' rx='22' ry='27' fill='{_SKIN}' stroke='{_LINE}' "
        "stroke-width='1.5'/>",
    ]
    for x in (36, FIGURE_WIDTH - 36):
        parts.append(
            f"<ellipse cx='{x + dx}' cy='{258 + TOP}' rx='9' ry='14' fill='{_SKIN}' stroke='{_LINE}' "
            "stroke-width='1.5'/>"
        )
    for x in (70, FIGURE_WIDTH - 70):
        parts.append(
            f"<ellipse cx='{x + dx}' cy='{421 + TOP}' rx='15' ry='8' fill='{_SKIN}' stroke='{_LINE}' "
            "stroke-width='1.5'/>"
        )
    return "".join(parts)


def figure_svg(
    pins: Sequence[Pin] = (), width: int | None = None, title: str = "Body map", pin_radius: float = 8.0
) -> str:
    """The front and back figures with `pins` drawn on them (circles, numbered when the number is above
    0), as an SVG document. The patient's right and left are marked beside each view."""
    x0, y0, w, h = VIEW_BOX
    size = f" width='{width}' height='{round(width * h / w)}'" if width else ""
    text = "font-family='DejaVu Sans, Arial, sans-serif' fill='#37474f' text-anchor='middle'"
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='{x0:g} {y0:g} {w:g} {h:g}'{size}>",
        f"<title>{html.escape(title)}</title>",
        f"<rect x='0' y='0' width='{w:g}' height='{h:g}' fill='#ffffff'/>",
        f"<text x='100' y='18' font-size='15' font-weight='bold' {text}>Front</text>",
        f"<text x='{BACK_OFFSET + 100:g}' y='18' font-size='15' font-weight='bold' {text}>Back</text>",
        _figure_svg(0.0),
        _figure_svg(BACK_OFFSET),
    ]
    # which side is which: front view, patient's right on the viewer's left; back view, the other way round
    for x, word in ((12, "R"), (188, "L"), (BACK_OFFSET + 12, "L"), (BACK_OFFSET + 188, "R")):
        parts.append(f"<text x='{x:g}' y='{TOP + 250:g}' font-size='13' {text}>{word}</text>")
    for p in pins:
        parts.append(
            f"<circle cx='{p.x:.1f}' cy='{p.y:.1f}' r='{pin_radius:g}' fill='{p.colour}' stroke='#ffffff' "
            f"stroke-width='{pin_radius / 5:.1f}'/>"
        )
        if p.number > 0:
            font = pin_radius * 1.25
            parts.append(
                f"<text x='{p.x:.1f}' y='{p.y + font * 0.36:.1f}' font-size='{font:.1f}' font-weight='bold' "
                f"fill='#ffffff' text-anchor='middle' font-family='DejaVu Sans, Arial, sans-serif'>{p.number}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
