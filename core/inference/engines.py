"""Inference engines: one bundle member in, named outputs (`logits`, `cam`, later more) out.

Two implementations of one small interface (`MemberEngine.run(batch, outputs) -> {name: array}`):
onnxruntime (CPU or CUDA; the reference) and OpenVINO (CPU; read from the same ONNX bytes). `open_members`
builds one engine per member of a bundle for an engine choice:

- `onnxruntime` or `openvino`: that engine or an `EngineError`, never a silent fallback;
- `auto`: onnxruntime on CUDA when CUDA is there; otherwise OpenVINO when it is installed and reproduces
  onnxruntime on a probe input (every member, every output: logits, CAM, the intake score), else onnxruntime.

Precision `exact` is f32 and, for OpenVINO, checked against onnxruntime at load (within PROBE_TOLERANCE).
`fast` (bf16 where the CPU has it) is only ever a setting: it is checked loosely at load and its measured
agreement is reported in `EngineInfo`, never chosen by `auto`.

Both engines are built from the bytes `Bundle.read_member` read and checked against the verified SHA-256,
never from the path: a file swapped after the bundle was verified is refused, never run under the bundle's
identity. Before anything runs, every member is checked against its manifest on a probe input
(`check_against_manifest`): logits N x len(class_names), cam N x K x h x w, and the `ood` output when the
manifest declares the intake check; a mismatch is a BundleError naming the member file.

OpenVINO is imported lazily, so everything here works (onnxruntime only) when it is not installed.
An engine member is not thread-safe: one caller at a time (the screening pipeline runs it on one thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

from core.common.errors import BundleError, EngineError, ProviderError
from core.decision.intake_check import OOD_OUTPUT
from core.inference.bundle import INPUT_NAME, OUTPUT_NAMES, Bundle
from core.inference.engine_choices import ENGINES, PRECISIONS, PROVIDER_CHOICES

# Largest difference from onnxruntime allowed at load, relative to the output's scale (max(1, max |ref|)).
PROBE_TOLERANCE = 1e-4
# `fast` (bf16) is not expected to match to 1e-4 (measured 0.14 on logits); this only catches a broken model.
FAST_PROBE_TOLERANCE = 0.5
PROBE_IMAGES = 2


class MemberEngine(Protocol):
    """One bundle member, loaded once; `run` returns the requested outputs by name, batch first."""

    output_names: tuple[str, ...]

    def run(self, batch: np.ndarray, outputs: Sequence[str] = OUTPUT_NAMES) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class EngineInfo:
    """What really runs, as the app and the command line report it."""

    engine: str  # "onnxruntime" or "openvino"
    version: str
    provider: str  # onnxruntime's provider ("CPUExecutionProvider", "CUDAExecutionProvider") or OpenVINO's device
    precision: str  # "f32" or "bf16"
    probe_max_diff: float | None = None  # largest difference from onnxruntime on the probe input (OpenVINO only)
    note: str = ""  # why auto chose this engine, or why `fast` runs f32 here

    def describe(self) -> str:
        """e.g. "OpenVINO 2026.4.1 CPU f32" or "onnxruntime 1.32.0 CPU f32"."""
        name = "OpenVINO" if self.engine == "openvino" else "onnxruntime"
        device = self.provider.removesuffix("ExecutionProvider")
        return f"{name} {self.version} {device} {self.precision}"


# ------------------------------------------------------------------------------------ onnxruntime


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def provider_list(requested: str) -> list[str]:
    """onnxruntime providers for a provider setting (auto, cpu, cuda), most preferred first."""
    avail = available_providers()
    if requested == "cpu":
        return ["CPUExecutionProvider"]
    if requested == "cuda":
        if "CUDAExecutionProvider" not in avail:
            raise ProviderError(
                "CUDA was requested but this onnxruntime has no CUDA provider (available: "
                f"{', '.join(avail)}). Install the GPU build (extra 'gpu') or choose the CPU provider."
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if requested == "auto":
        if "CUDAExecutionProvider" in avail:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    raise ProviderError(
        f"unknown provider {requested!r}; use {', '.join(PROVIDER_CHOICES[:-1])} or {PROVIDER_CHOICES[-1]}"
    )


def _check_graph(inputs: list[str], outputs: list[str], shape: Sequence, input_size: int, path: str) -> None:
    if inputs != [INPUT_NAME] or any(n not in outputs for n in OUTPUT_NAMES):
        raise BundleError(
            f"model has inputs {inputs} and outputs {outputs}; a MelaScreen member needs input "
            f"'{INPUT_NAME}' and outputs {list(OUTPUT_NAMES)}",
            path,
        )
    if len(shape) != 4 or any(isinstance(d, int) and d != input_size for d in shape[2:]):
        raise BundleError(
            f"model input shape {list(shape)} does not match the manifest's input size {input_size}", path
        )


@dataclass(frozen=True)
class MemberModel:
    """One member's verified ONNX bytes and the file they came from (for messages)."""

    file: str
    data: bytes


def verified_models(bundle: Bundle) -> list[MemberModel]:
    """Every member's bytes, each read once and checked against the bundle's verified SHA-256."""
    return [MemberModel(str(bundle.member_path(mem)), bundle.read_member(mem)) for mem in bundle.manifest.members]


class OnnxRuntimeMember:
    def __init__(self, model: MemberModel, providers: list[str], threads: int, input_size: int):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.file = model.file
        try:
            self.session = ort.InferenceSession(model.data, sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise BundleError(f"onnxruntime cannot load this member ({text})", model.file) from exc
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        inputs = self.session.get_inputs()
        if not inputs:
            raise BundleError(f"model has no inputs; a MelaScreen member needs input '{INPUT_NAME}'", model.file)
        _check_graph([i.name for i in inputs], list(self.output_names), inputs[0].shape, input_size, model.file)

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def run(self, batch: np.ndarray, outputs: Sequence[str] = OUTPUT_NAMES) -> dict[str, np.ndarray]:
        values = self.session.run(list(outputs), {INPUT_NAME: batch})
        return dict(zip(outputs, values))


def _onnxruntime_members(
    bundle: Bundle, models: Sequence[MemberModel], providers: list[str], threads: int
) -> list[OnnxRuntimeMember]:
    members = [OnnxRuntimeMember(model, providers, threads, bundle.manifest.input_size) for model in models]
    check_against_manifest(bundle, members)
    return members


def check_against_manifest(bundle: Bundle, members: Sequence[MemberEngine]) -> None:
    """Every member's outputs on a one-image probe have the shapes the manifest implies; BundleError naming
    the member file otherwise (a model with 7 logits and a manifest with 6 or 8 class names must not run)."""
    m = bundle.manifest
    k = len(m.class_names)
    x = probe_input(m.input_size, 1)
    wanted = OUTPUT_NAMES if m.ood is None else (*OUTPUT_NAMES, OOD_OUTPUT)
    for spec, member in zip(m.members, members):
        where = getattr(member, "file", str(bundle.member_path(spec)))
        missing = [n for n in wanted if n not in member.output_names]
        if missing:
            why = " (the manifest declares the intake check)" if OOD_OUTPUT in missing else ""
            raise BundleError(f"model lacks output(s) {missing}{why}; install the bundle again from its source", where)
        try:
            out = member.run(x, wanted)
        except Exception as exc:  # the engines raise their own types; any of them means this member cannot run
            text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise BundleError(
                f"model does not run on a {m.input_size} x {m.input_size} input, the manifest's input size ({text})",
                where,
            ) from None
        problem = _output_problem(out, k, m.ood is not None)
        if problem:
            raise BundleError(f"{problem}; the model does not match its manifest", where)


def _output_problem(out: dict[str, np.ndarray], k: int, with_ood: bool) -> str | None:
    logits, cam = np.asarray(out["logits"]), np.asarray(out["cam"])
    if logits.shape != (1, k):
        return f"logits have shape {list(logits.shape)} for one image, the manifest's {k} class names need [1, {k}]"
    if not np.all(np.isfinite(logits)):
        return "logits are not finite on the probe input"
    if cam.ndim != 4 or cam.shape[:2] != (1, k) or min(cam.shape[2:]) < 1:
        return f"cam has shape {list(cam.shape)} for one image, the manifest's {k} class names need [1, {k}, h, w]"
    if with_ood and np.asarray(out[OOD_OUTPUT]).size != 1:
        return f"ood has shape {list(np.asarray(out[OOD_OUTPUT]).shape)} for one image, one score per image needed"
    return None


def _onnxruntime_info(members: list[OnnxRuntimeMember], requested_provider: str, note: str = "") -> EngineInfo:
    # What onnxruntime really uses: asking for CUDA can silently end on CPU.
    used = {s.provider for s in members}
    provider = "CUDAExecutionProvider" if used == {"CUDAExecutionProvider"} else sorted(used)[0]
    if requested_provider == "cuda" and provider != "CUDAExecutionProvider":
        raise ProviderError(
            f"CUDA was requested but the models run on {provider}: check the CUDA and cuDNN "
            "libraries, or choose the CPU provider."
        )
    return EngineInfo("onnxruntime", ort.__version__, provider, "f32", note=note)


# ------------------------------------------------------------------------------------ OpenVINO


def _import_openvino():
    try:
        import openvino
    except (ImportError, OSError) as exc:  # OSError: a library of the package could not be loaded
        raise EngineError(
            f"the OpenVINO engine is not available in this installation ({exc}); install the 'openvino' "
            "package or choose the onnxruntime engine"
        ) from exc
    return openvino


def openvino_version() -> str | None:
    """The installed OpenVINO runtime's version (e.g. "2026.4.1"), or None when it cannot be imported."""
    try:
        ov = _import_openvino()
    except EngineError:
        return None
    return str(ov.__version__).split("-")[0]


class OpenVinoMember:
    def __init__(self, core, source: MemberModel, config: dict, input_size: int):
        self.file = source.file
        try:
            model = core.read_model(source.data)  # the verified ONNX bytes (no weights file: ONNX holds them)
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError and its own types
            raise EngineError(f"OpenVINO cannot compile this member ({exc}); choose the onnxruntime engine") from exc
        self.output_names = tuple(sorted(set().union(*(o.get_names() for o in compiled.outputs))))
        inputs = [i.get_any_name() for i in compiled.inputs]
        shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else "?" for d in shape] if shape.rank.is_static else []
        _check_graph(inputs, list(self.output_names), dims, input_size, source.file)
        self._request = compiled.create_infer_request()

    def run(self, batch: np.ndarray, outputs: Sequence[str] = OUTPUT_NAMES) -> dict[str, np.ndarray]:
        result = self._request.infer({INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})
        return {name: np.array(result[name]) for name in outputs}  # copies: the request reuses its buffers


def _openvino_members(
    bundle: Bundle, models: Sequence[MemberModel], precision: str, threads: int
) -> tuple[list[OpenVinoMember], EngineInfo]:
    ov = _import_openvino()
    try:
        core = ov.Core()
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception as exc:
        raise EngineError(f"OpenVINO found no usable CPU device ({exc}); choose the onnxruntime engine") from exc
    hint, note = "f32", ""
    if precision == "fast":
        if "BF16" in capabilities:
            hint = "bf16"
        else:
            note = "this CPU has no bf16 support: fast runs f32"
    config: dict[str, str | int] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    members = [OpenVinoMember(core, model, config, bundle.manifest.input_size) for model in models]
    version = str(ov.__version__).split("-")[0]
    return members, EngineInfo("openvino", version, "CPU", hint, note=note)


# ------------------------------------------------------------------------------------ the probe


def probe_input(input_size: int, n: int = PROBE_IMAGES) -> np.ndarray:
    """A fixed, image-like model input: smooth structure plus noise, in the normalised range."""
    rng = np.random.default_rng(20261129)
    yy, xx = np.mgrid[0:input_size, 0:input_size].astype(np.float32) / input_size
    blob = np.exp(-((yy - 0.5) ** 2 + (xx - 0.45) ** 2) / 0.05)
    base = np.stack([1.0 - 2.0 * blob, 0.5 - 1.5 * blob, 0.8 * xx - 0.4])
    return (base[None] + rng.normal(0, 0.3, (n, 3, input_size, input_size))).astype(np.float32)


def probe_difference(members: Sequence[MemberEngine], reference: Sequence[MemberEngine], x: np.ndarray) -> float:
    """Largest difference of any output of any member from the reference, relative to the output's scale.

    Every output both engines have is compared (logits, cam and, in a bundle with the intake check, ood):
    an engine that reproduces the outcome but not the intake score must not be chosen."""
    worst = 0.0
    for mem, ref in zip(members, reference):
        names = tuple(n for n in ref.output_names if n in set(mem.output_names))
        got, want = mem.run(x, names), ref.run(x, names)
        for name in names:
            a, b = np.asarray(got[name], np.float64), np.asarray(want[name], np.float64)
            if a.shape != b.shape or not np.all(np.isfinite(a)):
                return float("inf")
            scale = max(1.0, float(np.abs(b).max(initial=0.0)))
            worst = max(worst, float(np.abs(a - b).max(initial=0.0)) / scale)
    return worst


def _checked_openvino(
    bundle: Bundle, models: Sequence[MemberModel], precision: str, threads: int, reference: Sequence[MemberEngine]
) -> tuple[list[OpenVinoMember], EngineInfo]:
    members, info = _openvino_members(bundle, models, precision, threads)
    diff = probe_difference(members, reference, probe_input(bundle.manifest.input_size))
    limit = PROBE_TOLERANCE if info.precision == "f32" else FAST_PROBE_TOLERANCE
    if not diff <= limit:
        raise EngineError(
            f"OpenVINO {info.precision} differs from the onnxruntime reference by {diff:.2g} on the probe input "
            f"(allowed {limit:g}); choose the onnxruntime engine"
        )
    return members, EngineInfo(info.engine, info.version, info.provider, info.precision, diff, info.note)


# ------------------------------------------------------------------------------------ the choice


def open_members(
    bundle: Bundle, engine: str = "auto", provider: str = "auto", precision: str = "exact", threads: int = 0
) -> tuple[Sequence[MemberEngine], EngineInfo]:
    """One engine per member of the bundle, and what runs. Raises EngineError / ProviderError when the
    requested engine or provider cannot run, BundleError when a member is not a MelaScreen model."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; use {', '.join(ENGINES)}")
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    providers = provider_list(provider)
    fast_note = "onnxruntime has no faster precision here: fast runs f32" if precision == "fast" else ""

    models = verified_models(bundle)  # read once; both engines are built from these bytes
    if engine == "onnxruntime":
        members = _onnxruntime_members(bundle, models, providers, threads)
        return members, _onnxruntime_info(members, provider, fast_note)

    if engine == "openvino":
        if provider == "cuda":
            raise EngineError("OpenVINO runs the models on the CPU here; choose the CPU provider or onnxruntime")
        _import_openvino()  # a missing package says so before any session is built
        reference = _onnxruntime_members(bundle, models, ["CPUExecutionProvider"], threads)
        return _checked_openvino(bundle, models, precision, threads, reference)

    # auto: CUDA first (a GPU beats any CPU engine), then OpenVINO if it reproduces the reference.
    reference = _onnxruntime_members(bundle, models, providers, threads)
    if providers[0] == "CUDAExecutionProvider":
        return reference, _onnxruntime_info(reference, provider, "CUDA is available: onnxruntime on the GPU")
    try:
        return _checked_openvino(bundle, models, precision, threads, reference)
    except EngineError as exc:
        return reference, _onnxruntime_info(reference, provider, f"auto chose onnxruntime: {exc}")
