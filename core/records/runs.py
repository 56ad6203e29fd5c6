"""Which process a run belongs to, so that a run whose process was killed shows as interrupted.

A run is stored as "running" until the process marks it finished; `kill -9`, a power cut or a crash
leave it so forever. The run's settings record the process id and host (`owner_stamp`); a listing
shows "interrupted" when that process no longer exists on this host (`shown_status`). No schema change.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys

INTERRUPTED = "interrupted"


def owner_stamp() -> dict:
    """What to store in a new run's settings: this process and this machine."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        # Never os.kill on Windows: any signal but Ctrl+C/Break terminates the process.
        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return True
    return True


def shown_status(status: str, settings: dict | None) -> str:
    """The status to show: "interrupted" for a "running" run whose process is gone from this host.
    Runs from another host (a shared database) or from before the stamp existed stay "running"."""
    if status != "running" or not isinstance(settings, dict):
        return status
    pid, host = settings.get("pid"), settings.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or host != socket.gethostname():
        return status
    if pid == os.getpid():
        return status
    return status if _alive(pid) else INTERRUPTED
