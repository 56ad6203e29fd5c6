"""Keep screening off the network: switch off what would phone home before it starts.

onnxruntime 1.29+ (Linux/macOS wheels) carries 1DS telemetry: about 8 s after the first session is made,
a background thread resolves mobile.events.data.microsoft.com and uploads a ProcessInfo event and
session/model events. `onnxruntime.disable_telemetry_events()` only stops the optional events, not
that upload. The environment variable is the full opt-out (no uploader, no device-id file, no offline
cache), but onnxruntime reads it ONCE, when its module is imported: setting it later does nothing.

OpenVINO's Python package imports its model converter (`openvino.tools.ovc`) on `import openvino`, and
that import sends a Google Analytics event from a forked process (www.google-analytics.com) unless the
user has a consent file saying no, and writes ~/intel/openvino_ga_cid. MelaScreen never converts
models (it reads ONNX through the C++ frontend; the packaged app leaves openvino.tools out), so the
converter is kept from being imported at all: `import openvino` skips it when the import fails.

`core/__init__.py` calls `keep_offline()` before any core module can import either library.
"""

from __future__ import annotations

import os
import sys

# ORT_DISABLE_TELEMETRY is what the 1.32 wheel reads; later sources spell it ORT_TELEMETRY_DISABLED.
TELEMETRY_OPT_OUTS = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")
OPENVINO_CONVERTER = "openvino.tools.ovc"  # imports openvino_telemetry, which reports the import


def keep_offline() -> bool:
    """Set every known telemetry opt-out in this process's environment (child processes inherit it).

    Returns False when onnxruntime or OpenVINO's converter was imported before this call: it has then
    already decided, and only a new process will be offline for sure. (In this process OpenVINO's
    `convert_model` is unavailable afterwards; nothing in MelaScreen uses it.)"""
    in_time = "onnxruntime" not in sys.modules and OPENVINO_CONVERTER not in sys.modules
    for name in TELEMETRY_OPT_OUTS:
        os.environ[name] = "1"  # forced, not setdefault: the product promises that nothing leaves the machine
    # None in sys.modules makes `import openvino.tools.ovc` raise ImportError, which openvino expects.
    sys.modules.setdefault(OPENVINO_CONVERTER, None)  # type: ignore[arg-type]  # None in sys.modules blocks that import, as intended
    return in_time
