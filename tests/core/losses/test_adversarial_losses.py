"""Adversarial building blocks: gradient penalty, discriminators, F's reversed gradient, schedules."""

from __future__ import annotations

import pytest
import torch

from mrilearn.apps.sr.discriminator import Discriminator3d, FeatureDiscriminator
from mrilearn.losses.adversarial import gan_loss, gradient_penalty, wgan_critic_loss


def test_gradient_penalty_of_a_linear_critic_is_its_definition():
    torch.manual_seed(0)
    w = torch.randn(1, 2, 3, 4)

    def critic(x: torch.Tensor) -> torch.Tensor:  # D(x) = <w, x>: gradient w everywhere
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 1, 2, 3, 4), torch.randn(5, 1, 2, 3, 4)
    expected = (w.norm() - 1) ** 2
    torch.testing.assert_close(gradient_penalty(critic, real, fake), expected)
    assert wgan_critic_loss(critic(real), critic(fake)) == pytest.approx(
        (critic(fake).mean() - critic(real).mean()).item()
    )


def test_penalty_trains_the_critic():
    w = torch.full((1, 2, 2, 2), 0.1, requires_grad=True)
    gp = gradient_penalty(
        lambda x: (x * w).flatten(1).sum(1), torch.ones(2, 1, 2, 2, 2), torch.zeros(2, 1, 2, 2, 2)
    )
    gp.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_discriminator_and_feature_discriminator_shapes(norm):
    d = Discriminator3d(channels=[4, 8, 16], dense=8, norm=norm)
    logits, feats = d(torch.randn(2, 1, 16, 12, 8))
    assert logits.shape == (2,)
    assert feats.shape == (2, 8, 4, 3, 2)  # after the 2nd strided block: /4
    f = FeatureDiscriminator(in_channels=d.feature_channels, channels=[8], dense=8, norm=norm)
    assert f(feats).shape == (2,)


def test_confusion_gradient_reverses_fs_gradient_into_d_features():
    """D's term BCE(F(M), 1 - domain) pushes each sample's features against F's own loss."""
    torch.manual_seed(1)
    f = FeatureDiscriminator(in_channels=4, channels=[4], dense=4, norm="none")
    m = torch.randn(4, 4, 4, 4, 4, requires_grad=True)
    domain = torch.tensor([0.0, 1.0, 0.0, 1.0])
    (g_d,) = torch.autograd.grad(gan_loss(f(m), 1 - domain), m)
    (g_f,) = torch.autograd.grad(gan_loss(f(m), domain), m)
    cos = torch.nn.functional.cosine_similarity(g_d.flatten(1), g_f.flatten(1))
    torch.testing.assert_close(cos, -torch.ones(4), atol=1e-5, rtol=0)
