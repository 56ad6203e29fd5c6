"""Dermoscopy preprocessing: black-corner inpainting, hair removal, CLAHE. One implementation for
the app and for training; every parameter travels in the model bundle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class PreprocessParams:
    # Work at a bounded resolution: inpainting cost is linear in masked pixels.
    working_size: int = 448  # longest side, pixels
    # Kernel sizes below are the seed's, given for a 600 px wide image; they scale with working_size.
    reference_size: int = 600
    corners: bool = True
    corner_threshold: int = 50
    corner_min_fraction: float = 0.001
    corner_inpaint_radius: int = 15
    hair: bool = True
    hair_kernel: int = 17
    hair_threshold: int = 10
    hair_inpaint_radius: int = 3
    clahe: bool = True
    clahe_clip: float = 2.0
    clahe_tiles: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessParams":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preprocessing parameters: {sorted(unknown)}")
        return cls(**data)
