"""Super-resolution networks: shapes, wiring (parameter counts), BN modes, slice independence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mrilearn.models  # noqa: F401  (registers the models)
from mrilearn.apps.sr import baselines
from mrilearn.models import dcsrn as sr
from mrilearn.registry import MODELS

# Small settings so every model runs in a fraction of a second on a CPU.
SMALL = {
    "DCSRN": {"growth": 4},
    "MDCSRN": {"blocks": 2, "units": 2, "growth": 4},
    "FSRCNN2d": {"d": 8, "s": 4, "m": 1, "final_kernel": 3},
    "FSRCNN3d": {"d": 8, "s": 4, "m": 1, "final_kernel": 3},
    "SRResNet3d": {"blocks": 2, "channels": 8, "head_kernel": 3},
    "SRDenseNet3d": {"blocks": 2, "units": 2, "growth": 4},
}
SR_MODELS = sorted(SMALL)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(cin: int, cout: int, k: int) -> int:
    return k**3 * cin * cout + cout


def dense_block(cin: int, units: int, k: int) -> int:
    """BN (2 per channel) + 3×3×3 conv for each unit; unit i sees cin + i·k channels."""
    return sum(2 * (cin + i * k) + conv(cin + i * k, k, 3) for i in range(units))


def test_all_sr_models_are_covered() -> None:
    modules = {sr.__name__, baselines.__name__}
    assert {n for n in MODELS.names() if MODELS.get(n).__module__ in modules} == set(SR_MODELS)


@pytest.mark.parametrize("name", SR_MODELS)
def test_shape_is_kept_and_gradient_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS.build({"name": name, **SMALL[name]})
    x = torch.randn(2, 1, 12, 14, 10)
    y = model(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_dcsrn_parameter_count() -> None:
    k = 24
    expected = conv(1, 2 * k, 3) + dense_block(2 * k, 4, k) + conv(2 * k + 4 * k, 1, 3)
    assert n_params(MODELS.build({"name": "DCSRN", "growth": k})) == expected == 223_729


@pytest.mark.parametrize("blocks", [4, 8])
def test_mdcsrn_parameter_count(blocks: int) -> None:
    k, units = 12, 4
    block_out = 2 * k + units * k
    expected = conv(1, 2 * k, 3)
    for b in range(blocks):
        expected += conv(2 * k + b * block_out, 2 * k, 1)  # compressor sees stem + earlier blocks
        expected += dense_block(2 * k, units, k)
    expected += conv(blocks * block_out, 1, 1)  # direct feature combination
    model = MODELS.build({"name": "MDCSRN", **sr.mdcsrn_variant(f"b{blocks}u{units}")})
    assert n_params(model) == expected


def test_mdcsrn_bottleneck_variants_parameter_count() -> None:
    k = 12
    combined = 4 * (2 * k + 4 * k)
    direct = n_params(MODELS.build({"name": "MDCSRN", **sr.mdcsrn_variant("b4u4")}))
    r = n_params(MODELS.build({"name": "MDCSRN", **sr.mdcsrn_variant("b4u4-r")}))
    head = conv(combined, 8 * k, 1) + 2 * 8 * k + conv(8 * k, 1, 3)
    assert r - direct == head - conv(combined, 1, 1)
    plain = MODELS.build({"name": "MDCSRN", "blocks": 1, "units": 2, "growth": k})
    bc = MODELS.build({"name": "MDCSRN", "blocks": 1, "units": 2, "growth": k, "bottleneck": True})
    # DenseNet-BC: each unit gets norm + 1×1×1 conv to 4k, its 3×3×3 conv then sees 4k channels.
    unit_in = [2 * k, 3 * k]
    extra = sum(2 * c + conv(c, 4 * k, 1) + 2 * 4 * k + conv(4 * k, k, 3) for c in unit_in)
    extra -= sum(2 * c + conv(c, k, 3) for c in unit_in)
    assert n_params(bc) - n_params(plain) == extra


def test_mdcsrn_variant_parser() -> None:
    assert sr.mdcsrn_variant("b8u4") == {"blocks": 8, "units": 4, "reconstruction": "direct"}
    assert sr.mdcsrn_variant("b4u4-r") == {
        "blocks": 4,
        "units": 4,
        "reconstruction": "bottleneck",
    }
    assert sr.mdcsrn_variant("b1u16-r")["units"] == 16
    for bad in ["b4", "b0u4", "b4u4r", "x4u4", "b4u4-rr"]:
        with pytest.raises(ValueError, match="variant"):
            sr.mdcsrn_variant(bad)


@pytest.mark.parametrize("name", ["DCSRN", "MDCSRN", "SRResNet3d", "SRDenseNet3d"])
def test_bn_train_at_inference(name: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8, 8, 8)
    default = MODELS.build({"name": name, **SMALL[name]})
    batch_stats = MODELS.build({"name": name, **SMALL[name], "bn_train_at_inference": True})
    batch_stats.load_state_dict(default.state_dict())
    default.eval()
    batch_stats.eval()
    with torch.no_grad():
        # Default eval mode uses running statistics: a sample's output ignores the rest of the batch.
        torch.testing.assert_close(default(x)[:1], default(x[:1]))
        before = {k: v.clone() for k, v in batch_stats.state_dict().items()}
        y = batch_stats(x)
        assert not torch.allclose(y[:1], batch_stats(x[:1]), atol=1e-4)
        for key, value in batch_stats.state_dict().items():  # running stats are left alone
            assert torch.equal(value, before[key]), key
        assert batch_stats.training is False
        torch.testing.assert_close(y, batch_stats.train()(x))


@pytest.mark.parametrize("slice_axis", [0, 2])
def test_fsrcnn2d_processes_slices_independently(slice_axis: int) -> None:
    torch.manual_seed(0)
    model = MODELS.build({"name": "FSRCNN2d", **SMALL["FSRCNN2d"], "slice_axis": slice_axis})
    x = torch.randn(2, 1, 12, 14, 10)
    changed = x.clone()
    changed.select(slice_axis + 2, 3).add_(1.0)
    with torch.no_grad():
        diff = (
            (model(changed) - model(x)).abs().amax(dim=[d for d in range(5) if d != slice_axis + 2])
        )
    assert diff[3] > 0
    assert torch.count_nonzero(diff) == 1


def test_tiny_mdcsrn_overfits_one_patch_pair() -> None:
    torch.manual_seed(0)
    model = MODELS.build({"name": "MDCSRN", "blocks": 1, "units": 2, "growth": 4})
    g = torch.linspace(-1, 1, 12)
    x, y, z = torch.meshgrid(g, g, g, indexing="ij")
    hr = (torch.sin(3 * x) * torch.cos(2 * y) + (x**2 + y**2 + z**2 < 0.5).float())[None, None]
    lr = F.avg_pool3d(hr, 3, stride=1, padding=1, count_include_pad=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = F.mse_loss(model(lr), hr)  # the L2 loss of §3
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5
