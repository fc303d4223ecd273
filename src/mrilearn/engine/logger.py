"""Run logging: ``metrics.jsonl`` (one line per record), TensorBoard events and ``train.log``."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from mrilearn.io.atomic import write_text_atomic

METRICS_FILE = "metrics.jsonl"


class RunLogger:
    """Writes records for one run; inactive on ranks other than 0."""

    def __init__(self, run_dir: Path, active: bool = True, resume_from: int | None = None) -> None:
        self.run_dir = run_dir
        self.active = active
        self.writer = None
        self._handler: logging.Handler | None = None
        if not active:
            return
        if resume_from is not None:
            truncate_records(run_dir / METRICS_FILE, resume_from)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_from)
        self._handler = logging.FileHandler(run_dir / "train.log")
        self._handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        logging.getLogger("mrilearn").addHandler(self._handler)

    def log(self, iteration: int, values: dict[str, float]) -> None:
        """Append one record and mirror it to TensorBoard."""
        if not self.active:
            return
        record = {"iteration": iteration, **{k: _plain(v) for k, v in values.items()}}
        with open(self.run_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._handler is not None:
            logging.getLogger("mrilearn").removeHandler(self._handler)
            self._handler.close()


def read_records(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics file (a torn last line from a crash is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_records(path: Path, iteration: int) -> None:
    """Drop records written after the checkpoint a run resumes from."""
    kept = [r for r in read_records(path) if r.get("iteration", 0) <= iteration]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))


def _plain(value: Any) -> Any:
    return float(value) if hasattr(value, "__float__") and not isinstance(value, int) else value
