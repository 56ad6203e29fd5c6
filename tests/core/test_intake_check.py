"""The intake check (issue 15): an image unlike the training images is never cleared and never called
suspicious on the models' word alone; it goes to review with the reason in words. A bundle without the
check behaves as before and says so."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.common.errors import BundleError
from core.decision.gate import GateSettings, Thresholds, decide
from core.decision.intake_check import OOD_OUTPUT, IntakeCheck, IntakeFinding, assess
from core.decision.results import Decision, Prediction, QualityReport
from core.decision.vocabulary import NO_INTAKE_CHECK, NOT_DERMOSCOPY_REASON, UNFAMILIAR_REASON
from core.imaging.model_input import InputSpec, model_input
from core.inference import engines
from core.inference.bundle import load_bundle, write_bundle
from core.inference.engines import PROBE_TOLERANCE, open_members, probe_difference, probe_input
from core.inference.ensemble import Ensemble, EnsembleSettings
from core.records.html_report import report_html
from core.records.store import ReviewStore
from core.screening import Screener, screen_folder
from tests.support.cli_calls import read_csv, run_cli
from tests.support.intake_bundle import NOT_DERMOSCOPY_KINDS, make_intake_bundle, not_dermoscopy, skin_like, write_rgb
from tests.support.synthetic_bundle import TEST_SIGNING_KEY, make_bundle

HAVE_OPENVINO = engines.openvino_version() is not None
ORT = EnsembleSettings(engine="onnxruntime", provider="cpu")


def _gate(low: float, high: float) -> GateSettings:
    return GateSettings(fitted={0.99: Thresholds(low, high)}, max_member_spread=0.5)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """(with the check, the same models without it), both with a gate that would clear every image."""
    root = tmp_path_factory.mktemp("intake")
    # Every synthetic image scores p(malignant) about 0.4: this gate would clear them all without the check.
    with_check = make_intake_bundle(root / "with-check", gate=_gate(0.49, 0.9))
    return with_check, root / "with-check-plain"  # make_intake_bundle left the plain bundle beside it


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    f = tmp_path_factory.mktemp("mixed")
    for i in range(3):
        write_rgb(f / f"lesion_{i}.png", skin_like(9000 + i))
    for kind in NOT_DERMOSCOPY_KINDS:
        write_rgb(f / f"{kind}.png", not_dermoscopy(kind))
    return f


def _pred(p: float, members=(0.5,)) -> Prediction:
    return Prediction(
        p_melanoma=p,
        member_p=(p,),
        spread=0.0,
        class_probs={"nv": 1 - p, "mel": p},
        p_malignant=p,
        likely_class="nv" if p < 0.5 else "mel",
        malignant_class="mel",
        member_p_malignant=tuple(members),
    )


# -- the gate -----------------------------------------------------------------------------------


BANDED = Thresholds(low=0.03, high=0.8, moderate_from=0.1, high_risk_from=0.4)
CHECK = IntakeCheck(threshold=2.0, clear_threshold=6.0, fitted_on="test")


def test_assess_levels_and_a_broken_score_is_never_familiar():
    assert assess(1.0, CHECK).level == "familiar" and not assess(1.0, CHECK).flagged
    assert assess(3.0, CHECK).level == "unfamiliar" and assess(3.0, CHECK).reason == UNFAMILIAR_REASON
    assert assess(60.0, CHECK).level == "not_dermoscopy" and assess(60.0, CHECK).reason == NOT_DERMOSCOPY_REASON
    assert assess(math.nan, CHECK).level == assess(math.inf, CHECK).level == "unfamiliar"


@pytest.mark.parametrize("p", [0.001, 0.2, 0.5, 0.99])
@pytest.mark.parametrize("level", ["unfamiliar", "not_dermoscopy"])
def test_a_flagged_image_is_review_whatever_its_probability(p, level):
    finding = IntakeFinding(score=9.0 if level == "not_dermoscopy" else 3.0, level=level)
    out = decide(_pred(p, (p, p)), BANDED, intake=finding, intake_check=CHECK)
    assert out.decision is Decision.REVIEW  # never cleared, never auto-suspicious
    assert out.reason.startswith(finding.reason)
    # The worklist order follows p(malignant); a picture that is no dermoscopy image has no risk band.
    assert out.band == (None if level == "not_dermoscopy" else BANDED.band(p))
    assert f"intake score {finding.score:.3g}" in out.details and "unfamiliar above 2" in out.details


def test_a_familiar_image_is_decided_as_before_with_the_score_in_the_details():
    for p in (0.01, 0.2, 0.95):
        before = decide(_pred(p, (p, p)), BANDED)
        after = decide(_pred(p, (p, p)), BANDED, intake=IntakeFinding(0.8, "familiar"), intake_check=CHECK)
        assert (after.decision, after.reason, after.band) == (before.decision, before.reason, before.band)
        assert after.details.startswith(before.details)
        assert "intake score 0.8 (like the training images" in after.details


def test_order_not_dermoscopy_then_quality_then_unfamiliar_then_disagreement():
    blurred = QualityReport(10.0, 120.0, 0.0, 0.0, ("blurred",))
    far, odd = IntakeFinding(50.0, "not_dermoscopy"), IntakeFinding(3.0, "unfamiliar")
    disagree = _pred(0.01, (0.0, 0.9))
    assert decide(disagree, BANDED, blurred, intake=far).reason == f"{NOT_DERMOSCOPY_REASON}; image blurred"
    assert decide(disagree, BANDED, blurred, intake=odd).reason == f"image blurred; {UNFAMILIAR_REASON}"
    assert decide(disagree, BANDED, intake=odd).reason.startswith(UNFAMILIAR_REASON)
    assert decide(disagree, BANDED, intake=IntakeFinding(1.0, "familiar")).reason.startswith("the models disagree")


# -- screening ------------------------------------------------------------------------------------


def test_screening_flags_non_dermoscopy_images_and_never_clears_them(bundles, folder, tmp_path):
    with_check, plain = bundles
    screener = Screener(load_bundle(with_check), ORT)
    assert screener.ensemble.has_intake_check
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        results, summary = screen_folder(screener, folder, store)
        stored = {Path(r.path).name: r for r in store.run_results(summary.run_id, with_cam=False)}
    by_name = {Path(r.path).name: r for r in results}
    assert summary.intake_flagged == len(NOT_DERMOSCOPY_KINDS)
    for kind in NOT_DERMOSCOPY_KINDS:
        r = by_name[f"{kind}.png"]
        assert r.decision is Decision.REVIEW and r.intake == "not_dermoscopy"
        assert r.reason.startswith("does not look like a dermoscopy image of skin")
        assert r.ood_score > load_bundle(with_check).manifest.ood.clear_threshold
        assert "intake score" in r.details
        assert stored[f"{kind}.png"].intake == "not_dermoscopy"
        assert stored[f"{kind}.png"].ood_score == pytest.approx(r.ood_score)
    for i in range(3):
        r = by_name[f"lesion_{i}.png"]
        assert r.decision is Decision.NO_CANCER_SUSPECTED and r.intake == "familiar" and r.ood_score < 5
        assert stored[f"lesion_{i}.png"].intake == "familiar"

    # The same models without the check: decided as before (cleared by this gate unless a quality flag
    # stops it), no score, no level; so without the check, non-dermoscopy images would be cleared.
    old = Screener(load_bundle(plain), ORT)
    assert not old.ensemble.has_intake_check
    cleared = set()
    for name, r in by_name.items():
        before, _ = old.screen_image(r.path)
        assert before.ood_score is None and before.intake is None and "intake" not in before.details
        assert before.decision is (Decision.REVIEW if before.quality.flags else Decision.NO_CANCER_SUSPECTED)
        assert before.p_malignant == pytest.approx(r.p_malignant, abs=1e-6)  # the models are unchanged
        cleared |= {name} if before.decision is Decision.NO_CANCER_SUSPECTED else set()
    assert {"noise.png", "checkerboard.png"} <= cleared


def test_a_flagged_image_is_never_auto_suspicious(tmp_path, folder):
    bundle = make_intake_bundle(tmp_path / "suspicious-gate", gate=_gate(0.01, 0.3))
    screener = Screener(load_bundle(bundle), ORT)
    lesion, _ = screener.screen_image(folder / "lesion_0.png")
    text, _ = screener.screen_image(folder / "text.png")
    assert lesion.decision is Decision.SUSPICIOUS and lesion.intake == "familiar"
    assert text.decision is Decision.REVIEW and text.reason.startswith(NOT_DERMOSCOPY_REASON)


def test_the_score_is_the_id_view_or_the_mean_over_views_without_one(bundles, tmp_path):
    with_check, _ = bundles
    ens = Ensemble(load_bundle(with_check), ORT)
    spec = InputSpec.from_manifest(ens.manifest)
    x = np.stack([model_input(skin_like(1), spec), model_input(not_dermoscopy("noise"), spec)]).astype(np.float32)
    raw = ens.run(x, with_cam=False)
    assert raw.ood.shape == (2, 2)
    for j, member in enumerate(ens.members):
        np.testing.assert_allclose(raw.ood[j], member.run(x, (OOD_OUTPUT,))[OOD_OUTPUT], rtol=1e-5)
    preds = ens.to_predictions(raw)
    assert preds[0].ood_score == pytest.approx(float(raw.ood[:, 0].mean()))

    no_id = Ensemble(load_bundle(make_intake_bundle(tmp_path / "no-id", tta_views=("flip", "rot90"))), ORT)
    all_views = no_id._views_of(x)  # image-major: image i's views at i * V ... i * V + V - 1
    got = no_id.run(x, with_cam=False).ood
    for j, member in enumerate(no_id.members):
        per_view = member.run(all_views, (OOD_OUTPUT,))[OOD_OUTPUT].reshape(2, 2)
        np.testing.assert_allclose(got[j], per_view.mean(axis=1), rtol=1e-5)


def test_a_manifest_with_the_check_but_members_without_it_is_refused(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "inconsistent", ood=IntakeCheck(threshold=2.0, clear_threshold=5.0)))
    with pytest.raises(BundleError, match="intake check"):
        Ensemble(bundle, ORT)


def test_changing_the_intake_thresholds_changes_the_result_key(bundles, tmp_path):
    with_check, _ = bundles
    b = load_bundle(with_check)
    m = b.manifest
    files = {mem.file: b.member_path(mem) for mem in m.members}
    stricter = replace(m, ood=replace(m.ood, threshold=m.ood.threshold / 2))
    other = write_bundle(tmp_path / "stricter", stricter, files, b.model_card, sign_key=TEST_SIGNING_KEY)
    assert Screener(other, ORT).result_key() != Screener(b, ORT).result_key()


# -- engines ---------------------------------------------------------------------------------------


def test_the_probe_compares_the_intake_score_too(bundles):
    """A member that reproduces logits and heat maps but not the score must fail the probe."""
    with_check, _ = bundles
    ref, _ = open_members(load_bundle(with_check), "onnxruntime", "cpu")

    class OffScore:
        def __init__(self, member):
            self.member, self.output_names = member, member.output_names

        def run(self, batch, outputs):
            out = self.member.run(batch, outputs)
            if OOD_OUTPUT in out:
                out[OOD_OUTPUT] = out[OOD_OUTPUT] * 1.01 + 0.5
            return out

    x = probe_input(64)
    assert probe_difference(ref, ref, x) == 0.0
    assert probe_difference([OffScore(m) for m in ref], ref, x) > PROBE_TOLERANCE


@pytest.mark.skipif(not HAVE_OPENVINO, reason="the openvino package is not installed")
def test_openvino_gives_the_same_intake_score(bundles):
    with_check, _ = bundles
    bundle = load_bundle(with_check)
    ref, ov = Ensemble(bundle, ORT), Ensemble(bundle, EnsembleSettings(engine="openvino", provider="cpu", threads=1))
    assert ov.has_intake_check and OOD_OUTPUT in ov.members[0].output_names
    spec = InputSpec.from_manifest(bundle.manifest)
    images = [skin_like(3), *(not_dermoscopy(k) for k in NOT_DERMOSCOPY_KINDS)]
    x = np.stack([model_input(rgb, spec) for rgb in images]).astype(np.float32)
    a, b = ref.run(x, with_cam=False).ood, ov.run(x, with_cam=False).ood
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


# -- command line and report -----------------------------------------------------------------------


def test_cli_csv_and_bundle_info_say_it_in_words(bundles, folder, tmp_path):
    with_check, plain = bundles
    report = tmp_path / "report.csv"
    out = run_cli(
        "screen",
        folder,
        "--bundle",
        with_check,
        "--db",
        tmp_path / "r.sqlite",
        "--report",
        report,
        "--engine",
        "onnxruntime",
        env_home=tmp_path / "home",
    )
    assert f"{len(NOT_DERMOSCOPY_KINDS)} unlike the training images" in out.stdout
    rows = {Path(r["path"]).name: r for r in read_csv(report)}
    for kind in NOT_DERMOSCOPY_KINDS:
        row = rows[f"{kind}.png"]
        # Never cleared: held for review, or (issue 26 work under way) its own "not a dermoscopy image" outcome.
        assert row["outcome"] in ("review", "not a dermoscopy image: check the file")
        assert row["intake"] == "not_dermoscopy"
        assert "does not look like a dermoscopy image of skin" in row["reason"] and float(row["ood_score"]) > 5
    for i in range(3):
        row = rows[f"lesion_{i}.png"]
        assert row["outcome"] == "no cancer suspected" and row["intake"] == "familiar" and row["ood_score"]

    info = run_cli("bundle", "info", with_check).stdout
    assert "intake check (mahalanobis): unfamiliar above" in info and "fitted on 40 synthetic" in info
    assert NO_INTAKE_CHECK in run_cli("bundle", "info", plain).stdout


def test_html_report_shows_the_reason_and_the_score(bundles, folder):
    with_check, _ = bundles
    result, _ = Screener(load_bundle(with_check), ORT).screen_image(folder / "flat.png")
    page = report_html([result], with_heatmaps=False)
    assert "does not look like a dermoscopy image of skin" in page
    assert f"intake check: not a dermoscopy image, score {result.ood_score:.3g}" in page


def test_add_intake_check_keeps_logits_and_heat_maps(bundles):
    """The check adds an output; it changes nothing the models already said."""
    with_check, plain = bundles
    x = probe_input(64)
    new, old = (open_members(load_bundle(b), "onnxruntime", "cpu")[0] for b in (with_check, plain))
    for a, b in zip(new, old):
        got, want = a.run(x, ("logits", "cam")), b.run(x, ("logits", "cam"))
        np.testing.assert_array_equal(got["logits"], want["logits"])
        np.testing.assert_array_equal(got["cam"], want["cam"])
