"""Engines: OpenVINO reproduces the onnxruntime reference, `auto` picks it only then, and a requested
engine that cannot run is an error (the CLI exits 2), never a silent fallback."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.common.errors import EngineError, ProviderError
from core.inference import engines
from core.inference.bundle import load_bundle
from core.inference.engines import PROBE_TOLERANCE, open_members, probe_input
from core.inference.ensemble import Ensemble, EnsembleSettings

ROOT = Path(__file__).resolve().parents[2]
HAVE_OPENVINO = engines.openvino_version() is not None
needs_openvino = pytest.mark.skipif(not HAVE_OPENVINO, reason="the openvino package is not installed")


def _inputs(n=3, size=64):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.6, size=(n, 3, size, size)).astype(np.float32)
    x[0, :, 10:30, 20:50] = -1.0  # a dark patch: the synthetic members' melanoma signal
    return x


def test_onnxruntime_engine_is_the_reference_and_says_so(synthetic_bundle):
    ens = Ensemble(load_bundle(synthetic_bundle), EnsembleSettings(engine="onnxruntime", provider="cpu"))
    assert ens.engine.engine == "onnxruntime" and ens.provider_in_use == "CPUExecutionProvider"
    assert ens.engine_in_use.startswith("onnxruntime ") and ens.engine_in_use.endswith(" CPU f32")


@needs_openvino
def test_openvino_matches_onnxruntime_on_every_member_logits_and_cam(synthetic_bundle):
    bundle = load_bundle(synthetic_bundle)
    ref = Ensemble(bundle, EnsembleSettings(engine="onnxruntime", provider="cpu"))
    ov = Ensemble(bundle, EnsembleSettings(engine="openvino", provider="cpu", threads=1))
    assert ov.engine.engine == "openvino" and ov.engine.precision == "f32"
    assert ov.engine_in_use.startswith("OpenVINO ") and ov.engine_in_use.endswith(" CPU f32")
    assert ov.engine.probe_max_diff is not None and ov.engine.probe_max_diff <= PROBE_TOLERANCE
    x = _inputs()
    a, b = ref.run(x), ov.run(x)
    assert a.member_logits.shape == b.member_logits.shape == (2, 3, 7)
    np.testing.assert_allclose(b.member_logits, a.member_logits, atol=1e-4)
    np.testing.assert_allclose(b.cams, a.cams, atol=1e-4 * max(1.0, float(np.abs(a.cams).max())))
    pa, pb = ref.predict(x, [(40, 60)] * 3), ov.predict(x, [(40, 60)] * 3)
    for p, q in zip(pa, pb):
        assert q.p_melanoma == pytest.approx(p.p_melanoma, abs=1e-4)


@needs_openvino
def test_members_give_extra_outputs_by_name(synthetic_bundle):
    members, _ = open_members(load_bundle(synthetic_bundle), "openvino", "cpu")
    out = members[0].run(probe_input(64, 2), ("logits",))
    assert set(out) == {"logits"} and out["logits"].shape == (2, 7)
    assert {"logits", "cam"} <= set(members[0].output_names)


@needs_openvino
def test_auto_picks_openvino_when_it_reproduces_the_reference(synthetic_bundle):
    ens = Ensemble(load_bundle(synthetic_bundle), EnsembleSettings(engine="auto", provider="cpu"))
    assert ens.engine.engine == "openvino" and ens.engine.precision == "f32"


@needs_openvino
def test_an_openvino_that_drifts_is_refused_in_exact_mode_and_skipped_by_auto(synthetic_bundle, monkeypatch):
    real_run = engines.OpenVinoMember.run

    def drifting(self, batch, outputs=("logits", "cam")):  # an engine build that computes slightly wrong
        out = real_run(self, batch, outputs)
        out["logits"] = out["logits"] + 1e-3
        return out

    monkeypatch.setattr(engines.OpenVinoMember, "run", drifting)
    bundle = load_bundle(synthetic_bundle)
    with pytest.raises(EngineError, match="differs from the onnxruntime reference"):
        Ensemble(bundle, EnsembleSettings(engine="openvino", provider="cpu"))
    auto = Ensemble(bundle, EnsembleSettings(engine="auto", provider="cpu"))
    assert auto.engine.engine == "onnxruntime" and "differs" in auto.engine.note


@needs_openvino
def test_fast_precision_is_a_setting_and_reports_what_runs(synthetic_bundle):
    bundle = load_bundle(synthetic_bundle)
    fast = Ensemble(bundle, EnsembleSettings(engine="openvino", provider="cpu", precision="fast"))
    assert fast.engine.precision in ("bf16", "f32")
    if fast.engine.precision == "f32":  # this CPU has no bf16: said, not hidden
        assert "bf16" in fast.engine.note
    assert fast.engine_in_use.endswith(f" CPU {fast.engine.precision}")
    exact = Ensemble(bundle, EnsembleSettings(engine="auto", provider="cpu"))
    assert exact.engine.precision == "f32"  # auto never picks fast
    ref = Ensemble(bundle, EnsembleSettings(engine="onnxruntime", provider="cpu"))
    x = _inputs()
    np.testing.assert_allclose(fast.run(x).member_logits, ref.run(x).member_logits, atol=0.5)


def test_unknown_or_impossible_choices_are_errors(synthetic_bundle):
    bundle = load_bundle(synthetic_bundle)
    with pytest.raises(EngineError, match="unknown engine"):
        Ensemble(bundle, EnsembleSettings(engine="tensorrt"))
    with pytest.raises(EngineError, match="unknown precision"):
        Ensemble(bundle, EnsembleSettings(precision="int4"))
    with pytest.raises(ProviderError, match="unknown provider"):
        Ensemble(bundle, EnsembleSettings(engine="openvino", provider="tpu"))
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        with pytest.raises(EngineError, match="CPU"):
            Ensemble(bundle, EnsembleSettings(engine="openvino", provider="cuda"))


WITHOUT_OPENVINO = """
import sys
sys.modules["openvino"] = None  # as if the package were not installed: `import openvino` fails
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble, EnsembleSettings
from core.common.errors import EngineError
bundle = load_bundle(sys.argv[1])
try:
    Ensemble(bundle, EnsembleSettings(engine="openvino", provider="cpu"))
except EngineError as exc:
    print("refused:", exc)
auto = Ensemble(bundle, EnsembleSettings(engine="auto", provider="cpu"))
print("auto:", auto.engine_in_use, "|", auto.engine.note)
from cli.main import main
print("exit:", main(["screen", sys.argv[2], "--bundle", sys.argv[1], "--db", sys.argv[3], "--engine", "openvino"]))
"""


def test_without_openvino_a_request_for_it_exits_2_and_auto_runs_onnxruntime(synthetic_bundle, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rgb = np.full((120, 160, 3), 180, np.uint8)
    rgb[40:80, 60:110] = 60
    cv2.imwrite(str(folder / "lesion.png"), rgb)
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENVINO, str(synthetic_bundle), str(folder), str(tmp_path / "r.sqlite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if ":" in line}
    assert "not available" in lines["refused"] and "onnxruntime engine" in lines["refused"]
    assert lines["auto"].startswith("onnxruntime ") and "OpenVINO" in lines["auto"]
    assert lines["exit"] == "2"
    assert "error:" in proc.stderr and "OpenVINO engine is not available" in proc.stderr


def test_two_threads_sharing_an_ensemble_take_turns(synthetic_bundle):
    from concurrent.futures import ThreadPoolExecutor

    ens = Ensemble(load_bundle(synthetic_bundle), EnsembleSettings(provider="cpu"))
    x = _inputs()
    expected = ens.run(x).member_logits
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ens.run(x).member_logits, range(8)))
    for r in results:
        np.testing.assert_array_equal(r, expected)
