"""Low-resolution simulation by k-space truncation (§3.2.1).

An HR volume is Fourier transformed, only the central part of k-space along the
phase-encoding axes is kept (the rest is zeroed), and the inverse transform's
magnitude is the LR volume on the SAME matrix: what a scanner acquiring fewer
phase-encoding lines and zero-filling would reconstruct.

k-space convention (used everywhere in this module): the centred transform
``fftshift(fft(ifftshift(x)))`` puts both the image centre and DC at index
``n // 2`` for odd and even ``n``. Along an axis of size ``n`` truncated by a
factor ``f`` the number of kept lines is ``m = max(1, floor(n / f + 0.5))``
(``n / f`` rounded half up), and the kept lines are indices
``[n//2 - m//2, n//2 - m//2 + m)``, i.e. frequencies ``-(m//2) … m - m//2 - 1``
around DC: exactly symmetric for odd ``m``, one extra negative line for even
``m`` (the ``fftshift`` convention of an ``m``-point grid). So the kept block is
the centred k-space of an ``m``-point grid, which is what ``output="reduced"``
reconstructs; the reduced voxel ``j`` sits at HR voxel ``n//2 + (j - m//2)·n/m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
import scipy.fft
import scipy.ndimage

from mrilearn.constraints import Range, SpatialAxis
from mrilearn.errors import ConfigError, DataError
from mrilearn.registry import DEGRADATIONS


def kept_lines(n: int, factor: float) -> int:
    """Number of central k-space lines kept out of ``n`` for a factor: ``n / f`` rounded half up."""
    return max(1, min(n, int(np.floor(n / factor + 0.5))))


def kept_slice(n: int, m: int) -> slice:
    """Index range of the ``m`` central lines of a centred ``n``-point k-space axis."""
    start = n // 2 - m // 2
    return slice(start, start + m)


def fft_centred(x: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Centred FFT along ``axes`` (image centre and DC at ``n // 2``)."""
    axes = tuple(axes)
    k = scipy.fft.fftn(scipy.fft.ifftshift(x, axes=axes), axes=axes, workers=-1)
    return scipy.fft.fftshift(k, axes=axes)


def ifft_centred(k: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`fft_centred`."""
    axes = tuple(axes)
    x = scipy.fft.ifftn(scipy.fft.ifftshift(k, axes=axes), axes=axes, workers=-1)
    return scipy.fft.fftshift(x, axes=axes)


@DEGRADATIONS.register()
class KspaceTruncation:
    """Keep the central 1/f of k-space along each phase-encoding axis; zero-fill the rest.

    Args:
        factors: truncation factor per listed axis (≥ 1, fractional allowed); 2 keeps half
            the lines, so ``[2, 2]`` acquires 4× fewer lines.
        axes: the phase-encoding axes (distinct, in 0..2) the factors apply to; the other
            (read-out) axis is untouched.
        output: ``"same"`` returns the zero-filled magnitude image on the HR matrix (the
            network input); ``"reduced"`` returns the magnitude image on the small
            ``kept_shape`` grid (for interpolation baselines), intensity-scaled so that its
            mean equals the same-size result's (complex) mean.

    Deterministic: no randomness, the same volume always gives the same output.
    """

    def __init__(
        self,
        factors: list[Annotated[float, Range(ge=1)]] = [2.0, 2.0],  # noqa: B006  (YAML default)
        axes: list[SpatialAxis] = [1, 2],  # noqa: B006
        output: Literal["same", "reduced"] = "same",
    ) -> None:
        if len(factors) != len(axes):
            raise ConfigError(
                f"KspaceTruncation: {len(factors)} factors for {len(axes)} axes; "
                "give one factor per phase-encoding axis, e.g. factors: [2, 2], axes: [1, 2]"
            )
        if not factors:
            raise ConfigError("KspaceTruncation: no axes given; list 1 to 3 of axes 0, 1, 2")
        bad = [f for f in factors if not np.isfinite(f) or f < 1]
        if bad:
            raise ConfigError(
                f"KspaceTruncation: factors must be finite and ≥ 1 (1 = no truncation), got {bad}"
            )
        if any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
            raise ConfigError(
                f"KspaceTruncation: axes must be distinct values in 0..2, got {list(axes)}"
            )
        if output not in ("same", "reduced"):
            raise ConfigError(
                f"KspaceTruncation: output must be 'same' or 'reduced', got {output!r}"
            )
        self.factors = [float(f) for f in factors]
        self.axes = [int(a) for a in axes]
        self.output = output

    def __repr__(self) -> str:
        return f"KspaceTruncation(factors={self.factors}, axes={self.axes}, output={self.output!r})"

    @property
    def axis_factors(self) -> tuple[float, float, float]:
        """Truncation factor of each of the three array axes (1.0 where untouched)."""
        per_axis = [1.0, 1.0, 1.0]
        for a, f in zip(self.axes, self.factors, strict=True):
            per_axis[a] = f
        return tuple(per_axis)

    @property
    def slice_axis(self) -> int:
        """Axis to iterate over for slice-wise metrics: slices perpendicular to it are the
        most degraded plane.

        It is the least truncated axis (the read-out axis), ties broken by the lowest
        index; e.g. truncation along axes 1 and 2 gives 0, so slices ``x[i]`` hold both
        truncated axes in-plane.
        """
        per_axis = self.axis_factors
        return int(min(range(3), key=lambda a: (per_axis[a], a)))

    def kept_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """Number of kept k-space lines per axis, i.e. the matrix of ``output="reduced"``."""
        shape = self._check_shape(shape)
        return tuple(kept_lines(n, f) for n, f in zip(shape, self.axis_factors, strict=True))

    def mask(self, shape: Sequence[int]) -> np.ndarray:
        """Boolean (X, Y, Z) mask of the kept region in centred k-space (DC at ``n // 2``)."""
        shape = self._check_shape(shape)
        keep = np.zeros(shape, dtype=bool)
        keep[self._kept_index(shape)] = True
        return keep

    def __call__(self, hr: np.ndarray) -> np.ndarray:
        """LR magnitude volume from an HR (X, Y, Z) real volume; float32 stays float32."""
        hr = self._check_volume(hr)
        if self.output == "reduced":
            return np.abs(self.reduced_complex(hr)).astype(hr.dtype, copy=False)
        return np.abs(self.truncate_complex(hr)).astype(hr.dtype, copy=False)

    def truncate_complex(self, hr: np.ndarray) -> np.ndarray:
        """Zero-filled complex image on the HR matrix, before taking the magnitude.

        Only the truncated axes are transformed: along the read-out axis an FFT and its
        inverse cancel, so skipping them is exact and saves time.
        """
        hr = self._check_volume(hr)
        k = fft_centred(hr, self.axes)
        for a in self.axes:
            n = hr.shape[a]
            sl = kept_slice(n, kept_lines(n, self.axis_factors[a]))
            index = [slice(None)] * 3
            index[a] = slice(None, sl.start)
            k[tuple(index)] = 0
            index[a] = slice(sl.stop, None)
            k[tuple(index)] = 0
        return ifft_centred(k, self.axes)

    def reduced_complex(self, hr: np.ndarray) -> np.ndarray:
        """Complex image on the ``kept_shape`` grid from the cropped central k-space.

        Scaled by ``m / n`` per truncated axis so that its mean equals the mean of
        ``truncate_complex(hr)`` (and of ``hr``: DC is always kept).
        """
        hr = self._check_volume(hr)
        k = fft_centred(hr, self.axes)[self._kept_index(hr.shape)]
        scale = float(np.prod([k.shape[a] / hr.shape[a] for a in self.axes]))
        return ifft_centred(k, self.axes) * scale

    def _kept_index(self, shape: Sequence[int]) -> tuple[slice, ...]:
        return tuple(
            kept_slice(n, kept_lines(n, f)) for n, f in zip(shape, self.axis_factors, strict=True)
        )

    @staticmethod
    def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
        shape = tuple(int(n) for n in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise DataError(f"KspaceTruncation needs a 3-D (X, Y, Z) shape, got {shape}")
        return shape

    @staticmethod
    def _check_volume(hr: np.ndarray) -> np.ndarray:
        hr = np.asarray(hr)
        if hr.ndim != 3:
            raise DataError(
                f"KspaceTruncation needs a 3-D (X, Y, Z) volume, got shape {hr.shape}; "
                "select one channel/echo first"
            )
        if np.iscomplexobj(hr) or not np.issubdtype(hr.dtype, np.number):
            raise DataError(f"KspaceTruncation needs a real-valued volume, got dtype {hr.dtype}")
        if hr.dtype != np.float32:
            hr = hr.astype(np.float64)
        if not np.isfinite(hr).all():
            raise DataError(
                "KspaceTruncation: the volume contains NaN or infinite voxels; "
                "fix or mask them (e.g. np.nan_to_num) before degrading"
            )
        return hr


def upsample(small: np.ndarray, shape: Sequence[int], order: int = 3) -> np.ndarray:
    """Interpolate a reduced-matrix (m1, m2, m3) volume onto the (n1, n2, n3) HR grid.

    Uses the k-space centre convention of this module: HR voxel ``i`` samples the
    small grid at ``m//2 + (i - n//2)·m/n`` along each axis, so the reduced and the
    same-size LR images are aligned (axes with ``m == n`` are copied unchanged).
    Beyond the small grid's edge the image wraps around (``mode="grid-wrap"``), as the
    discrete Fourier model of the field of view is periodic.

    Args:
        small: the reduced volume, e.g. ``KspaceTruncation(output="reduced")(hr)``.
        shape: the HR matrix size.
        order: spline order: 0 = nearest neighbour, 1 = trilinear, 3 = tricubic (B-spline).
    """
    small = np.asarray(small)
    shape = tuple(int(n) for n in shape)
    if small.ndim != 3 or len(shape) != 3:
        raise DataError(
            f"upsample needs a 3-D volume and a 3-D shape, got {small.shape} and {shape}"
        )
    if not 0 <= order <= 5:
        raise ConfigError(f"upsample: order must be in 0..5 (0 nearest, 3 tricubic), got {order}")
    scale = np.array([m / n for m, n in zip(small.shape, shape, strict=True)])
    offset = np.array(
        [m // 2 - (n // 2) * s for m, n, s in zip(small.shape, shape, scale, strict=True)]
    )
    dtype = small.dtype if np.issubdtype(small.dtype, np.floating) else np.float64
    return scipy.ndimage.affine_transform(
        small.astype(dtype, copy=False),
        scale,
        offset=offset,
        output_shape=shape,
        order=order,
        mode="grid-wrap",
    )
