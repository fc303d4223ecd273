"""``mrilearn infer``: a trained run or package applied to one scan or to a folder of scans.

The input is a NIfTI file, a DICOM series folder, or a folder of NIfTI files and DICOM series
sub-folders (:mod:`mrilearn.io.batch` says how a folder is told apart). The model is loaded
once by the caller; each scan is read, prepared (:meth:`Predictor.prepare_input`: the voxel
size check, reduced-matrix inputs), predicted (optionally with MC-dropout uncertainty maps and
an attention map) and written in its own geometry by :func:`~mrilearn.deploy.derived.write_prediction`
(NIfTI, a DICOM Segmentation for a ``.dcm`` output, else a derived DICOM series). Every output
is checked before the first is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mrilearn.deploy.derived import (
    check_prediction_target,
    is_seg_path,
    prediction_output,
    write_prediction,
)
from mrilearn.engine.contract import Predictor
from mrilearn.inference.maps import Map, attention_map, write_maps
from mrilearn.io import Volume, read_volume
from mrilearn.io.batch import Item, is_folder_of_items, volume_items
from mrilearn.io.nifti import is_nifti_path
from mrilearn.io.outputs import OutputError, check_outputs


@dataclass(frozen=True)
class InferOptions:
    """What ``infer`` does to each scan besides predicting it."""

    samples: int = 0  # > 0: mean of N MC-dropout passes, plus uncertainty maps
    attention: str | None = None  # "X,Y,Z": also the attention map of this voxel
    series_uid: str | None = None  # the series of a folder holding several
    reduced: bool = False  # the scan lies on its own reduced matrix (super-resolution)
    target_shape: Sequence[int] | None = None  # ... to be zero-filled onto this matrix


def infer_items(source: Path, output: Path) -> tuple[list[Item], bool]:
    """The items of ``source`` with their outputs, and whether it is a batch (a folder of
    scans, whose outputs go into the folder ``output`` under the same names)."""
    if not is_folder_of_items(source):
        return [Item(source, output)], False
    if is_nifti_path(output) or is_seg_path(output) or output.is_file():
        raise OutputError(
            f"{output}: the outputs of a folder of scans go into a folder; name a folder "
            "(e.g. -o results/)"
        )
    if output.resolve() == source.resolve():
        raise OutputError(f"{output}: is the input folder; write the outputs to another folder")
    return volume_items(source, output), True


def check_item_outputs(items: Sequence[Item], inputs: Sequence[Path], overwrite: bool) -> None:
    """Every item's output may be written (checked before the model is loaded)."""
    check_outputs([prediction_output(i.output) for i in items], inputs, overwrite)


class Inference:
    """Predicts and writes one item at a time with a loaded model; the maps' outputs of every
    item are checked when the first item shows which maps there are."""

    def __init__(
        self, trainer: Predictor, options: InferOptions, items: Sequence[Item],
        inputs: Sequence[Path], overwrite: bool,
    ) -> None:  # fmt: skip
        self.trainer = trainer
        self.options = options
        self.items = list(items)
        self.inputs = list(inputs)
        self.overwrite = overwrite
        self._maps_checked = False

    def predict(self, volume: Volume) -> tuple[Volume, list[Map]]:
        """The prediction and the maps to write beside it."""
        if self.options.samples:
            from mrilearn.inference.uncertainty import infer_with_uncertainty

            out, maps = infer_with_uncertainty(self.trainer, volume, self.options.samples)
        else:
            out, maps = self.trainer.infer_volume(volume), []
        if self.options.attention:
            maps.append(attention_map(self.trainer, volume, self.options.attention))
        return out, maps

    def __call__(self, item: Item) -> list[Path]:
        """Read, prepare, predict and write ``item``; returns the files written."""
        opts = self.options
        check_prediction_target(self.trainer, item.source, item.output)
        volume = read_volume(item.source, series_uid=opts.series_uid)
        volume = self.trainer.prepare_input(
            volume, str(item.source), opts.reduced, opts.target_shape
        )
        out, maps = self.predict(volume)
        if maps and not self._maps_checked:
            paths = [p for i in self.items for m in maps for p in m.paths(i.output)]
            check_outputs(paths, self.inputs, self.overwrite)
            self._maps_checked = True
        written = write_prediction(self.trainer, out, item.output)
        return [Path(written), *write_maps(item.output, maps)]
