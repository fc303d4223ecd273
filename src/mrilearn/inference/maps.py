"""Maps written beside an inference output: attention maps and uncertainty maps, each as a
NIfTI volume in the input's geometry and a PNG of its orthogonal slices."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mrilearn.engine.contract import Predictor
from mrilearn.errors import ConfigError
from mrilearn.io import Volume, write_volume
from mrilearn.report import figures


def write_beside(
    output: Path, name: str, volume: Volume, title: str, point: Sequence[int] | None = None
) -> list[Path]:
    """``<output stem>_<name>.nii.gz`` and ``.png`` next to ``output`` (a file or folder)."""
    stem = output.name.removesuffix(".gz").removesuffix(".nii")
    base = output.parent / f"{stem}_{name}"
    nifti = write_volume(volume, base.with_name(base.name + ".nii.gz"))
    png = figures.orthogonal_slices(volume.data, base.with_name(base.name + ".png"), title, point)
    return [Path(nifti), png]


def write_attention_map(trainer: Predictor, volume: Volume, voxel: str, output: Path) -> list[Path]:
    """``mrilearn infer --attention X,Y,Z``: where the network looked to produce that voxel."""
    try:
        point = [int(v) for v in voxel.split(",")]
    except ValueError:
        raise ConfigError(f"--attention {voxel!r}: expected three voxel indices X,Y,Z") from None
    amap = trainer.attention_map(volume, point)
    name = f"attention_{'_'.join(map(str, point))}"
    return write_beside(Path(output), name, amap, f"attention of voxel {point}", point)
