"""The clinician's page at the top of the About box, written from the bundle's own figures; and the
clinic's details in Settings, which the patient report prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.inference.bundle import EVALUATION_BEGIN, EVALUATION_END, default_bundle_path, load_bundle
from core.records.card_figures import population_from_metadata
from core.records.clinician_page import (
    card_test_sets,
    clinician_page,
    one_in,
    training_sources,
)

DEFAULT = default_bundle_path()
HAM_METADATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dermoscopy" / "HAM10000_metadata.csv"

CARD = f"""# A bundle

Trained on two sites, mostly fair skin.

| set | images | flagged |
| --- | --- | --- |
| not dermoscopy (40) | 40 | 90.0% |

{EVALUATION_BEGIN}
- homeset: Homeset test split, the held-out lesions
- faraway: Faraway clinic, every image (another clinic and dermoscope)

|  | homeset | faraway |
| --- | --- | --- |
| images (melanomas / all malignant) | 1000 ( 100 / 200 ) | 500 (160 / 180) |
| melanoma AUC (95% CI) | 0.912 (0.89-0.93) | 0.688 (0.64-0.73) |
| gate 0.97 (default): melanomas auto-cleared | 1.0% (1) | 2.5% (4) |
| gate 0.97 (default): benign lesions cleared | 50.0% (400) | 10.0% (32) |
| gate 0.9: melanomas auto-cleared | 9.0% (9) | 20.0% (32) |
{EVALUATION_END}
"""


class _Gate:
    default_confidence = 0.97


class _Manifest:
    name = "Test bundle"
    version = "1.0"
    gate = _Gate()
    provenance = {"data": {"dataset": "Homeset", "extra_sources": [{"name": "Elsewhere"}]}}


def test_figures_are_read_from_the_card_and_put_in_words():
    sets = card_test_sets(CARD, 0.97)
    far = sets["faraway"]
    assert (far.name, far.images, far.melanomas, far.malignant, far.benign) == ("Faraway clinic", 500, 160, 180, 320)
    assert (far.melanomas_cleared, far.benign_cleared, far.melanoma_auc) == (4, 32, 0.688)
    assert training_sources(_Manifest.provenance) == ["Homeset", "Elsewhere"]
    page = clinician_page(_Manifest(), CARD)
    text = page.markdown()
    assert "On pictures from a clinic it has never seen (Faraway clinic, 500 pictures)" in text
    assert "it missed about 1 in 40 melanomas (4 of 160) and cleared about 1 in 10 benign lesions (32 of 320)" in text
    assert "On 1000 pictures from Homeset that it had not seen, at the default setting (confidence 0.97)" in text
    assert "AUC 0.69, against 0.91 on familiar pictures" in text
    assert "the model card says mostly fair skin" in text and "caught 36 of 40" in text
    assert "not for clinical (non-dermoscopic) photographs" in text
    assert page.missing == ("ages and sexes of the training pictures (a `population` record in the provenance)",)
    assert 150 < len(text.split()) < 360  # about half a page


def test_what_the_bundle_does_not_carry_is_said_not_invented():
    class Bare(_Manifest):
        provenance = {}

    page = clinician_page(Bare(), "# A card without figures\n")
    text = page.markdown()
    assert "Good at" not in text and "Less good at" not in text and "1 in" not in text
    assert "Not known from this bundle:** which data sets it learned from; how it did on pictures" in text
    for lacking in ("training data sets", "test-set figures", "ages and sexes", "skin types"):
        assert any(lacking in m for m in page.missing), lacking
    recorded = clinician_page(
        _with_provenance(
            {"data": {"dataset": "Homeset", "population": {"age_median": 50, "age_range": [5, 85], "sex": {"F": 3}}}}
        ),
        CARD,
    ).markdown()
    assert "median 50 years, from 5 to 85" in recorded and "F 100%" in recorded


def _with_provenance(provenance):
    m = _Manifest()
    m.provenance = provenance
    return m


def test_one_in_words():
    assert one_in(3, 252) == "about 1 in 80"
    assert one_in(84, 717) == "about 1 in 9"
    assert one_in(0, 168) == "none of 168"
    assert one_in(575, 1184) == "about half of the"


@pytest.mark.skipif(not (DEFAULT / "model_card.md").is_file(), reason="the default bundle is not installed")
def test_the_default_bundle_page_gives_its_external_clinic_figures():
    bundle = load_bundle(DEFAULT)
    sets = card_test_sets(bundle.model_card, bundle.manifest.gate.default_confidence)
    assert "derm7pt" in sets  # the clinic none of its members saw
    d7 = sets["derm7pt"]
    text = clinician_page(bundle.manifest, bundle.model_card).markdown()
    expected = f"it missed {one_in(d7.melanomas_cleared, d7.melanomas)} melanomas ({d7.melanomas_cleared} of"
    assert "a clinic it has never seen (Derm7pt" in text and expected in text
    assert "Learned from:** HAM10000, ISIC 2017." in text


@pytest.mark.skipif(not HAM_METADATA.is_file(), reason="needs ../shared HAM10000 metadata")
def test_population_summary_from_metadata():
    pop = population_from_metadata(HAM_METADATA)
    assert pop["images"] == 10015 and pop["age_known"] > 9900
    assert 0 <= pop["age_range"][0] <= pop["age_quartiles"][0] <= pop["age_median"] <= pop["age_quartiles"][1]
    assert set(pop["sex"]) >= {"male", "female"} and "back" in pop["sites"]


def test_about_box_opens_on_the_clinicians_page(qtbot, synthetic_bundle):
    from desktop.dialogs import AboutDialog

    d = AboutDialog(load_bundle(synthetic_bundle), True, "CPU", "", None)
    qtbot.addWidget(d)
    text = d.clinician.toPlainText()
    assert text.startswith("For clinicians: synthetic-test-bundle")
    assert "not for clinical (non-dermoscopic) photographs" in text and "Not known from this bundle:" in text
    layout = d.layout()
    assert layout.indexOf(d.clinician) < layout.indexOf(d.tabs)  # above the engineers' tabs


def test_settings_keep_the_clinic_for_the_report(qtbot):
    from core.records.clinic import Clinic, load_clinic
    from desktop.settings import AppSettings
    from desktop.settings_dialog import SettingsDialog

    d = SettingsDialog(AppSettings())
    qtbot.addWidget(d)
    with qtbot.waitSignal(d.clinic_loaded, timeout=10_000):  # read on a worker
        pass
    d.clinic_name.setText("Example Skin Clinic")
    d.clinic_address.setPlainText("1 High Street\nTown")
    d.clinic_phone.setText("0123 456")
    with qtbot.waitSignal(d.accepted, timeout=10_000):  # saved on a worker, then the dialog closes
        d.accept()
    assert load_clinic() == Clinic("Example Skin Clinic", "1 High Street\nTown", "0123 456")
    again = SettingsDialog(AppSettings())
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.clinic_loaded, timeout=10_000):
        pass
    assert again.clinic_name.text() == "Example Skin Clinic" and again.clinic_phone.text() == "0123 456"
