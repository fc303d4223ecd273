"""MALIBU features and networks: packing, normalisation, canonical Φ, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrilearn.apps.malibu.data import Normalisation, canonical_rotation, canonicalize, pack, unpack
from mrilearn.apps.malibu.models import MDCN, MalibuDenseUnet


def _complex(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_packing_and_normalisation_are_exact_inverses():
    rng = np.random.default_rng(0)
    u = _complex(rng, 4, 12, 12) * 1e-4 + 3e-5
    x = pack(u)
    assert x.shape == (8, 12, 12) and x.dtype == np.float32
    np.testing.assert_array_equal(unpack(x), u)
    assert abs(Normalisation.of(x).apply(x).mean()) < 1e-6
    np.testing.assert_allclose(Normalisation.of(x).apply(x).std(), 1.0, rtol=1e-5)
    label = pack(u * 1.7e4 + _complex(rng, 4, 12, 12))  # U is k ≈ 1.7e4 times U0 here
    norm = Normalisation.of(x, scale=1.7e4)  # the label's normalisation: input stats × k
    np.testing.assert_allclose(
        norm.invert(norm.apply(label)), label, rtol=0, atol=1e-6 * label.std()
    )


def test_per_channel_normalisation_whitens_each_channel_and_inverts():
    rng = np.random.default_rng(2)
    x = pack(_complex(rng, 4, 12, 12) * np.logspace(0, -3, 4)[:, None, None])  # 1000x spread
    y = Normalisation.of(x, per_channel=True).apply(x)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1, rtol=1e-5)
    k = np.linspace(1e3, 2e4, 8)  # one label scale per channel
    label = x * k[:, None, None]
    norm = Normalisation.of(x, k, per_channel=True)
    np.testing.assert_allclose(norm.apply(label), y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.invert(norm.apply(label)), label, rtol=1e-6, atol=1e-6)


def test_canonicalisation_keeps_u_phi_and_fixes_the_phase():
    rng = np.random.default_rng(1)
    phi, u0, u = _complex(rng, 3, 5, 4, 2), _complex(rng, 3, 6, 6), _complex(rng, 3, 6, 6)
    phi_c, u0_c, u_c = canonicalize(phi, u0, u)
    for a, b in ((u, u_c), (u0, u0_c)):
        np.testing.assert_allclose(
            np.tensordot(b, phi_c, axes=([0], [0])), np.tensordot(a, phi, axes=([0], [0])),
            rtol=1e-5, atol=1e-5,
        )  # fmt: skip
    flat = phi_c.reshape(3, -1)
    peaks = flat[np.arange(3), np.abs(flat).argmax(axis=1)]
    assert np.all(peaks.real > 0) and np.allclose(peaks.imag, 0, atol=1e-6)
    # a subject whose Φ rows come with other phases maps to the same canonical features
    twist = np.exp(1j * rng.uniform(0, 2 * np.pi, 3)).astype(np.complex64)
    again = canonicalize(twist[:, None, None, None] * phi, np.conj(twist)[:, None, None] * u)
    np.testing.assert_allclose(again[1], u_c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.abs(canonical_rotation(phi)), 1, rtol=1e-6)


@pytest.mark.parametrize(
    "net",
    [
        MDCN(rank=3, blocks=2, units=4, growth=4, dilation=[1, 1, 1, 1]),
        MDCN(rank=3, blocks=2, units=4, growth=4, dilation=[1, 2, 4, 1]),
        MDCN(rank=3, blocks=2, units=4, growth=4, dilation=[1, 4, 8, 1], residual=True),
        MalibuDenseUnet(rank=3, growth=4, units=2, levels=4),
    ],
    ids=["mdcn", "mdcn_d1241", "mdcn_d1481_residual", "denseunet"],
)
def test_networks_keep_size_and_channels(net, single_thread):
    x = torch.randn(2, 6, 24, 24)
    with torch.no_grad():
        assert net.eval()(x).shape == x.shape


def test_mdcn_dilation_is_per_unit():
    net = MDCN(rank=1, blocks=2, units=4, growth=2, dilation=[1, 4, 8, 1])
    dilations = [m.dilation[0] for m in net.modules() if isinstance(m, torch.nn.Conv2d)
                 and m.kernel_size == (3, 3)][1:]  # fmt: skip
    assert dilations == [1, 4, 8, 1] * 2
