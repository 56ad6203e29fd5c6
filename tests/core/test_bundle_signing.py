"""Signed bundles: any changed byte in any file is refused naming it; unsigned only when allowed."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli.main import main as cli_main
from core.common.errors import BundleError
from core.inference.bundle import load_bundle, sign_bundle
from core.inference.manifest import MANIFEST, MODEL_CARD
from core.inference.signing import (
    RAW_KEY_HEADER,
    SIGNATURE,
    TRUSTED_KEYS_ENV,
    Trust,
    key_id,
    public_key_pem,
    raw_key_line,
    read_public_key,
    trust_of,
)
from tests.support.synthetic_bundle import TEST_SIGNING_KEY

ROOT = Path(__file__).resolve().parents[2]


def _copy(src, tmp_path, name="b"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [MANIFEST, MODEL_CARD, "member-0.onnx", "member-1.onnx"])
def test_one_changed_byte_in_any_file_is_refused_naming_it(synthetic_bundle, tmp_path, name):
    b = _copy(synthetic_bundle, tmp_path)
    _flip_byte(b / name)
    with pytest.raises(BundleError) as err:
        load_bundle(b)
    assert err.value.file.endswith(name)
    assert "changed after the bundle was signed" in str(err.value) or "checksum" in str(err.value)


def test_an_edited_gate_threshold_in_the_manifest_is_refused_before_it_is_read(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    data = json.loads((b / MANIFEST).read_text())
    data["gate"]["fitted"]["0.99"]["low"] = 0.59  # valid JSON, valid values: only the signature can tell
    (b / MANIFEST).write_text(json.dumps(data, indent=2))
    with pytest.raises(BundleError) as err:
        load_bundle(b)
    assert err.value.file.endswith(MANIFEST) and "changed after the bundle was signed" in str(err.value)


def test_a_tampered_signature_or_file_list_is_refused(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    doc = json.loads((b / SIGNATURE).read_text())
    doc["files"]["extra.txt"] = "0" * 64  # adding to the list breaks the signature
    (b / SIGNATURE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="signature does not match"):
        load_bundle(b)
    (b / SIGNATURE).write_text("{}")
    with pytest.raises(BundleError, match=SIGNATURE):
        load_bundle(b)


def test_unsigned_bundle_is_refused_unless_allowed_and_then_says_so(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    (b / SIGNATURE).unlink()
    with pytest.raises(BundleError, match="unsigned bundle"):
        load_bundle(b)
    loaded = load_bundle(b, allow_unsigned=True)
    assert loaded.unsigned and loaded.signer is None and "unsigned bundle" in loaded.trust_text


def test_a_key_that_is_not_trusted_is_refused_and_trusting_it_works(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    other = Ed25519PrivateKey.generate()
    sign_bundle(b, other)
    with pytest.raises(BundleError, match="not trusted here"):
        load_bundle(b)
    pub = tmp_path / "other.pub"
    pub.write_bytes(public_key_pem(other))
    loaded = load_bundle(b, trust=Trust.default([pub]))
    assert loaded.signer.key_id == read_public_key(pub).key_id and loaded.signer.origin == str(pub)
    # Allowing unsigned bundles accepts it as unsigned, with the reason, never as signed.
    research = load_bundle(b, allow_unsigned=True)
    assert research.unsigned and "not trusted" in research.trust_note


def test_public_keys_are_read_only_in_real_key_formats(tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    want = trust_of(key).keys[0]
    raw = want.public_bytes
    ssh = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    good = {
        "pem.pub": public_key_pem(key),
        "openssh.pub": ssh + b" lab@clinic\n",
        "header-base64.pub": (raw_key_line(raw, "lab key") + "\n").encode(),
        "header-hex.pub": f"# the lab's key\n{RAW_KEY_HEADER} {raw.hex()}\n".encode(),
    }
    bad = {
        "raw-32-bytes.pub": raw,  # any 32-byte file would be a key
        "bare-hex.pub": (raw.hex() + "\n").encode(),
        "text-32.pub": b"this text file holds 32 bytes!!\n"[:32],
        "junk.pub": b"not a key",
        "rsa-ssh.pub": b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x",
        "short-header.pub": f"{RAW_KEY_HEADER} {raw[:31].hex()}".encode(),
    }
    for name, data in {**good, **bad}.items():
        (tmp_path / name).write_bytes(data)
    for name in good:
        assert read_public_key(tmp_path / name).key_id == want.key_id == key_id(raw), name
    for name in bad:
        with pytest.raises(BundleError, match=name):
            read_public_key(tmp_path / name)
    with pytest.raises(BundleError, match="not found"):
        Trust.default([tmp_path / "missing.pub"])


# ------------------------------------------------------------------------------ trusted keys like ssh


def _signed_by_other(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    other = Ed25519PrivateKey.generate()
    sign_bundle(b, other)
    return b, other


def test_a_key_folder_writable_by_others_is_ignored_with_a_warning(synthetic_bundle, tmp_path, caplog):
    b, other = _signed_by_other(synthetic_bundle, tmp_path)
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "lab.pub").write_bytes(public_key_pem(other))
    (folder / "lab.pub").chmod(0o666)
    folder.chmod(0o777)  # the red team's case: any local user could drop a key here
    trust = Trust.default([folder])
    assert trust.find(key_id(trust_of(other).keys[0].public_bytes)) is None
    assert any("ignored" in w and "writable by group and others (mode 0777)" in w for w in trust.warnings)
    with pytest.raises(BundleError, match="not trusted"):
        load_bundle(b, trust=trust)
    assert any("mode 0777" in r.getMessage() for r in caplog.records)  # logged too: the user sees it


def test_a_key_file_writable_by_others_is_ignored_and_its_safe_neighbours_are_read(synthetic_bundle, tmp_path):
    b, other = _signed_by_other(synthetic_bundle, tmp_path)
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "open.pub").write_bytes(public_key_pem(Ed25519PrivateKey.generate()))
    (folder / "open.pub").chmod(0o666)
    (folder / "lab.pub").write_bytes(public_key_pem(other))
    (folder / "lab.pub").chmod(0o644)
    trust = Trust.default([folder])
    assert load_bundle(b, trust=trust).signer.origin.endswith("lab.pub")
    assert [w for w in trust.warnings if "open.pub" in w and "writable by group and others (mode 0666)" in w]
    # Named as a file: the same rule, and a folder others may write (without the sticky bit) counts too.
    named = Trust.default([folder / "open.pub"])
    assert not named.find(trust_of(other).keys[0].key_id) and "mode 0666" in named.warnings[0]
    (folder / "open.pub").chmod(0o644)
    folder.chmod(0o777)
    assert "its folder is writable" in Trust.default([folder / "lab.pub"]).warnings[0]
    folder.chmod(0o1777)  # sticky, like /tmp: others cannot replace the file
    assert load_bundle(b, trust=Trust.default([folder / "lab.pub"])).signer.origin.endswith("lab.pub")


def test_a_named_key_path_that_does_not_exist_is_an_error(synthetic_bundle, tmp_path, monkeypatch, capsys):
    test_key = os.environ[TRUSTED_KEYS_ENV]
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(tmp_path / "nonexistent"))
    with pytest.raises(BundleError, match="trusted key file or folder not found"):
        Trust.default()
    assert cli_main(["bundle", "info", str(synthetic_bundle)]) == 2
    err = capsys.readouterr().err
    assert "nonexistent" in err and "not found" in err and "Traceback" not in err
    monkeypatch.setenv(TRUSTED_KEYS_ENV, test_key)
    assert cli_main(["bundle", "info", str(synthetic_bundle), "--trust-key", str(tmp_path / "typo.pub")]) == 2
    assert "typo.pub" in capsys.readouterr().err


def test_a_junk_key_in_a_key_folder_is_skipped_with_a_warning_and_the_default_bundle_still_loads(tmp_path, monkeypatch):
    from core.common.paths import user_trusted_keys_dir
    from core.inference.bundle import default_bundle_path

    monkeypatch.setenv("MELASCREEN_HOME", str(tmp_path / "home"))
    folder = user_trusted_keys_dir()
    folder.mkdir(parents=True)
    (folder / "junk.pub").write_text("x" * 32)  # the red team's junk key: 32 bytes of text
    (folder / "empty.pub").write_bytes(b"")
    bundle = load_bundle(default_bundle_path(), verify=False)
    # the project's publisher keys (core/trusted_keys: publisher.pub, publisher-2026-12-07.pub since the cascade)
    assert not bundle.unsigned and Path(bundle.signer.origin).parent.name == "trusted_keys"
    assert len(bundle.trust_warnings) == 2 and all("skipped" in w for w in bundle.trust_warnings)
    assert "junk.pub" in " ".join(bundle.trust_warnings)


def test_every_listed_file_must_exist_and_members_must_be_listed(synthetic_bundle, tmp_path):
    from core.inference.signing import sign_files

    b = _copy(synthetic_bundle, tmp_path)
    (b / "notes.txt").write_text("release notes")
    files = json.loads((b / SIGNATURE).read_text())["files"]
    files["notes.txt"] = hashlib.sha256(b"release notes").hexdigest()
    (b / SIGNATURE).write_text(json.dumps(sign_files(files, TEST_SIGNING_KEY)))
    assert not load_bundle(b).unsigned
    (b / "notes.txt").write_text("release notes, edited")
    with pytest.raises(BundleError, match="notes.txt was changed"):
        load_bundle(b)
    del files["member-1.onnx"], files["notes.txt"]
    (b / SIGNATURE).write_text(json.dumps(sign_files(files, TEST_SIGNING_KEY)))
    with pytest.raises(BundleError, match="member-1.onnx is not covered by the bundle's signature"):
        load_bundle(b)


def test_identity_is_the_same_signed_or_unsigned_and_covers_the_card(synthetic_bundle, tmp_path):
    b = _copy(synthetic_bundle, tmp_path)
    signed = load_bundle(b)
    (b / SIGNATURE).unlink()
    assert load_bundle(b, allow_unsigned=True).identity == signed.identity
    (b / MODEL_CARD).write_text("# another card\n")
    assert load_bundle(b, allow_unsigned=True).identity != signed.identity


def test_export_sign_makes_a_key_pair_and_signs(synthetic_bundle, tmp_path, capsys):
    from export.sign import main as sign_main

    b = _copy(synthetic_bundle, tmp_path)
    (b / SIGNATURE).unlink()
    key = tmp_path / "publisher.pem"
    old_umask = os.umask(0o002)  # a user-private-group umask: the public key must still be trusted
    try:
        assert sign_main(["--new-key", str(key)]) == 0
    finally:
        os.umask(old_umask)
    assert (key.stat().st_mode & 0o777) == 0o600 and ((tmp_path / "publisher.pub").stat().st_mode & 0o777) == 0o644
    assert sign_main(["--new-key", str(key)]) == 2  # never overwrites a key
    assert sign_main([str(b), "--key", str(key)]) == 0
    kid = read_public_key(tmp_path / "publisher.pub").key_id
    assert f"key {kid}" in capsys.readouterr().out
    assert load_bundle(b, trust=Trust.default([tmp_path / "publisher.pub"])).signer.key_id == kid
    # A bundle core would refuse is not signed.
    data = json.loads((b / MANIFEST).read_text())
    data["input_size"] = 4096
    (b / MANIFEST).write_text(json.dumps(data))
    assert sign_main([str(b), "--key", str(key)]) == 2
    assert "input_size" in capsys.readouterr().err


def test_cli_bundle_verify_says_which_key_signed_it_and_refuses_with_exit_2(synthetic_bundle, tmp_path, capsys):
    assert cli_main(["bundle", "verify", str(synthetic_bundle)]) == 0
    out = capsys.readouterr().out
    assert f"signed by key {trust_of(TEST_SIGNING_KEY).keys[0].key_id}" in out
    b = _copy(synthetic_bundle, tmp_path)
    _flip_byte(b / MANIFEST, 0.3)
    assert cli_main(["bundle", "verify", str(b)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "Traceback" not in err
    (b / SIGNATURE).unlink()
    shutil.copy(synthetic_bundle / MANIFEST, b / MANIFEST)
    assert cli_main(["bundle", "info", str(b)]) == 2
    assert "unsigned bundle" in capsys.readouterr().err
    assert cli_main(["bundle", "info", str(b), "--allow-unsigned"]) == 0
    assert "UNSIGNED BUNDLE" in capsys.readouterr().out


def test_cli_trust_key_option(synthetic_bundle, tmp_path, capsys):
    b = _copy(synthetic_bundle, tmp_path)
    other = Ed25519PrivateKey.generate()
    sign_bundle(b, other)
    assert cli_main(["bundle", "info", str(b)]) == 2
    assert "not trusted" in capsys.readouterr().err
    pub = tmp_path / "other.pub"
    pub.write_bytes(public_key_pem(other))
    assert cli_main(["bundle", "info", str(b), "--trust-key", str(pub)]) == 0
    assert "signed by key" in capsys.readouterr().out


def test_a_trusted_key_in_the_user_folder_is_trusted(synthetic_bundle, tmp_path, monkeypatch):
    from core.common.paths import user_trusted_keys_dir

    monkeypatch.setenv("MELASCREEN_HOME", str(tmp_path / "home"))
    b = _copy(synthetic_bundle, tmp_path)
    other = Ed25519PrivateKey.generate()
    sign_bundle(b, other)
    with pytest.raises(BundleError):
        load_bundle(b)
    user_trusted_keys_dir().mkdir(parents=True)
    (user_trusted_keys_dir() / "lab.pub").write_bytes(public_key_pem(other))
    assert load_bundle(b).signer.origin.endswith("lab.pub")


def test_screen_of_an_unsigned_bundle_says_unsigned(synthetic_bundle, tmp_path):
    import numpy as np
    from PIL import Image

    b = _copy(synthetic_bundle, tmp_path)
    (b / SIGNATURE).unlink()
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(folder / "a.png")
    cmd = [sys.executable, "-m", "cli.main", "screen", str(folder), "--bundle", str(b), "--db", str(tmp_path / "r.db")]
    refused = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "unsigned bundle" in refused.stderr and "Traceback" not in refused.stderr
    allowed = subprocess.run(cmd + ["--allow-unsigned"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert allowed.returncode == 0, allowed.stderr
    assert "UNSIGNED BUNDLE" in allowed.stderr and "UNSIGNED BUNDLE" in allowed.stdout


def test_the_project_key_folder_may_be_group_writable_but_not_world_writable(tmp_path, monkeypatch):
    """A clone under umask 002 makes core/trusted_keys group-writable (like the code beside it): the
    publisher key still counts; world-writable, it does not."""
    from core.inference import signing

    folder = tmp_path / "trusted_keys"
    folder.mkdir()
    key = Ed25519PrivateKey.generate()
    (folder / "publisher.pub").write_bytes(public_key_pem(key))
    monkeypatch.setattr(signing, "project_keys_dir", lambda: folder)
    wanted = trust_of(key).keys[0].key_id
    folder.chmod(0o775)
    (folder / "publisher.pub").chmod(0o664)
    assert Trust.default().find(wanted) is not None
    folder.chmod(0o777)
    trust = Trust.default()
    assert trust.find(wanted) is None and "writable by group and others (mode 0777)" in trust.warnings[0]
