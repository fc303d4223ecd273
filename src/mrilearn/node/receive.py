"""The C-STORE handler: check an instance, spool it, answer with a DICOM status. Nothing
slow happens here (models run in the worker), so associations stay responsive.

Statuses (DICOM PS3.4 Annex B, PS3.7 Annex C), each refusal with one log line:

=======  ====================================================================
0x0000   stored
0x0122   refused: SOP class not supported (not an image storage SOP class)
0xA700   refused: out of resources (the series would pass ``--max-series-mb``)
0xC000   cannot understand: the instance cannot be decoded, or its pixel data
         does not match its Rows, Columns and Bits Allocated
0xC001   cannot understand: a modality the model does not take (``--modality``)
0xC002   cannot understand: not a single-frame greyscale image with the
         geometry a 3-D volume needs (position, orientation, pixel spacing, UIDs)
0xC003   cannot understand: the node could not write the instance to its spool
=======  ====================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from mrilearn.node.settings import NodeSettings
from mrilearn.node.spool import Spool, is_uid

log = logging.getLogger(__name__)

SUCCESS = 0x0000
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700
CANNOT_DECODE = 0xC000
WRONG_MODALITY = 0xC001
NOT_A_SLICE = 0xC002
SPOOL_FAILED = 0xC003
GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


class Refused(Exception):
    """An instance the node does not store: its status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def is_image_storage(sop_class: str) -> bool:
    return "Image Storage" in UID(sop_class).name


def check_instance(ds: Dataset, sop_class: str, settings: NodeSettings) -> None:
    """Refused unless ``ds`` is a slice the model can take (see the status table)."""
    if not is_image_storage(sop_class):
        raise Refused(SOP_CLASS_NOT_SUPPORTED, f"SOP class {UID(sop_class).name} is not an image")
    modality = str(ds.get("Modality", ""))
    if modality not in settings.modalities:
        raise Refused(WRONG_MODALITY, f"modality {modality or 'missing'} is not one of "
                                      f"{', '.join(settings.modalities)}")  # fmt: skip
    missing = [k for k in GEOMETRY if ds.get(k) in (None, "")]
    if missing or int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise Refused(NOT_A_SLICE, f"missing {', '.join(missing)}" if missing else "multi-frame")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise Refused(NOT_A_SLICE, "colour images are not taken")
    for key in ("SeriesInstanceUID", "SOPInstanceUID"):
        if not is_uid(str(ds.get(key, ""))):
            raise Refused(NOT_A_SLICE, f"{key} is missing or not a UID")
    try:
        pixels = ds.pixel_array
    except Exception as err:
        raise Refused(
            CANNOT_DECODE, f"pixel data cannot be decoded ({type(err).__name__})"
        ) from None
    if pixels.shape != (int(ds.Rows), int(ds.Columns)):
        raise Refused(CANNOT_DECODE, f"pixel array {pixels.shape} is not Rows x Columns")


def store_handler(spool: Spool, settings: NodeSettings) -> Callable[[Any], int]:
    """The ``evt.EVT_C_STORE`` handler of a node."""
    limit = int(settings.max_series_mb * 1e6)

    def handle(event: Any) -> int:
        sender = str(event.assoc.requestor.ae_title)
        sop_class = str(event.request.AffectedSOPClassUID)
        series = sop = "?"
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta  # the transfer syntax, to decode the pixels
            series, sop = str(ds.get("SeriesInstanceUID", "?")), str(ds.get("SOPInstanceUID", "?"))
            check_instance(ds, sop_class, settings)
            data = event.encoded_dataset()
            if spool.bytes_of(series) + len(data) > limit:
                raise Refused(OUT_OF_RESOURCES, f"series would pass {settings.max_series_mb} MB")
            spool.store(series, sop, data, sender)
        except Refused as err:
            return _refused(err.status, str(err), sender, series, sop)
        except OSError as err:
            return _refused(
                SPOOL_FAILED, f"cannot write the spool ({err.strerror})", sender, series, sop
            )
        except Exception as err:  # a dataset that cannot be decoded raises anything
            return _refused(
                CANNOT_DECODE, f"cannot be decoded ({type(err).__name__})", sender, series, sop
            )
        return SUCCESS

    return handle


def _refused(status: int, reason: str, sender: str, series: str, sop: str) -> int:
    log.warning(
        "refused instance %s of series %s from %s: %s (status 0x%04X)", sop, series, sender,
        reason, status,
    )  # fmt: skip
    return status
