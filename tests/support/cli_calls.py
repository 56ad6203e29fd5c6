"""Running the command line from tests, and reading the CSV reports it writes.

`run_cli` calls `cli.main.main` in this process (what a user's command does, without the 2-4 s start of a
fresh interpreter); `run_cli_process` starts `python -m cli.main`, for the tests where the process itself is
the point (its exit status, a kill -9, dropped privileges, what a fresh interpreter imports). Both return a
CompletedProcess with the exit code and the text written to stdout and stderr.
"""

import contextlib
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _checked(proc: subprocess.CompletedProcess, check: bool) -> subprocess.CompletedProcess:
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


@contextlib.contextmanager
def _home(env_home):
    """MELASCREEN_HOME set for one call (as the subprocess's environment would be), then put back."""
    saved = os.environ.get("MELASCREEN_HOME")
    if env_home:
        os.environ["MELASCREEN_HOME"] = str(env_home)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MELASCREEN_HOME", None)
        else:
            os.environ["MELASCREEN_HOME"] = saved


def run_cli(*args, env_home=None, check=True) -> subprocess.CompletedProcess:
    """`melascreen ARGS` in this process: the exit code `main` returns (or argparse's, on a usage error)."""
    from cli.main import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with _home(env_home), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            code = exc.code if isinstance(exc.code, int) else 1
    return _checked(subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue()), check)


def run_cli_process(*args, env_home=None, check=True, timeout=300) -> subprocess.CompletedProcess:
    """`python -m cli.main ARGS` as its own process."""
    env = dict(os.environ)
    if env_home:
        env["MELASCREEN_HOME"] = str(env_home)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return _checked(proc, check)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
