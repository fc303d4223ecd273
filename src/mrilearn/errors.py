"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


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


def listed(names: list[str], limit: int = 5) -> str:
    """``names`` comma-joined for a one-line message; past ``limit`` only counted."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
