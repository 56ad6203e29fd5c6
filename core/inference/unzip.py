"""Zip bundles: a .zip of a bundle folder is extracted once into a private cache and loaded from there.

The cache folder of a zip is named by the zip's SHA-256; an extraction is written beside it and renamed
when complete, so a folder in the cache is whole or absent. A zip is checked before anything is written
(entries, sizes, links, paths that leave the bundle) and every entry is copied within the size it declares.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from core.common.errors import BundleError
from core.common.paths import bundle_cache_dir, make_private_folder, os_error_words
from core.inference.digests import sha256_file
from core.inference.manifest import MANIFEST

# Zip bundles: refused before anything is written when they exceed these.
MAX_ZIP_ENTRIES = 256
MAX_ZIP_TOTAL_BYTES = 2 << 30
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per entry over 1 MB
STALE_EXTRACTION_S = 3600
UNUSED_EXTRACTION_S = 30 * 24 * 3600


def _zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or "\\" in name or ":" in name or ".." in Path(name).parts:
        return "points outside the bundle"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.file_size > (1 << 20) and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        return f"expands more than {MAX_ZIP_RATIO}-fold (a zip bomb?)"
    return None


def _check_zip(zf: zipfile.ZipFile, zpath: Path) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise BundleError(
            f"the zip holds {len(infos)} entries (at most {MAX_ZIP_ENTRIES}); not a model bundle", str(zpath)
        )
    for info in infos:
        if (problem := _zip_entry_problem(info)) is not None:
            raise BundleError(f"zip entry {info.filename[:80]!r} {problem}; refused", str(zpath))
    names = [i.filename.rstrip("/") for i in infos]
    if len(set(names)) != len(names):
        raise BundleError("the zip holds two entries with the same name; refused", str(zpath))
    total = sum(i.file_size for i in infos)
    if total > MAX_ZIP_TOTAL_BYTES:
        raise BundleError(
            f"the zip expands to {total / 1e9:.1f} GB (at most {MAX_ZIP_TOTAL_BYTES / 1e9:.1f} GB)", str(zpath)
        )
    return infos


def _copy_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: Path, budget: list[int], zpath: Path) -> None:
    """Extract one entry, never writing more than it declared (headers can lie) nor the total budget."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(dst, "wb") as out:
        while block := src.read(1 << 20):
            written += len(block)
            budget[0] -= len(block)
            if written > info.file_size or budget[0] < 0:
                raise BundleError(
                    f"zip entry {info.filename[:80]!r} expands beyond its declared size; refused", str(zpath)
                )
            out.write(block)


def _clean_stale(cache: Path) -> None:
    """Remove partial extractions left by a process that died (older than an hour: not one in progress)
    and extracted bundles no zip has been loaded into for UNUSED_EXTRACTION_S (they are re-made on demand)."""
    now = time.time()
    for p in cache.iterdir():
        try:
            partial = p.name.startswith(".") and ".partial-" in p.name
            age = now - p.stat().st_mtime
            if p.is_dir() and ((partial and age > STALE_EXTRACTION_S) or (not partial and age > UNUSED_EXTRACTION_S)):
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _extract(zpath: Path, target: Path) -> None:
    """Extract into a temporary folder beside `target`, then rename: `target` is complete or absent."""
    cache = make_private_folder(target.parent)  # 0700 where it creates it, as every MelaScreen folder
    _clean_stale(cache)
    with zipfile.ZipFile(zpath) as zf:
        infos = _check_zip(zf, zpath)
        need = sum(i.file_size for i in infos)
        free = shutil.disk_usage(cache).free
        if need > free:
            raise BundleError(f"extracting needs {need / 1e6:.0f} MB, {cache} has {free / 1e6:.0f} MB free", str(zpath))
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:16]}.partial-", dir=cache))
        try:
            budget = [MAX_ZIP_TOTAL_BYTES]
            for info in infos:
                dst = tmp / info.filename
                if info.is_dir():
                    dst.mkdir(parents=True, exist_ok=True)
                else:
                    _copy_limited(zf, info, dst, budget, zpath)
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():  # another process finishing first is fine; anything else is not
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _bundle_folder(extracted: Path) -> Path:
    """A zip may hold the files at its top level or inside one folder."""
    if not (extracted / MANIFEST).exists():
        subs = [p for p in extracted.iterdir() if p.is_dir()]
        if len(subs) == 1 and (subs[0] / MANIFEST).exists():
            return subs[0]
    return extracted


def unzip(zpath: Path, fresh: bool = False) -> tuple[Path, bool]:
    """The extracted folder of a zip bundle (one cache folder per zip SHA-256, extracted once) and
    whether it was reused from an earlier extraction."""
    try:
        target = bundle_cache_dir() / sha256_file(zpath)
        if fresh and target.exists():
            shutil.rmtree(target)
        reused = target.is_dir()
        if reused:
            with contextlib.suppress(OSError):  # in use: not pruned as unused (a read-only cache is fine)
                os.utime(target)
        else:
            _extract(zpath, target)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BundleError(f"not a readable zip file ({exc})", str(zpath)) from None
    except OSError as exc:
        raise BundleError(  # the real cause: a read-only home is not a full disk
            f"cannot extract the bundle into {bundle_cache_dir()}: {os_error_words(exc)}; or use an extracted "
            "bundle folder",
            str(zpath),
        ) from None
    return _bundle_folder(target), reused
