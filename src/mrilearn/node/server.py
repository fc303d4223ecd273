"""The node: a DICOM Storage SCP (pynetdicom) in front of the spool and the worker.

:class:`Node` starts and stops it (tests and benchmarks run it in threads); :func:`serve`
runs it until Ctrl-C or SIGTERM: it stops taking associations, lets those in progress end
(``GRACE_SECONDS``), finishes the running job and returns; a second signal stops at once, and
whatever was not finished is completed from the spool at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from types import FrameType, TracebackType
from typing import Any

from mrilearn.engine.contract import Predictor
from mrilearn.errors import DataError
from mrilearn.io.lock import folder_lock
from mrilearn.node.audit import AuditLog
from mrilearn.node.receive import store_handler
from mrilearn.node.send import Sender
from mrilearn.node.settings import NodeSettings
from mrilearn.node.spool import Spool
from mrilearn.node.worker import Worker

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0
BUSY = "another mrilearn serve uses this spool; give each node its own --spool"


class Node:
    """A running DICOM node (``with Node(...) as node:``; ``node.port`` is the bound port)."""

    def __init__(self, predictor: Predictor, settings: NodeSettings) -> None:
        self.settings = settings
        self.spool = Spool(settings.spool)
        self.audit = AuditLog(settings.audit_path)
        sender = Sender(settings.ae_title, settings.forward) if settings.forward else None
        self.worker = Worker(predictor, settings, self.spool, self.audit, sender)
        self._stack = contextlib.ExitStack()
        self._ae: Any = None
        self._server: Any = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Lock the spool, resume what it holds, start the worker, then listen."""
        try:
            self._stack.enter_context(folder_lock(self.spool.root, BUSY))
            self.spool.recover()
            self.worker.start()
            self._stack.callback(self.worker.stop)
            self._server = self._listen()
            self._stack.callback(self._close)
        except BaseException:
            self._stack.close()
            raise
        s = self.settings
        log.info(
            "listening as %s on %s:%d; results to %s", s.ae_title, s.host, self.port,
            s.forward or s.out,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop listening, let open associations end, finish the running job."""
        self._stack.close()

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _listen(self) -> Any:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        logging.getLogger("pynetdicom").setLevel(max(log.getEffectiveLevel(), logging.WARNING))
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(s.allow)
        handlers = [
            (evt.EVT_C_STORE, store_handler(self.spool, s)),
            (evt.EVT_REJECTED, _log_rejected),
        ]
        self._ae = ae
        try:
            return ae.start_server((s.host, s.port), block=False, evt_handlers=handlers)
        except OSError as err:
            raise DataError(
                f"cannot listen on {s.host}:{s.port} ({err.strerror}); choose another --port "
                "(below 1024 needs privileges) or --host"
            ) from None

    def _close(self) -> None:
        self._server.shutdown()  # no new associations
        deadline = time.monotonic() + GRACE_SECONDS
        while self._ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        self._ae.shutdown()  # aborts what is still open: its instances wait in the spool


def _log_rejected(event: Any) -> None:
    log.warning(
        "refused an association from %s at %s: calling AE title not in --allow",
        event.assoc.requestor.ae_title, event.assoc.requestor.address,
    )  # fmt: skip


def serve(predictor: Predictor, settings: NodeSettings) -> None:
    """Run a node until Ctrl-C or SIGTERM (call from the main thread)."""
    stopping = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt  # a second signal: stop now
        log.warning("%s: stopping after the running job", signal.Signals(signum).name)
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Node(predictor, settings):
            while not stopping.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
