"""Typed training configuration: dataclasses loaded from YAML with strict key and type checks.

One ``Config`` describes a whole run (model, data, the three phases, loop habits, evaluation). ``load_config``
builds it from a YAML file plus ``--set a.b=value`` overrides; an unknown key fails naming its full path
(``train.lrr``), a mistyped value fails naming the key and the expected type. Nothing here branches on the task:
the task name only selects entries of registries (``supernet.data.tasks.TASKS``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from supernet.data.config import DataConfig


@dataclass
class ModelConfig:
    """``HybridUNet``'s constructor arguments (``HybridUNet(**asdict(cfg.model))``)."""

    inp_channels: int = 3
    out_channels: int = 3
    dim: int = 48
    num_blocks: list[int] = field(default_factory=lambda: [4, 6, 6, 8])
    num_refinement_blocks: int = 4
    heads: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    LayerNorm_type: str = "WithBias"
    ssm: dict = field(default_factory=dict)  # passed through to the SSM block (HybridUNet(ssm=...))


@dataclass
class PhaseConfig:
    """Optimisation settings shared by every phase (AdamW + linear warm-up + cosine decay, per step)."""

    enabled: bool = True
    steps: int = 1000
    lr: float = 3e-4
    lr_min: float = 1e-6
    warmup: int = 0
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    loss: str = "l1"  # key of supernet.training.phases.LOSSES


@dataclass
class TeacherConfig(PhaseConfig):
    """Phase 1: the all-transformer path. ``init``: an official Restormer checkpoint to start from."""

    init: str = ""
    finetune: bool = True  # with ``init``: False loads the weights and skips the training steps


@dataclass
class DistillConfig(PhaseConfig):
    """Phase 2: block-wise distillation of every SSM block from its transformer twin (teacher frozen)."""

    loss: str = "mse"
    inputs: str = "teacher"  # teacher: each SSM block gets its twin's input | student: the all-S chain's | both
    normalize: bool = False  # divide each block's loss by the identity's loss (twin's output vs its input)
    task_weight: float = 0.0  # add task_weight x task loss of the all-S output vs ground truth (0: blocks only)
    task_loss: str = "l1"


@dataclass
class SupernetConfig(PhaseConfig):
    """Phase 3: one random path per step (uniform per gene), optional sandwich and distillation term."""

    granularity: str = "stage"
    p_transformer: float = 0.5
    sandwich: bool = False  # also train all-T and all-S in the same step
    distill_weight: float = 0.0  # L1 between the path's output and the frozen post-distillation all-T output
    fixed_arch: str = ""  # train this one path instead of random ones (ablations, e.g. all-S from scratch)
    trainable: str = "all"  # all | ssm (only the SSM candidates learn: the distillation phase's parameters)


@dataclass
class SubnetConfig:
    """Fine-tuning an extracted arch (``train.py subnet``; optimiser settings from the ``supernet`` phase): optional
    output distillation, ``distill_weight`` x L1 between the subnet's output and a frozen teacher's. ``teacher``: a
    checkpoint (a ``subnet.pt``, e.g. the fine-tuned all-T baseline, or a ``supernet.pt``, whose all-T path is
    used); empty: the all-T path of the supernet the subnet is extracted from (not applied to all-T itself).
    ``feature_distill_weight``: also that weight x the mean over the 8 U-Net stages of L1(subnet stage output, teacher
    stage output) / mean |teacher stage output| (the hybrid's blocks learn the teacher's features, not only its
    image)."""

    distill_weight: float = 0.0
    teacher: str = ""
    feature_distill_weight: float = 0.0


@dataclass
class TrainConfig:
    """Loop habits: clipping, AMP, EMA, checkpoint/validation cadence, output folder."""

    grad_clip: float = 0.01
    amp: bool = True  # CUDA only; ignored on CPU
    amp_dtype: str = "bfloat16"  # bfloat16 | float16 (float16 uses a GradScaler)
    ema_decay: float = 0.0  # 0 disables EMA; the phase's EMA weights become its result
    checkpoint_every: int = 500
    val_every: int = 0  # 0: validate at the end of each phase only
    log_every: int = 10
    image_every: int = 0  # TensorBoard image grids every N steps (0: at validation only)
    val_images: int = 8  # validation images used for the periodic PSNR/SSIM (0: all)
    val_archs: list[str] = field(default_factory=lambda: ["TTTTSSSS", "SSSSTTTT"])  # fixed hybrids to track
    out_dir: str = "runs"
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class EvalConfig:
    """Evaluation: optional tiled inference for large images."""

    tile: int = 0  # 0: whole image
    overlap: int = 32


@dataclass
class Config:
    """A whole run."""

    name: str = "run"
    task: str = "denoise"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    subnet: SubnetConfig = field(default_factory=SubnetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def out_dir(self) -> Path:
        return Path(self.train.out_dir) / self.name

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "Config":
        return from_dict(cls, data, source=source)


# ---- generic dataclass-from-dict -----------------------------------------------------------------------------
class ConfigError(ValueError):
    """A config key or value that does not fit the dataclasses."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (recursively); return it, converted where lossless."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{source}: {key} = {value!r} does not match {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=key, source=source)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an int, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        # YAML 1.1 reads ``3e-4`` (no dot) as a string: accept numeric strings for float fields.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, got {type(value).__name__} {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{source}: {key} must be {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: dict, prefix: str = "", source: str = "config") -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and mistyped values by their full path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        path = [f"{prefix}.{k}" if prefix else str(k) for k in unknown]
        raise ConfigError(f"{source}: unknown key(s) {', '.join(path)}; {cls.__name__} accepts "
                          f"{', '.join(sorted(fields))}")
    kwargs = {name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name, source)
              for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a dataclass's own __post_init__ checks
        raise ConfigError(f"{source}: {prefix or 'top level'}: {e}") from e


def apply_override(data: dict, assignment: str) -> None:
    """Apply one ``a.b.c=value`` (YAML-parsed value) to the nested dict ``data`` in place."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r}: expected KEY=VALUE, e.g. train.grad_clip=0.01")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {assignment!r}: the key must be dotted names, e.g. supernet.lr")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {assignment!r}: value is not valid YAML: {e}") from e
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {assignment!r}: {'.'.join(parts[:i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value


VALIDATION_KEYS = ("data.val_crop", "data.val_crops")


def check_validation_keys(assignments: list[str] | tuple[str, ...], option: str = "--eval-set") -> None:
    """Fail, naming ``option``, on any assignment to a key outside :data:`VALIDATION_KEYS` (before work starts)."""
    for assignment in assignments:
        if assignment.split("=", 1)[0].strip() not in VALIDATION_KEYS:
            raise ConfigError(f"{option} {assignment!r}: only {', '.join(VALIDATION_KEYS)} may change (the images "
                              "held out for validation must stay those the supernet never trained on)")


def with_validation_set(cfg: "Config", assignments: list[str] | tuple[str, ...], option: str = "--eval-set"
                        ) -> "Config":
    """``cfg`` with its validation crops changed by ``assignments`` (``data.val_crop=0`` scores whole images).

    Only :data:`VALIDATION_KEYS` may change: the images held out for validation must stay those the supernet never
    trained on. Errors name ``option``.
    """
    if not assignments:
        return cfg
    check_validation_keys(assignments, option)
    data = cfg.to_dict()
    for assignment in assignments:
        apply_override(data, assignment)
    try:
        return Config.from_dict(data, source=f"config + {option}")
    except ConfigError as e:
        raise ConfigError(f"{option} {' '.join(assignments)}: {e}") from e


BASE_KEY = "base"


def merge_config(base: dict, child: dict) -> dict:
    """``child`` over ``base``: mappings merge key by key (recursively), anything else (values, lists) replaces."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def read_config_file(path: str | Path, _chain: tuple[Path, ...] = (), files: list[Path] | None = None) -> dict:
    """The YAML mapping of a config file with its ``base:`` chain resolved.

    ``base: other.yaml`` (a path relative to the file that names it) makes the file a set of changes to that config:
    the base is read first (its own ``base:`` included) and this file's keys are merged over it
    (:func:`merge_config`), so a variant names only what it changes. ``files`` (if given) receives every file read,
    the named one first.
    """
    p = Path(path)
    if not p.is_file():
        named_by = f" (the base: of {_chain[-1]})" if _chain else ""
        raise FileNotFoundError(f"config file {p}{named_by} does not exist")
    if p.resolve() in _chain:
        cycle = " -> ".join(str(c) for c in (*_chain, p.resolve()))
        raise ConfigError(f"{p}: base: chain loops back on itself: {cycle}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections, got {type(data).__name__}")
    if files is not None:
        files.append(p)
    if BASE_KEY not in data:
        return data
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{p}: base: must be the path of another config file (relative to {p.parent}), "
                          f"got {base!r}")
    return merge_config(read_config_file(p.parent / base, (*_chain, p.resolve()), files), data)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (its ``base:`` chain resolved; or start from defaults when ``path`` is None) and apply
    ``KEY=VALUE`` overrides."""
    data: dict = {}
    source = "defaults"
    if path is not None:
        files: list[Path] = []
        data = read_config_file(path, files=files)
        source = str(path) + (f" (on base {', '.join(str(f) for f in files[1:])})" if len(files) > 1 else "")
    for assignment in overrides or []:
        apply_override(data, assignment)
    if overrides:
        source += " + --set"
    return from_dict(Config, data, source=source)


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def config_diff(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two config dicts, as ``key: a -> b`` lines."""
    fa, fb = flatten(a), flatten(b)
    lines = []
    for key in sorted(set(fa) | set(fb)):
        if key in ignore:
            continue
        va, vb = fa.get(key, "<missing>"), fb.get(key, "<missing>")
        if va != vb:
            lines.append(f"{key}: {va!r} -> {vb!r}")
    return lines
