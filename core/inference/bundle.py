"""The model bundle: the one contract between research and clinic.

A folder (or a .zip of one, core/inference/unzip.py) holding `manifest.json` (core/inference/manifest.py),
one ONNX file per ensemble member, `model_card.md` and `signature.json` (an Ed25519 signature over the
SHA-256 of every other file, see core/inference/signing.py). `core` reads bundles with `load_bundle`;
`export/` writes them with `write_bundle` and signs them with `sign_bundle`. Loading checks the signature
before the manifest is even parsed, then every member's checksum; a loaded `Bundle` hands out only bytes
it has verified.

Each member ONNX file takes `image` (float32, N x 3 x S x S, normalised with the manifest's
mean/std) and returns `logits` (N x K) and `cam` (N x K x h x w: the ReLU'd Grad-CAM of every
class on the last feature map, not normalised).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from core.common.errors import BundleError
from core.inference.digests import sha256_file
from core.inference.manifest import MANIFEST, MODEL_CARD, Manifest, Member, parse_manifest
from core.inference.signing import (
    SIGNATURE,
    Trust,
    TrustedKey,
    canonical_bytes,
    check_signature,
    parse_signature,
    sign_files,
    trust_of,
)
from core.inference.unzip import unzip

# Optional files a bundle may carry beside its members (core.inference.similar); signed with it when present.
OPTIONAL_FILES = ("similar-encoder.onnx", "similar-index.npz")
INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "cam")
MAX_MANIFEST_BYTES = 4 << 20
MAX_MEMBER_BYTES = 2 << 30  # read into memory whole to be hashed and run (the shipped members are ~10 MB)
MAX_CARD_BYTES = 4 << 20
# Until the lead signs core/models/default with the publisher key (core/trusted_keys/), the default
# bundle loads as an unsigned bundle (and says so). Set True once it is signed: then it is held to the
# same rule as every other bundle.
DEFAULT_BUNDLE_SIGNED = True
# The evaluation step writes test-split metrics between these markers of model_card.md.
EVALUATION_BEGIN = "<!-- EVALUATION:BEGIN (written by the evaluation step; test split only) -->"
EVALUATION_END = "<!-- EVALUATION:END -->"


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle. `root` is the folder the files live in."""

    root: Path
    manifest: Manifest
    model_card: str = ""
    source: Path | None = None  # the .zip it came from, if any
    files: tuple[tuple[str, str], ...] = ()  # (name, sha256) of every file of the bundle, sorted
    signer: TrustedKey | None = None  # the trusted key that signed it; None: unsigned (allowed by the caller)
    trust_note: str = ""  # for an unsigned bundle: why it is unsigned
    trust_warnings: tuple[str, ...] = ()  # key files or folders passed over when the trust was read (Trust.warnings)

    def member_path(self, member: Member) -> Path:
        return self.root / member.file

    def member_sha256(self, member: Member) -> str:
        """The SHA-256 this bundle stands for: the signed file list's when signed, else the manifest's."""
        return dict(self.files).get(member.file, member.sha256)

    def read_member(self, member: Member) -> bytes:
        """The member file's bytes, read once and checked against `member_sha256`: engines are built from
        exactly these bytes, so the model that runs is the model that was verified (a file changed on disk
        after `load_bundle` is refused here, never run under the bundle's identity)."""
        return self._read_checked(self.member_path(member), self.member_sha256(member))

    def has_file(self, name: str) -> bool:
        """Whether `name` is one of the bundle's verified (signed, when signed) files."""
        return name in dict(self.files)

    def read_file(self, name: str) -> bytes:
        """A listed file's bytes (e.g. OPTIONAL_FILES), read once and checked against the verified SHA-256."""
        expected = dict(self.files).get(name)
        if expected is None:
            raise BundleError(f"{name} is not one of the bundle's verified files", str(self.root / name))
        return self._read_checked(self.root / name, expected)

    def _read_checked(self, path: Path, expected: str) -> bytes:
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_MEMBER_BYTES:
                    raise BundleError(f"member file is larger than {MAX_MEMBER_BYTES >> 30} GB", str(path))
                data = f.read(MAX_MEMBER_BYTES + 1)
        except OSError as exc:
            raise BundleError(f"cannot read the member file ({exc.strerror or exc})", str(path)) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise BundleError(
                f"changed since the bundle was verified (SHA-256 {actual[:12]}..., verified {expected[:12]}...); "
                "refused. Load the bundle again, or reinstall it if the file was not meant to change",
                str(path),
            )
        return data

    @property
    def unsigned(self) -> bool:
        return self.signer is None

    @property
    def signer_id(self) -> str | None:
        return self.signer.key_id if self.signer is not None else None

    @property
    def identity(self) -> str:
        """SHA-256 over every file of the bundle (manifest, model card, members): results are reused only
        for the same identity, so nothing that can change an output is left out."""
        if not self.files:  # built by hand, not loaded: at least everything the manifest says
            return hashlib.sha256(json.dumps(self.manifest.to_dict(), sort_keys=True).encode()).hexdigest()
        return hashlib.sha256(canonical_bytes(dict(self.files))).hexdigest()

    @property
    def trust_text(self) -> str:
        """One line for screens, reports and the status bar."""
        if self.signer is None:
            return f"unsigned bundle ({self.trust_note})" if self.trust_note else "unsigned bundle"
        return f"signed by key {self.signer.key_id} ({Path(self.signer.origin).name})"


# ---------------------------------------------------------------------------------------------- loading


def _read_small(path: Path, limit: int, what: str) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise BundleError(f"{what} is larger than {limit >> 20} MB; not a MelaScreen {what}", str(path))
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read the {what} ({exc.strerror or exc})", str(path)) from None


@dataclass(frozen=True)
class _Contents:
    manifest: Manifest
    card: str
    files: dict[str, str]  # name -> sha256: manifest, card (if any), members (as the manifest states them)


def _read_contents(root: Path, source: str, verify: bool, expected: dict[str, str] | None) -> _Contents:
    """Manifest, model card and member checksums. `expected`: the signed file list, checked first."""
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"no {MANIFEST} here: this folder is not a MelaScreen model bundle", source)
    mbytes = _read_small(mpath, MAX_MANIFEST_BYTES, "manifest")
    files = {MANIFEST: hashlib.sha256(mbytes).hexdigest()}
    if expected is not None:
        # Before the manifest is even parsed: a changed manifest changes thresholds, classes, everything.
        _match(MANIFEST, files[MANIFEST], expected, mpath)
    manifest = parse_manifest(mbytes, mpath)
    cpath = root / MODEL_CARD
    card = ""
    if cpath.is_file():
        cbytes = _read_small(cpath, MAX_CARD_BYTES, "model card")
        files[MODEL_CARD] = hashlib.sha256(cbytes).hexdigest()
        if expected is not None:
            _match(MODEL_CARD, files[MODEL_CARD], expected, cpath)
        card = cbytes.decode("utf-8", errors="replace")
    for m in manifest.members:
        f = root / m.file
        if not f.is_file():
            raise BundleError("member model file listed in the manifest is missing", str(f))
        if expected is not None:
            _match(m.file, m.sha256, expected, f)
        if verify:
            try:
                actual = sha256_file(f)
            except OSError as exc:
                raise BundleError(f"cannot read the member file ({exc.strerror or exc})", str(f)) from None
            if actual != m.sha256:
                raise BundleError(
                    f"checksum mismatch (expected {m.sha256[:12]}..., found {actual[:12]}...): the file is "
                    "damaged or was changed; reinstall or re-export the bundle",
                    str(f),
                )
        files[m.file] = m.sha256
    return _Contents(manifest, card, files)


def _match(name: str, actual: str, expected: dict[str, str], path: Path) -> None:
    if name not in expected:
        raise BundleError(f"{name} is not covered by the bundle's signature; refused", str(path))
    if expected[name] != actual:
        raise BundleError(
            f"{name} was changed after the bundle was signed (its SHA-256 differs from the signature's); refused. "
            "Reinstall the bundle, or for research remove signature.json and allow unsigned bundles",
            str(path),
        )


def _is_default(root: Path) -> bool:
    try:
        return root.resolve() == default_bundle_path().resolve()
    except OSError:
        return False


def _load_folder(root: Path, src: Path, verify: bool, trust: Trust) -> Bundle:
    spath = root / SIGNATURE
    if spath.is_file() and not trust.allow_unsigned:
        doc = parse_signature(_read_small(spath, 1 << 20, "signature"), str(spath))
        signer = check_signature(doc, trust, str(spath))
        contents = _read_contents(root, str(src), verify, doc.files)
        _check_listed_extras(root, doc.files, contents.files, verify)
        return _bundle(root, src, contents, doc.files, signer, "")
    contents = _read_contents(root, str(src), verify, None)
    if spath.is_file():  # unsigned bundles allowed: use the signature if it holds, else say why not
        try:
            doc = parse_signature(_read_small(spath, 1 << 20, "signature"), str(spath))
            signer = check_signature(doc, trust, str(spath))
            for name, digest in contents.files.items():
                _match(name, digest, doc.files, root / name)
            _check_listed_extras(root, doc.files, contents.files, verify)
        except BundleError as exc:
            reason = str(exc).removeprefix(f"{exc.file}: " if exc.file else "").split(";")[0]
            return _bundle(root, src, contents, contents.files, None, f"signature not accepted: {reason}")
        return _bundle(root, src, contents, doc.files, signer, "")
    if trust.allow_unsigned:
        note = "no signature; unsigned bundles allowed"
    elif not DEFAULT_BUNDLE_SIGNED and _is_default(root):
        note = "the default bundle is not signed yet"
    else:
        raise BundleError(
            f"unsigned bundle (no {SIGNATURE}): refused. Sign it with `python -m export.sign`, or allow "
            "unsigned bundles explicitly (research only)",
            str(src),
        )
    return _bundle(root, src, contents, contents.files, None, note)


def _check_listed_extras(root: Path, listed: dict[str, str], in_use: dict[str, str], verify: bool) -> None:
    """Files the signature lists beyond the ones in use must still be there and intact."""
    for name, digest in listed.items():
        if name in in_use:
            continue
        f = root / name
        if not f.is_file():
            raise BundleError(f"{name} is listed in the signature but missing", str(f))
        if verify and sha256_file(f) != digest:
            raise BundleError(f"{name} was changed after the bundle was signed; refused", str(f))


def _bundle(root, src, contents: _Contents, files: dict, signer, note: str) -> Bundle:
    return Bundle(
        root=root,
        manifest=contents.manifest,
        model_card=contents.card,
        source=src if src.is_file() else None,
        files=tuple(sorted(files.items())),
        signer=signer,
        trust_note=note,
    )


def load_bundle(
    path: str | Path, verify: bool = True, trust: Trust | None = None, allow_unsigned: bool = False
) -> Bundle:
    """Read a bundle folder or zip, strictly.

    The signature is checked against `trust` (default: the project's publisher keys and the user's
    trusted keys); an unsigned bundle, or one whose signer is not trusted, is refused unless
    `allow_unsigned` (or `trust.allow_unsigned`): then `Bundle.unsigned` is True and says why. Every
    file the signature lists must match it. With `verify`, every member's SHA-256 is recomputed
    (without, the checksums are taken from the manifest). Every problem is a BundleError naming the file.
    """
    trust = trust or Trust.default()
    if allow_unsigned and not trust.allow_unsigned:
        trust = replace(trust, allow_unsigned=True)
    src = Path(path)
    if not src.exists():
        raise BundleError("model bundle not found; choose an existing bundle folder or .zip", str(src))
    if not src.is_file():
        bundle = _load_folder(src, src, verify, trust)
    else:
        root, reused = unzip(src)
        try:
            bundle = _load_folder(root, src, verify, trust)
        except BundleError:
            if not reused:
                raise
            # The cached extraction may have been damaged since; one fresh extraction, then the verdict stands.
            bundle = _load_folder(unzip(src, fresh=True)[0], src, verify, trust)
    return replace(bundle, trust_warnings=trust.warnings) if trust.warnings else bundle


def bundle_files(root: Path) -> dict[str, str]:
    """{name: sha256} of every file a signature must cover, each hashed now (signing trusts nothing)."""
    root = Path(root)
    files = dict(_read_contents(root, str(root), True, None).files)
    for name in OPTIONAL_FILES:
        if (root / name).is_file():
            files[name] = sha256_file(root / name)
    return files


def sign_bundle(root: str | Path, private_key) -> dict:
    """(Re-)write `signature.json` of a bundle folder; the bundle is read strictly first. Returns the document."""
    root = Path(root)
    doc = sign_files(bundle_files(root), private_key)
    tmp = root / f".{SIGNATURE}.tmp"
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, root / SIGNATURE)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"cannot write the signature ({exc.strerror or exc})", str(root / SIGNATURE)) from None
    return doc


def write_bundle(
    target: str | Path, manifest: Manifest, member_files: dict[str, Path], model_card: str, sign_key=None
) -> Bundle:
    """Write a bundle folder: copy the member files in, fill in their checksums, write manifest and card.

    With `sign_key` (an Ed25519 private key) the bundle is signed; without, any old signature is removed
    (it would no longer match) and the bundle is unsigned.
    """
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    members = []
    for m in manifest.members:
        src = Path(member_files[m.file])
        dst = out / m.file
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        members.append(replace(m, sha256=sha256_file(dst)))
    created = manifest.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    final = replace(manifest, members=tuple(members), created=created)
    final.validate(str(out / MANIFEST))
    text = json.dumps(final.to_dict(), indent=2) + "\n"
    Manifest.from_dict(json.loads(text), str(out / MANIFEST))  # export writes nothing core would refuse
    (out / SIGNATURE).unlink(missing_ok=True)
    (out / MANIFEST).write_text(text, encoding="utf-8")
    (out / MODEL_CARD).write_text(model_card, encoding="utf-8")
    if sign_key is None:
        return load_bundle(out, allow_unsigned=True)
    sign_bundle(out, sign_key)
    return load_bundle(out, trust=trust_of(sign_key))


def default_bundle_path() -> Path:
    """The bundle that ships inside the project (and inside the installed app)."""
    return Path(__file__).resolve().parent.parent / "models" / "default"
