"""Scans acquired on their own reduced matrix, brought onto the model's HR grid.

A scan that acquires 1/f of the phase-encoding lines and is reconstructed without
zero-filling comes on a matrix of m ≈ n/f lines, its voxels f times larger along those axes.
The network takes the zero-filled image on the HR matrix (what ``KspaceTruncation`` with
``output: same`` simulates), so ``mrilearn infer --reduced`` (or ``--target-shape X Y Z``)
zero-pads the scan's centred k-space onto n lines per axis, with the k-space convention of
:mod:`mrilearn.apps.sr.degrade` (the kept block is the central ``m`` lines of ``n``), and
keeps the mean intensity. For the complex image this is exact: zero-filling
``reduced_complex(hr)`` gives ``truncate_complex(hr)``. A stored scan is a magnitude image,
so its k-space lacks the phase; where the reduced image is real and non-negative (the
usual case away from ringing) the result is the same.

The geometry keeps the field of view: along a padded axis the voxel size is divided by
n/m, and the first voxel centre moves outward by half the difference of the voxel sizes, so
the outer voxel edges, and the centre of the volume, stay where they were (as a scanner's
zero-filling interpolation keeps its field of view).

The run's degradation gives n = round(m·f) (``--reduced``): for f = 2 both 2m − 1 and 2m
lines truncate to m, so an odd HR matrix needs ``--target-shape``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrilearn.apps.sr.degrade import fft_centred, ifft_centred, kept_slice
from mrilearn.errors import ConfigError, DataError
from mrilearn.io.volume import Volume, fmt_spacing, spacing_matches


def zero_fill(small: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The complex (X, Y, Z) image on ``shape`` whose centred k-space is ``small``'s, zero-padded
    (axes of equal size are left alone), scaled so that its mean is ``small``'s."""
    small = np.asarray(small)
    shape = tuple(int(n) for n in shape)
    if small.ndim != 3 or len(shape) != 3 or any(n < m for n, m in zip(shape, small.shape)):
        raise DataError(
            f"cannot zero-fill a volume of shape {small.shape} onto {shape}: need a 3-D volume "
            "and a target matrix at least as large along every axis"
        )
    axes = [a for a in range(3) if shape[a] != small.shape[a]]
    if not axes:
        return small.astype(np.result_type(small.dtype, np.complex64))
    k = fft_centred(small, axes)
    big = np.zeros(shape, k.dtype)
    big[tuple(kept_slice(n, m) for n, m in zip(shape, small.shape))] = k
    scale = float(np.prod([shape[a] / small.shape[a] for a in axes]))
    return ifft_centred(big, axes) * scale


def grid_affine(affine: np.ndarray, small_shape: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """The affine of a ``shape`` grid over the field of view of the ``small_shape`` grid of
    ``affine``: voxel ``i`` of the new grid lies at ``(i + ½)·m/n − ½`` of the old one."""
    out = np.array(affine, dtype=np.float64, copy=True)
    for a, (m, n) in enumerate(zip(small_shape, shape)):
        column = out[:3, a].copy()
        out[:3, 3] += column * (0.5 * m / n - 0.5)
        out[:3, a] = column * (m / n)
    return out


def model_shape(small_shape: Sequence[int], factors: Sequence[float]) -> tuple[int, int, int]:
    """The HR matrix a reduced acquisition came from: ``m·f`` lines, rounded half up (one of
    the matrices that ``KspaceTruncation`` truncates to ``m`` lines)."""
    return tuple(int(np.floor(m * f + 0.5)) for m, f in zip(small_shape, factors))


def onto_model_grid(volume: Volume, shape: Sequence[int]) -> Volume:
    """``volume`` zero-filled onto the ``shape`` matrix over the same field of view: the
    magnitude image, float32 (see the module notes)."""
    small = volume.shape[:3]
    if len(volume.shape) != 3:
        raise DataError(f"a reduced-matrix input must be 3-D (X, Y, Z), got shape {volume.shape}")
    data = np.abs(zero_fill(volume.data, shape)).astype(np.float32)
    return Volume(data, grid_affine(volume.affine, small, shape), volume.header, dict(volume.meta))


def reduced_input(
    volume: Volume, where: str, factors: Sequence[float] | None,
    trained: Sequence[float] | None, target_shape: Sequence[int] | None = None,
) -> Volume:  # fmt: skip
    """``mrilearn infer --reduced`` / ``--target-shape``: a reduced-matrix scan on the model's
    grid. ``factors``: the run's truncation factor per array axis; ``trained``: the training
    voxel size, which a scan already on the HR grid has (refused: nothing to zero-fill)."""
    if trained is not None and spacing_matches(volume.spacing, trained):
        raise ConfigError(
            f"{where}: --reduced/--target-shape: its voxel size {fmt_spacing(volume.spacing)} "
            "mm is already the model's; it is on the HR grid: leave the option out"
        )
    if target_shape is None:
        if factors is None:
            raise ConfigError(
                f"{where}: --reduced needs the run's k-space truncation factors; this run has "
                "none: pass --target-shape X Y Z"
            )
        target_shape = model_shape(volume.shape[:3], factors)
    return onto_model_grid(volume, target_shape)


def reduced_hint(
    spacing: Sequence[float], trained: Sequence[float] | None, factors: Sequence[float]
) -> str:
    """A hint for the voxel-size warning when ``spacing`` is the training voxel size times
    the truncation factors: the scan looks like an acquisition on its reduced matrix."""
    if trained is None or not spacing_matches(spacing, [t * f for t, f in zip(trained, factors)]):
        return ""
    return (
        "; its voxels are the truncation factors "
        f"({fmt_spacing(factors)}) times larger: if it was acquired on its reduced matrix, "
        "pass --reduced to zero-fill it onto the model's grid"
    )
