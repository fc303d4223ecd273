"""Label maps (NIfTI files or a folder of them) → SPADE-synthesised images, written
atomically in the label maps' geometry with a JSON record of the skipped (nearly empty) slices.

A folder's images appear together when every label map has been tried; a bad label map is
reported and skipped, and the command ends with a summary and a non-zero exit status.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mrilearn.apps.synthesis.trainer import SpadeTrainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.io import read_volume, write_nifti
from mrilearn.io.atomic import atomic_dir, write_json_atomic
from mrilearn.io.batch import BatchResult, Item, file_items, run_batch
from mrilearn.io.nifti import NIFTI_SUFFIXES, is_nifti_path
from mrilearn.io.outputs import Output, check_outputs
from mrilearn.runs import load_run

log = logging.getLogger(__name__)


def spade_run(run_dir: Path, checkpoint: str = "best") -> SpadeTrainer:
    """A trained SPADE run's trainer (config + weights), or a one-line error."""
    trainer = load_run(Path(run_dir), checkpoint)
    if not isinstance(trainer, SpadeTrainer):
        raise ConfigError(f"{run_dir}: trained with {type(trainer).__name__}, not SpadeTrainer")
    return trainer


def label_items(folder: Path, output: Path) -> list[Item]:
    """The NIfTI label maps of a folder, sorted, each with its image ``output / name``."""
    return file_items(folder, output, NIFTI_SUFFIXES, lambda p: p.name)


def label_files(folder: Path) -> list[Path]:
    """The NIfTI files of a folder, sorted; an error if there are none."""
    return [item.source for item in label_items(folder, folder)]


def synthesize_one(
    trainer: SpadeTrainer, src: Path, dst: Path, seed: int | None, min_foreground: float | None
) -> dict[str, Any]:
    """Synthesise the image of label map ``src`` and write it to ``dst``; returns its record
    (label, image, skipped slices)."""
    label = read_volume(src, label=True)
    result = trainer.synthesize(label, seed, min_foreground, where=str(src))
    if result.skipped_slices:
        log.warning("%s: %d of %d axial slices nearly empty, left as background",
                    src, len(result.skipped_slices), result.slices)  # fmt: skip
    write_nifti(result.image, dst)
    return {
        "label": str(src), "image": str(dst), "slices": result.slices,
        "skipped_slices": result.skipped_slices,
    }  # fmt: skip


def synthesize_paths(
    run_dir: Path, source: Path, output: Path, seed: int | None = None,
    min_foreground: float | None = None, checkpoint: str = "best", overwrite: bool = False,
) -> tuple[list[dict[str, Any]], BatchResult | None]:  # fmt: skip
    """``mrilearn synthesize``: a label map file → an image file plus ``<stem>.json``; a
    folder of label maps → a folder of images of the same names plus ``synthesis.json``
    (written as a whole when every label map has been tried; a label map that fails is
    reported, skipped and listed there). Existing outputs are replaced only with
    ``overwrite``. Returns the records and, for a folder, the batch result."""
    if not source.is_dir() and not is_nifti_path(output):
        raise DataError(f"{output}: the output of one label map must end with .nii or .nii.gz")
    sidecar = output.with_name(f"{output.name.removesuffix('.gz').removesuffix('.nii')}.json")
    items = label_items(source, output) if source.is_dir() else []
    outputs = (
        [Output.folder(output, *(i.output.name for i in items), "synthesis.json")]
        if source.is_dir()
        else [output, sidecar]
    )
    check_outputs(outputs, [source, run_dir], overwrite)
    trainer = spade_run(run_dir, checkpoint)
    threshold = trainer.data.min_foreground if min_foreground is None else min_foreground
    meta = {"run": str(run_dir), "iteration": trainer.iteration, "seed": seed,
            "min_foreground": threshold,
            "units": "z-scored intensity (per-volume standardised, as in training)",
            "skipped_slices": "axial slice indices of the working grid (data.spacing mm, RAS)"}  # fmt: skip
    if not source.is_dir():
        records = [synthesize_one(trainer, source, output, seed, min_foreground)]
        write_json_atomic(sidecar, {**meta, "files": records})
        return records, None
    records = []
    with atomic_dir(output) as tmp:

        def work(item: Item) -> list[Path]:
            record = synthesize_one(trainer, item.source, tmp / item.output.name, seed,
                                    min_foreground)  # fmt: skip
            records.append({**record, "image": str(item.output)})
            return [item.output]

        result = run_batch(items, work)
        failed = [{"label": str(i.source), "error": reason} for i, reason in result.failed]
        write_json_atomic(tmp / "synthesis.json", {**meta, "files": records, "failed": failed})
    return records, result
