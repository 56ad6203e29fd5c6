"""The pipelined batch: same results as one image at a time, in order; bounded read-ahead; cancel and
resume as before; gate and run settings per run, the engines built once."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.inference.bundle import load_bundle
from core.inference.ensemble import EnsembleSettings
from core.records.store import ReviewStore
from core.screening import GateChoice, RunSettings, Screener, screen_folder
from tests.support.image_folders import make_folder

PIPELINED = RunSettings(batch_images=3, workers=2)


@pytest.fixture(scope="module")
def screener(synthetic_bundle):
    return Screener(load_bundle(synthetic_bundle), EnsembleSettings(provider="cpu"))


@pytest.fixture
def folder(tmp_path):
    f = make_folder(tmp_path / "images", 9, broken=True)
    # The same image twice: the second copy must reuse the first's result, not be screened again.
    shutil.copy(f / "synthetic_03.png", f / "synthetic_03_copy.png")
    return f


def _paths(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


def _same(a, b):
    fields = ("path", "status", "sha256", "decision", "width", "height")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    if a.ok:
        assert a.p_melanoma == pytest.approx(b.p_melanoma, abs=1e-5)
        assert a.member_p == pytest.approx(b.member_p, abs=1e-5)
        assert a.quality == b.quality
        assert a.cam.shape == b.cam.shape and np.abs(a.cam - b.cam).max() < 1e-3
    else:
        assert a.reason == b.reason


def test_pipelined_batch_equals_one_image_at_a_time_in_order(screener, folder):
    paths = _paths(folder)
    sequential = [screener.screen_image(p)[0] for p in paths]
    progress = list(screener.screen(paths, run=PIPELINED))
    assert [p.done for p in progress] == list(range(1, len(paths) + 1))
    assert all(p.total == len(paths) for p in progress)
    for p, ref in zip(progress, sequential):
        _same(p.result, ref)
    assert sum(not r.ok for r in sequential) == 5  # the broken files are reported, in their place


def test_read_ahead_is_bounded_whatever_the_folder_size(screener, folder):
    paths = _paths(folder) * 4  # 64 entries
    consumed = [0]

    def lazily():
        for p in paths:
            consumed[0] += 1
            yield p

    run = RunSettings(batch_images=2, workers=2)
    ahead = max(2 * run.batch_images, run.workers + 1)
    done = 0
    for progress in screener.screen(lazily(), run=run):
        done += 1
        assert progress.total is None and progress.eta_s is None
        assert consumed[0] - done <= ahead  # never more than the window read ahead of the results
    assert done == len(paths) == consumed[0]


def test_cancel_mid_batch_stores_exactly_what_was_yielded(screener, folder, tmp_path):
    paths = _paths(folder)
    yielded = []
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        run_id = store.start_run(str(folder), "b", "1", screener.result_key(), {})
        for p in screener.screen(paths, store, run_id, should_stop=lambda: len(yielded) >= 4, run=PIPELINED):
            yielded.append(p.result)
        entries = store.run_entries(run_id, with_cam=False)
    assert len(yielded) == 4
    assert [e.result.path for e in entries] == [r.path for r in yielded] == paths[:4]


def test_resume_takes_stored_results_and_screens_the_rest(screener, folder, tmp_path):
    paths = _paths(folder)
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        first: list = []
        stop_after = 6
        results, summary = screen_folder(
            screener,
            folder,
            store,
            should_stop=lambda: len(first) >= stop_after,
            on_progress=first.append,
            run=PIPELINED,
        )
        assert summary.cancelled and len(results) == stop_after
        ok_before = {r.path for r in results if r.ok}
        results, summary = screen_folder(screener, folder, store, run=PIPELINED)
        assert not summary.cancelled and [r.path for r in results] == paths
        reused = {r.path for r in results if r.from_store}
        # Everything good from the first run is reused, and the duplicate reuses its twin's result.
        assert ok_before <= reused and str(folder / "synthetic_03_copy.png") in reused
        assert all(r.cam is None for r in results)  # a run keeps no heat maps in memory; the store does
        shas = [r.sha256 for r in results if r.ok]
        assert len({store.result_id_for(s, screener.result_key()) for s in shas}) == len(set(shas))


def test_a_duplicate_in_the_same_window_is_screened_once(screener, tmp_path):
    f = tmp_path / "dups"
    f.mkdir()
    img = np.full((200, 260, 3), 170, np.uint8)
    cv2.circle(img, (130, 100), 50, (60, 40, 40), -1)
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(f / name), img)
    with ReviewStore.open(tmp_path / "d.sqlite") as store:
        results, summary = screen_folder(screener, f, store, run=PIPELINED)
    assert [r.from_store for r in results] == [False, True, True] and summary.reused == 2


def test_the_gate_is_chosen_per_run_without_rebuilding_the_engines(screener, folder):
    engines_before = screener.ensemble.members
    paths = [p for p in _paths(folder) if p.endswith(".png")][:5]
    default = [p.result for p in screener.screen(paths, run=PIPELINED)]
    strict = [p.result for p in screener.screen(paths, gate=GateChoice(confidence=0.9), run=PIPELINED)]
    assert screener.ensemble.members is engines_before
    assert screener.result_key(GateChoice(0.9)) != screener.result_key()
    t = screener.thresholds(GateChoice(0.9))
    assert (t.low, t.high) == pytest.approx((0.1, 0.9))
    for a, b in zip(default, strict):
        if a.ok:
            assert a.p_melanoma == pytest.approx(b.p_melanoma, abs=1e-6)


def test_run_settings_recursion_and_no_heat_maps(screener, tmp_path):
    f = make_folder(tmp_path / "top", 2, broken=False)
    make_folder(f / "sub", 2, broken=False)
    flat, _ = screen_folder(screener, f, run=RunSettings(with_cam=False))
    deep, _ = screen_folder(screener, f, run=RunSettings(recursive=True, batch_images=2))
    assert len(flat) == 2 and len(deep) == 4
    seen = []
    screen_folder(screener, f, run=RunSettings(with_cam=False), on_progress=seen.append)
    assert all(p.result.ok and p.result.cam is None for p in seen)


def test_results_stored_before_the_image_checks_changed_are_screened_again(screener, tmp_path, monkeypatch):
    # A file an older build cleared (before today's damage checks) must meet the current checks.
    import core.screening.settings

    f = make_folder(tmp_path / "again", 3, broken=False)
    with ReviewStore.open(tmp_path / "again.sqlite") as store:
        monkeypatch.setattr(core.screening.settings, "IMAGE_CHECKS_VERSION", "checks-1")
        first, _ = screen_folder(screener, f, store)
        monkeypatch.setattr(core.screening.settings, "IMAGE_CHECKS_VERSION", "checks-2")
        second, summary = screen_folder(screener, f, store)
    assert len(first) == len(second) == 3
    assert not any(r.from_store for r in second) and summary.reused == 0
