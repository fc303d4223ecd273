"""One audit line per series: a JSON object appended to the audit log (and logged), holding
UIDs, the model's version stamp, counts, the outcome and timings, and never a patient's name
or other demographics."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("mrilearn.node.audit")


class AuditLog:
    """Appends one line per call, flushed at once (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
        line = json.dumps({"time": when, **record}, sort_keys=False)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        log.info("%s", line)
