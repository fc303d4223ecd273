"""Sending derived series on: a C-STORE client to the forward destination."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from mrilearn.node.settings import Destination

log = logging.getLogger(__name__)

ACCEPTED = {0x0000, 0xB000, 0xB006, 0xB007}  # success and the storage warnings


class SendFailed(Exception):
    """The destination could not be reached or did not accept every instance."""


def derived_files(path: Path) -> list[Path]:
    """The DICOM files of a derived item: a file itself, or a series folder's ``*.dcm``."""
    return [path] if path.is_file() else sorted(path.glob("*.dcm"))


class Sender:
    """Sends files to ``destination`` in one association per call, as ``ae_title``."""

    def __init__(self, ae_title: str, destination: Destination, timeout: float = 30.0) -> None:
        self.ae_title = ae_title
        self.destination = destination
        self.timeout = timeout

    def send(self, files: list[Path]) -> None:
        """C-STORE every file; SendFailed unless the destination accepted all of them."""
        from pynetdicom import AE

        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        for sop_class in sorted({_sop_class(f) for f in files}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        dest = self.destination
        assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title)
        if not assoc.is_established:
            raise SendFailed(f"{dest}: no association (refused, or nothing listens there)")
        try:
            refused = [f.name for f in files if _status(assoc.send_c_store(f)) not in ACCEPTED]
        finally:
            assoc.release()
        if refused:
            raise SendFailed(f"{dest}: refused {len(refused)} of {len(files)} instances")


def _sop_class(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.MediaStorageSOPClassUID)


def _status(status: object) -> int:
    """The status code of a C-STORE response (-1 when there was none: a timeout, an abort)."""
    return int(getattr(status, "Status", -1)) if status else -1
