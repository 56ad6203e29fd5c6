"""Zip bundles: extracted once, with limits, into the cache folder keyed by the zip's SHA-256."""

import errno
import os
import tempfile
import time
import zipfile

import pytest

import core.inference.unzip as unzip_module
from core.common.errors import BundleError
from core.common.paths import bundle_cache_dir
from core.inference.bundle import load_bundle
from core.inference.digests import sha256_file


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """A private MelaScreen home and temp dir: the test sees everything the loader writes."""
    monkeypatch.setenv("MELASCREEN_HOME", str(tmp_path / "home"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _zip(synthetic_bundle, path, folder="synthetic/"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(synthetic_bundle.iterdir()):
            zf.write(f, f"{folder}{f.name}")
    return path


def test_a_good_zip_is_extracted_once_reused_and_leaves_nothing_in_tmp(synthetic_bundle, tmp_path, private_dirs):
    z = _zip(synthetic_bundle, tmp_path / "bundle.zip")
    first = load_bundle(z)
    assert first.source == z and first.manifest.name == "synthetic-test-bundle" and not first.unsigned
    assert first.root.parent == bundle_cache_dir() / sha256_file(z)
    inode = os.stat(first.root / "member-0.onnx").st_ino
    second = load_bundle(z)
    assert second.root == first.root and os.stat(second.root / "member-0.onnx").st_ino == inode
    assert second.identity == first.identity == load_bundle(synthetic_bundle).identity
    assert [p.name for p in bundle_cache_dir().iterdir()] == [sha256_file(z)]
    assert list(private_dirs.iterdir()) == []


def test_a_zip_bomb_is_refused_quickly_without_writing_it(tmp_path):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", "{}")
        with zf.open("member-0.onnx", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(64):
                f.write(block)
    assert z.stat().st_size < 1 << 20
    t = time.perf_counter()
    with pytest.raises(BundleError, match="expands more than 200-fold"):
        load_bundle(z)
    assert time.perf_counter() - t < 5
    cache = bundle_cache_dir()
    written = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) if cache.exists() else 0
    assert written == 0


def test_total_size_and_entry_count_are_bounded(synthetic_bundle, tmp_path, monkeypatch):
    z = _zip(synthetic_bundle, tmp_path / "bundle.zip")
    monkeypatch.setattr(unzip_module, "MAX_ZIP_TOTAL_BYTES", 1000)
    with pytest.raises(BundleError, match="expands to"):
        load_bundle(z)
    monkeypatch.undo()
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(300):
            zf.writestr(f"f{i}.txt", "x")
    with pytest.raises(BundleError, match="300 entries"):
        load_bundle(many)


@pytest.mark.parametrize("entry", ["../evil.onnx", "/etc/evil", "a/../../evil", "C:\\evil"])
def test_entries_pointing_outside_are_refused(tmp_path, entry):
    z = tmp_path / "slip.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr(zipfile.ZipInfo(entry), "x")
    with pytest.raises(BundleError, match="points outside the bundle"):
        load_bundle(z)


def test_duplicate_entries_are_refused(synthetic_bundle, tmp_path):
    z = _zip(synthetic_bundle, tmp_path / "dup.zip", folder="")
    with zipfile.ZipFile(z, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("manifest.json", "{}")
    with pytest.raises(BundleError, match="same name"):
        load_bundle(z)


def test_symlink_entries_are_refused(tmp_path):
    z = tmp_path / "link.zip"
    info = zipfile.ZipInfo("member-0.onnx")
    info.external_attr = 0o120777 << 16
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(z)


def test_a_full_disk_is_a_bundle_error_and_leaves_no_partial_folder(synthetic_bundle, tmp_path, monkeypatch):
    z = _zip(synthetic_bundle, tmp_path / "bundle.zip")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(unzip_module, "_copy_limited", no_space)
    with pytest.raises(BundleError, match="No space left on device"):
        load_bundle(z)
    assert list(bundle_cache_dir().iterdir()) == []


def test_stale_partial_extractions_are_cleaned_and_a_damaged_cache_is_replaced(synthetic_bundle, tmp_path):
    z = _zip(synthetic_bundle, tmp_path / "bundle.zip", folder="")
    stale = bundle_cache_dir() / ".0123456789abcdef.partial-old"
    stale.mkdir(parents=True)
    (stale / "member-0.onnx").write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = bundle_cache_dir() / ".fedcba9876543210.partial-now"  # another process may be extracting it
    fresh.mkdir()
    unused = bundle_cache_dir() / ("ab" * 32)  # a bundle extracted long ago and not loaded since
    (unused / "synthetic").mkdir(parents=True)
    os.utime(unused, (time.time() - 40 * 86400, time.time() - 40 * 86400))
    b = load_bundle(z)
    assert not stale.exists() and fresh.exists() and not unused.exists()
    (b.root / "member-1.onnx").write_bytes(b"damaged in the cache")
    again = load_bundle(z)  # re-verified on reuse: the damaged copy is replaced by a fresh extraction
    assert sha256_file(again.root / "member-1.onnx") == sha256_file(synthetic_bundle / "member-1.onnx")


def test_a_tampered_zip_is_refused(synthetic_bundle, tmp_path):
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(synthetic_bundle.iterdir()):
            data = f.read_bytes()
            if f.name == "model_card.md":
                data += b"\nEdited.\n"
            zf.writestr(f.name, data)
    with pytest.raises(BundleError) as err:
        load_bundle(z)
    assert err.value.file.endswith("model_card.md") and "changed after the bundle was signed" in str(err.value)


def test_not_a_zip(tmp_path):
    z = tmp_path / "bundle.zip"
    z.write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(BundleError, match="not a readable zip"):
        load_bundle(z)
