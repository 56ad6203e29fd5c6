"""The body-site vocabulary: sidecar words and DICOM codes onto one list of sites, unknown words said,
and the front/back figure with pins where the sites are."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from core.files.body_sites import (
    BACK,
    BACK_OFFSET,
    FIGURE_WIDTH,
    FRONT,
    REGIONS,
    BodySite,
    site_from_dicom,
    site_from_text,
    unknown_site_words,
    vocabulary,
)
from core.imaging.body_map import figure_svg, place_pins


@pytest.mark.parametrize(
    "written, label",
    [
        ("left forearm", "left forearm"),
        ("L forearm", "left forearm"),
        ("Lt. Forearm", "left forearm"),
        ("Forearm (left)", "left forearm"),  # core.files.dicom's form: CodeMeaning (laterality)
        ("forearm, right", "right forearm"),
        ("right shin", "right lower leg"),
        ("calf R", "right lower leg"),
        ("back", "back"),
        ("Upper back", "upper back"),
        ("lower back", "lower back"),
        ("scalp", "scalp"),
        ("cheek", "face"),
        ("upper extremity", "upper arm (side not recorded)"),  # HAM10000's localization words
        ("lower extremity", "thigh (side not recorded)"),
        ("acral", "sole (side not recorded)"),
        ("dorsal left hand", "left hand"),
        ("fingers", "hand (side not recorded)"),
        ("14975008 (left)", "left forearm"),  # a SNOMED code without its meaning
    ],
)
def test_sidecar_and_dicom_words_map_onto_the_vocabulary(written, label):
    match = site_from_text(written)
    assert match.site is not None and match.site.label == label
    assert not match.unknown and label.split(" (")[0] in vocabulary() + [r.key for r in REGIONS]


def test_unpaired_regions_take_no_side_and_unknown_words_are_reported():
    assert site_from_text("left knee").site == BodySite("knee", "left")
    assert site_from_text("upper back").site == BodySite("upper back")
    assert site_from_text("left chest").site.label == "left chest"  # one region; the side moves the pin
    middle = BodySite("chest").points()[0][1]
    assert BodySite("chest", "right").points()[0][1] < middle < BodySite("chest", "left").points()[0][1]
    assert BodySite("back", "left").points()[0][1] < BodySite("back").points()[0][1]  # seen from behind
    assert site_from_text("left genital area").site == BodySite("genital area")  # no side there
    assert site_from_text("elbow pit of the moon").site == BodySite("upper arm")  # "elbow" is read, the rest ignored
    gibberish = site_from_text("zygomorphic")
    assert gibberish.site is None and gibberish.unknown
    for not_recorded in ("", "unknown", None, " n/a "):
        m = site_from_text(not_recorded)
        assert m.site is None and not m.unknown
    assert unknown_site_words(["back", "zzz", "unknown", "zzz", "left ear", "qqq"]) == ["zzz", "qqq"]


def test_dicom_region_codes_with_laterality():
    assert site_from_dicom("14975008", None, "L").site.label == "left forearm"
    assert site_from_dicom("77568009", "Back", "U").site.label == "back"
    assert site_from_dicom(None, "Lower leg", "R").site.label == "right lower leg"
    assert site_from_dicom("999999", "Nowhere", "L").unknown


def test_sides_are_mirrored_as_a_clinician_reads_the_figure():
    # front view: the patient's left is on the viewer's right; back view: on the viewer's left
    left = dict((v, x) for v, x, _ in BodySite("forearm", "left").points())
    right = dict((v, x) for v, x, _ in BodySite("forearm", "right").points())
    assert left[FRONT] > FIGURE_WIDTH / 2 > right[FRONT]
    assert left[BACK] - BACK_OFFSET < FIGURE_WIDTH / 2 < right[BACK] - BACK_OFFSET
    assert [v for v, _, _ in BodySite("back").points()] == [BACK]
    assert [v for v, _, _ in BodySite("chest").points()] == [FRONT]


def test_pins_are_placed_fanned_out_and_the_svg_is_well_formed():
    items = [
        ("left forearm", "#c62828", 11, "L1"),
        ("Forearm (left)", "#2e7d32", 12, "L2"),  # the same place: fanned out, both visible
        ("nowhere at all", "#000000", 13, "L3"),
        ("", "#000000", 14, "L4"),
        ("back", "#f9a825", 15, "L5"),
    ]
    pins, off = place_pins(items)
    assert off == [3, 4]
    assert {p.key for p in pins} == {11, 12, 15}
    front = [(p.x, p.y) for p in pins if p.view == FRONT]
    assert len(front) == 2 and front[0] != front[1]
    svg = figure_svg(pins, width=300)
    root = ET.fromstring(svg)  # parses: a valid SVG document
    assert root.get("width") == "300"
    circles = [e for e in root.iter() if e.tag.endswith("circle")]
    assert len(circles) == len(pins)
    texts = "".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))
    assert "Front" in texts and "Back" in texts


def test_sidecar_words_outside_the_vocabulary_are_reported_once_and_kept(tmp_path):
    from core.files.sidecar import read_sidecar

    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\n"
        "a.png,P1,L1,behind the moon,2024-01-10\n"
        "b.png,P1,L1,behind the moon,2024-07-10\n"
        "c.png,P1,L2,Lt. forearm,2024-07-10\n"
    )
    identities, issues = read_sidecar(tmp_path / "melascreen.csv", tmp_path)
    assert len(identities) == 3  # every row is used
    assert sorted(i.body_site for i in identities.values()) == ["Lt. forearm", "behind the moon", "behind the moon"]
    assert len(issues) == 1 and issues[0].row == 2
    assert "'behind the moon' is not in MelaScreen's list of body sites" in issues[0].message
