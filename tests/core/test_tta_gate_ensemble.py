import numpy as np
import pytest

from core.common.errors import ProviderError
from core.decision.gate import GateSettings, Thresholds, decide
from core.decision.results import Decision, Prediction, QualityReport
from core.imaging.tta import VIEWS, apply_view, invert_view
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble, EnsembleSettings


@pytest.mark.parametrize("view", sorted(VIEWS - {"zoom"}))
def test_each_view_inverts_exactly(view):
    rng = np.random.default_rng(0)
    img = rng.random((1, 16, 16)).astype(np.float32)
    back, weight = invert_view(view, apply_view(view, img)[0])
    assert np.array_equal(back, img[0]) and weight.min() == 1.0


def test_zoom_maps_back_to_the_centre():
    size = 40
    heat = np.zeros((size, size), np.float32)
    heat[20, 20] = 1.0  # centre of the zoomed view is the centre of the image
    back, weight = invert_view("zoom", heat)
    assert weight[0, 0] == 0 and weight[20, 20] == 1
    assert np.unravel_index(back.argmax(), back.shape) in {(20, 20), (19, 19), (19, 20), (20, 19)}


def _pred(p, spread=0.0):
    return Prediction(p_melanoma=p, member_p=(p,), spread=spread, class_probs={})


def test_gate_three_outcomes_and_reasons():
    t = Thresholds(0.05, 0.8)
    assert decide(_pred(0.01), t).decision is Decision.NO_CANCER_SUSPECTED
    assert decide(_pred(0.9), t).decision is Decision.SUSPICIOUS
    mid = decide(_pred(0.3), t)
    assert mid.decision is Decision.REVIEW and "not ruled out" in mid.reason
    q = QualityReport(sharpness=1, brightness=10, dark_fraction=0.9, bright_fraction=0, flags=("underexposed",))
    low_q = decide(_pred(0.01), t, quality=q)
    assert low_q.decision is Decision.REVIEW and "image too dark" in low_q.reason
    assert decide(_pred(0.01, spread=0.4), t, max_member_spread=0.2).decision is Decision.REVIEW


def test_gate_settings_fitted_and_fallback():
    g = GateSettings(fitted={0.99: Thresholds(0.02, 0.9)})
    assert g.thresholds().low == 0.02
    fallback = g.thresholds(0.95)
    assert fallback.low == pytest.approx(0.05) and fallback.high == 0.95
    assert GateSettings.from_dict(g.to_dict()) == g
    with pytest.raises(ValueError):
        g.thresholds(0.3)


def test_ensemble_probabilities_are_calibrated_means(synthetic_bundle):
    b = load_bundle(synthetic_bundle)
    ens = Ensemble(b, EnsembleSettings(engine="onnxruntime", provider="cpu"))  # the reference engine
    assert ens.provider_in_use == "CPUExecutionProvider"
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.5, size=(3, 3, 64, 64)).astype(np.float32)
    x[0] = -1.0  # black image: the synthetic members call darkness melanoma
    preds = ens.predict(x, [(30, 50)] * 3)
    raw = ens.member_logits(x)
    assert raw.shape == (2, 3, 7)
    temps = np.array([m.temperature for m in b.manifest.members])
    z = raw / temps[:, None, None]
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    for i, p in enumerate(preds):
        assert p.p_melanoma == pytest.approx(probs[:, i, 4].mean(), abs=1e-5)
        assert p.spread == pytest.approx(probs[:, i, 4].std(), abs=1e-5)
        assert sum(p.class_probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.cam.shape == (30, 50) and 0 <= p.cam.min() and p.cam.max() <= 1.0 + 1e-6
    assert preds[0].p_melanoma > preds[1].p_melanoma


def test_heat_map_follows_the_dark_spot_through_tta(synthetic_bundle):
    ens = Ensemble(load_bundle(synthetic_bundle), EnsembleSettings(provider="cpu"))
    x = np.ones((1, 3, 64, 64), np.float32)
    x[:, :, 6:22, 40:58] = -1.0  # a dark patch top-right
    cam = ens.predict(x, [(64, 64)])[0].cam
    r, c = np.unravel_index(cam.argmax(), cam.shape)
    assert r < 32 and c > 32
    assert cam[6:22, 40:58].mean() > 3 * cam[40:, :24].mean()


def test_cuda_request_is_honoured_or_refused_never_silently_cpu(synthetic_bundle):
    import onnxruntime as ort

    bundle = load_bundle(synthetic_bundle)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert Ensemble(bundle, EnsembleSettings(provider="cuda")).provider_in_use == "CUDAExecutionProvider"
    else:
        with pytest.raises(ProviderError, match="CUDA"):
            Ensemble(bundle, EnsembleSettings(provider="cuda"))
    with pytest.raises(ProviderError, match="unknown provider"):
        Ensemble(bundle, EnsembleSettings(provider="tpu"))
