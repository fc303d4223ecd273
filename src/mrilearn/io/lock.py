"""An advisory lock on a folder: ``fcntl.flock`` on a lock file inside it, held by the process
that works in the folder (a training run) for as long as it works there.

The operating system releases the lock when the process ends, however it ends (``kill -9``
included), so a lock is never stale; the file itself stays, holding the last holder's pid.
Locks are advisory: they keep mrilearn processes apart, not other programs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from mrilearn.errors import DataError

LOCK_FILE = ".mrilearn.lock"


def holder(folder: Path) -> str | None:
    """The pid of the process holding ``folder``'s lock, or None if no one does (the lock
    file is only read, never created)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file: no mrilearn process has worked here
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: Path, busy: str) -> Iterator[None]:
    """Hold ``folder``'s lock inside the block; if another process holds it, a DataError
    ``<folder>: <busy> (pid N)``. The folder must exist."""
    path = Path(folder) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataError(f"{folder}: {busy} (pid {pid})") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
