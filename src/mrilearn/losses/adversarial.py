"""Adversarial losses: WGAN-GP (§4.3, mDCSRN-GAN) and the vanilla GAN log loss (§5.2, DRAGAN).

All take raw discriminator outputs (logits / critic values) of shape (B,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def wgan_critic_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] − E[D(real)]: the critic maximises the Wasserstein estimate E[D(real)] − E[D(fake)]."""
    return fake.mean() - real.mean()


def wgan_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """−E[D(G(x))] (Eq. 4.5)."""
    return -fake.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    scale: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty E[(‖∇D(x̂)‖₂ − 1)²] at x̂ = ε·real + (1 − ε)·fake, ε ~ U(0, 1) per sample.

    ``critic`` maps (B, ...) to (B,). The graph is kept so the penalty trains the critic.
    ``scale``: the mixed-precision loss scale; the gradient is taken of the scaled critic
    output (so fp16 gradients do not underflow) and unscaled before the norm.
    """
    eps = torch.rand(
        (real.shape[0],) + (1,) * (real.dim() - 1), dtype=real.dtype, device=real.device
    )
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum() * scale, mixed, create_graph=True)
    grad = grad / scale
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gan_loss(logits: torch.Tensor, real: bool | torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits against label 1 (``real``) / 0, or per-sample labels."""
    target = (
        torch.full_like(logits, float(real)) if isinstance(real, bool) else real.to(logits.dtype)
    )
    return F.binary_cross_entropy_with_logits(logits, target)
