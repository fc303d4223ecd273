"""Maps written beside an inference output: attention maps and uncertainty maps, each as a
NIfTI volume in the input's geometry and a PNG of its orthogonal slices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mrilearn.engine.contract import Predictor
from mrilearn.errors import ConfigError
from mrilearn.io import Volume, write_volume


@dataclass
class Map:
    """A map written beside an inference output as ``<output stem>_<name>.nii.gz`` and
    ``.png`` (orthogonal slices through ``point``, or the centre)."""

    name: str
    volume: Volume
    title: str
    point: Sequence[int] | None = None

    def paths(self, output: Path) -> tuple[Path, Path]:
        """Its NIfTI and PNG paths beside ``output`` (a file or a folder)."""
        stem = Path(output).name.removesuffix(".gz").removesuffix(".nii")
        base = Path(output).parent / f"{stem}_{self.name}"
        return base.with_name(base.name + ".nii.gz"), base.with_name(base.name + ".png")


def write_maps(output: Path, maps: Sequence[Map]) -> list[Path]:
    """Write every map beside ``output``; returns the files written."""
    from mrilearn.report import figures  # matplotlib: only when there are maps

    written: list[Path] = []
    for m in maps:
        nifti, png = m.paths(output)
        written.append(Path(write_volume(m.volume, nifti)))
        written.append(figures.orthogonal_slices(m.volume.data, png, m.title, m.point))
    return written


def attention_map(trainer: Predictor, volume: Volume, voxel: str) -> Map:
    """``mrilearn infer --attention X,Y,Z``: where the network looked to produce that voxel."""
    try:
        point = [int(v) for v in voxel.split(",")]
    except ValueError:
        raise ConfigError(f"--attention {voxel!r}: expected three voxel indices X,Y,Z") from None
    amap = trainer.attention_map(volume, point)
    name = f"attention_{'_'.join(map(str, point))}"
    return Map(name, amap, f"attention of voxel {point}", point)
