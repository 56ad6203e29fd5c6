"""Where MelaScreen writes, and how: a private results database, output paths checked before a batch,
files replaced whole or not at all."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import pytest

from core.common.paths import (
    FileWriteError,
    OutputPathError,
    atomic_target,
    check_output_file,
    check_output_folder,
    create_private_file,
    make_private_folder,
    os_error_words,
    write_file_atomically,
)
from core.records.runs import INTERRUPTED, owner_stamp, shown_status

posix_only = pytest.mark.skipif(os.name != "posix", reason="permission bits are a POSIX notion")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_results_database_and_its_wal_and_shm_are_private(tmp_path: Path):
    from core.records.store import ReviewStore

    db = tmp_path / "new-folder" / "results.sqlite"
    with ReviewStore.open(db) as store:
        store.runs()  # WAL mode: the -wal and -shm files exist while the database is open
        files = {p.name: mode(p) for p in db.parent.iterdir()}
    assert mode(db.parent) == 0o700
    assert {"results.sqlite", "results.sqlite-wal", "results.sqlite-shm"} <= set(files)
    assert all(m == 0o600 for m in files.values()), files


@posix_only
def test_an_existing_folder_keeps_its_permissions(tmp_path: Path):
    tmp_path.chmod(0o755)
    make_private_folder(tmp_path)
    assert mode(tmp_path) == 0o755
    create_private_file(tmp_path / "a")
    (tmp_path / "a").chmod(0o644)
    create_private_file(tmp_path / "a")  # exists: left as it is
    assert mode(tmp_path / "a") == 0o644


def test_atomic_target_replaces_whole_or_not_at_all(tmp_path: Path):
    target = tmp_path / "heat.png"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic_target(target) as temp:
            assert temp.parent == tmp_path and temp.suffix == ".png" and temp != target
            temp.write_bytes(b"half a pic")
            raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.png"]
    with atomic_target(target) as temp:
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["heat.png"]


@posix_only
def test_written_files_are_private_unless_the_user_shares_them(tmp_path: Path):
    umask = os.umask(0o022)
    try:
        with atomic_target(tmp_path / "heat.png") as temp:
            temp.write_bytes(b"png")
        write_file_atomically(tmp_path / "report.html", "<p>patient</p>")
        with atomic_target(tmp_path / "replaced.pdf") as temp:
            temp.unlink()  # a writer that makes its own file (default mode) instead of filling ours
            temp.write_bytes(b"%PDF")
        write_file_atomically(tmp_path / "shared.csv", "a,b\n", private=False)
    finally:
        os.umask(umask)
    assert mode(tmp_path / "heat.png") == 0o600
    assert mode(tmp_path / "report.html") == 0o600
    assert mode(tmp_path / "replaced.pdf") == 0o600
    assert mode(tmp_path / "shared.csv") == 0o644  # as a plain open() gives
    assert (tmp_path / "report.html").read_text() == "<p>patient</p>"


@posix_only
def test_new_output_folders_are_private_with_their_parents(tmp_path: Path):
    check_output_folder(tmp_path / "a" / "b" / "heat", "--heatmaps")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/heat")] == [0o700] * 3
    check_output_file(tmp_path / "out" / "r.csv", "--report")
    assert mode(tmp_path / "out") == 0o700
    check_output_folder(tmp_path / "shared", "--heatmaps", private=False)
    assert mode(tmp_path / "shared") == 0o777 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_a_failed_write_names_the_file_asked_for_and_the_real_cause(tmp_path: Path):
    target = tmp_path / "report.csv"
    with pytest.raises(FileWriteError) as info:
        with atomic_target(target) as temp:
            temp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device", str(temp))
    message = str(info.value)
    assert str(target) in message and ".partial" not in message
    assert "disk is full" in message and "free disk space" in message
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC  # callers catching OSError still do
    assert list(tmp_path.iterdir()) == []
    read_only = os_error_words(OSError(errno.EROFS, "Read-only file system"))
    assert "read-only" in read_only and "disk space" not in read_only and "full" not in read_only
    assert "permission denied" in os_error_words(OSError(errno.EACCES, "Permission denied"))
    with pytest.raises(FileWriteError, match=str(tmp_path / "missing" / "r.csv")):
        write_file_atomically(tmp_path / "missing" / "r.csv", b"x")  # its folder does not exist


def test_output_checks(tmp_path: Path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert check_output_folder(tmp_path / "new" / "heat", "--heatmaps").is_dir()
    assert check_output_file(tmp_path / "out" / "r.csv", "--report") == tmp_path / "out" / "r.csv"
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_folder(a_file, "--heatmaps")
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path, "--report")
    with pytest.raises(OutputPathError, match="--report"):
        check_output_file(a_file / "r.csv", "--report")
    if Path("/proc/self").is_dir():
        with pytest.raises(OutputPathError, match="cannot be written"):
            check_output_file("/proc/melascreen.csv", "--report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt", "new", "out"]  # probes removed


def test_a_run_whose_process_is_gone_shows_as_interrupted():
    import subprocess

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = {**owner_stamp(), "pid": int(gone.stdout)}
    assert shown_status("running", dead) == INTERRUPTED
    assert shown_status("running", owner_stamp()) == "running"  # this very process
    assert shown_status("finished", dead) == "finished"
    assert shown_status("running", {**dead, "host": "another-machine"}) == "running"  # cannot tell
    assert shown_status("running", {"confidence": 0.99}) == "running"  # a run from before the stamp
