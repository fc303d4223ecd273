"""The one thread that runs jobs, one complete series at a time: read the spooled series,
run the model, write the derived series (an MR series, or DICOM-SEG for a label map), store
or send it, write the audit line and delete the spooled instances.

Between jobs it asks the spool for the next due series (the series-completion watcher) and,
every ``retry_seconds``, sends again what a destination did not accept. Asked to stop, it
finishes the job it is running; series still waiting stay in the spool for the next start.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pydicom

from mrilearn.deploy.derived import SEG_SUFFIX, write_prediction
from mrilearn.deploy.package import version_stamp
from mrilearn.engine.contract import Predictor
from mrilearn.errors import DataError, MrilearnError
from mrilearn.io.dicom import read_dicom_series
from mrilearn.node.audit import AuditLog
from mrilearn.node.send import Sender, SendFailed, derived_files
from mrilearn.node.settings import NodeSettings
from mrilearn.node.spool import SeriesState, Spool

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1


class Worker:
    """Runs the node's jobs in its own thread (:meth:`start`, :meth:`stop`)."""

    def __init__(
        self, predictor: Predictor, settings: NodeSettings, spool: Spool, audit: AuditLog,
        sender: Sender | None,
    ) -> None:  # fmt: skip
        self.predictor, self.settings, self.spool = predictor, settings, spool
        self.audit, self.sender = audit, sender
        self.model = {"model": predictor.cfg.model["name"], "version": version_stamp(predictor)}
        self._stop = threading.Event()
        self._next_retry = 0.0
        self._thread = threading.Thread(target=self._loop, name="mrilearn-node-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the running job, then return."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            series = self.spool.due(self.settings.series_timeout)
            if series is not None:
                self.run_job(series)
            elif self.sender is not None and time.monotonic() >= self._next_retry:
                self._retry_outbox()
            else:
                self._stop.wait(POLL_SECONDS)

    # ------------------------------------------------------------------ a job
    def run_job(self, series_uid: str) -> None:
        """One series from the spool to its destination, with its audit line."""
        work, state = self.spool.claim(series_uid)
        record: dict[str, Any] = {
            "event": "series", "source_series": series_uid, "instances": state.instances,
            "bytes": state.bytes, "senders": sorted(state.senders), **self.model,
            "receive_s": round(state.last - state.first, 3),
            "wait_s": round(time.time() - state.last, 3),
        }  # fmt: skip
        try:
            record.update(self._process(work, state))
            record["outcome"] = "done"
        except (MrilearnError, SendFailed) as err:
            record.update(outcome="failed", reason=str(err))
            log.error("series %s: %s", series_uid, err)
        except Exception as err:  # a bug must not stop the node: log it, keep serving
            record.update(outcome="failed", reason=f"internal error ({type(err).__name__})")
            log.exception("series %s: internal error", series_uid)
        finally:
            self.spool.release(work)
        record["total_s"] = round(time.time() - state.last, 3)
        self.audit.write(record)

    def _process(self, work: Path, state: SeriesState) -> dict[str, Any]:
        if state.instances < self.settings.min_slices:
            raise DataError(
                f"too small: {state.instances} instance(s), fewer than --min-slices "
                f"{self.settings.min_slices}"
            )
        times: dict[str, Any] = {}
        t = time.perf_counter()
        volume = read_dicom_series(work)
        times["read_s"], t = _since(t), time.perf_counter()
        prediction = self.predictor.infer_volume(volume)
        times["infer_s"], t = _since(t), time.perf_counter()
        target = self._target(work.name)
        write_prediction(self.predictor, prediction, target)
        times["write_s"] = _since(t)
        header = pydicom.dcmread(derived_files(target)[0], stop_before_pixels=True)
        info = {"study": str(volume.meta.get("StudyInstanceUID", "")),
                "derived_series": str(header.SeriesInstanceUID),
                "derived_sop_class": header.SOPClassUID.name, **times}  # fmt: skip
        if self.sender is not None:
            t = time.perf_counter()
            self._send(target)
            info["send_s"] = _since(t)
        return info

    def _target(self, series_uid: str) -> Path:
        """Where the derived series is written: ``--out`` or the outbox, a folder for an MR
        series, a ``.dcm`` file for DICOM-SEG."""
        root = self.settings.out or self.spool.folder("outbox")
        name = series_uid + (SEG_SUFFIX if self.predictor.label_table() is not None else "")
        return root / name

    def _send(self, item: Path) -> None:
        """Send a derived item and delete it; on failure it stays in the outbox."""
        assert self.sender is not None
        try:
            self.sender.send(derived_files(item))
        except SendFailed as err:
            self._next_retry = time.monotonic() + self.settings.retry_seconds
            raise SendFailed(f"{err}; kept in the outbox, sent again every "
                             f"{self.settings.retry_seconds:g} s")  from None  # fmt: skip
        _remove(item)

    def _retry_outbox(self) -> None:
        self._next_retry = time.monotonic() + self.settings.retry_seconds
        for item in sorted(self.spool.folder("outbox").iterdir()):
            if self._stop.is_set():
                return
            try:
                self._send(item)
            except SendFailed as err:
                log.warning("outbox %s: %s", item.name, err)
                return
            self.audit.write(
                {"event": "resent", "source_series": item.name.removesuffix(SEG_SUFFIX)}
            )


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 3)


def _remove(item: Path) -> None:
    if item.is_dir():
        shutil.rmtree(item)
    else:
        item.unlink(missing_ok=True)
