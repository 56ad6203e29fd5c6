"""The bundle's manifest: what every member is, how images are prepared, and the gate's settings.

`Manifest` and `Member` declare every field with its JSON rule (core/common/schema.py) and are read
strictly: a value that could change an outcome is never guessed or coerced. A manifest of an older
schema is upgraded once, as it is read (core/inference/upgrade.py); everything after that sees the
current schema only. `export/` builds manifests from these dataclasses and `core` reads them back through
them, so the schema lives in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.common.errors import BundleError
from core.common.schema import SchemaError, read_fields, rule
from core.decision.cascade import CascadeMargins
from core.decision.gate import MALIGNANCY, MELANOMA_ONLY, GateSettings, RiskScope
from core.decision.intake_check import IntakeCheck
from core.imaging.preprocess import PreprocessParams
from core.imaging.tta import VIEWS
from core.inference.signing import SIGNATURE
from core.inference.upgrade import SCHEMA_VERSION, upgrade

MANIFEST = "manifest.json"
MODEL_CARD = "model_card.md"
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
RESERVED_NAMES = (MANIFEST, MODEL_CARD, SIGNATURE)
_FILE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_CLASS_NAME = r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}"
# POSIX or Windows absolute, UNC, home-relative (~/, ~user/) or a file: URL.
_ABSOLUTE_PATH = re.compile(r"\s*(/|\\|~[A-Za-z0-9_.-]*[/\\]|[A-Za-z]:[\\/]|file:)", re.IGNORECASE)
PROVENANCE_MAX_CLIMB = 1
DISCLAIMER = (
    "MelaScreen is a research tool, not an approved medical device. Its output is not a diagnosis "
    "and must not replace examination by a qualified clinician."
)


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
        """Strict: every field checked for type and range, unknown keys refused; BundleError says which. A
        manifest of an older schema is upgraded first (core.inference.upgrade)."""
        d = upgrade(d, source)
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
        problems.extend(self._member_problems())
        if (where := provenance_path_problem(self.provenance)) is not None:
            problems.append(where)
        problems.extend(self.cascade.check_against(self) if self.cascade is not None else ())
        if problems:
            raise BundleError("; ".join(problems), source)

    def _member_problems(self) -> list[str]:
        """Problems of the members' files and temperatures, in the order they are listed."""
        problems = []
        files = [mem.file for mem in self.members]
        if len(set(files)) != len(files):
            problems.append("two members share one file")
        lo, hi = TEMPERATURE_RANGE
        for mem in self.members:
            if not lo <= mem.temperature <= hi:
                problems.append(f"member {mem.file} has temperature {mem.temperature:g} outside [{lo:g}, {hi:g}]")
            if Path(mem.file).name != mem.file or mem.file in RESERVED_NAMES or mem.file in ("", ".", ".."):
                problems.append(f"member file {mem.file!r} must be a plain file name inside the bundle")
        return problems


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


def parse_manifest(data: bytes, mpath: Path) -> Manifest:
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
