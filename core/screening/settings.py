"""What a run is asked to do: the gate choice and the run settings, and the key a stored result is reused under.

Settings come in three lifetimes: session settings (`core.inference.ensemble.EnsembleSettings`: engine,
provider, precision, threads) build the engines once per `Screener`; gate settings (`GateChoice`: the
confidence) and run settings (`RunSettings`: recursion, limits, heat maps, batching) are passed to each run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.decision.cascade import StopMargins
from core.files.identity import IdentitySettings
from core.files.image_file import ImageLimits
from core.inference.bundle import Bundle

# Part of every stored result's key: a result stored before the image checks changed (e.g. the damage
# checks of core/files/damage.py) is never reused, so a damaged file cleared by an older build is screened again.
IMAGE_CHECKS_VERSION = "checks-2"


@dataclass(frozen=True)
class GateChoice:
    """Gate settings, chosen per run: changing them re-decides images, never rebuilds the engines."""

    confidence: float | None = None  # None: the bundle's default (0.99)
    auto_clearing: bool = True  # False: no image is "no cancer suspected" (core/screening/auto_clearing.py)
    held_reason: str = ""  # why clearing is off, said on each image it holds back
    # The cascade (core/decision/cascade.py): stage 1 settles the clear cases when the bundle has margins for this
    # confidence; False (and any bundle without margins): every image runs the whole ensemble.
    cascade: bool = False

    def confidence_in(self, bundle: Bundle) -> float:
        """The confidence this choice means with `bundle`: its own, or the bundle's default."""
        return self.confidence if self.confidence is not None else bundle.manifest.gate.default_confidence


@dataclass(frozen=True)
class RunSettings:
    """Settings of one run."""

    recursive: bool = False
    with_cam: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)
    batch_images: int = 1  # images per engine call (each with all its TTA views)
    workers: int = 1  # threads decoding, checking and preprocessing ahead of the engine
    intake: IdentitySettings = field(default_factory=IdentitySettings)  # patient identities (sidecar, layout)


def result_key(bundle: Bundle, gate: GateChoice = GateChoice()) -> str:
    """Stored results are reused only for the same models AND the same gate, so changing the
    confidence setting re-decides images instead of showing their old decision. The intake check's
    thresholds live in the manifest, which the bundle's identity covers (like every file of it)."""
    gate_settings = bundle.manifest.gate
    t = gate_settings.thresholds(gate.confidence)
    gate_text = f"{t.low:.6g}:{t.high:.6g}:{gate_settings.max_member_spread:.6g}"
    if t.has_bands:  # bands are part of what a stored result says
        gate_text += f":{t.moderate_from:.6g}:{t.high_risk_from:.6g}"
    if not gate.auto_clearing:  # a held result is not a cleared one: never reused for the other
        gate_text += ":held"
    if cascade_margins(bundle, gate) is not None:  # stage-1 results are not the full ensemble's numbers
        gate_text += ":cascade"
    return hashlib.sha256(f"{bundle.identity}|{gate_text}|{IMAGE_CHECKS_VERSION}".encode()).hexdigest()[:16]


def cascade_margins(bundle: Bundle, gate: GateChoice = GateChoice()) -> StopMargins | None:
    """The stage-1 margins a run with `gate` uses; None: the whole ensemble runs for every image."""
    section = bundle.manifest.cascade
    if not gate.cascade or section is None or not section.applies_to(bundle.manifest):
        return None
    return section.margins(gate.confidence_in(bundle))


def cascade_status(bundle: Bundle, gate: GateChoice = GateChoice()) -> str:
    """In words, for the command line and the app: whether the cascade runs, and why not."""
    m = bundle.manifest
    if not gate.cascade:
        return "cascade off: the whole ensemble screens every image"
    if m.cascade is None:
        return "cascade on, but this bundle has no cascade margins: the whole ensemble screens every image"
    if not m.cascade.applies_to(m):
        return (
            "cascade on, but this bundle's cascade margins were fitted for other members or another gate: the "
            "whole ensemble screens every image"
        )
    if cascade_margins(bundle, gate) is None:
        return (
            "cascade on, but this bundle has no cascade margins at this confidence: the whole ensemble screens "
            "every image"
        )
    return (
        f"cascade on: stage 1 runs {len(m.cascade.members)} of {len(m.members)} members x {len(m.cascade.views)} "
        f"of {len(m.tta_views)} views; the whole ensemble runs where stage 1 does not settle the outcome"
    )
