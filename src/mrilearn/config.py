"""Experiment configuration: YAML → typed dataclasses.

Only a configuration file changes between projects (§2.5). A config has fixed
top-level sections; component sections are ``{name: X, **kwargs}`` and are checked
against the registered constructor, so a misspelt key or a wrong type fails at load
time with the path of the offending entry. ``_base_`` names a file loaded first (and its own
``_base_`` before it); this file's keys override it; dotted overrides
(``train.iterations=10``) apply last.

A config is a path, or the name of a config an application ships (``sr/demo_mni152``: the
``sr`` application's ``configs/demo_mni152.yaml``); a ``_base_`` is a path relative to its
file, or such a name. Component sections are checked against the registries as they are:
:func:`mrilearn.plugins.load` fills them (the run service and the command line call it).
Other schemas (e.g. the Multitasking application's) use the same reader via
:func:`load_typed`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml

from mrilearn import components
from mrilearn.constraints import Name, NonNegativeInt, PositiveFloat, PositiveInt, Range
from mrilearn.errors import ConfigError
from mrilearn.registry import applications, check_value

Spec = dict[str, Any]
T = TypeVar("T")


@dataclass
class TrainConfig:
    """Settings of the training loop, counted in iterations."""

    iterations: PositiveInt = 1000
    batch_size: PositiveInt = 2
    log_every: PositiveInt = 10
    val_every: NonNegativeInt = 100  # 0: never validate
    checkpoint_every: NonNegativeInt = 0  # 0: no periodic checkpoints
    best_metric: str = "val/loss"
    best_mode: Literal["min", "max"] = "min"
    grad_clip: PositiveFloat | None = None
    threads: PositiveInt | None = None  # CPU threads per process (default: cores / processes)
    # decay of an exponential moving average of the trained weights (e.g. 0.999); validation,
    # the best checkpoint, figures and inference then use the averaged weights
    ema: Annotated[float, Range(ge=0, lt=1)] | None = None
    # where and how to compute: auto picks CUDA, else MPS, else the CPU (--device wins)
    device: str | None = None
    # auto: bf16 on CUDA GPUs that support it, else fp32 (bf16 on a CPU only when asked for)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # background data-loading processes; 0: in the training process; default: 0 on the CPU,
    # up to 4 beside a GPU. The batches are the same for any number.
    workers: NonNegativeInt | None = None
    sync_bn: bool = False  # BatchNorm statistics synchronised across DDP processes (CUDA)


@dataclass
class EvaluationConfig:
    """What ``mrilearn evaluate`` computes; applications read what they need."""

    split: str = "test"
    baselines: list[str] = field(default_factory=list)
    mask_threshold: float | None = None
    figures: bool = True


@dataclass
class Config:
    """A whole experiment. Component sections are ``{name: X, **kwargs}``."""

    experiment: Name  # the run directory's name inside output_dir
    data: Spec
    model: Spec
    loss: Spec = field(default_factory=lambda: {"name": "L1Loss"})
    optim: Spec = field(default_factory=lambda: {"name": "Adam", "lr": 1e-4})
    scheduler: Spec | None = None
    trainer: Spec = field(default_factory=lambda: {"name": "SupervisedTrainer"})
    inference: Spec = field(default_factory=lambda: {"name": "SlidingWindow"})
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    seed: NonNegativeInt = 0
    output_dir: str = "runs"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dump(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


COMPONENT_SECTIONS = ("data", "model", "loss", "optim", "scheduler", "trainer", "inference")


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML file or packaged config (with its ``_base_``), apply ``key=value``
    overrides, validate against the registries (:func:`mrilearn.plugins.load` fills them)."""
    cfg = load_typed(Config, path, overrides)
    validate_components(cfg)
    return cfg


def load_typed(schema: type[T], path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read a config file or name into the dataclass ``schema``: ``_base_`` chain, overrides,
    unknown keys and wrong types as errors naming the key."""
    raw = read_with_bases(find_config(path), ())
    for item in overrides:
        apply_override(raw, item)
    return to_dataclass(schema, raw, "")


def find_config(name: str | Path, relative_to: Path | None = None) -> Path:
    """The file of a config path (relative to ``relative_to``'s folder, if given) or of a
    packaged config name ``<application>/<config>`` (``.yaml`` optional)."""
    path = Path(name)
    if relative_to is not None and not path.is_absolute():
        path = relative_to.parent / path
    if path.is_file():
        return path.resolve()
    packaged = packaged_config(str(name))
    if packaged is not None:
        return packaged
    hint = "" if relative_to else "; `mrilearn configs` lists the packaged ones"
    raise ConfigError(f"{path}: config file not found{hint}")


def packaged_configs() -> dict[str, Path]:
    """Every config the installed applications ship, by name (``sr/demo_mni152``)."""
    found = {}
    for app in applications():
        if app.configs is None or not app.config_dir.is_dir():
            continue
        for file in sorted(app.config_dir.iterdir(), key=lambda f: f.name):
            if file.name.endswith(".yaml"):
                found[f"{app.configs}/{file.name.removesuffix('.yaml')}"] = Path(str(file))
    return found


def with_base_by_name(path: Path) -> str:
    """A packaged config's text with a relative ``_base_`` replaced by the base's packaged
    name, so that a copy elsewhere still finds it."""
    names = {file: name for name, file in packaged_configs().items()}
    text = path.read_text()
    match = re.search(r"^_base_:\s*(\S+)\s*$", text, flags=re.MULTILINE)
    if match is None:
        return text
    base = find_config(match.group(1), path)
    if base not in names:
        return text
    return text[: match.start(1)] + names[base] + text[match.end(1) :]


def packaged_config(name: str) -> Path | None:
    """The file of packaged config ``name`` (``sr/demo_mni152`` or ``sr/demo_mni152.yaml``)."""
    return packaged_configs().get(name.removesuffix(".yaml"))


def read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """``path``'s keys merged over its ``_base_`` (itself possibly based on another file: a
    CPU-sized variant of an ablation bases on the CPU demo, which bases on the full setting)."""
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise ConfigError(f"{path}: '_base_' files form a cycle ({cycle})")
    raw = read_yaml(path)
    base_name = raw.pop("_base_", None)
    if base_name is None:
        return raw
    return merge(read_with_bases(find_config(str(base_name), path), (*chain, path)), raw)


def from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from plain data (e.g. a checkpoint's stored config)."""
    cfg = to_dataclass(Config, raw, "")
    validate_components(cfg)
    return cfg


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child keys override base keys recursively; a component with a new ``name`` replaces."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        old = out.get(key)
        same_component = not (
            isinstance(value, dict) and "name" in value and old and old.get("name") != value["name"]
        )
        if isinstance(value, dict) and isinstance(old, dict) and same_component:
            out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Loader(yaml.SafeLoader):
    """Safe YAML where ``1e-3`` is a number: YAML 1.1 wants ``1.0e-3`` and reads ``1e-3`` as
    a string, which no one writing a learning rate means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """YAML text as plain data (no objects are ever constructed), ``1e-3`` as a float."""
    return yaml.load(text, Loader=_Loader)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected dotted.key=value, e.g. train.iterations=10")
    key, text = item.split("=", 1)
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {key}: cannot parse value {text!r}: {err}") from None
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def validate_components(cfg: Config) -> None:
    """Check each component section against its registered constructor."""
    for section in COMPONENT_SECTIONS:
        spec = getattr(cfg, section)
        if spec is None:
            continue
        components.check_spec(section, spec)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def to_dataclass(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        key = sorted(unknown)[0]
        close = difflib.get_close_matches(key, fields, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"{_join(path, key)}: unknown key{hint} (allowed: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        where = _join(path, name)
        if name not in raw:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ConfigError(f"{where}: required key is missing")
            continue
        value, hint = raw[name], hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = to_dataclass(hint, value, where)
        elif hint in (Spec, Spec | None) and value is not None:
            if not isinstance(value, dict) or "name" not in value:
                raise ConfigError(f"{where}: expected a section {{name: ..., <arguments>}}")
            values[name] = dict(value)
        else:
            check_value(value, hint, where)
            values[name] = value
    return cls(**values)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
