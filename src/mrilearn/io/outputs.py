"""The check every command makes before it computes anything: may it write its outputs?

An output is refused, with a one-line :class:`OutputError` (a
:class:`~mrilearn.errors.DataError`), when

- it is one of the command's inputs (the same path, the same file through a link or another
  name), lies inside an input folder, or is a folder holding an input: always;
- it exists: unless ``overwrite`` (``--overwrite``) is given. A folder output is replaced
  only if everything in it is something the command writes (``writes``: name patterns), so a
  folder the command did not make (a home folder, a thesis) is never deleted; an empty
  folder counts as absent;
- its location cannot be written (no permission, a read-only disk, or a path through an
  existing file): always.

Commands take several inputs and outputs at once (a batch, an output and the maps beside it).
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mrilearn.errors import DataError, listed
from mrilearn.io.atomic import OLD_MARK, TEMP_MARK


class OutputError(DataError):
    """An output this command may not write: it concerns the command, not one of its inputs,
    so a batch stops at it (:func:`mrilearn.io.batch.run_batch`)."""


@dataclass(frozen=True)
class Output:
    """A path a command writes: a file (``writes`` is None) or a folder in which the command
    writes only entries matching ``writes`` (e.g. ``("*.dcm",)``)."""

    path: Path
    writes: tuple[str, ...] | None = None

    @classmethod
    def folder(cls, path: str | os.PathLike[str], *writes: str) -> Output:
        return cls(Path(path), tuple(writes))


def check_outputs(
    outputs: Iterable[Output | str | os.PathLike[str]],
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> None:
    """Raise OutputError unless every output may be written (see the module notes); nothing is
    created or changed. Plain paths are file outputs."""
    outs = [o if isinstance(o, Output) else Output(Path(o)) for o in outputs]
    ins = [Path(p) for p in inputs]
    seen: dict[Path, Path] = {}
    for out in outs:
        key = out.path.resolve()
        if key in seen:
            raise OutputError(f"{out.path}: given as the output of two inputs; name each one")
        seen[key] = out.path
        for source in ins:
            _check_not_input(out.path, source)
        check_location(out.path)
        _check_existing(out, overwrite)


def _check_not_input(out: Path, source: Path) -> None:
    o, i = out.resolve(), source.resolve()
    same = o == i or (out.exists() and source.exists() and os.path.samefile(out, source))
    if same:
        raise OutputError(f"{out}: is the input {source}; write the output to another path")
    if i.is_dir() and o.is_relative_to(i):
        raise OutputError(f"{out}: lies inside the input folder {source}; write it elsewhere")
    if o.is_dir() and i.is_relative_to(o):
        raise OutputError(
            f"{out}: holds the input {source}; replacing it would delete the input: write the "
            "output elsewhere"
        )


def check_location(out: Path) -> None:
    """DataError unless the nearest existing folder above ``out`` is one we may write in."""
    parent = out.absolute().parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(
            f"{out}: cannot be written: {parent} is a file, not a folder; choose another path"
        )
    try:  # a real probe: permissions, read-only disks and root all answer truthfully
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".mrilearn-probe{TEMP_MARK}")
    except OSError as err:
        raise OutputError(
            f"{out}: cannot write in {parent} ({err.strerror}); choose another location"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _check_existing(out: Output, overwrite: bool) -> None:
    path = out.path
    if not os.path.lexists(path):
        return
    if out.writes is None:
        if path.is_dir():
            raise OutputError(f"{path}: is a folder; name the output file (e.g. out.nii.gz)")
    elif not path.is_dir():
        raise OutputError(f"{path}: is a file; name a folder for this output")
    else:
        foreign = _foreign_entries(path, out.writes)
        if foreign:
            raise OutputError(
                f"{path}: holds files this command does not write ({listed(foreign)}); it is "
                "never replaced, not even with --overwrite: choose a new or empty folder"
            )
        if not any(_entries(path)):
            return
    if not overwrite:
        raise OutputError(f"{path}: exists; pass --overwrite to replace it, or choose another name")


def _entries(folder: Path) -> list[str]:
    """The folder's entries, without the temporary files of interrupted writes."""
    return [n for n in os.listdir(folder) if TEMP_MARK not in n and OLD_MARK not in n]


def _foreign_entries(folder: Path, writes: Sequence[str]) -> list[str]:
    return sorted(n for n in _entries(folder) if not any(fnmatch.fnmatch(n, p) for p in writes))
