"""A bundle's members' raw logits on one TTA view of a named image set, through core's engines
(what the app runs), cached as npz per (bundle identity, view, set) and resumable by chunk.

Reading one view (`id`) instead of the bundle's nine costs a ninth of the time; the exploration of
issue 23 used it, and figures computed from it say so."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common.errors import ImageReadError
from core.imaging.model_input import InputSpec, model_input_from_file
from core.imaging.tta import apply_view
from core.inference.bundle import load_bundle
from core.inference.engines import open_members
from evalkit.labelled import image_path

from .sets import load_set

log = logging.getLogger(__name__)
CHUNK = 256


@dataclass(frozen=True)
class MemberLogits:
    image_ids: tuple[str, ...]
    logits: np.ndarray  # M x N x K, before temperature
    temperatures: np.ndarray  # M
    failed: dict


def cache_path(cache: Path, identity: str, view: str, set_name: str, override: dict | None = None) -> Path:
    """override: preprocessing fields changed from the bundle's (e.g. {"hair_threshold": 20})."""
    tag = "".join(f"-{k}={v}" for k, v in sorted((override or {}).items()))
    return Path(cache) / "members" / f"{identity[:16]}-{view}{tag}" / f"{set_name}.npz"


def parse_override(items) -> dict:
    """["hair_threshold=20", "clahe=false"] -> {"hair_threshold": 20, "clahe": False}, checked by core's schema."""
    from core.imaging.preprocess import PreprocessParams

    raw = {}
    for item in items or ():
        key, _, value = item.partition("=")
        raw[key] = {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(raw[key], str):
            raw[key] = float(value) if "." in value else int(value)
    base = PreprocessParams().to_dict()
    PreprocessParams.from_dict({**base, **raw}, "--preprocessing override")  # refuses unknown fields and values
    return raw


def _save(path: Path, ids, logits, temps, failed) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        tmp,
        ids=np.array(ids, dtype=str),
        logits=np.asarray(logits, np.float32),
        temperatures=temps,
        failed_ids=np.array(list(failed), dtype=str),
        failed_reasons=np.array(list(failed.values()), dtype=str),
    )
    os.replace(tmp, path)


def read(path: Path) -> MemberLogits:
    with np.load(path, allow_pickle=False) as z:
        return MemberLogits(
            tuple(str(i) for i in z["ids"]),
            z["logits"].astype(np.float32),
            z["temperatures"],
            dict(zip((str(i) for i in z["failed_ids"]), (str(r) for r in z["failed_reasons"]))),
        )


def _one(path: Path, spec: InputSpec):
    try:
        return model_input_from_file(path, spec)
    except ImageReadError as exc:
        return exc.reason


def member_logits(
    bundle_path: Path,
    set_names,
    cache: Path,
    view: str = "id",
    engine: str = "openvino",
    threads: int = 1,
    batch: int = 32,
    override: dict | None = None,
) -> dict[str, Path]:
    from dataclasses import replace

    bundle = load_bundle(bundle_path, allow_unsigned=True)
    m = bundle.manifest
    spec = InputSpec.from_manifest(m)
    if override:
        spec = replace(spec, preprocessing=replace(spec.preprocessing, **override))
    temps = np.array([s.temperature for s in m.members], np.float32)
    engines, info = open_members(bundle, engine, "cpu", "exact", threads)
    log.info("%s: %d members on %s, view %s", m.version, len(engines), info.describe(), view)
    out = {}
    with ThreadPoolExecutor(max_workers=1) as pool:  # decoding one batch ahead of the engine
        for name in set_names:
            final = cache_path(cache, str(bundle.identity), view, name, override)
            out[name] = final
            if final.exists():
                continue
            image_set = load_set(name)
            parts = final.with_suffix("")
            parts.mkdir(parents=True, exist_ok=True)
            for c, lo in enumerate(range(0, len(image_set.image_ids), CHUNK)):
                part = parts / f"chunk-{c:04d}.npz"
                if part.exists():
                    continue
                t = time.time()
                ids = image_set.image_ids[lo : lo + CHUNK]
                batches = [ids[b : b + batch] for b in range(0, len(ids), batch)]
                folder = image_set.images_dir

                def submit(bb, folder=folder):
                    return [pool.submit(_one, image_path(folder, i), spec) for i in bb]

                pending = submit(batches[0])
                ok_ids, logits, failed = [], [], {}
                for b, bb in enumerate(batches):
                    got = [f.result() for f in pending]
                    pending = submit(batches[b + 1]) if b + 1 < len(batches) else []
                    xs = [apply_view(view, g) for g in got if not isinstance(g, str)]
                    failed.update({i: g for i, g in zip(bb, got) if isinstance(g, str)})
                    ok_ids += [i for i, g in zip(bb, got) if not isinstance(g, str)]
                    if xs:
                        x = np.stack(xs).astype(np.float32)
                        logits.append(np.stack([e.run(x, ("logits",))["logits"] for e in engines]))
                _save(part, ok_ids, np.concatenate(logits, axis=1), temps, failed)
                log.info(
                    "%s: %d/%d images, %.1f images/s",
                    name,
                    lo + len(ids),
                    len(image_set.image_ids),
                    len(ids) / (time.time() - t),
                )
            chunks = [read(p) for p in sorted(parts.glob("chunk-*.npz"))]
            _save(
                final,
                sum((list(c.image_ids) for c in chunks), []),
                np.concatenate([c.logits for c in chunks], axis=1),
                temps,
                {k: v for c in chunks for k, v in c.failed.items()},
            )
            for p in parts.iterdir():
                p.unlink()
            parts.rmdir()
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Cache a bundle's member logits on one view of named image sets.")
    ap.add_argument("--bundle", type=Path, default=Path("core/models/default"))
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--sets", required=True)
    ap.add_argument("--view", default="id")
    ap.add_argument("--engine", default="openvino")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--preprocessing",
        action="append",
        metavar="FIELD=VALUE",
        help="run the members on other preprocessing, e.g. hair_threshold=20 (repeatable)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    override = parse_override(args.preprocessing)
    for name, path in member_logits(
        args.bundle, args.sets.split(","), args.cache, args.view, args.engine, args.threads, override=override
    ).items():
        log.info("%s -> %s", name, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
