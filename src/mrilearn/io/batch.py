"""Commands over many inputs: which items a folder holds, and a loop that skips bad ones.

A folder given as the input of ``infer`` is classified by what it holds directly:

- DICOM files (files with the ``DICM`` marker of DICOM Part 10) and no NIfTI files: it is
  **one DICOM series**;
- otherwise it is a **folder of items**: its ``.nii``/``.nii.gz`` files, and its sub-folders
  that hold DICOM files directly (one series each). Other files and other sub-folders are
  left alone (counted in one log line);
- NIfTI files beside DICOM files: an error (put the series in a sub-folder).

Each item keeps its name in the output folder: ``a.nii.gz`` → ``OUT/a.nii.gz``, the series
folder ``s1/`` → the derived series ``OUT/s1/``.

:func:`run_batch` runs one function per item under a progress bar over the items: an item
that fails is reported in one line and skipped, the others go on; the caller prints
:meth:`BatchResult.summary` and exits non-zero when anything failed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mrilearn.errors import DataError, MrilearnError, listed
from mrilearn.io.nifti import is_nifti_path
from mrilearn.io.outputs import OutputError
from mrilearn.progress import progress_bar

log = logging.getLogger(__name__)

DICOM_MARKER_AT = 128  # DICOM Part 10: a 128-byte preamble, then b"DICM"


@dataclass(frozen=True)
class Item:
    """One input of a batch and where its output goes."""

    source: Path
    output: Path

    @property
    def name(self) -> str:
        return self.source.name


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` is a file with the DICOM Part 10 marker (read: 132 bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(DICOM_MARKER_AT + 4)
    except OSError:
        return False
    return head[DICOM_MARKER_AT:] == b"DICM"


def holds_dicom(folder: Path) -> bool:
    """Whether ``folder`` holds a DICOM file directly (not in a sub-folder)."""
    return any(p.is_file() and is_dicom_file(p) for p in folder.iterdir())


def is_folder_of_items(path: Path) -> bool:
    """Whether ``path`` is a folder of NIfTI files and series sub-folders, not one series."""
    if not path.is_dir():
        return False
    niftis = [p for p in path.iterdir() if p.is_file() and is_nifti_path(p)]
    if not holds_dicom(path):
        return True
    if niftis:
        raise DataError(
            f"{path}: holds both DICOM files and NIfTI files ({niftis[0].name}, ...); put the "
            "DICOM series in a sub-folder of its own, then pass the folder again"
        )
    return False


def volume_items(folder: Path, output: Path) -> list[Item]:
    """The items of a folder of NIfTI files and DICOM series sub-folders (see the module
    notes), sorted by name, each with its output of the same name in ``output``."""
    items, ignored = [], []
    for p in sorted(folder.iterdir()):
        if (p.is_file() and is_nifti_path(p)) or (p.is_dir() and holds_dicom(p)):
            items.append(Item(p, output / p.name))
        else:
            ignored.append(p.name)
    if not items:
        raise DataError(
            f"{folder}: holds no NIfTI files (.nii, .nii.gz) and no sub-folders of DICOM "
            "files; pass a NIfTI file, a DICOM series folder or a folder of them"
        )
    if ignored:
        log.info("%s: left alone %d entries that are neither NIfTI files nor DICOM series "
                 "folders (%s)", folder, len(ignored), listed(ignored))  # fmt: skip
    return items


def file_items(
    folder: Path, output: Path, suffixes: Sequence[str], rename: Callable[[Path], str]
) -> list[Item]:
    """The files of ``folder`` whose names end with one of ``suffixes`` (sorted), each with the
    output ``output / rename(file)``; an error if there are none."""
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(tuple(suffixes))
    )
    if not files:
        raise DataError(f"{folder}: holds no {' or '.join(suffixes)} files")
    return [Item(p, output / rename(p)) for p in files]


@dataclass
class BatchResult:
    """What a batch wrote and which items failed (with the one-line reason)."""

    written: list[Path] = field(default_factory=list)
    done: list[Item] = field(default_factory=list)
    failed: list[tuple[Item, str]] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 when every item was done, 1 when any failed."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        """One line: how many items were written and which failed."""
        line = f"{len(self.done)} written, {len(self.failed)} failed"
        if self.failed:
            line += ": " + ", ".join(i.name for i, _ in self.failed)
        return line


def run_batch(
    items: Iterable[Item], work: Callable[[Item], list[Path]], desc: str = "files"
) -> BatchResult:
    """``work(item)`` for every item, under a progress bar; returns what was written.

    An item whose ``work`` raises is reported on stderr in one line (``mrilearn: skipped
    NAME: reason``) and skipped; a :class:`~mrilearn.errors.MrilearnError` gives its message,
    anything else its type and message (the traceback at debug level, ``--debug``). An
    :class:`~mrilearn.io.outputs.OutputError` (an output that may not be written) stops the
    batch: it is the command's problem, not the item's."""
    from tqdm.contrib.logging import logging_redirect_tqdm  # warnings above the bar

    items = list(items)
    result = BatchResult()
    with logging_redirect_tqdm(), progress_bar(items, desc=desc, unit="file") as bar:
        for item in bar:
            try:
                paths = work(item)
            except OutputError:
                raise
            except Exception as err:  # one bad item must not stop the others
                reason = str(err) if isinstance(err, MrilearnError) else _unexpected(err)
                log.debug("%s failed", item.source, exc_info=True)
                bar.write(f"mrilearn: skipped {item.name}: {reason}", file=sys.stderr)
                result.failed.append((item, reason))
                continue
            result.done.append(item)
            result.written += paths
            for path in paths:
                bar.write(f"wrote {path}", file=sys.stdout)
    return result


def _unexpected(err: Exception) -> str:
    return f"{type(err).__name__}: {err}".strip().rstrip(":")
