"""Ed25519 signatures over a bundle's file list, and the keys MelaScreen trusts.

A signed bundle holds `signature.json`:

    {"format": "melascreen-bundle-signature/1",
     "files": {"manifest.json": "<sha256>", "model_card.md": "<sha256>", "member-0.onnx": "<sha256>", ...},
     "key_id": "<first 16 hex of sha256(raw public key)>",
     "signature": "<base64 Ed25519 signature of canonical_bytes(files)>"}

The signature covers the canonical serialisation of the format and the file list, so changing one
byte of any listed file (the manifest included) or the list itself breaks it. Trusted public keys
come from the project (`core/trusted_keys/*.pub`, the publisher's), from the user's config folder
(`<config>/trusted_keys/*.pub`), from MELASCREEN_TRUSTED_KEYS (files or folders, os.pathsep
separated) and from the caller (app settings, CLI --trust-key). The private key never ships.

Keys are taken like ssh takes them: a key file or folder that group or others may write is ignored
with a warning; only real key formats are read (PEM, OpenSSH ssh-ed25519, or `melascreen-ed25519
<key>`); a junk file in a key folder is skipped with a warning; a path the user named that does not
exist is an error. The warnings travel with the `Trust` (and each `Bundle` loaded with it) and are logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.common.errors import BundleError
from core.common.paths import user_trusted_keys_dir

SIGNATURE = "signature.json"
SIGNATURE_FORMAT = "melascreen-bundle-signature/1"
KEY_ID_HEX = 16
MAX_SIGNATURE_BYTES = 1 << 20
MAX_KEY_BYTES = 16 << 10
TRUSTED_KEYS_ENV = "MELASCREEN_TRUSTED_KEYS"
_SHA256 = re.compile(r"[0-9a-f]{64}")
RAW_KEY_HEADER = "melascreen-ed25519"  # a one-line key file: "melascreen-ed25519 <hex or base64> [comment]"
log = logging.getLogger(__name__)


def project_keys_dir() -> Path:
    """The publisher key(s) committed with MelaScreen (and shipped inside the installed app)."""
    return Path(__file__).resolve().parent.parent / "trusted_keys"


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    public_bytes: bytes  # raw 32-byte Ed25519 public key
    origin: str  # the file it was read from, for "signed by ..." messages

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_bytes).verify(signature, data)
        except InvalidSignature:
            return False
        return True


def key_id(public_bytes: bytes) -> str:
    return hashlib.sha256(public_bytes).hexdigest()[:KEY_ID_HEX]


def public_key_from_bytes(data: bytes, origin: str) -> TrustedKey:
    """A public key file in one of the formats a key is published in; anything else is a BundleError.

    - PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`, what `export.sign` writes);
    - OpenSSH (`ssh-ed25519 AAAA... comment`, what ssh-keygen writes);
    - MelaScreen's one-line form `melascreen-ed25519 <64 hex or base64 of the 32 raw bytes> [comment]`.

    Bare bytes or bare hex are not keys: any 32-byte text file would be one."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        return _loaded_key(serialization.load_pem_public_key, text, "PEM", origin)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(b"#")]
    words = lines[0].split() if len(lines) == 1 else []
    if len(words) >= 2 and words[0] == b"ssh-ed25519":
        return _loaded_key(serialization.load_ssh_public_key, b" ".join(words[:2]), "OpenSSH", origin)
    if len(words) >= 2 and words[0] == RAW_KEY_HEADER.encode():
        raw = _raw_key(words[1])  # type: ignore[assignment]  # None is handled on the next line
        if raw is None:
            raise BundleError(f"{RAW_KEY_HEADER} needs the 32 raw key bytes as 64 hex or base64 characters", origin)
        return TrustedKey(key_id(raw), raw, origin)
    raise BundleError(
        f"not an Ed25519 public key (expected PEM, an OpenSSH ssh-ed25519 line or '{RAW_KEY_HEADER} <hex or base64>')",
        origin,
    )


def _loaded_key(load: Callable[[bytes], object], data: bytes, kind: str, origin: str) -> TrustedKey:
    """A key read by `load` (cryptography's PEM or OpenSSH reader, `kind` in words); it must be Ed25519."""
    try:
        key = load(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BundleError(f"not a readable {kind} public key ({str(exc)[:100]})", origin) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("not an Ed25519 public key", origin)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return TrustedKey(key_id(raw), raw, origin)


def _raw_key(word: bytes) -> bytes | None:
    if re.fullmatch(rb"[0-9a-fA-F]{64}", word):
        return bytes.fromhex(word.decode())
    try:
        raw = base64.b64decode(word, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def raw_key_line(public_bytes: bytes, comment: str = "") -> str:
    """The one-line MelaScreen form of a public key."""
    return f"{RAW_KEY_HEADER} {base64.b64encode(public_bytes).decode('ascii')}" + (f" {comment}" if comment else "")


def read_public_key(path: str | Path) -> TrustedKey:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_KEY_BYTES:
            raise BundleError("too large to be a public key file", str(p))
        data = p.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read the public key file ({exc.strerror or exc})", str(p)) from None
    return public_key_from_bytes(data, str(p))


def _shown(p: Path | str) -> str:
    """A path for a warning: control characters escaped (a file name must not drive the user's terminal)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(p))


def _writable_by_others(p: Path, allow_sticky: bool = False, bits: int = 0o022) -> str | None:
    """Why `p` must not be trusted (group or others may write it, as ssh refuses), or None. Not on Windows,
    whose permissions os.stat does not show."""
    if os.name == "nt":
        return None
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    if mode & bits and not (allow_sticky and mode & stat.S_ISVTX):
        who = "group and others" if mode & 0o022 == 0o022 else ("group" if mode & 0o020 else "others")
        return f"is writable by {who} (mode {stat.S_IMODE(mode):04o}); make it writable by its owner only"
    return None


@dataclass(frozen=True)
class KeyScan:
    """The keys found in one place, and why any file or folder there was passed over."""

    keys: tuple[TrustedKey, ...] = ()
    warnings: tuple[str, ...] = ()


def scan_keys(location: str | Path, named: bool = False, bits: int = 0o022) -> KeyScan:
    """The keys of one key file, or of every *.pub file in a key folder, checked like ssh checks its keys.

    A folder or file writable by group or others is ignored with a warning (anyone who can write there
    could make their bundle "signed"); in a folder, a file that is no key is skipped with a warning. A
    location the user `named` (--trust-key, settings, MELASCREEN_TRUSTED_KEYS) must exist and, if a file,
    must be a key: otherwise BundleError. An unnamed folder that does not exist holds no keys. `bits`: the
    mode bits that disqualify (group and others; the project's own folder: others only, see Trust.default)."""
    p = Path(location)
    if p.is_dir():
        if (why := _writable_by_others(p, bits=bits)) is not None:
            return KeyScan((), (f"trusted keys in {_shown(p)} ignored: the folder {why}",))
        keys, warnings = [], []
        for f in sorted(p.glob("*.pub")):
            if not f.is_file():
                continue
            if (why := _writable_by_others(f, bits=bits)) is not None:
                warnings.append(f"trusted key {_shown(f)} ignored: it {why}")
                continue
            try:
                keys.append(read_public_key(f))
            except BundleError as exc:
                warnings.append(f"trusted key {_shown(f)} skipped: {_shown(str(exc).removeprefix(f'{f}: '))}")
        return KeyScan(tuple(keys), tuple(warnings))
    if p.exists():
        for target, what, sticky_ok in ((p, "it", False), (p.parent, "its folder", True)):
            if (why := _writable_by_others(target, allow_sticky=sticky_ok, bits=bits)) is not None:
                return KeyScan((), (f"trusted key {_shown(p)} ignored: {what} {why}",))
        return KeyScan((read_public_key(p),))
    if named:
        raise BundleError(
            f"trusted key file or folder not found; check the path (--trust-key, settings or {TRUSTED_KEYS_ENV})",
            str(p),
        )
    return KeyScan()


def keys_in(location: str | Path) -> tuple[TrustedKey, ...]:
    """The keys of one named file or folder (see `scan_keys`; warnings are dropped here)."""
    return scan_keys(location, named=True).keys


@dataclass(frozen=True)
class Trust:
    """Which signers a load accepts, whether an unsigned bundle is allowed (research only), and the
    warnings about key files and folders that were passed over (for the command line and the app to show)."""

    keys: tuple[TrustedKey, ...] = ()
    allow_unsigned: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def default(cls, extra_keys=(), allow_unsigned: bool = False) -> Trust:
        """The project's publisher keys, the user's key folder, MELASCREEN_TRUSTED_KEYS and `extra_keys`
        (files or folders from the app's settings or the command line). Each warning is also logged."""
        # The project's folder ships with the code: whoever may write it may write the code, so only a
        # world-writable one is refused there (a clone made under umask 002 is group-writable and fine).
        scans = [scan_keys(project_keys_dir(), bits=0o002), scan_keys(user_trusted_keys_dir())]
        for loc in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep):
            if loc.strip():  # named by the user: a missing path is an error, not silence
                scans.append(scan_keys(loc.strip(), named=True))
        scans.extend(scan_keys(loc, named=True) for loc in extra_keys)
        keys: dict[str, TrustedKey] = {}
        warnings: list[str] = []
        for scan in scans:
            for k in scan.keys:
                keys.setdefault(k.key_id, k)
            warnings.extend(w for w in scan.warnings if w not in warnings)
        for w in warnings:
            log.warning("warning: %s", w)
        return cls(tuple(keys.values()), allow_unsigned, tuple(warnings))

    def find(self, wanted_key_id: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.key_id == wanted_key_id), None)


def trust_of(private_key: Ed25519PrivateKey) -> Trust:
    """Trust exactly the public half of `private_key` (export re-reads what it just signed)."""
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Trust((TrustedKey(key_id(raw), raw, "the signing key"),))


def canonical_bytes(files: dict[str, str]) -> bytes:
    """The exact bytes that are signed: format and file list, sorted keys, no whitespace, ASCII."""
    doc = {"files": dict(sorted(files.items())), "format": SIGNATURE_FORMAT}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign_files(files: dict[str, str], private_key: Ed25519PrivateKey) -> dict:
    """The signature document for a file list {name: sha256}."""
    public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = private_key.sign(canonical_bytes(files))
    return {
        "format": SIGNATURE_FORMAT,
        "files": dict(sorted(files.items())),
        "key_id": key_id(public),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


@dataclass(frozen=True)
class SignatureDoc:
    files: dict[str, str]
    key_id: str
    signature: bytes


def parse_signature(data: bytes, source: str) -> SignatureDoc:
    """A signature.json read strictly; any flaw is a BundleError naming the file."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise BundleError("signature file is too large", source)
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"signature file is not valid JSON ({type(exc).__name__})", source) from None
    if not isinstance(doc, dict) or set(doc) != {"format", "files", "key_id", "signature"}:
        raise BundleError("signature file needs exactly: format, files, key_id, signature", source)
    if doc["format"] != SIGNATURE_FORMAT:
        raise BundleError(f"unknown signature format {str(doc['format'])[:40]!r}", source)
    files = doc["files"]
    if not isinstance(files, dict) or not files or len(files) > 256:
        raise BundleError("signature file lists no files (or too many)", source)
    for name, digest in files.items():
        if Path(name).name != name or name in ("", ".", "..", SIGNATURE) or len(name) > 128:
            raise BundleError(f"signature lists {name[:60]!r}, which is not a plain file name of the bundle", source)
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise BundleError(f"signature entry for {name} is not a lowercase SHA-256", source)
    kid = doc["key_id"]
    if not isinstance(kid, str) or not re.fullmatch(rf"[0-9a-f]{{{KEY_ID_HEX}}}", kid):
        raise BundleError("signature key_id is malformed", source)
    try:
        sig = base64.b64decode(str(doc["signature"]), validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    if len(sig) != 64:
        raise BundleError("signature is not a base64 Ed25519 signature", source)
    return SignatureDoc(dict(files), kid, sig)


def check_signature(doc: SignatureDoc, trust: Trust, source: str) -> TrustedKey:
    """The trusted key that made `doc`, or BundleError saying why none did."""
    key = trust.find(doc.key_id)
    if key is None:
        raise BundleError(
            f"signed by key {doc.key_id}, which is not trusted here; add its public key to the trusted keys "
            "(settings, --trust-key or the trusted_keys folder) if you trust its publisher",
            source,
        )
    if not key.verify(doc.signature, canonical_bytes(doc.files)):
        raise BundleError("the signature does not match the file list: signature.json was altered", source)
    return key


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_private_key(path: str | Path, password: bytes | None = None) -> Ed25519PrivateKey:
    p = Path(path)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=password)
    except OSError as exc:
        raise BundleError(f"cannot read the signing key ({exc.strerror or exc})", str(p)) from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleError(f"not a usable PEM private key ({exc})", str(p)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("the signing key is not an Ed25519 key", str(p))
    return key


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")
