"""No network, proven: a real screen and a long-lived onnxruntime session run under strace, and any
socket that is not local, or any DNS query, fails the test.

onnxruntime's Linux wheels upload telemetry (1DS) from a background thread some seconds after the
first session; `core.common.offline.keep_offline()` (called when `core` is imported) switches it off. The
control process imports onnxruntime without core and must be seen resolving the telemetry host,
which shows that the trace would catch the leak if the switch stopped working.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.common.offline import TELEMETRY_OPT_OUTS

ROOT = Path(__file__).resolve().parents[2]
IDLE_S = 15  # the telemetry thread first resolves its host 5-10 s after the first session is made

# onnxruntime suppresses telemetry itself in CI (these variables) and in its own unit tests: the
# traced processes must not inherit them, or a leak would go unseen on a CI runner only.
SELF_SUPPRESSING = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "ORT_RUNNING_UNIT_TESTS",
    *TELEMETRY_OPT_OUTS,
)
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="strace exists on Linux only")


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SELF_SUPPRESSING}
    env["MELASCREEN_HOME"] = str(home)
    return env


def traced(trace: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    strace = shutil.which("strace")
    assert strace, "strace is needed for this test: apt-get install strace (Makefile SYSTEM_PACKAGES)"
    return subprocess.Popen(
        [strace, "-f", "-qq", "-e", "trace=network,connect", "-o", str(trace), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def network_use(trace: str) -> list[str]:
    """Trace lines that open a non-local socket or talk to a DNS server (port 53)."""
    found = []
    for line in trace.splitlines():
        socket = re.search(r"\bsocket\((AF_\w+)", line)
        if socket and socket.group(1) not in LOCAL_FAMILIES:
            found.append(line)
        elif "connect(" in line and re.search(r"sa_family=AF_INET6?\b|htons\(53\)", line):
            found.append(line)
    return found


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_trace_parser_tells_local_from_network():
    local = 'socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3\nconnect(3, {sa_family=AF_UNIX, sun_path="/x"}, 110) = 0'
    assert network_use(local) == []
    leak = (
        "socket(AF_INET6, SOCK_DGRAM, IPPROTO_IP) = 12\n"
        'connect(12, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}, 16) = 0'
    )
    assert len(network_use(leak)) == 2


def test_screen_opens_no_network_socket(tmp_path: Path, synthetic_bundle: Path):
    folder = tmp_path / "clinic"
    folder.mkdir()
    for i in range(2):
        rgb = np.full((288, 384, 3), (200, 160, 150), np.uint8)
        cv2.circle(rgb, (192, 144), 60 + 10 * i, (60, 40, 30), -1)
        cv2.imwrite(str(folder / f"lesion_{i}.png"), rgb)
    trace = tmp_path / "screen.trace"
    args = [
        sys.executable,
        "-m",
        "cli.main",
        "screen",
        str(folder),
        "--bundle",
        str(synthetic_bundle),
        "--db",
        str(tmp_path / "r.sqlite"),
        "--report",
        str(tmp_path / "r.csv"),
    ]
    rc, out, err = finish(traced(trace, args, clean_env(tmp_path / "home")))
    assert rc == 0, err
    assert "screened 2 files" in out
    assert network_use(trace.read_text()) == []


IDLE_SESSION = """
import sys, time
import numpy as np
if sys.argv[1] == "core":
    import cli.main  # what the product imports first; it switches telemetry off
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 64, 64), np.float32)})
time.sleep(float(sys.argv[3]))
"""


def test_onnxruntime_stays_silent_for_the_life_of_a_session(tmp_path: Path, synthetic_bundle: Path):
    member = str(synthetic_bundle / "member-0.onnx")
    env = clean_env(tmp_path / "home")
    runs = {
        who: (
            tmp_path / f"{who}.trace",
            traced(tmp_path / f"{who}.trace", [sys.executable, "-c", IDLE_SESSION, who, member, str(IDLE_S)], env),
        )
        for who in ("core", "control")  # side by side: the wait is paid once
    }
    results = {who: (finish(proc), trace.read_text()) for who, (trace, proc) in runs.items()}
    for who, ((rc, _, err), _) in results.items():
        assert rc == 0, f"{who}: {err}"
    assert network_use(results["core"][1]) == []
    import onnxruntime

    native = Path(onnxruntime.__file__).parent / "capi"
    libraries = native.glob("onnxruntime_pybind11_state*")
    phones_home = any(b"events.data.microsoft.com" in p.read_bytes() for p in libraries)
    if phones_home:  # this wheel carries 1DS telemetry: without core's switch it must be seen leaking
        assert network_use(results["control"][1]), "the control run was expected to resolve the telemetry host"


def test_openvino_is_imported_without_its_reporting_converter(tmp_path: Path):
    pytest.importorskip("openvino")  # optional engine: absent, it cannot report anything
    code = (
        "import sys, core, openvino; "
        "print(sorted(m for m, mod in sys.modules.items() if mod and ('telemetry' in m or 'openvino.tools' in m)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
