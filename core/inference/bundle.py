"""The model bundle: the one contract between research and clinic.

A folder (or a .zip of one) holding `manifest.json`, one ONNX file per ensemble member,
`model_card.md` and `signature.json` (an Ed25519 signature over the SHA-256 of every other file,
see core/inference/signing.py). `export/` writes bundles with `write_bundle` and signs them with
`sign_bundle`; `core` reads them with `load_bundle`; both go through the dataclasses here, so the
schema lives in one place. Every manifest field is declared with its JSON rule (core/common/schema.py) and
read strictly: a value that could change an outcome is never guessed or coerced.

Each member ONNX file takes `image` (float32, N x 3 x S x S, normalised with the manifest's
mean/std) and returns `logits` (N x K) and `cam` (N x K x h x w: the ReLU'd Grad-CAM of every
class on the last feature map, not normalised).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from core.common.errors import BundleError
from core.common.schema import SchemaError, read_fields, rule
from core.decision.cascade import CascadeMargins
from core.decision.gate import MALIGNANCY, MELANOMA_ONLY, GateSettings, RiskScope
from core.decision.intake_check import IntakeCheck
from core.imaging.preprocess import PreprocessParams
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

SCHEMA_VERSION = 2  # written; READABLE_VERSIONS are read
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
MODEL_CARD = "model_card.md"
# Optional files a bundle may carry beside its members (core.inference.similar); signed with it when present.
OPTIONAL_FILES = ("similar-encoder.onnx", "similar-index.npz")
INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "cam")
DEFAULT_TTA = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270", "zoom")
MAX_MEMBERS = 32
MAX_TTA_VIEWS = 16
MAX_CLASSES = 64
MAX_FITTED_LEVELS = 32
# Values that would distort every result are refused (issue 26): a temperature outside this range makes the
# members' outputs one-hot or flat (export.calibrate fits within the same bounds); a std outside it blows the
# normalised image up or squashes it (pixels are 0..1: ImageNet's std is ~0.22, "no normalisation" is 1).
TEMPERATURE_RANGE = (0.05, 20.0)
STD_RANGE = (0.01, 10.0)
MAX_MANIFEST_BYTES = 4 << 20
MAX_MEMBER_BYTES = 2 << 30  # read into memory whole to be hashed and run (the shipped members are ~10 MB)
MAX_CARD_BYTES = 4 << 20
# Zip bundles: refused before anything is written when they exceed these.
MAX_ZIP_ENTRIES = 256
MAX_ZIP_TOTAL_BYTES = 2 << 30
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per entry over 1 MB
STALE_EXTRACTION_S = 3600
UNUSED_EXTRACTION_S = 30 * 24 * 3600
# Until the lead signs core/models/default with the publisher key (core/trusted_keys/), the default
# bundle loads as an unsigned bundle (and says so). Set True once it is signed: then it is held to the
# same rule as every other bundle.
DEFAULT_BUNDLE_SIGNED = True
RESERVED_NAMES = (MANIFEST, MODEL_CARD, SIGNATURE)
_FILE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_CLASS_NAME = r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}"
# POSIX or Windows absolute, UNC, home-relative (~/, ~user/) or a file: URL.
_ABSOLUTE_PATH = re.compile(r"\s*(/|\\|~[A-Za-z0-9_.-]*[/\\]|[A-Za-z]:[\\/]|file:)", re.IGNORECASE)
PROVENANCE_MAX_CLIMB = 1
# The evaluation step writes test-split metrics between these markers of model_card.md.
EVALUATION_BEGIN = "<!-- EVALUATION:BEGIN (written by the evaluation step; test split only) -->"
EVALUATION_END = "<!-- EVALUATION:END -->"
DISCLAIMER = (
    "MelaScreen is a research tool, not an approved medical device. Its output is not a diagnosis "
    "and must not replace examination by a qualified clinician."
)
MELANOMA_ONLY_NOTE = "melanoma-only gate (bundle written before malignancy triage)"


@dataclass(frozen=True)
class Member:
    file: str = field(metadata=rule("str", pattern=_FILE_NAME, max_len=128))
    sha256: str = field(metadata=rule("str", pattern=r"[0-9a-fA-F]{64}", max_len=64))
    arch: str = field(default="unknown", metadata=rule("str", max_len=100))
    seed: int = field(default=0, metadata=rule("int", lo=0, hi=2**63 - 1))
    # Fitted on the validation split; logits are divided by it.
    temperature: float = field(default=1.0, metadata=rule("float", lo=TEMPERATURE_RANGE[0], hi=TEMPERATURE_RANGE[1]))
    val_metrics: dict = field(default_factory=dict, metadata=rule("json"))

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "arch": self.arch,
            "seed": self.seed,
            "temperature": self.temperature,
            "val_metrics": self.val_metrics,
        }

    @classmethod
    def from_dict(cls, d, where: str = "members[0]") -> Member:
        kwargs = read_fields(cls, d, where)
        kwargs["sha256"] = kwargs["sha256"].lower()
        return cls(**kwargs)


@dataclass(frozen=True)
class Manifest:
    name: str = field(metadata=rule("str", min_items=1))
    version: str = field(metadata=rule("str", min_items=1, max_len=100))
    class_names: tuple[str, ...] = field(
        metadata=rule("str_list", min_items=2, max_items=MAX_CLASSES, pattern=_CLASS_NAME, max_len=64, unique=True)
    )
    positive_class: str = field(metadata=rule("str", max_len=64))  # the class whose probability is p(melanoma)
    input_size: int = field(metadata=rule("int", lo=32, hi=1024))
    mean: tuple[float, float, float] = field(metadata=rule("float_list", min_items=3, max_items=3, lo=0.0, hi=1.0))
    std: tuple[float, float, float] = field(
        metadata=rule("float_list", min_items=3, max_items=3, lo=STD_RANGE[0], hi=STD_RANGE[1])
    )
    members: tuple[Member, ...]
    preprocessing: PreprocessParams = field(default_factory=PreprocessParams)
    tta_views: tuple[str, ...] = field(
        default=DEFAULT_TTA, metadata=rule("str_list", min_items=1, max_items=MAX_TTA_VIEWS, max_len=32, unique=True)
    )
    gate: GateSettings = field(default_factory=GateSettings)
    task: str = field(default="dermoscopy-melanoma", metadata=rule("str", min_items=1, max_len=100))
    created: str = field(default="", metadata=rule("str", max_len=64))
    provenance: dict = field(default_factory=dict, metadata=rule("json"))
    disclaimer: str = field(default=DISCLAIMER, metadata=rule("str", min_items=1, max_len=2000))
    schema_version: int = field(default=SCHEMA_VERSION, metadata=rule("int", lo=1, hi=SCHEMA_VERSION))
    # The classes whose probabilities add up to p(malignant). Empty when constructed: the positive class.
    malignant_classes: tuple[str, ...] = field(
        default=(), metadata=rule("str_list", min_items=1, max_items=MAX_CLASSES, max_len=64, unique=True)
    )
    ood: IntakeCheck | None = None  # the optional intake check (decision/intake_check.py); None: none
    cascade: CascadeMargins | None = None  # stage-1 margins (core/decision/cascade.py); None: always the full ensemble

    def __post_init__(self):
        if not self.malignant_classes:
            object.__setattr__(self, "malignant_classes", (self.positive_class,))

    @property
    def positive_index(self) -> int:
        return self.class_names.index(self.positive_class)

    @property
    def malignant_indices(self) -> tuple[int, ...]:
        return tuple(self.class_names.index(c) for c in self.malignant_classes)

    @property
    def risk_scope(self) -> RiskScope:
        """What the gate's probability is of: melanoma for a bundle written before malignancy triage (its
        malignant classes are just the positive class, after the upgrade), malignancy otherwise."""
        return MELANOMA_ONLY if self.malignant_classes == (self.positive_class,) else MALIGNANCY

    @property
    def melanoma_only_gate(self) -> bool:
        """The bundle predates malignancy triage (schema 1): p(malignant) is p(melanoma)."""
        return self.malignant_classes == (self.positive_class,)

    def to_dict(self) -> dict:
        """Always the current schema: a manifest read from version 1 is written as version 2."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "task": self.task,
            "class_names": list(self.class_names),
            "positive_class": self.positive_class,
            "malignant_classes": list(self.malignant_classes),
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "preprocessing": self.preprocessing.to_dict(),
            "tta_views": list(self.tta_views),
            "gate": self.gate.to_dict(),
            "members": [m.to_dict() for m in self.members],
            "provenance": self.provenance,
            "disclaimer": self.disclaimer,
            **({"ood": self.ood.to_dict()} if self.ood is not None else {}),
            **({"cascade": self.cascade.to_dict()} if self.cascade is not None else {}),
        }

    @classmethod
    def from_dict(cls, d, source: str = MANIFEST) -> Manifest:
        """Strict: every field checked for type and range, unknown keys refused; BundleError says which."""
        if not isinstance(d, dict):
            raise BundleError("manifest is not a JSON object", source)
        version = d.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise BundleError("manifest has no valid schema_version; this is not a MelaScreen bundle", source)
        if version not in READABLE_VERSIONS:
            raise BundleError(
                f"schema_version {version if abs(version) < 10**6 else 'huge'} is not supported (this MelaScreen "
                f"reads versions {', '.join(map(str, READABLE_VERSIONS))}); use a matching MelaScreen release "
                "or re-export the bundle",
                source,
            )
        if version == 1 and "malignant_classes" in d:
            raise BundleError("manifest.malignant_classes needs schema_version 2", source)
        if version >= 2 and "malignant_classes" not in d:
            raise BundleError("manifest.malignant_classes: missing (required from schema_version 2)", source)
        try:
            kwargs = read_fields(cls, d, "manifest", skip=("members", "preprocessing", "gate", "ood", "cascade"))
            raw_members = _members_list(d.get("members"))
            members = tuple(Member.from_dict(x, f"manifest.members[{i}]") for i, x in enumerate(raw_members))
            preprocessing = PreprocessParams.from_dict(d.get("preprocessing", {}), "manifest.preprocessing")
        except SchemaError as exc:
            raise BundleError(str(exc), source) from None
        gate = _read_section(GateSettings, d.get("gate", {}), "gate", source)
        ood = _read_section(IntakeCheck, d["ood"], "ood", source) if "ood" in d else None
        cascade = _read_section(CascadeMargins, d["cascade"], "cascade", source) if "cascade" in d else None
        m = cls(members=members, preprocessing=preprocessing, gate=gate, ood=ood, cascade=cascade, **kwargs)
        m.validate(source)
        return m

    def validate(self, source: str = MANIFEST) -> None:
        """Rules between fields (the per-field rules are checked when a manifest is read)."""
        from core.imaging.tta import VIEWS  # local: tta is a sibling leaf module

        problems = []
        if self.positive_class not in self.class_names:
            problems.append(f"positive_class {self.positive_class!r} is not among class_names")
        unknown = [c for c in self.malignant_classes if c not in self.class_names]
        if unknown:
            problems.append(f"malignant_classes {unknown} are not among class_names")
        if self.positive_class not in self.malignant_classes:
            problems.append(f"positive_class {self.positive_class!r} must be one of the malignant_classes")
        if not self.members:
            problems.append("the bundle lists no members")
        if len(self.members) > MAX_MEMBERS:
            problems.append(f"more than {MAX_MEMBERS} members")
        if not 32 <= self.input_size <= 1024:
            problems.append(f"input_size {self.input_size} is out of range 32..1024")
        lo, hi = STD_RANGE
        if len(self.mean) != 3 or len(self.std) != 3 or any(not lo <= s <= hi for s in self.std):
            problems.append(f"mean and std need three values each, std in [{lo:g}, {hi:g}]")
        bad_views = [v for v in self.tta_views if v not in VIEWS]
        if bad_views or not self.tta_views or len(self.tta_views) > MAX_TTA_VIEWS:
            problems.append(f"tta_views need 1..{MAX_TTA_VIEWS} of {sorted(VIEWS)}; unknown: {bad_views[:5]}")
        files = [mem.file for mem in self.members]
        if len(set(files)) != len(files):
            problems.append("two members share one file")
        for mem in self.members:
            lo, hi = TEMPERATURE_RANGE
            if not lo <= mem.temperature <= hi:
                problems.append(f"member {mem.file} has temperature {mem.temperature:g} outside [{lo:g}, {hi:g}]")
            if Path(mem.file).name != mem.file or mem.file in RESERVED_NAMES or mem.file in ("", ".", ".."):
                problems.append(f"member file {mem.file!r} must be a plain file name inside the bundle")
        if (where := provenance_path_problem(self.provenance)) is not None:
            problems.append(where)
        problems.extend(self.cascade.check_against(self) if self.cascade is not None else ())
        if problems:
            raise BundleError("; ".join(problems), source)


def _path_like_problem(text: str) -> str | None:
    """Why a provenance string that is a path is refused, or None (text that is no path passes)."""
    if _ABSOLUTE_PATH.match(text):
        return "is an absolute path (a bundle must not carry its build machine's folders)"
    depth = 0
    for part in re.split(r"[/\\]", text):
        depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
        if depth < -PROVENANCE_MAX_CLIMB:
            return f"climbs more than {PROVENANCE_MAX_CLIMB} folder above the project with '..'"
    return None


def provenance_path_problem(value, where: str = "manifest.provenance") -> str | None:
    """The first path in free-form provenance that is absolute or climbs out with `..` too far, in words.

    Provenance paths are project-relative (evalkit.labelled.project_relative): the data and runs live
    beside the project, so one `..` is how export writes them ("../shared/data/..."); anything further
    up, or absolute, is refused."""
    stack = [(where, value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}", x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
        elif isinstance(v, str) and (problem := _path_like_problem(v)) is not None:
            where_text = "".join(c if c.isprintable() else "?" for c in path[:120])
            return f"{where_text}: {v[:60]!r} {problem}"
    return None


def _members_list(value) -> list:
    if not isinstance(value, list):
        raise SchemaError(f"manifest.members: must be a list of member objects, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_MEMBERS:
        raise SchemaError(f"manifest.members: needs 1..{MAX_MEMBERS} entries, got {len(value)}")
    return value


def _read_section(cls, raw, name: str, source: str):
    """A section with its own strict reader (the gate: core.decision.gate, the intake check:
    core.decision.intake_check); anything that reader raises becomes a BundleError naming the section."""
    if not isinstance(raw, dict):
        got = type(raw).__name__ if raw is not None else "null"
        raise BundleError(f"manifest.{name}: must be an object, got {got}", source)
    fitted = raw.get("fitted")
    if isinstance(fitted, dict) and len(fitted) > MAX_FITTED_LEVELS:
        raise BundleError(f"manifest.{name}.fitted: more than {MAX_FITTED_LEVELS} confidence levels", source)
    try:
        return cls.from_dict(raw)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BundleError(f"manifest.{name}: {text.removeprefix(f'{name}: ')[:300]}", source) from None


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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- zip bundles


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
    from core.common.paths import make_private_folder

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


def _unzip(zpath: Path, fresh: bool = False) -> tuple[Path, bool]:
    """The extracted folder of a zip bundle (one cache folder per zip SHA-256, extracted once) and
    whether it was reused from an earlier extraction."""
    from core.common.paths import bundle_cache_dir

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
        from core.common.paths import os_error_words

        raise BundleError(  # the real cause: a read-only home is not a full disk
            f"cannot extract the bundle into {bundle_cache_dir()}: {os_error_words(exc)}; or use an extracted "
            "bundle folder",
            str(zpath),
        ) from None
    return _bundle_folder(target), reused


# ---------------------------------------------------------------------------------------------- loading


def _read_small(path: Path, limit: int, what: str) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise BundleError(f"{what} is larger than {limit >> 20} MB; not a MelaScreen {what}", str(path))
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read the {what} ({exc.strerror or exc})", str(path)) from None


def _parse_manifest(data: bytes, mpath: Path) -> Manifest:
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise BundleError("manifest is nested too deeply to be a MelaScreen manifest", str(mpath)) from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise BundleError(f"manifest is not valid JSON ({str(exc).splitlines()[0][:200]})", str(mpath)) from None
    if not isinstance(doc, dict):
        raise BundleError("manifest is not a JSON object", str(mpath))
    return Manifest.from_dict(doc, str(mpath))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number MelaScreen accepts")


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
    manifest = _parse_manifest(mbytes, mpath)
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
        root, reused = _unzip(src)
        try:
            bundle = _load_folder(root, src, verify, trust)
        except BundleError:
            if not reused:
                raise
            # The cached extraction may have been damaged since; one fresh extraction, then the verdict stands.
            bundle = _load_folder(_unzip(src, fresh=True)[0], src, verify, trust)
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
