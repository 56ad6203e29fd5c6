"""Time opening the results database: SQLite's quick_check runs on every open, before anything is
written (a damaged file is refused untouched). How long does it take as the file grows?

    .venv/bin/python benchmarks/bench_store_open.py                       # 2,000 10,000 30,000 results
    .venv/bin/python benchmarks/bench_store_open.py --sizes 1000 5000 --folder /tmp/x

Each result row is a realistic size: a 128 px heat map PNG (as core.records.store.encode_cam stores it) and a
~6 kB thumbnail JPEG. The database is built once per size in --folder (kept for reruns), then opened
5 times: `open` (quick_check + WAL + schema), `open_for_reading` (read-only), and quick_check alone;
the median of the 5 is printed, with the file size. The OS file cache is warm after the first open
(as it is for a clinic's daily use); the first, colder open is printed too.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.decision.results import Decision, ScreeningResult  # noqa: E402
from core.records.store import ReviewStore  # noqa: E402


def _thumbnail(rng: np.random.Generator) -> bytes:
    img = np.clip(rng.normal(150, 30, (96, 128, 3)), 0, 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def build(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:288, 0:384].astype(np.float32)
    thumb = _thumbnail(rng)
    with ReviewStore.open(path) as store:
        run = store.start_run("/bench", "bench", "1", "key", {})
        for i in range(n):
            cam = np.exp(-(((xx - 100 - i % 80) / 60) ** 2 + ((yy - 150) / 40) ** 2)).astype(np.float32)
            p = float(rng.uniform(0, 1))
            result = ScreeningResult(
                path=f"/bench/img_{i:06d}.jpg",
                sha256=hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
                status="ok",
                decision=(Decision.NO_CANCER_SUSPECTED, Decision.REVIEW, Decision.SUSPICIOUS)[i % 3],
                reason=f"p={p:.3f}",
                p_melanoma=p,
                member_p=(p, p),
                spread=0.0,
                cam=cam,
            )
            store.add_result(run, result, "key", thumbnail=thumb)
        store.finish_run(run, summary={})


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def open_close(path: Path) -> None:
    ReviewStore.open(path).close()


def open_for_reading_close(path: Path) -> None:
    ReviewStore.open_for_reading(path).close()


def quick_check(store: ReviewStore) -> None:
    store._conn.execute("PRAGMA quick_check").fetchall()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 30000])
    ap.add_argument("--folder", type=Path, default=Path("/tmp/melascreen-bench-store"))
    args = ap.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    print(f"{'results':>8} {'MB':>7} {'first open s':>13} {'open s':>8} {'read-only s':>12} {'quick_check s':>14}")
    for n in args.sizes:
        path = args.folder / f"store-{n}.sqlite"
        if not path.exists():
            build(path, n)
        first = timed(open_close, path)
        opens = [timed(open_close, path) for _ in range(5)]
        reads = [timed(open_for_reading_close, path) for _ in range(5)]
        with ReviewStore.open(path) as store:
            checks = [timed(quick_check, store) for _ in range(5)]
        print(
            f"{n:8d} {path.stat().st_size / 1e6:7.1f} {first:13.3f} {statistics.median(opens):8.3f} "
            f"{statistics.median(reads):12.3f} {statistics.median(checks):14.3f}"
        )


if __name__ == "__main__":
    main()
