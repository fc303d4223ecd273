"""K-space truncation checked against its definition (§3.2.1)."""

from __future__ import annotations

import numpy as np
import pytest

from mrilearn.apps.sr.degrade import KspaceTruncation, kept_lines, upsample
from mrilearn.errors import ConfigError, DataError
from mrilearn.metrics.image import psnr
from mrilearn.registry import DEGRADATIONS


def centred_fft(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x)))


def phantom(shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth MNI-like head: nested ellipsoids (skull, brain, ventricles), blurred edges."""
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")

    def ellipsoid(radii, centre=(0, 0, 0), sharpness=25.0):
        r = np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, radii, strict=True)))
        return 1 / (1 + np.exp(sharpness * (r - 1)))

    head = 0.6 * ellipsoid((0.8, 0.9, 0.85)) + 0.4 * ellipsoid((0.7, 0.8, 0.75))
    head -= 0.5 * ellipsoid((0.12, 0.25, 0.15), centre=(0.15, 0, 0.1))
    head -= 0.5 * ellipsoid((0.12, 0.25, 0.15), centre=(-0.15, 0, 0.1))
    return head.astype(np.float64)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(8, 16, 12), (9, 15, 13), (7, 10, 11)])
@pytest.mark.parametrize("factors", [[2.0, 2.0], [3.0, 1.5], [2.5, 4.0]])
def test_kspace_equals_input_inside_and_zero_outside(rng, shape, factors):
    hr = rng.normal(size=shape)
    deg = KspaceTruncation(factors=factors, axes=[1, 2])
    k_in = centred_fft(hr)
    k_out = centred_fft(deg.truncate_complex(hr))
    keep = deg.mask(shape)
    np.testing.assert_allclose(k_out[keep], k_in[keep], atol=1e-9)
    np.testing.assert_allclose(k_out[~keep], 0, atol=1e-9)
    assert keep.sum() == np.prod(deg.kept_shape(shape))
    np.testing.assert_allclose(deg(hr), np.abs(deg.truncate_complex(hr)))


@pytest.mark.parametrize(
    ("n", "f", "m"),
    [(256, 2, 128), (255, 2, 128), (320, 4, 80), (10, 3, 3), (11, 3, 4), (10, 2.5, 4), (5, 4, 1)],
)
def test_number_of_kept_lines(n, f, m):
    assert kept_lines(n, f) == m
    deg = KspaceTruncation(factors=[f], axes=[0])
    keep = deg.mask((n, 3, 4))
    assert keep[:, 0, 0].sum() == m
    lines = np.flatnonzero(keep[:, 0, 0])
    # DC (index n // 2) is kept and the block is centred on it: -(m//2) … m - m//2 - 1
    assert lines[0] == n // 2 - m // 2 and lines[-1] == n // 2 + m - m // 2 - 1


def test_factor_one_is_identity(rng):
    hr = rng.uniform(0, 1, size=(9, 10, 11))
    np.testing.assert_allclose(KspaceTruncation([1.0, 1.0, 1.0], [0, 1, 2])(hr), hr, atol=1e-12)


def test_readout_axis_untouched(rng):
    profile = rng.uniform(0.5, 1.5, size=13)
    hr = np.broadcast_to(profile[:, None, None], (13, 12, 11)).copy()
    out = KspaceTruncation([4.0, 4.0], [1, 2])(hr)
    np.testing.assert_allclose(out, hr, atol=1e-12)


def test_float32_stays_float32(rng):
    hr = rng.uniform(size=(8, 8, 8)).astype(np.float32)
    assert KspaceTruncation()(hr).dtype == np.float32


def test_psnr_decreases_with_factor():
    hr = phantom((32, 40, 36))
    drange = hr.max() - hr.min()
    scores = [psnr(KspaceTruncation([f, f], [1, 2])(hr), hr, drange) for f in (1.5, 2, 3, 4)]
    assert all(a > b for a, b in zip(scores[:-1], scores[1:], strict=True)), scores


@pytest.mark.parametrize("shape", [(16, 20, 18), (15, 21, 17)])
def test_reduced_output_shape_and_mean(shape):
    hr = phantom(shape)
    deg = KspaceTruncation([2.0, 3.0], [1, 2], output="reduced")
    small = deg.reduced_complex(hr)
    assert small.shape == deg.kept_shape(shape) == deg(hr).shape
    assert small.shape == (shape[0], kept_lines(shape[1], 2), kept_lines(shape[2], 3))
    np.testing.assert_allclose(small.mean(), hr.mean(), rtol=1e-10)
    # magnitudes: the means of the reduced and the same-size LR images agree closely
    same = KspaceTruncation([2.0, 3.0], [1, 2])(hr)
    np.testing.assert_allclose(deg(hr).mean(), same.mean(), rtol=1e-2)


def test_reduced_and_same_outputs_are_aligned():
    """Cubic up-sampling of the reduced image approximates the zero-filled same-size image."""
    hr = phantom((24, 32, 30))
    same = KspaceTruncation([2.0, 2.0], [1, 2])(hr)
    small = KspaceTruncation([2.0, 2.0], [1, 2], output="reduced")(hr)
    up = upsample(small, hr.shape, order=3)
    assert up.shape == hr.shape
    drange = hr.max() - hr.min()
    assert psnr(up, same, drange) > 30
    # a half-voxel misalignment would be clearly worse
    shifted = np.roll(up, 1, axis=1)
    assert psnr(up, same, drange) > psnr(shifted, same, drange) + 3


def test_upsample_orders_and_identity(rng):
    x = rng.uniform(size=(6, 7, 8))
    np.testing.assert_allclose(upsample(x, x.shape, order=3), x, atol=1e-12)
    near = upsample(x, (6, 14, 16), order=0)
    assert set(np.unique(near)) <= set(np.unique(x))


def test_slice_axis():
    assert KspaceTruncation([2, 2], [1, 2]).slice_axis == 0
    assert KspaceTruncation([4, 4], [0, 2]).slice_axis == 1
    assert KspaceTruncation([2], [2]).slice_axis == 0
    assert KspaceTruncation([2, 2, 3], [0, 1, 2]).slice_axis == 0


def test_build_from_config_and_validation():
    deg = DEGRADATIONS.build({"name": "KspaceTruncation", "factors": [4, 4], "axes": [0, 1]})
    assert deg.slice_axis == 2
    with pytest.raises(ConfigError, match="≥ 1"):
        KspaceTruncation([0.5, 2.0], [1, 2])
    with pytest.raises(ConfigError, match="distinct"):
        KspaceTruncation([2.0, 2.0], [1, 1])
    with pytest.raises(ConfigError, match="distinct"):
        KspaceTruncation([2.0, 2.0], [1, 3])
    with pytest.raises(ConfigError, match="one factor per"):
        KspaceTruncation([2.0], [1, 2])
    with pytest.raises(DataError, match="3-D"):
        KspaceTruncation()(np.zeros((4, 4)))
    with pytest.raises(DataError, match="NaN"):
        KspaceTruncation()(np.full((4, 4, 4), np.nan))
