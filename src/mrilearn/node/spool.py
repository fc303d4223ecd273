"""Where received instances wait for their job, on disk so that a restart loses nothing.

The spool folder (created 0700: it holds patient data) holds::

    incoming/<SeriesInstanceUID>/<SOPInstanceUID>.dcm   instances as received
    work/<SeriesInstanceUID>/                           the series whose job is running
    outbox/<SeriesInstanceUID>[.dcm]                    derived series the destination has
                                                        not yet accepted
    tmp/                                                instances being written

An instance is written under ``tmp/`` and renamed into place, so a series folder never holds
half a file. A series is *due* (complete) when no instance of it has arrived for the series
timeout; :meth:`Spool.claim` moves it to ``work/`` for its job (instances that arrive after
that start a new series folder), and :meth:`Spool.release` deletes it when the job is done.
:meth:`Spool.recover` puts interrupted jobs back into ``incoming/`` at start, with their
arrival times taken from the files, so they are completed (more instances may still come).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mrilearn.errors import DataError

log = logging.getLogger(__name__)

UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
FOLDERS = ("incoming", "work", "outbox", "tmp")


def is_uid(text: str) -> bool:
    """Whether ``text`` is a DICOM UID (digits and dots, at most 64), safe as a file name."""
    return len(text) <= 64 and UID.match(text) is not None


@dataclass
class SeriesState:
    """What has arrived of one series: times (``time.time()``), counts and senders."""

    first: float
    last: float
    instances: int = 0
    bytes: int = 0
    senders: set[str] = field(default_factory=set)

    def add(self, size: int, sender: str, when: float) -> None:
        self.first, self.last = min(self.first, when), max(self.last, when)
        self.instances += 1
        self.bytes += size
        self.senders.add(sender)


class Spool:
    """The spool folder and the arrival state of its series (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._series: dict[str, SeriesState] = {}
        self._make_folders()

    def _make_folders(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"{self.root}: the spool must be a folder; choose another --spool")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for name in FOLDERS:
            (self.root / name).mkdir(mode=0o700, exist_ok=True)

    def folder(self, name: str) -> Path:
        return self.root / name

    # ------------------------------------------------------------- receiving
    def bytes_of(self, series_uid: str) -> int:
        with self._lock:
            state = self._series.get(series_uid)
            return state.bytes if state else 0

    def store(self, series_uid: str, sop_uid: str, data: bytes, sender: str) -> Path:
        """Write one instance (the bytes of a DICOM file) into its series folder."""
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", suffix=".dcm")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        target = self.root / "incoming" / series_uid / f"{sop_uid}.dcm"
        now = time.time()
        with self._lock:
            target.parent.mkdir(mode=0o700, exist_ok=True)
            replaced = target.exists()
            os.replace(tmp, target)
            state = self._series.setdefault(series_uid, SeriesState(now, now))
            if not replaced:
                state.add(len(data), sender, now)
        return target

    # ------------------------------------------------------------- jobs
    def due(self, timeout: float) -> str | None:
        """The series that has waited longest among those complete (no instance for
        ``timeout`` seconds), or None."""
        limit = time.time() - timeout
        with self._lock:
            waiting = [(s.last, uid) for uid, s in self._series.items() if s.last <= limit]
        return min(waiting)[1] if waiting else None

    def claim(self, series_uid: str) -> tuple[Path, SeriesState]:
        """Move a due series to ``work/`` for its job; its folder and what arrived."""
        work = self.root / "work" / series_uid
        with self._lock:
            state = self._series.pop(series_uid)
            if work.exists():  # left by an interrupted job of the same series
                _merge(self.root / "incoming" / series_uid, work)
            else:
                os.replace(self.root / "incoming" / series_uid, work)
        return work, state

    def release(self, work: Path) -> None:
        """Delete a finished job's instances."""
        shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------- restart
    def recover(self) -> int:
        """Put interrupted jobs back into ``incoming/``, drop half-written files and rebuild
        the arrival state from the files; returns the number of series waiting."""
        for leftover in (self.root / "tmp").iterdir():
            leftover.unlink(missing_ok=True)
        for work in (self.root / "work").iterdir():
            _merge(work, self.root / "incoming" / work.name)
        with self._lock:
            for folder in sorted((self.root / "incoming").iterdir()):
                files = [f for f in folder.iterdir() if f.is_file()]
                if not files:
                    folder.rmdir()
                    continue
                state = SeriesState(time.time(), 0.0, senders={"(before restart)"})
                for f in files:
                    stat = f.stat()
                    state.add(stat.st_size, "(before restart)", stat.st_mtime)
                self._series[folder.name] = state
            count = len(self._series)
        if count:
            log.warning("resuming %d series from the spool %s", count, self.root)
        return count


def _merge(source: Path, target: Path) -> None:
    """Move the files of folder ``source`` into ``target`` (created) and remove ``source``."""
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    if source.is_dir():
        for f in source.iterdir():
            os.replace(f, target / f.name)
        source.rmdir()
