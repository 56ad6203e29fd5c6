"""The model bundle: the one contract between research and clinic.

A folder (or a .zip of one) holding `manifest.json`, one ONNX file per ensemble member and
`model_card.md`. `export/` writes bundles with `write_bundle`, `core` reads them with
`load_bundle`; both go through the dataclasses here, so the schema lives in one place.

Each member ONNX file takes `image` (float32, N x 3 x S x S, normalised with the manifest's
mean/std) and returns `logits` (N x K) and `cam` (N x K x h x w: the ReLU'd Grad-CAM of every
class on the last feature map, not normalised).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from .errors import BundleError
from .gate import GateSettings
from .preprocess import PreprocessParams

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MODEL_CARD = "model_card.md"
INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "cam")
DEFAULT_TTA = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270", "zoom")
# The evaluation step writes test-split metrics between these markers of model_card.md.
EVALUATION_BEGIN = "<!-- EVALUATION:BEGIN (written by the evaluation step; test split only) -->"
EVALUATION_END = "<!-- EVALUATION:END -->"
DISCLAIMER = (
    "MelaScreen is a research tool, not an approved medical device. Its output is not a diagnosis "
    "and must not replace examination by a qualified clinician."
)


@dataclass(frozen=True)
class Member:
    file: str
    sha256: str
    arch: str
    seed: int
    temperature: float = 1.0  # fitted on the validation split; logits are divided by it
    val_metrics: dict = field(default_factory=dict)

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
    def from_dict(cls, d: dict) -> "Member":
        return cls(
            file=str(d["file"]),
            sha256=str(d["sha256"]).lower(),
            arch=str(d.get("arch", "unknown")),
            seed=int(d.get("seed", 0)),
            temperature=float(d.get("temperature", 1.0)),
            val_metrics=dict(d.get("val_metrics", {})),
        )


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    class_names: tuple[str, ...]
    positive_class: str  # the class whose probability is p(melanoma)
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    members: tuple[Member, ...]
    preprocessing: PreprocessParams = field(default_factory=PreprocessParams)
    tta_views: tuple[str, ...] = DEFAULT_TTA
    gate: GateSettings = field(default_factory=GateSettings)
    task: str = "dermoscopy-melanoma"
    created: str = ""
    provenance: dict = field(default_factory=dict)
    disclaimer: str = DISCLAIMER
    schema_version: int = SCHEMA_VERSION

    @property
    def positive_index(self) -> int:
        return self.class_names.index(self.positive_class)

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "task": self.task,
            "class_names": list(self.class_names),
            "positive_class": self.positive_class,
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "preprocessing": self.preprocessing.to_dict(),
            "tta_views": list(self.tta_views),
            "gate": self.gate.to_dict(),
            "members": [m.to_dict() for m in self.members],
            "provenance": self.provenance,
            "disclaimer": self.disclaimer,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = MANIFEST) -> "Manifest":
        try:
            version = int(d["schema_version"])
        except (KeyError, TypeError, ValueError):
            raise BundleError("manifest has no valid schema_version; this is not a MelaScreen bundle", source)
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"schema_version {version} is not supported (this MelaScreen reads version {SCHEMA_VERSION}); "
                "use a matching MelaScreen release or re-export the bundle",
                source,
            )
        try:
            m = cls(
                schema_version=version,
                name=str(d["name"]),
                version=str(d["version"]),
                created=str(d.get("created", "")),
                task=str(d.get("task", "dermoscopy-melanoma")),
                class_names=tuple(str(c) for c in d["class_names"]),
                positive_class=str(d["positive_class"]),
                input_size=int(d["input_size"]),
                mean=tuple(float(x) for x in d["mean"]),
                std=tuple(float(x) for x in d["std"]),
                preprocessing=PreprocessParams.from_dict(d.get("preprocessing", {})),
                tta_views=tuple(str(v) for v in d.get("tta_views", DEFAULT_TTA)),
                gate=GateSettings.from_dict(d.get("gate", {})),
                members=tuple(Member.from_dict(x) for x in d["members"]),
                provenance=dict(d.get("provenance", {})),
                disclaimer=str(d.get("disclaimer", DISCLAIMER)),
            )
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"manifest is incomplete or malformed ({type(exc).__name__}: {exc})", source)
        m.validate(source)
        return m

    def validate(self, source: str = MANIFEST) -> None:
        from .tta import VIEWS  # local: tta is a sibling leaf module

        problems = []
        if self.positive_class not in self.class_names:
            problems.append(f"positive_class {self.positive_class!r} is not among class_names")
        if not self.members:
            problems.append("the bundle lists no members")
        if self.input_size < 32 or self.input_size > 1024:
            problems.append(f"input_size {self.input_size} is out of range")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            problems.append("mean and std need three values each, std > 0")
        bad_views = [v for v in self.tta_views if v not in VIEWS]
        if bad_views or not self.tta_views:
            problems.append(f"unknown TTA views {bad_views}; known: {sorted(VIEWS)}")
        for mem in self.members:
            if mem.temperature <= 0:
                problems.append(f"member {mem.file} has temperature {mem.temperature} <= 0")
            if Path(mem.file).name != mem.file:
                problems.append(f"member file {mem.file!r} must be a plain file name inside the bundle")
        if problems:
            raise BundleError("; ".join(problems), source)


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle. `root` is the folder the files live in."""

    root: Path
    manifest: Manifest
    model_card: str = ""
    source: Path | None = None  # the .zip it came from, if any

    def member_path(self, member: Member) -> Path:
        return self.root / member.file

    @property
    def fingerprint(self) -> str:
        """Identifies the exact models: results are only reused for the same fingerprint."""
        h = hashlib.sha256()
        for m in self.manifest.members:
            h.update(m.sha256.encode())
        h.update(json.dumps(self.manifest.preprocessing.to_dict(), sort_keys=True).encode())
        h.update(",".join(self.manifest.tta_views).encode())
        h.update(",".join(f"{m.temperature:.6g}" for m in self.manifest.members).encode())
        return h.hexdigest()[:16]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _unzip(zpath: Path) -> Path:
    try:
        with zipfile.ZipFile(zpath) as zf:
            names = zf.namelist()
            for n in names:
                if n.startswith("/") or ".." in Path(n).parts:
                    raise BundleError(f"zip entry {n!r} points outside the bundle", str(zpath))
            target = Path(tempfile.mkdtemp(prefix="melascreen-bundle-"))
            zf.extractall(target)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"not a readable zip file ({exc})", str(zpath))
    # A zip may hold the files at its top level or inside one folder.
    if not (target / MANIFEST).exists():
        subs = [p for p in target.iterdir() if p.is_dir()]
        if len(subs) == 1 and (subs[0] / MANIFEST).exists():
            return subs[0]
    return target


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle folder or zip; with `verify`, check every member's SHA-256 against the manifest."""
    src = Path(path)
    if not src.exists():
        raise BundleError("model bundle not found; choose an existing bundle folder or .zip", str(src))
    root = _unzip(src) if src.is_file() else src
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"no {MANIFEST} here: this folder is not a MelaScreen model bundle", str(src))
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"manifest is not valid JSON ({exc})", str(mpath))
    if not isinstance(data, dict):
        raise BundleError("manifest is not a JSON object", str(mpath))
    manifest = Manifest.from_dict(data, str(mpath))
    for m in manifest.members:
        f = root / m.file
        if not f.is_file():
            raise BundleError("member model file listed in the manifest is missing", str(f))
        if verify:
            actual = sha256_file(f)
            if actual != m.sha256:
                raise BundleError(
                    f"checksum mismatch (expected {m.sha256[:12]}..., found {actual[:12]}...): the file is "
                    "damaged or was changed; reinstall or re-export the bundle",
                    str(f),
                )
    card = (root / MODEL_CARD).read_text(encoding="utf-8") if (root / MODEL_CARD).is_file() else ""
    return Bundle(root=root, manifest=manifest, model_card=card, source=src if src.is_file() else None)


def write_bundle(target: str | Path, manifest: Manifest, member_files: dict[str, Path], model_card: str) -> Bundle:
    """Write a bundle folder: copy the member files in, fill in their checksums, write manifest and card."""
    import shutil

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
    (out / MANIFEST).write_text(json.dumps(final.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / MODEL_CARD).write_text(model_card, encoding="utf-8")
    return load_bundle(out)


def default_bundle_path() -> Path:
    """The bundle that ships inside the project (and inside the installed app)."""
    return Path(__file__).resolve().parent / "models" / "default"
