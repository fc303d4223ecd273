"""Atomic writes: a file or folder either appears complete or not at all.

A crash, a full disk or a ``Ctrl-C`` half way through writing a checkpoint, an image or a
DICOM series must never leave a truncated result behind that a later run would trust.
Everything is written under a temporary name in the *same* directory (so the final
``os.replace`` is a rename on one filesystem) and only renamed into place once complete.

Temporary names are ``.<name>.tmp-mrilearn-<pid>-<random>`` (a folder being replaced is
moved aside as ``.<name>.old-mrilearn-<pid>-<random>``). They are removed on any exception,
Ctrl-C and, through the command line's handler, ``kill -TERM``; what a ``kill -9`` leaves is
removed by the next write to the same target (a folder moved aside is put back if the new one
never arrived).

The API: :func:`atomic_path` (context manager yielding the temporary path),
:func:`atomic_write` (the same with a writer callback), :func:`atomic_dir` for folders,
and :func:`write_text_atomic` / :func:`write_json_atomic` for small text files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mrilearn.errors import DataError

logger = logging.getLogger(__name__)

# Compression suffixes that belong with the suffix before them ("x.nii.gz" -> ".nii.gz").
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".zst", ".lzma"}


def _kept_suffix(path: Path) -> str:
    """The suffix(es) the temp file must keep so format detection by suffix still works."""
    suffixes = path.suffixes
    if not suffixes:
        return ""
    if suffixes[-1].lower() in _COMPRESSION_SUFFIXES and len(suffixes) >= 2:
        return "".join(suffixes[-2:])
    return suffixes[-1]


TEMP_MARK, OLD_MARK = ".tmp-mrilearn-", ".old-mrilearn-"


def _prefix(stem: str, mark: str) -> str:
    return f".{stem}{mark}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _leftover(name: str, stem: str, suffix: str) -> str | None:
    """The mark (temporary or moved aside) of ``name`` if a dead process left it."""
    for mark in (TEMP_MARK, OLD_MARK):
        head = f".{stem}{mark}"
        pid = name[len(head) :].split("-", 1)[0]
        if name.startswith(head) and name.endswith(suffix) and pid.isdigit():
            return None if _alive(int(pid)) else mark
    return None


def remove_leftovers(path: Path, stem: str, suffix: str = "") -> None:
    """Remove temporary files and folders of ``path`` left by killed processes; a folder moved
    aside while ``path`` was being replaced is put back if ``path`` is missing."""
    if not path.parent.is_dir():
        return
    for item in sorted(path.parent.iterdir()):
        mark = _leftover(item.name, stem, suffix)
        if mark == OLD_MARK and not os.path.lexists(path):
            os.replace(item, path)
            logger.warning("%s: put back the folder an interrupted write had moved aside", path)
        elif mark is not None:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            logger.info("removed %s, left by an interrupted write", item)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name is ``.<stem>.tmp-mrilearn-<pid>-XXXX<suffixes>`` (``.nii.gz`` etc.
    kept), so writers that choose a format by suffix behave as for the final path. On any
    exception the temporary file is removed and an existing ``path`` is left untouched.
    Missing parent folders are created.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; choose a file name for this output")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = _kept_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    remove_leftovers(path, stem, suffix)
    prefix = _prefix(stem, TEMP_MARK)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"atomic write of {path}: the writer did not create {tmp}")
        # mkstemp creates 0600; give the result the permissions a normal open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``; return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        writer(tmp)
    logger.debug("wrote %s", path)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; move it onto ``path`` if the block succeeds.

    An existing folder at ``path`` is replaced (moved aside, then deleted once the new one is
    in place). On any exception the temporary folder is deleted and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(
            f"cannot write a folder at {path}: a file with that name exists; "
            "remove it or choose another output path"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path, path.name)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path.name, TEMP_MARK)))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path.name, OLD_MARK)))
            old.rmdir()
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous folder back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.debug("wrote folder %s", path)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (serialised first, so a bad object never
    touches the file system)."""
    text = json.dumps(obj, indent=indent, sort_keys=False) + "\n"
    return write_text_atomic(path, text)
