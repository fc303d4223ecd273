"""Whole-volume patch inference: exactness of MarginCrop, averaging of SlidingWindow."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrilearn.errors import ConfigError, DataError
from mrilearn.inference.sliding import MarginCrop, SlidingWindow, axis_tiles
from mrilearn.registry import INFERERS


def identity(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


def conv_net(layers: int, channels: int = 4) -> nn.Module:
    """3×3×3 convs with zero padding: receptive-field radius = ``layers``."""
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    c_in = 1
    for i in range(layers):
        c_out = 2 if i == layers - 1 else channels
        mods += [nn.Conv3d(c_in, c_out, 3, padding=1), nn.Tanh()]
        c_in = c_out
    return nn.Sequential(*mods[:-1]).eval()


@pytest.fixture
def volume() -> torch.Tensor:
    return torch.randn(1, 1, 23, 19, 17, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "inferer",
    [
        SlidingWindow(roi_size=[10, 10, 10], overlap=0.5),
        SlidingWindow(roi_size=[8, 12, 10], overlap=0.25, mode="gaussian", sw_batch_size=3),
        MarginCrop(roi_size=[10, 10, 10], margin=2),
        MarginCrop(roi_size=[9, 12, 7], margin=3, sw_batch_size=4),
        MarginCrop(roi_size=[32, 32, 32], margin=3),  # larger than the volume: padded
    ],
)
def test_identity_model_is_reproduced(inferer, volume):
    out = inferer(identity, volume)
    assert out.shape == volume.shape
    # MarginCrop copies voxels (bit-exact); SlidingWindow divides sums by counts
    tol = 0 if isinstance(inferer, MarginCrop) else 1e-6
    torch.testing.assert_close(out, volume, rtol=0, atol=tol)
    out4 = inferer(identity, volume[0])  # (C, X, Y, Z) in, (C, X, Y, Z) out
    torch.testing.assert_close(out4, volume[0], rtol=0, atol=tol)


@pytest.mark.parametrize(("layers", "margin"), [(1, 2), (2, 2), (3, 3)])
def test_margin_crop_equals_full_forward(layers, margin, volume):
    net = conv_net(layers)
    with torch.no_grad():
        full = net(volume)
    out = MarginCrop(roi_size=[10, 10, 10], margin=margin, sw_batch_size=16)(net, volume)
    assert out.shape == (1, 2, 23, 19, 17)
    torch.testing.assert_close(out, full, rtol=0, atol=1e-6)


def test_margin_too_small_shows_seams(volume):
    net = conv_net(3)
    with torch.no_grad():
        full = net(volume)
    out = MarginCrop(roi_size=[10, 10, 10], margin=1, sw_batch_size=64)(net, volume)
    assert (out - full).abs().max() > 1e-6


@pytest.mark.parametrize(
    ("n", "roi", "margin"), [(23, 10, 2), (19, 10, 2), (10, 10, 2), (70, 9, 3)]
)
def test_axis_tiles_partition(n, roi, margin):
    tiles = axis_tiles(n, roi, margin)
    assert tiles[0][1] == 0 and tiles[-1][2] == n
    for (s, lo, hi), nxt in zip(tiles, tiles[1:] + [None], strict=True):
        assert 0 <= s and s + roi <= n and s <= lo < hi <= s + roi
        assert lo == 0 or lo >= s + margin  # inner faces keep their margin
        assert hi == n or hi <= s + roi - margin
        if nxt is not None:
            assert nxt[1] == hi  # contiguous, no overlap


def test_sliding_window_averages_overlaps():
    x = torch.arange(12.0).reshape(1, 1, 12, 1, 1).expand(1, 1, 12, 4, 4).contiguous()

    def patch_mean(p: torch.Tensor) -> torch.Tensor:
        return p.mean(dim=(2, 3, 4), keepdim=True).expand_as(p).clone()

    out = SlidingWindow(roi_size=[8, 4, 4], overlap=0.5)(patch_mean, x)[0, 0, :, 0, 0]
    # patches [0, 8) (mean 3.5) and [4, 12) (mean 7.5); their overlap [4, 8) averages to 5.5
    expected = torch.tensor([3.5] * 4 + [5.5] * 4 + [7.5] * 4)
    torch.testing.assert_close(out, expected)


def test_runs_in_inference_mode_and_builds_from_config(volume):
    seen = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_inference_mode_enabled())
        return x

    for spec in ({"name": "SlidingWindow", "roi_size": [16, 16, 16]}, {"name": "MarginCrop"}):
        INFERERS.build(spec)(model, volume)
    assert seen and all(seen)


def test_validation(volume):
    with pytest.raises(ConfigError, match="core"):
        MarginCrop(roi_size=[6, 6, 6], margin=3)
    with pytest.raises(ConfigError, match="overlap"):
        SlidingWindow(overlap=1.0)
    with pytest.raises(DataError, match="channel"):
        MarginCrop()(identity, volume[0, 0])
    with pytest.raises(DataError, match="same-size"):
        MarginCrop(roi_size=[10, 10, 10], margin=2)(lambda x: x[..., :-1], volume)


@pytest.mark.parametrize("make", [MarginCrop, SlidingWindow])
def test_patches_run_in_batches_and_merge_in_float32_under_autocast(make, volume):
    net = conv_net(2)
    inferer = make(roi_size=[10, 10, 10], batch_size=3)
    assert make(roi_size=[10, 10, 10], sw_batch_size=3).batch_size == 3  # older spelling
    reference = inferer(net, volume)
    sizes = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        sizes.append(x.shape[0])
        return net(x)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = inferer(spy, volume, torch.device("cpu"))
    assert out.dtype == torch.float32 and out.shape == reference.shape
    assert max(sizes) == 3 and (out - reference).abs().max() < 0.05  # bf16 rounding only
