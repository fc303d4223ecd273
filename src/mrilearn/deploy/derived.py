"""Writing a prediction in the form the output path asks for, naming the model in it:

- ``*.nii`` / ``*.nii.gz``: NIfTI;
- ``*.dcm``: a DICOM Segmentation (one file) of a label-map prediction, referencing the DICOM
  series it was computed from (:mod:`mrilearn.io.dicom.seg`);
- any other path: a folder holding a derived MR series (one file per slice; a label map's
  values as pixel values).
"""

from __future__ import annotations

from pathlib import Path

from mrilearn.deploy.package import dicom_description, model_description, version_stamp
from mrilearn.engine.contract import Predictor
from mrilearn.errors import DataError
from mrilearn.io.dicom.seg import write_dicom_seg
from mrilearn.io.nifti import is_nifti_path
from mrilearn.io.outputs import Output
from mrilearn.io.readers import write_volume
from mrilearn.io.volume import Volume

SEG_SUFFIX = ".dcm"


def is_seg_path(path: Path) -> bool:
    return Path(path).suffix.lower() == SEG_SUFFIX


def prediction_output(target: Path) -> Output:
    """The output ``check_outputs`` checks: a file (NIfTI, DICOM-SEG) or a series folder."""
    if is_nifti_path(target) or is_seg_path(target):
        return Output(Path(target))
    return Output.folder(target, "*.dcm")


def check_prediction_target(trainer: Predictor, source: Path, target: Path) -> None:
    """DataError, before anything is computed, for a DICOM-SEG output the model or the input
    cannot give."""
    if not is_seg_path(target):
        return
    if trainer.label_table() is None:
        raise DataError(
            f"{target}: a .dcm output is a DICOM Segmentation, which needs a segmentation model; "
            "name a .nii.gz file or a folder (a derived DICOM series) instead"
        )
    if not Path(source).is_dir():
        raise DataError(
            f"{target}: a DICOM Segmentation references its source images: pass a DICOM series "
            f"folder as the input, not {source}"
        )


def write_prediction(trainer: Predictor, prediction: Volume, target: Path) -> Path:
    """Write ``prediction`` (``trainer.infer_volume``'s result) to ``target``; returns it."""
    if is_seg_path(target):
        table = trainer.label_table()
        if table is None:
            raise DataError(f"{target}: DICOM-SEG output needs a segmentation model")
        return write_dicom_seg(
            prediction, target, table, series_description=model_description(trainer)[0],
            model=f"mrilearn {trainer.cfg.model['name']}", version=version_stamp(trainer),
        )  # fmt: skip
    return write_volume(prediction, target, **dicom_description(trainer, target))
