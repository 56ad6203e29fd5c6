"""The cascade (core/decision/cascade.py): stage 1 stops exactly when the manifest's margins say so; the images it
does not settle get the whole ensemble, bit for bit what a run without the cascade gives; bad margins are refused; the
command line says whether the cascade runs."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.common.errors import BundleError
from core.decision.cascade import ESCALATED, STOP_NOTE, STOPPED, CascadeMargins, StopMargins
from core.decision.gate import GateSettings, Thresholds
from core.imaging.model_input import InputSpec, model_input_from_file
from core.inference.bundle import load_bundle
from core.inference.ensemble import EnsembleSettings
from core.inference.manifest import Manifest
from core.records.report import cascade_word
from core.screening import GateChoice, RunSettings, Screener, cascade_status
from tests.support.image_folders import make_folder
from tests.support.synthetic_bundle import make_bundle

ORT = EnsembleSettings(provider="cpu")
VIEWS = ("id", "flip", "rot90", "zoom")
STAGE1_MEMBERS, STAGE1_VIEWS = (1,), ("id", "flip")
ON = GateChoice(cascade=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = make_folder(tmp_path_factory.mktemp("cascade") / "images", 10, broken=False)
    return sorted(str(p) for p in folder.iterdir())


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """Three members, no cascade section."""
    return make_bundle(tmp_path_factory.mktemp("plain") / "b", members=3, tta_views=VIEWS)


def _stage1_p(bundle_dir, images):
    """Stage 1's p(malignant) and member spread of each image, from the part of the ensemble it names."""
    ens = Screener(load_bundle(bundle_dir), ORT).ensemble
    spec = InputSpec.from_manifest(ens.manifest)
    x = np.stack([model_input_from_file(p, spec) for p in images])
    preds = ens.to_predictions(ens.raw_outputs(ens.passes(x, False, STAGE1_MEMBERS, STAGE1_VIEWS)))
    return np.array([p.p_malignant for p in preds])


@pytest.fixture(scope="module")
def cascaded(tmp_path_factory, plain, images):
    """The same members with a cascade whose clear_below splits the images: about half stop after stage 1."""
    p1 = np.sort(_stage1_p(plain, images))
    cut = float((p1[4] + p1[5]) / 2)
    low = min(0.49, cut + 0.01)
    gate = GateSettings(fitted={0.99: Thresholds(low, 0.9)}, max_member_spread=0.5)
    margins = CascadeMargins(
        members=STAGE1_MEMBERS, views=STAGE1_VIEWS, max_spread=0.5, levels={0.99: StopMargins(cut, None)}
    )
    assert cut < 0.49, "the synthetic members give stage-1 p(malignant) this test can split"
    plain_gate = make_bundle(tmp_path_factory.mktemp("cascaded") / "b", members=3, tta_views=VIEWS, gate=gate)
    with_cascade = make_bundle(
        tmp_path_factory.mktemp("cascaded2") / "b", members=3, tta_views=VIEWS, gate=gate, cascade=margins
    )
    return plain_gate, with_cascade, cut


def test_stage1_stops_exactly_when_the_margins_say_so(cascaded, images):
    _, bundle_dir, cut = cascaded
    p1 = _stage1_p(bundle_dir, images)
    results = [Screener(load_bundle(bundle_dir), ORT).screen_image(p, ON)[0] for p in images]
    for r, p in zip(results, p1):
        quiet = not r.quality.flags
        expected = STOPPED if (quiet and p < cut) else ESCALATED
        assert r.cascade == expected, (r.path, p, cut, r.quality.flags)
        assert (STOP_NOTE in r.details) == (expected == STOPPED)
        assert cascade_word(replace(r, cascade="")) == ("stopped" if expected == STOPPED else "")
        if expected == STOPPED:  # stopped: cleared on stage 1's own numbers, which the result carries
            assert r.decision == "benign" and r.p_malignant == pytest.approx(p, abs=1e-6)
            assert len(r.member_p) == len(STAGE1_MEMBERS)
    assert {r.cascade for r in results} == {STOPPED, ESCALATED}


def test_stage1_stops_as_review_inside_its_intervals(tmp_path, plain, images):
    p1 = np.sort(_stage1_p(plain, images))
    lo, hi = float(p1[2]), float((p1[6] + p1[7]) / 2)  # images 2..6 fall inside [lo, hi)
    gate = GateSettings(fitted={0.99: Thresholds(min(lo, 0.45) / 2, 0.99)}, max_member_spread=0.5)
    margins = CascadeMargins(STAGE1_MEMBERS, STAGE1_VIEWS, 0.5, {0.99: StopMargins(0.0, None, ((lo, hi),))})
    bundle_dir = make_bundle(tmp_path / "b", members=3, tta_views=VIEWS, gate=gate, cascade=margins)
    p_stage1 = _stage1_p(bundle_dir, images)
    screener = Screener(load_bundle(bundle_dir), ORT)
    seen = set()
    for path, p in zip(images, p_stage1):
        r = screener.screen_image(path, ON)[0]
        stops = lo <= p < hi and not r.quality.flags
        assert r.cascade == (STOPPED if stops else ESCALATED)
        if stops:
            assert r.decision == "uncertain" and r.band == gate.fitted[0.99].band(float(p))
        seen.add(r.cascade)
    assert seen == {STOPPED, ESCALATED}


def test_escalated_images_get_todays_ensemble_bit_for_bit(cascaded, images):
    plain_dir, bundle_dir, _ = cascaded
    today = Screener(load_bundle(plain_dir), ORT)
    screener = Screener(load_bundle(bundle_dir), ORT)
    run = RunSettings(batch_images=4)
    with_cascade = [p.result for p in screener.screen(images, gate=ON, run=run)]
    off = [p.result for p in screener.screen(images, gate=GateChoice(cascade=False), run=run)]
    before = [p.result for p in today.screen(images, run=run)]
    escalated = 0
    for c, o, b in zip(with_cascade, off, before):
        assert o.cascade == "" and b.cascade == ""
        for r in (o, c) if c.cascade == ESCALATED else (o,):
            assert r.decision == b.decision and r.reason == b.reason and r.details == b.details
            assert r.p_melanoma == b.p_melanoma and r.member_p == b.member_p and r.class_probs == b.class_probs
            assert r.ood_score == b.ood_score and np.array_equal(r.cam, b.cam)
        escalated += c.cascade == ESCALATED
    assert 0 < escalated < len(images)


def test_the_heat_map_of_a_stopped_image_comes_from_stage_1(cascaded, images):
    _, bundle_dir, _ = cascaded
    screener = Screener(load_bundle(bundle_dir), ORT)
    ens = screener.ensemble
    spec = InputSpec.from_manifest(ens.manifest)
    for path in images:
        r = screener.screen_image(path, ON)[0]
        if r.cascade != STOPPED:
            continue
        x = model_input_from_file(path, spec)[None]
        raw = ens.raw_outputs(ens.passes(x, True, STAGE1_MEMBERS, STAGE1_VIEWS))
        expected = ens.to_predictions(raw, [(r.height, r.width)])[0].cam
        assert np.allclose(r.cam, expected, atol=1e-5)
        return
    pytest.fail("no image stopped after stage 1")


def test_complete_reuses_stage_1_and_equals_the_whole_ensemble(plain, images):
    ens = Screener(load_bundle(plain), ORT).ensemble
    spec = InputSpec.from_manifest(ens.manifest)
    x = np.stack([model_input_from_file(p, spec) for p in images[:3]])
    whole = ens.passes(x, True)
    first = ens.passes(x, True, STAGE1_MEMBERS, STAGE1_VIEWS)
    done = ens.complete(x, first, True)
    assert done.members == whole.members and done.views == whole.views
    assert np.allclose(done.logits, whole.logits, atol=1e-5)
    assert np.allclose(done.class_cams, whole.class_cams, atol=1e-5)
    # stage 1's passes are in the result as they were, not run again
    assert np.array_equal(done.logits[1][:, :2], first.logits[0])


def test_without_margins_the_whole_ensemble_runs_and_says_so(plain, images):
    bundle = load_bundle(plain)
    r = Screener(bundle, ORT).screen_image(images[0], ON)[0]
    assert r.cascade == "" and STOP_NOTE not in r.details
    assert "no cascade margins" in cascade_status(bundle, ON)
    assert "cascade off" in cascade_status(bundle, GateChoice(cascade=False))


def test_margins_at_another_confidence_run_the_whole_ensemble(cascaded, images):
    _, bundle_dir, _ = cascaded
    bundle = load_bundle(bundle_dir)
    gate = GateChoice(confidence=0.95, cascade=True)
    assert "at this confidence" in cascade_status(bundle, gate)
    assert all(Screener(bundle, ORT).screen_image(p, gate)[0].cascade == "" for p in images[:3])
    assert cascade_status(bundle, ON).startswith("cascade on: stage 1 runs 1 of 3 members x 2 of 4 views")


def test_the_result_key_tells_a_cascade_run_from_a_full_one(cascaded):
    _, bundle_dir, _ = cascaded
    s = Screener(load_bundle(bundle_dir), ORT)
    assert s.result_key(ON) != s.result_key(GateChoice(cascade=False))
    assert s.result_key(GateChoice(confidence=0.95, cascade=True)) == s.result_key(GateChoice(confidence=0.95))


def _manifest_with(bundle_dir: Path, cascade) -> dict:
    d = json.loads((bundle_dir / "manifest.json").read_text())
    d["cascade"] = cascade
    return d


GOOD = {"members": [1], "views": ["id", "flip"], "max_spread": 0.2, "levels": {"0.99": {"clear_below": 0.1}}}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"levels": {"0.99": {"clear_below": 0.3}}}, "above the gate's low"),
        ({"levels": {"0.99": {"clear_below": 0.1, "suspicious_from": 0.5}}}, "below the gate's high"),
        ({"levels": {"0.95": {"clear_below": 0.1}}}, "no fitted thresholds"),
        ({"levels": {"0.99": {"clear_below": float("nan")}}}, "finite number"),
        ({"levels": {"0.99": {"clear_below": True}}}, "must be a number"),
        ({"members": [5]}, "beyond the bundle's 3"),
        ({"members": [1, 1]}, "distinct member indices"),
        ({"views": ["id", "rot180"]}, "not among the bundle's tta_views"),
        ({"views": ["flip", "id"]}, "order"),
        ({"max_spread": 0.9}, "above the gate's member spread limit"),
        ({"max_spred": 0.1}, "unknown key"),
        ({"levels": {"0.99": {"clear_below": 0.1, "review": [[0.1, 0.7]]}}}, "not inside the gate's review range"),
        ({"levels": {"0.99": {"clear_below": 0.1, "review": [[0.4, 0.3]]}}}, "from < to"),
        ({"levels": {"0.99": {"clear_below": 0.1, "review": [[0.3]]}}}, "pair"),
    ],
)
def test_the_schema_refuses_bad_margins(plain, change, words):
    bad = {**GOOD, **change}
    with pytest.raises(BundleError, match=words):
        Manifest.from_dict(_manifest_with(plain, bad))


def test_good_margins_round_trip(plain):
    m = Manifest.from_dict(_manifest_with(plain, GOOD))
    assert m.cascade is not None and m.cascade.margins(0.99) == StopMargins(0.1, None)
    with_review = {**GOOD, "levels": {"0.99": {"clear_below": 0.1, "review": [[0.25, 0.5]]}}}
    m = Manifest.from_dict(_manifest_with(plain, with_review))
    assert m.cascade.margins(0.99).review == ((0.25, 0.5),)
    assert Manifest.from_dict(m.to_dict()).cascade == m.cascade


def test_an_intake_check_needs_the_id_view_and_a_score_margin(plain):
    intake = {"threshold": 3.0, "clear_threshold": 6.0}
    d = _manifest_with(plain, GOOD)
    d["ood"] = intake
    with pytest.raises(BundleError, match="max_intake_score is required"):
        Manifest.from_dict(d)
    d["cascade"] = {**GOOD, "max_intake_score": 4.0}
    with pytest.raises(BundleError, match="above the intake check's threshold"):
        Manifest.from_dict(d)
    d["cascade"] = {**GOOD, "views": ["flip"], "max_intake_score": 2.0}
    with pytest.raises(BundleError, match="must include 'id'"):
        Manifest.from_dict(d)
    d["cascade"] = {**GOOD, "max_intake_score": 2.0}
    assert Manifest.from_dict(d).cascade.max_intake_score == 2.0


def test_cli_flag_says_whether_the_cascade_runs(cascaded, images, tmp_path):
    _, bundle_dir, _ = cascaded
    folder = Path(images[0]).parent
    for flag, words in (("on", "cascade on: stage 1 runs"), ("off", "cascade off")):
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "screen", str(folder), "--bundle", str(bundle_dir), "--cascade", flag,
             "--db", str(tmp_path / f"{flag}.db"), "--report", str(tmp_path / f"{flag}.csv"), "--provider", "cpu"],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert words in out.stderr
        rows = (tmp_path / f"{flag}.csv").read_text().splitlines()
        column = rows[0].split(",").index("cascade")
        cells = {row.split(",")[column] for row in rows[1:]}
        assert cells == ({"stopped", "full"} if flag == "on" else {""})


def test_a_cascade_run_is_not_re_decided_at_another_confidence(cascaded, images, tmp_path):
    from core.records.store import ReviewStore
    from core.screening import RegateError, regate_run, screen_folder

    _, bundle_dir, _ = cascaded
    bundle = load_bundle(bundle_dir)
    with ReviewStore.open(tmp_path / "r.db") as store:
        _, summary = screen_folder(Screener(bundle, ORT), Path(images[0]).parent, store, gate=ON)
        with pytest.raises(RegateError, match="screened with the cascade"):
            regate_run(bundle, store, summary.run_id, GateChoice(0.95))


def test_margins_fitted_for_another_manifest_are_not_used(tmp_path, images):
    from core.decision.cascade import fingerprint

    gate = GateSettings(fitted={0.99: Thresholds(0.3, 0.9)}, max_member_spread=0.5)
    stale = CascadeMargins(STAGE1_MEMBERS, STAGE1_VIEWS, 0.5, {0.99: StopMargins(0.3)}, fitted_for="0" * 64)
    bundle = load_bundle(make_bundle(tmp_path / "stale", members=3, tta_views=VIEWS, gate=gate, cascade=stale))
    assert "fitted for other members or another gate" in cascade_status(bundle, ON)
    assert Screener(bundle, ORT).screen_image(images[0], ON)[0].cascade == ""
    # the same margins stamped with this manifest's fingerprint are used; a re-fitted gate changes it
    fresh = replace(stale, fitted_for=fingerprint(bundle.manifest))
    assert fresh.applies_to(bundle.manifest)
    refit = replace(bundle.manifest, gate=GateSettings(fitted={0.99: Thresholds(0.25, 0.9)}, max_member_spread=0.5))
    assert not fresh.applies_to(refit)
