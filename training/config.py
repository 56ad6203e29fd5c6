"""Training configuration: frozen dataclasses loaded from YAML, with dotted command-line overrides
(`--set phase3.epochs=2`). The resolved configuration is saved beside the run as config.yaml."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from core.common.errors import MelaScreenError
from evalkit.labelled import DEFAULT_DATA_DIR, PROJECT_ROOT

# Data, runs and caches sit beside the project (../shared, ../runs, ../cache), as on the
# development and CI machines; configs and environment variables move them.
PROJECT_PARENT = PROJECT_ROOT.parent


class ConfigError(MelaScreenError, ValueError):
    """The training configuration is invalid; the message names the key."""


@dataclass(frozen=True)
class SourceConfig:
    """A further labelled source trained beside the primary one (HAM10000), split by its own parts.

    Its images carry only the diagnoses it was labelled with (ISIC 2017: mel, nv, bkl): the loss of
    its images is a softmax over those classes only, so it never teaches "not a BCC" from an image
    nobody checked for BCC."""

    name: str
    labels_csv: str
    images_dir: str
    split_column: str = "challenge_split"
    # Per-class cap of this source in one balanced epoch (None: the run's max_per_class).
    max_per_class: int | None = None


@dataclass(frozen=True)
class DataConfig:
    labels_csv: str = str(DEFAULT_DATA_DIR / "labels.csv")
    images_dir: str = str(DEFAULT_DATA_DIR / "images")
    input_size: int = 192
    # None: the model's own normalisation (see training.models.model_mean_std).
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    # core.imaging.preprocess.PreprocessParams fields; empty means the defaults; preprocess: false skips it.
    preprocess: bool = True
    preprocess_params: dict = field(default_factory=dict)
    cache_dir: str | None = None  # None: $MELASCREEN_CACHE or ../cache
    cache_workers: int = 2
    split_file: str | None = None  # reuse an existing split CSV
    split_seed: int = 20240607
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    max_images: int | None = None  # first N images only (tests, smoke runs)
    # Augmentation of image batches: "flips" (h/v flips), "dihedral" (8 views) or "rich" (dihedral +
    # random-resized crop + brightness/contrast/saturation jitter; see training.data).
    augment: str = "flips"
    # Class-balanced undersampling: each epoch keeps at most this many training images per class
    # (per class and source where there are several sources).
    max_per_class: int | None = None
    name: str = "HAM10000"  # the primary source, as reports and the manifest name it
    extra_sources: tuple[SourceConfig, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "tf_efficientnet_lite0"
    # None: the arch's built-in weights source (lite0: the installed efficientnet_lite0 package);
    # "none": random init (tests).
    pretrained_path: str | None = None
    drop_rate: float = 0.2


@dataclass(frozen=True)
class PhaseConfig:
    epochs: int = 0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    # Phases 1 and 2 may train on activations of the frozen part, computed once per flip view.
    cached: bool = False
    # Phase 3: each earlier backbone unit gets lr * layer_decay ** (distance from the head).
    layer_decay: float = 1.0
    # CosineAnnealingWarmRestarts period in epochs; 0 means the phase's epoch count.
    restart_epochs: int = 0
    # Keep every BatchNorm on its running statistics (affine parameters still train). After the
    # cached phases, which ran the frozen prefix in eval mode, switching the prefix to batch
    # statistics shifts every activation the tail was trained on.
    freeze_bn: bool = False


@dataclass(frozen=True)
class LossConfig:
    gamma: float = 2.0
    # Class weights (1/frequency) ** power, normalised to mean 1 over the training images.
    class_weight_power: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str = str(PROJECT_PARENT / "runs" / "default")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    num_threads: int = 2
    channels_last: bool = True
    # The frozen-feature cache's flip views (core.imaging.tta view names).
    cached_views: tuple[str, ...] = ("id", "flip", "flip_rot180", "rot180")
    unfreeze_blocks: int = 3  # phase 2: the last N backbone blocks train
    eval_batch_size: int = 64
    max_steps_per_epoch: int | None = None  # tests
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    phase1: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=10, lr=1e-3, cached=True))
    phase2: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=15, lr=3e-4, cached=True))
    phase3: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=25, lr=1e-4, layer_decay=0.7))

    def phases(self) -> list[tuple[int, PhaseConfig]]:
        return [(1, self.phase1), (2, self.phase2), (3, self.phase3)]

    def cache_root(self) -> Path:
        return Path(self.data.cache_dir or os.environ.get("MELASCREEN_CACHE", str(PROJECT_PARENT / "cache")))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Turn a YAML value into the declared field type (lists become tuples, nested dicts dataclasses)."""
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    origin = getattr(tp, "__origin__", None)
    args = getattr(tp, "__args__", ())
    if value is None:
        if type(None) in args or tp is Any:
            return None
        raise ConfigError(f"{key}: may not be empty")
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, key) for v in value)
    if args and type(None) in args:  # Optional[X]
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(inner, value, key)
    if tp is float and isinstance(value, str):
        try:  # PyYAML reads 3e-4 (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool, dict) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected int, got {value!r}")
    return value


def _build(cls: type, data: dict, prefix: str = "") -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown configuration keys: {sorted(prefix + k for k in unknown)}")
    kwargs = {}
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            # A section given in part keeps the defaults of the keys it leaves out.
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            given = data.get(f.name) or {}
            if not isinstance(given, dict):
                raise ConfigError(f"{prefix + f.name}: expected a mapping, got {given!r}")
            kwargs[f.name] = _coerce(hints[f.name], {**to_dict(default), **given}, prefix + f.name)
        elif f.name in data:
            kwargs[f.name] = _coerce(hints[f.name], data[f.name], prefix + f.name)
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """Plain YAML-friendly structure (tuples become lists)."""
    if is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`a.b.c=value` strings, value parsed as YAML (so 2, 1e-4, [0, 1], null work)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file not found: {p}")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
    data = apply_overrides(data, list(overrides or []))
    return _build(TrainConfig, data)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
