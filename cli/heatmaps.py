"""`screen --heatmaps`: one overlay PNG per screened image, written as the results arrive."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from cli.terminal import printable
from core import DISCLAIMER, ImageReadError, Provenance, atomic_target


def heatmap_name(result, unsigned: bool = False) -> str:
    stem = Path(result.path).stem
    tag = (result.sha256 or hashlib.sha256(result.path.encode()).hexdigest())[:8]
    return f"{stem}-{tag}-heatmap" + ("-UNSIGNED" if unsigned else "") + ".png"


def write_heatmap(result, folder: Path, made_by: Provenance) -> None:
    """The overlay PNG, named -UNSIGNED for an unsigned bundle, carrying what made it in its text
    chunks; written whole (atomic), private to the user."""
    import cv2

    from core import overlay, png_with_text, read_image

    image = read_image(result.path)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(overlay(image.rgb, result.cam), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"OpenCV could not encode the heat map of {result.path}")
    text = {"Software": "MelaScreen", "Description": made_by.line(), "Disclaimer": DISCLAIMER}
    with atomic_target(folder / heatmap_name(result, made_by.unsigned)) as temp:  # never a truncated PNG
        temp.write_bytes(png_with_text(buf.tobytes(), text))


class HeatMapWriter:
    """Writes each result's heat map into `folder` (None: no heat maps); a map that cannot be written is
    warned about and counted in `failed`, and the run goes on (the results are stored either way)."""

    def __init__(self, folder: Path | None, made_by: Provenance):
        self.folder = folder
        self.made_by = made_by
        self.failed: list[str] = []

    def __call__(self, result) -> None:
        if not (self.folder and result.ok and result.cam is not None):
            return
        try:
            write_heatmap(result, self.folder, self.made_by)
        except (ImageReadError, OSError) as exc:
            self.failed.append(str(exc))
            print(f"warning: heat map for {printable(result.path)} not written ({printable(exc)})", file=sys.stderr)
