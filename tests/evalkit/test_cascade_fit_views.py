"""A bundle with fewer TTA views scored from the saved per-view outputs of a run with more
(evalkit/cascade_views.py, evalkit/cascade_fit.py): the same numbers core computes for that bundle, and a
cascade fit whose stage 1 is always a part of that bundle's ensemble."""

import pickle

import numpy as np
import pytest

from core.decision.results import QualityReport
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble, EnsembleSettings
from evalkit.cascade_fit import Decider, Outputs, fit
from evalkit.cascade_views import average_views, load_quality, saved_views, view_index
from tests.support.synthetic_bundle import make_bundle

SAVED = ("id", "flip", "rot90", "zoom")  # the run that saved outputs
FEWER = ("id", "flip")  # the candidate's views: a subset


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    # same seeds -> the same members; only the views differ
    saved = make_bundle(root / "saved", members=3, tta_views=SAVED)
    return saved, make_bundle(root / "fewer", members=3, tta_views=FEWER)


@pytest.fixture(scope="module")
def saved_run(bundles):
    """What evalkit.view_outputs saves for 12 images: every member on every view, before temperature."""
    bundle = load_bundle(bundles[0])
    inputs = np.random.default_rng(3).standard_normal((12, 3, 64, 64)).astype(np.float32)
    passes = Ensemble(bundle, EnsembleSettings(engine="onnxruntime")).passes(inputs, with_cam=False)
    return inputs, passes.logits.transpose(1, 0, 2, 3)  # N x M x V x K


def test_average_views_takes_the_named_views_whatever_their_saved_order():
    logits = np.random.default_rng(0).standard_normal((5, 2, 4, 7))
    got = average_views(logits, SAVED, ("flip", "id"))
    assert np.allclose(got, logits[:, :, [0, 1]].mean(axis=2))
    assert np.allclose(average_views(logits, SAVED, ("zoom",)), logits[:, :, 3])


def test_a_view_that_was_not_saved_is_refused_by_name():
    with pytest.raises(ValueError, match="rot180"):
        view_index(SAVED, ("id", "rot180"))
    with pytest.raises(ValueError, match="hold 3 views, the run saved 4"):
        average_views(np.zeros((1, 1, 3, 7)), SAVED, ("id",))


def test_saved_views_come_from_the_runs_meta(tmp_path):
    assert saved_views(tmp_path) is None
    (tmp_path / "meta.json").write_text('{"views": ["id", "flip", "zoom"], "chunk": 16}')
    assert saved_views(tmp_path) == ("id", "flip", "zoom")


def test_quality_saved_before_core_moved_into_rooms_still_loads(tmp_path):
    reports = [QualityReport(120.0, 140.0, 0.01, 0.0, ("blurred",)), None]
    text = pickle.dumps(reports, protocol=0)
    assert b"core.decision.results" in text
    old = tmp_path / "chunk-0000.pkl"
    old.write_bytes(text.replace(b"core.decision.results", b"core.results"))  # the module's name until issue 27
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(old.read_bytes())
    assert load_quality(old) == reports


def _outputs(logits: np.ndarray) -> Outputs:
    n = len(logits)
    good = QualityReport(200.0, 120.0, 0.0, 0.0)
    return Outputs(
        ids=[f"img{i}" for i in range(n)],
        logits=logits,
        ood=None,
        statistics=np.zeros((n, 0), dtype=np.float32),
        quality=[good] * n,
        dx=["mel" if i % 3 == 0 else "nv" for i in range(n)],
        images_per_s=float("nan"),
    )


def test_a_bundle_with_fewer_views_is_decided_from_saved_outputs_as_core_decides_it(bundles, saved_run):
    inputs, logits = saved_run
    d = Decider(bundles[1], engine="onnxruntime", saved=SAVED)
    out = _outputs(logits)
    from_saved = d.predictions(out, (0, 1, 2), FEWER)
    # core, running the 2-view bundle itself on the same inputs
    own = Ensemble(load_bundle(bundles[1]), EnsembleSettings(engine="onnxruntime"))
    direct = own.to_predictions(own.run(inputs, with_cam=False))
    assert [p.p_malignant for p in from_saved] == pytest.approx([p.p_malignant for p in direct], abs=1e-5)
    assert [p.p_melanoma for p in from_saved] == pytest.approx([p.p_melanoma for p in direct], abs=1e-5)
    # and not what the 4-view bundle says (its temperatures are the same: only the views differ)
    four = Decider(bundles[0], engine="onnxruntime").predictions(out, (0, 1, 2), SAVED)
    assert not np.allclose([p.p_malignant for p in four], [p.p_malignant for p in direct], atol=1e-5)


def test_a_cascade_fit_for_fewer_views_offers_only_stage_1s_inside_them(bundles, saved_run):
    _, logits = saved_run
    d = Decider(bundles[1], engine="onnxruntime", saved=SAVED)
    result = fit(d, _outputs(logits), order=[1, 0, 2])
    shapes = {(len(c["margins"]["members"]), tuple(c["margins"]["views"])) for c in result["candidates"]}
    # member subsets 1, 2, 3 x the fixed view subsets inside (id, flip): (id) and (id, flip); never 4 views
    assert shapes == {(m, v) for m in (1, 2, 3) for v in (("id",), ("id", "flip"))}
    for c in result["candidates"]:
        passes = len(c["margins"]["members"]) * len(c["margins"]["views"])
        for level in c["levels"].values():
            # the full ensemble is 3 members x 2 views = 6 passes
            assert level["expected_passes"] == pytest.approx(passes + (1 - level["stop_rate"]) * (6 - passes), abs=0.01)
