"""Label maps (NIfTI files or a folder of them) → SPADE-synthesised images, written
atomically in the label maps' geometry with a JSON record of the skipped (nearly empty) slices.

Everything is computed before anything is written, so a bad label map leaves no output.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mrilearn.apps.synthesis.trainer import SpadeTrainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.io import read_volume, write_nifti
from mrilearn.io.atomic import atomic_dir, write_json_atomic
from mrilearn.io.nifti import is_nifti_path
from mrilearn.io.outputs import Output, check_outputs
from mrilearn.runs import load_run

log = logging.getLogger(__name__)


def spade_run(run_dir: Path, checkpoint: str = "best") -> SpadeTrainer:
    """A trained SPADE run's trainer (config + weights), or a one-line error."""
    trainer = load_run(Path(run_dir), checkpoint)
    if not isinstance(trainer, SpadeTrainer):
        raise ConfigError(f"{run_dir}: trained with {type(trainer).__name__}, not SpadeTrainer")
    return trainer


def label_files(folder: Path) -> list[Path]:
    """The NIfTI files of a folder, sorted; an error if there are none."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_nifti_path(p))
    if not files:
        raise DataError(f"{folder}: holds no .nii/.nii.gz label maps")
    return files


def synthesize_files(
    trainer: SpadeTrainer, inputs: list[Path], outputs: list[Path], seed: int | None,
    min_foreground: float | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Synthesise every input label map, then write each image to its output path; returns
    one record per file (input, output, skipped slices)."""
    results, records = [], []
    for src, dst in zip(inputs, outputs):
        label = read_volume(src, label=True)
        result = trainer.synthesize(label, seed, min_foreground, where=str(src))
        results.append(result)
        records.append({
            "label": str(src), "image": str(dst), "slices": result.slices,
            "skipped_slices": result.skipped_slices,
        })  # fmt: skip
        if result.skipped_slices:
            log.warning("%s: %d of %d axial slices nearly empty, left as background",
                        src, len(result.skipped_slices), result.slices)  # fmt: skip
    for result, dst in zip(results, outputs):
        write_nifti(result.image, dst)
    return records


def synthesize_paths(
    run_dir: Path, source: Path, output: Path, seed: int | None = None,
    min_foreground: float | None = None, checkpoint: str = "best", overwrite: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """``mrilearn synthesize``: a label map file → an image file plus ``<stem>.json``; a
    folder of label maps → a folder of images of the same names plus ``synthesis.json``.
    Existing outputs are replaced only with ``overwrite``."""
    if not source.is_dir() and not is_nifti_path(output):
        raise DataError(f"{output}: the output of one label map must end with .nii or .nii.gz")
    sidecar = output.with_name(f"{output.name.removesuffix('.gz').removesuffix('.nii')}.json")
    outputs = (
        [Output.folder(output, *(p.name for p in label_files(source)), "synthesis.json")]
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
    if source.is_dir():
        inputs = label_files(source)
        with atomic_dir(output) as tmp:
            records = synthesize_files(
                trainer, inputs, [tmp / p.name for p in inputs], seed, min_foreground
            )
            for r, p in zip(records, inputs):
                r["image"] = str(output / p.name)
            write_json_atomic(tmp / "synthesis.json", {**meta, "files": records})
        return records
    records = synthesize_files(trainer, [source], [output], seed, min_foreground)
    write_json_atomic(sidecar, {**meta, "files": records})
    return records
