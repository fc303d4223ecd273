"""Registries build components by name and explain unknown names."""

from __future__ import annotations

import pytest

from mrilearn.errors import ConfigError
from mrilearn.registry import Registry


def make() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register()
    class Sprocket:
        def __init__(self, teeth: int, ratio: float = 1.0, tags: list[str] | None = None) -> None:
            self.teeth, self.ratio, self.tags = teeth, ratio, tags

    @reg.register()
    class Spring:
        def __init__(self) -> None:
            pass

    return reg


def test_build_with_kwargs():
    w = make().build({"name": "Sprocket", "teeth": 3, "ratio": 2})
    assert (w.teeth, w.ratio) == (3, 2)


def test_unknown_name_lists_close_matches():
    with pytest.raises(
        ConfigError, match=r"x.name: unknown widget 'Sprocet'; did you mean Sprocket"
    ):
        make().build({"name": "Sprocet"}, "x")


def test_unknown_and_missing_and_typed_arguments():
    reg = make()
    with pytest.raises(ConfigError, match=r"x.teth: unknown key; did you mean teeth"):
        reg.build({"name": "Sprocket", "teth": 3}, "x")
    with pytest.raises(ConfigError, match=r"x.teeth: required key is missing"):
        reg.build({"name": "Sprocket"}, "x")
    with pytest.raises(ConfigError, match=r"x.tags: expected"):
        reg.build({"name": "Sprocket", "teeth": 1, "tags": [1, 2]}, "x")
    with pytest.raises(ConfigError, match=r"x.teeth: expected int, got True"):
        reg.build({"name": "Sprocket", "teeth": True}, "x")


def test_double_registration_is_an_error():
    reg = make()

    class Sprocket:
        pass

    with pytest.raises(ValueError, match="registered twice"):
        reg.register(Sprocket)


def test_subclass_passing_kwargs_on_is_checked_against_its_bases():
    reg: Registry = Registry("widget")

    class Base:
        def __init__(self, kind: str, teeth: int = 1, ratio: float = 1.0) -> None:
            self.kind, self.teeth, self.ratio = kind, teeth, ratio

    @reg.register()
    class Child(Base):
        def __init__(self, colour: str = "red", teeth: int = 5, **kwargs) -> None:
            super().__init__("child", teeth=teeth, **kwargs)  # fills the base's `kind`
            self.colour = colour

    built = reg.build({"name": "Child", "ratio": 2.5})
    assert (built.teeth, built.ratio, built.colour) == (5, 2.5, "red")
    with pytest.raises(ConfigError, match=r"x.ratio: expected float, got 'big'"):
        reg.build({"name": "Child", "ratio": "big"}, "x")
    with pytest.raises(
        ConfigError,
        match=r"x.rato: unknown key; did you mean ratio\? \(allowed: colour, teeth, ratio\)",
    ):
        reg.build({"name": "Child", "rato": 2}, "x")
