"""Issue 26's acceptance case: a zeroed disk sector must not turn a cancer into "no cancer suspected".

HAM10000 ISIC_0027819 is a basal cell carcinoma. With 512 zero bytes written at 70% of its
entropy-coded data, the lower third of the picture is broken, and the default bundle used to call it
"no cancer suspected". Screened with the real default bundle when ../shared is present; without it, a
synthetic JPEG with the same damage must be refused by the decoder check alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.common.errors import ImageReadError
from core.decision.results import Decision
from core.files.damage import jpeg_decoder_damage, jpeg_structure_damage
from core.files.images import read_image
from tests.support import damage_cases as dc

BCC = Path(__file__).resolve().parents[3] / "shared" / "data" / "dermoscopy" / "images" / "ISIC_0027819.jpg"


def test_the_zeroed_sector_case_is_never_no_cancer_suspected(tmp_path):
    if not BCC.is_file():
        damaged = dc.zero_at_fraction(dc.jpeg(dc.photo_like(0)), 512, 0.7)
        assert jpeg_structure_damage(damaged) is None  # the old marker check let it through
        assert jpeg_decoder_damage(damaged) is not None
        with pytest.raises(ImageReadError, match="damaged"):
            read_image(dc_write(tmp_path / "damaged.jpg", damaged))
        return
    from core.inference.bundle import default_bundle_path, load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.screening import RunSettings, Screener, screen_folder

    folder = tmp_path / "visit"
    folder.mkdir()
    dc_write(folder / "intact.jpg", BCC.read_bytes())
    dc_write(folder / "damaged.jpg", dc.zero_at_fraction(BCC.read_bytes(), 512, 0.7))
    screener = Screener(load_bundle(default_bundle_path()), EnsembleSettings(provider="cpu"))
    results, _ = screen_folder(screener, folder, None, run=RunSettings(with_cam=False))
    rows = {Path(r.path).name: r for r in results}
    assert rows["intact.jpg"].ok  # the intact picture is screened as before
    damaged = rows["damaged.jpg"]
    assert damaged.decision is not Decision.NO_CANCER_SUSPECTED
    assert not damaged.ok and "damaged" in damaged.reason  # refused, with the reason in words


def dc_write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
