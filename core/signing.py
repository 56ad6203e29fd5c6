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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import BundleError

SIGNATURE = "signature.json"
SIGNATURE_FORMAT = "melascreen-bundle-signature/1"
KEY_ID_HEX = 16
MAX_SIGNATURE_BYTES = 1 << 20
MAX_KEY_BYTES = 16 << 10
TRUSTED_KEYS_ENV = "MELASCREEN_TRUSTED_KEYS"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def project_keys_dir() -> Path:
    """The publisher key(s) committed with MelaScreen (and shipped inside the installed app)."""
    return Path(__file__).resolve().parent / "trusted_keys"


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
    """A public key file: PEM (SubjectPublicKeyInfo), the raw 32 bytes, or those as 64 hex characters."""
    raw: bytes | None = None
    text = data.strip()
    if len(data) == 32:
        raw = data
    elif re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        raw = bytes.fromhex(text.decode())
    elif text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise BundleError(f"not a readable PEM public key ({exc})", origin) from None
        if not isinstance(key, Ed25519PublicKey):
            raise BundleError("not an Ed25519 public key", origin)
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if raw is None:
        raise BundleError("not an Ed25519 public key (expected PEM, 32 raw bytes or 64 hex characters)", origin)
    return TrustedKey(key_id(raw), raw, origin)


def read_public_key(path: str | Path) -> TrustedKey:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_KEY_BYTES:
            raise BundleError("too large to be a public key file", str(p))
        data = p.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read the public key file ({exc.strerror or exc})", str(p)) from None
    return public_key_from_bytes(data, str(p))


def keys_in(location: str | Path) -> tuple[TrustedKey, ...]:
    """The keys of one file, or of every *.pub file in a folder (a missing folder holds none)."""
    p = Path(location)
    if p.is_dir():
        return tuple(read_public_key(f) for f in sorted(p.glob("*.pub")) if f.is_file())
    if p.exists():
        return (read_public_key(p),)
    raise BundleError("trusted key file not found", str(p))


@dataclass(frozen=True)
class Trust:
    """Which signers a load accepts, and whether an unsigned bundle is allowed (research only)."""

    keys: tuple[TrustedKey, ...] = ()
    allow_unsigned: bool = False

    @classmethod
    def default(cls, extra_keys=(), allow_unsigned: bool = False) -> Trust:
        """The project's publisher keys, the user's key folder, MELASCREEN_TRUSTED_KEYS and `extra_keys`
        (files or folders from the app's settings or the command line)."""
        from .paths import user_trusted_keys_dir

        locations: list[str | Path] = [project_keys_dir(), user_trusted_keys_dir()]
        for loc in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep):
            if loc.strip():
                locations.append(loc.strip())
        keys: dict[str, TrustedKey] = {}
        for loc in locations:
            if Path(loc).exists():
                for k in keys_in(loc):
                    keys.setdefault(k.key_id, k)
        for loc in extra_keys:  # named explicitly: a missing file is an error, not silence
            for k in keys_in(loc):
                keys.setdefault(k.key_id, k)
        return cls(tuple(keys.values()), allow_unsigned)

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
