"""Registries of components that a configuration selects by name.

A config section ``{name: X, **kwargs}`` builds ``X(**kwargs)``; the kwargs are
exactly the constructor's arguments and are type-checked against its hints, so a
typo or a wrong type fails before any work starts and names the config path.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Generic, TypeVar

from mrilearn.constraints import constraints_of
from mrilearn.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → class (or factory) table for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}
        self._ranges: dict[str, Mapping[str, Any]] = {}

    def register(
        self,
        obj: Callable[..., T] | None = None,
        *,
        name: str | None = None,
        ranges: Mapping[str, Any] | None = None,
    ):
        """Register ``obj`` under its ``__name__`` (usable as a decorator). ``ranges``:
        constraints of arguments whose hints cannot carry them (a class of another package),
        e.g. ``{"lr": Range(gt=0)}``."""

        def add(o: Callable[..., T]) -> Callable[..., T]:
            key = name or o.__name__
            if key in self._items and self._items[key] is not o:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = o
            self._ranges[key] = dict(ranges or {})
            return o

        return add if obj is None else add(obj)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str, path: str = "") -> Callable[..., T]:
        """The registered object, or a ConfigError listing close matches."""
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            where = f"{path}: " if path else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"
            )
        return self._items[name]

    def build(self, spec: Mapping[str, Any], path: str = "", **extra: Any) -> T:
        """Build from ``{name: X, **kwargs}``; ``extra`` are arguments the framework supplies."""
        self.check(spec, path, set(extra))
        kwargs = dict(spec)
        return self._items[kwargs.pop("name")](**kwargs, **extra)

    def check(
        self, spec: Mapping[str, Any], path: str = "", supplied: set[str] = frozenset()
    ) -> None:
        """Validate ``{name: X, **kwargs}`` without building it."""
        kwargs = dict(spec)
        if "name" not in kwargs:
            raise ConfigError(f"{path}: missing 'name' (one of {', '.join(self.names())})")
        name = kwargs.pop("name")
        factory = self.get(name, f"{path}.name" if path else "name")
        check_kwargs(factory, kwargs, path, supplied, self._ranges.get(name, {}))


def constructor_parameters(
    factory: Callable[..., Any],
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Parameters a config may set, their type hints, and whether any key is accepted.

    A class whose ``__init__`` takes ``**kwargs`` passes them on to its base class, so
    the bases' parameters with defaults are collected too (nearest class first): a
    subclass lists only what it adds and still gets every argument checked. A base's
    parameters without a default are the subclass's to fill, not the config's.
    """
    if inspect.isclass(factory):
        targets = [c.__init__ for c in inspect.getmro(factory) if "__init__" in vars(c)]
    else:
        targets = [factory]
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    for depth, target in enumerate(targets):
        try:
            found = typing.get_type_hints(target, include_extras=True)
        except Exception:  # unresolvable hints: skip type checks, keep name checks
            found = {}
        passes_on = False
        for key, p in inspect.signature(target).parameters.items():
            if p.kind is p.VAR_KEYWORD:
                passes_on = True
            elif key == "self" or p.kind is p.VAR_POSITIONAL:
                continue
            elif depth == 0 or p.default is not inspect.Parameter.empty:
                params.setdefault(key, p)
                if key in found:
                    hints.setdefault(key, found[key])
        if not passes_on:
            return params, hints, False
    return params, hints, True


def check_kwargs(
    factory: Callable[..., Any],
    kwargs: Mapping[str, Any],
    path: str,
    supplied: set[str] = frozenset(),
    ranges: Mapping[str, Any] = types.MappingProxyType({}),
) -> None:
    """Reject unknown or missing arguments, values of the wrong type or out of range."""
    params, hints, accepts_any = constructor_parameters(factory)
    for key, constraint in ranges.items():
        hints[key] = typing.Annotated[hints.get(key, Any), constraint]
    params = {k: p for k, p in params.items() if k not in supplied}
    for key, value in kwargs.items():
        where = f"{path}.{key}" if path else key
        if key not in params and not accepts_any:
            close = difflib.get_close_matches(key, params, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{where}: unknown key{hint} (allowed: {', '.join(params)})")
        if key not in hints:
            continue
        nested = nested_registry(hints[key])
        if nested is not None and isinstance(value, Mapping):
            nested.check(value, where)
        else:
            check_value(value, hints[key], where)
    for key, p in params.items():
        if p.default is inspect.Parameter.empty and key not in kwargs:
            raise ConfigError(f"{path + '.' if path else ''}{key}: required key is missing")


def nested_registry(hint: Any) -> Registry[Any] | None:
    """The registry of an argument typed ``Component[REGISTRY]`` (possibly ``| None``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [nested_registry(a) for a in typing.get_args(hint)]
        return next((r for r in found if r is not None), None)
    if typing.get_origin(hint) is typing.Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Registry)), None)
    return None


def matches_type(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type hint (int is accepted where float is asked)."""
    if typing.get_origin(hint) is typing.Annotated:
        return matches_type(value, typing.get_args(hint)[0])
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches_type(v, a) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return all(matches_type(v, inner) for v in value)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def check_value(value: Any, hint: Any, where: str) -> None:
    """ConfigError naming ``where`` unless ``value`` has the hint's type and meets its
    constraints (:mod:`mrilearn.constraints`), e.g. ``train.batch_size: must be ≥ 1, got 0``."""
    if not matches_type(value, hint):
        raise ConfigError(f"{where}: expected {type_name(hint)}, got {value!r}")
    found = constraint_problem(value, hint)
    if found is not None:
        raise ConfigError(f"{where}{found[0]}: {found[1]}")


def constraint_problem(value: Any, hint: Any) -> tuple[str, str] | None:
    """(where inside the value, message) of the first constraint ``value`` breaks, if any;
    ``value`` already matches ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        for constraint in constraints_of(hint.__metadata__):
            message = constraint.problem(value)
            if message:
                return "", message
        return constraint_problem(value, args[0])
    if origin in (typing.Union, types.UnionType):
        member = next((a for a in args if matches_type(value, a)), None)
        return None if member is None else constraint_problem(value, member)
    if origin in (list, tuple, typing.Sequence) and isinstance(value, (list, tuple)) and args:
        fixed = origin is tuple and args[-1] is not Ellipsis
        for i, item in enumerate(value):
            found = constraint_problem(item, args[i] if fixed else args[0])
            if found is not None:
                return f"[{i}]{found[0]}", found[1]
    return None


def type_name(hint: Any) -> str:
    nested = nested_registry(hint)
    if nested is not None:
        optional = type(None) in typing.get_args(hint)
        return f"{{name: <{nested.kind}>, ...}}" + (" | None" if optional else "")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:  # constraints show in the error, not in the type
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:  # list[int], dict[str, Any]
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if hint is type(None):
        return "None"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def Component(registry: Registry[Any]) -> Any:  # noqa: N802  (used like a type)
    """Type of a constructor argument that is itself a ``{name: X, **kwargs}`` section."""
    return typing.Annotated[dict[str, Any], registry]


DATASETS: Registry[Any] = Registry("dataset")
MODELS: Registry[Any] = Registry("model")
LOSSES: Registry[Any] = Registry("loss")
METRICS: Registry[Any] = Registry("metric")
TRAINERS: Registry[Any] = Registry("trainer")
INFERERS: Registry[Any] = Registry("inferer")
DEGRADATIONS: Registry[Any] = Registry("degradation")


# ------------------------------------------------------------------ applications
APPLICATIONS_GROUP = "mrilearn.apps"


@dataclass(frozen=True)
class Application:
    """What an application package adds to the framework, declared in its ``__init__``.

    ``components``: modules whose import registers its data sets, models and trainers (imported
    by :func:`mrilearn.plugins.load`, only when a config is validated). ``commands``: a module
    with ``add_commands(subparsers)`` for the ``mrilearn`` command line. ``configs``: the
    namespace of its packaged configs, the YAML files in ``<package>/configs/``
    (``mrilearn train sr/demo_mni152``). The package is found through the
    ``mrilearn.apps`` entry point group, so a new application is one package plus one line in
    its ``pyproject.toml``.
    """

    name: str
    package: str
    components: tuple[str, ...] = ()
    commands: str | None = None
    configs: str | None = None

    @property
    def config_dir(self) -> Traversable:
        return resources.files(self.package) / "configs"


_ADDED: dict[str, Application] = {}


def add_application(app: Application) -> None:
    """Make an application known without an entry point (a notebook, a test)."""
    _ADDED[app.name] = app


@functools.cache
def _installed() -> tuple[Application, ...]:
    found = []
    entry_points = importlib.metadata.entry_points(group=APPLICATIONS_GROUP)
    for ep in sorted(entry_points, key=lambda ep: ep.name):
        app = ep.load()
        if not isinstance(app, Application):
            raise TypeError(f"entry point {ep.value} is not a mrilearn.registry.Application")
        found.append(app)
    return tuple(found)


def applications() -> list[Application]:
    """The installed applications (entry points) and those added at run time, by name."""
    apps = {a.name: a for a in _installed()}
    apps.update(_ADDED)
    return list(apps.values())
