"""Errors a user can fix: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

import importlib
from types import ModuleType


class MrilearnError(Exception):
    """A problem with the user's input (file, config, checkpoint), not a bug.

    The message says what is wrong, where, and how to fix it.
    """


class ConfigError(MrilearnError):
    """A configuration file or override that does not match the schema."""


class DataError(MrilearnError):
    """An image, label or manifest that cannot be used as given."""


class CheckpointError(MrilearnError):
    """A checkpoint that is missing, corrupt or built for another model."""


class Reported(MrilearnError):
    """An error already printed as one line (by a training process ``--devices`` started); the
    CLI exits with status 2 without printing it again."""


def optional_module(name: str, purpose: str, extra: str) -> ModuleType:
    """Import ``name``, an optional dependency; if it is missing, a ConfigError naming the
    extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(
            f'{purpose} needs {name}: pip install -c constraints.txt -e ".[{extra}]"'
        ) from None


def listed(names: list[str], limit: int = 5) -> str:
    """``names`` comma-joined for a one-line message; past ``limit`` only counted."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
