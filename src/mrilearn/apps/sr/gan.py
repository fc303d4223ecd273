"""Adversarial super-resolution trainers: mDCSRN-GAN (WGAN-GP, §4.3) and DRAGAN (§5.2).

Both extend :class:`SRTrainer` (validation, evaluation against baselines, whole-volume
inference) with a discriminator ``D`` and, for DRAGAN, a feature discriminator ``F``; all nets
and optimisers live in the base Trainer's dicts, so checkpoints resume bit for bit.

Schedule, counted in iterations (one iteration = one D step on one batch): the first
``warmup_d`` iterations train D only (10k in §4.4.1 and §5.2.3); afterwards G takes one step
every ``n_critic`` iterations (5 for WGAN-GP). ``extra_d_every``/``extra_d_steps`` add D-only
stretches after every ``extra_d_every`` G steps (§4.4.1 keeps D ahead of G this way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrilearn import components
from mrilearn.apps.sr.trainer import SRTrainer
from mrilearn.engine.checkpoint import load_checkpoint, load_state_dict
from mrilearn.engine.device import to_host
from mrilearn.engine.trainer import frozen, inference_weights
from mrilearn.errors import CheckpointError, ConfigError, DataError
from mrilearn.losses.adversarial import (
    gan_loss,
    gradient_penalty,
    wgan_critic_loss,
    wgan_generator_loss,
)
from mrilearn.registry import MODELS, TRAINERS, Component
from mrilearn.report import figures

log = logging.getLogger(__name__)

DEFAULT_D = {"name": "Discriminator3d"}
RUN_CHECKPOINTS = ("best", "latest")  # which checkpoint of an earlier run to start from


def load_run_weights(run: str, key: str, net: nn.Module, what: str) -> None:
    """Load net ``key`` of run directory ``run`` (best checkpoint, else latest) into ``net``."""
    ck = Path(run) / "checkpoints"
    path = next((ck / f"{n}.pt" for n in RUN_CHECKPOINTS if (ck / f"{n}.pt").is_file()), None)
    if path is None:
        raise CheckpointError(
            f"trainer.{what}: {run} is not a trained run (no checkpoints/best.pt or latest.pt); "
            "train the non-GAN network first, e.g. mrilearn train configs/sr/mdcsrn_b4u4.yaml"
        )
    state = load_checkpoint(path)
    if key not in state["nets"]:
        raise CheckpointError(f"trainer.{what}: {path} has no net {key!r}")
    load_state_dict(net, inference_weights(state, key, net), f"trainer.{what}: {path}")
    log.info("loaded %s from %s (iteration %s)", what, path, state["iteration"])


class GANTrainer(SRTrainer):
    """Shared G/D loop: subclasses define the D step, G's adversarial loss and validation."""

    default_lambda = 0.001

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        discriminator: Component(MODELS) = DEFAULT_D,  # noqa: B006  (never mutated)
        lambda_adv: float | None = None,
        lr_d: float | None = None,
        warmup_d: int = 0,
        n_critic: int = 1,
        extra_d_every: int = 0,
        extra_d_steps: int = 0,
        init_from: str | None = None,
        **kwargs: Any,
    ) -> None:
        if n_critic < 1 or warmup_d < 0 or extra_d_every < 0 or extra_d_steps < 0:
            raise ConfigError("trainer: n_critic must be >= 1 and the step counts >= 0")
        self.discriminator_spec = dict(discriminator)
        super().__init__(cfg, run_dir, dist, **kwargs)
        self.lambda_adv = self.default_lambda if lambda_adv is None else lambda_adv
        self.warmup_d, self.n_critic = warmup_d, n_critic
        self.extra_d_every, self.extra_d_steps = extra_d_every, extra_d_steps
        self.init_from = init_from
        self.override_lr("D", lr_d)

    def build_nets(self) -> dict[str, nn.Module]:
        return {
            **super().build_nets(),
            "D": MODELS.build(self.discriminator_spec, "trainer.discriminator"),
        }

    def override_lr(self, key: str, lr: float | None) -> None:
        """Give net ``key`` its own learning rate (TTUR, §5.2.3): rebuild its optimiser and
        scheduler from ``cfg.optim``/``cfg.scheduler`` with ``lr``."""
        if lr is None or key not in self.optims:
            return
        spec = {**self.cfg.optim, "lr": lr}
        self.optims[key] = components.build("optim", spec, params=self.nets[key].parameters())
        if key in self.scheds:
            self.scheds[key] = components.build(
                "scheduler", self.cfg.scheduler, optimizer=self.optims[key]
            )

    @property
    def method_name(self) -> str:
        return f"{self.cfg.model['name']}-{type(self).__name__.removesuffix('Trainer')}"

    def fit(self, resume: bool = False) -> bool:
        if not resume and self.iteration == 0:
            self.initialise_from_runs()
        return super().fit(resume)

    def initialise_from_runs(self) -> None:
        """Before the first iteration: G from the trained non-GAN run (§4.4.1, §5.2.3)."""
        if self.init_from:
            load_run_weights(self.init_from, "G", self.nets["G"], "init_from")
        else:
            log.warning("trainer.init_from is not set: G starts from random weights")

    def generator_step_due(self, iteration: int) -> bool:
        """Whether 0-based ``iteration`` ends with a G step (see the module notes)."""
        k = iteration - self.warmup_d
        if k < 0:
            return False
        if self.extra_d_every and self.extra_d_steps:
            regular = self.extra_d_every * self.n_critic
            k %= regular + self.extra_d_steps
            if k >= regular:
                return False
        return (k + 1) % self.n_critic == 0

    def generator_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["image"]

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        hr, g_due = batch["target"], self.generator_step_due(self.iteration)
        with torch.set_grad_enabled(g_due):
            sr = self.train_nets["G"](self.generator_input(batch))
        stats = self.discriminator_step(batch, hr, sr.detach())
        if g_due:
            pixel = self.loss(sr, hr)
            with frozen(self.nets["D"]):
                adv = self.adversarial_loss(sr)
            self.optimize("G", pixel + self.lambda_adv * adv)
            stats.update(g_pixel=pixel.item(), g_adv=adv.item())
        return stats

    def discriminator_step(
        self, batch: dict[str, torch.Tensor], hr: torch.Tensor, sr: torch.Tensor
    ) -> dict[str, float]:
        raise NotImplementedError

    def adversarial_loss(self, sr: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def val_outputs(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        net = self.trained_net()
        for b in self.val_batches():
            yield b, net(b["image"])


@TRAINERS.register()
class WGANTrainer(GANTrainer):
    """mDCSRN-GAN (§4.3): WGAN-GP critic, G loss L1 + λ·(−D(SR)) with λ = 0.001 (Eq. 4.3-4.5).

    D should use ``norm: layer`` (the gradient penalty is per sample). Validation logs the
    critic's Wasserstein estimate E[D(HR)] − E[D(SR)] over the validation patches as
    ``val/wasserstein`` and its magnitude as ``val/em_distance``: with D 1-Lipschitz, so is −D,
    so the magnitude is a lower bound of the EM distance even when an untrained critic ranks
    SR above HR. §4.4.1 kept the checkpoint with the smallest EM distance
    (``train.best_metric: val/em_distance``, ``best_mode: min``; any other logged value, e.g.
    ``val/psnr`` with ``max``, can select instead).
    """

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        gp_weight: float = 10.0,
        n_critic: int = 5,
        **kwargs: Any,
    ) -> None:
        self.gp_weight = gp_weight
        super().__init__(cfg, run_dir, dist, n_critic=n_critic, **kwargs)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        return self.train_nets["D"](x)[0]

    def discriminator_step(
        self, batch: dict[str, torch.Tensor], hr: torch.Tensor, sr: torch.Tensor
    ) -> dict[str, float]:
        real, fake = self.critic(hr), self.critic(sr)
        gp = gradient_penalty(self.critic, hr, sr, self.amp.loss_scale)
        loss = wgan_critic_loss(real, fake) + self.gp_weight * gp
        self.optimize("D", loss)
        return {"d_loss": loss.item(), "wasserstein": (real - fake).mean().item(), "gp": gp.item()}

    def adversarial_loss(self, sr: torch.Tensor) -> torch.Tensor:
        return wgan_generator_loss(self.critic(sr))

    def validate(self) -> dict[str, float]:
        out = super().validate()
        d = self.nets["D"]
        gaps = [d(b["target"])[0] - d(sr)[0] for b, sr in self.val_outputs()]
        if gaps:
            w = torch.cat(gaps).mean().item()
            out.update({"val/wasserstein": w, "val/em_distance": abs(w)})
        return out


@TRAINERS.register()
class DRAGANTrainer(GANTrainer):
    """DRAGAN (§5.2): vanilla GAN with a domain feature discriminator F as D's regulariser.

    G loss L1 + 0.1·BCE(D(SR), real) (Eq. 5.8, non-saturating form). D loss: BCE on HR (real)
    and SR (fake) plus λp times its confusion loss BCE(F(M), 1 − domain) (Eq. 5.12), where M
    are D's features after its 2nd strided block for the HR and SR patches and ``domain`` is
    the batch's domain index (0/1): D learns features F cannot tell apart. F is trained on
    the same (detached) features to predict the domain (Eq. 5.13) after every D step.
    λp ramps linearly 0 → 1 over ``lambda_p_ramp`` iterations; ``regularize: false`` keeps it
    0 (F still trained and its accuracy logged, the "without regulariser" control of §5.4.3).
    Separate learning rates (TTUR): ``lr_d``, ``lr_f`` override ``optim.lr`` (G).
    """

    default_lambda = 0.1

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        feature_discriminator: Component(MODELS) = {"name": "FeatureDiscriminator"},  # noqa: B006
        lr_f: float | None = None,
        lambda_p_ramp: int = 10000,
        regularize: bool = True,
        **kwargs: Any,
    ) -> None:
        self.feature_spec = dict(feature_discriminator)
        super().__init__(cfg, run_dir, dist, **kwargs)
        self.lambda_p_ramp = lambda_p_ramp
        self.regularize = regularize
        self.override_lr("F", lr_f)
        self._warned_one_domain = False

    def build_nets(self) -> dict[str, nn.Module]:
        nets = super().build_nets()
        spec = {"in_channels": nets["D"].feature_channels, **self.feature_spec}
        return {**nets, "F": MODELS.build(spec, "trainer.feature_discriminator")}

    def lambda_p(self, iteration: int) -> float:
        """The domain-confusion weight at 0-based ``iteration``: linear 0 → 1, then 1."""
        if not self.regularize:
            return 0.0
        return 1.0 if self.lambda_p_ramp <= 0 else min(1.0, iteration / self.lambda_p_ramp)

    def domain_labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) float 0/1 domain labels; warns once when the data hold a single domain."""
        if "domain" not in batch:
            raise DataError("DRAGAN needs domain-tagged batches (data set SRVolumes)")
        domain = batch["domain"]
        if int(domain.max()) > 1:
            raise DataError("DRAGAN's F separates two domains; data.domains has more")
        if len(self.sr_data.domains) < 2 and not self._warned_one_domain:
            log.warning(
                "the training data hold one domain %s: F has nothing to separate; use a "
                "manifest with a domain column and set data.domains",
                self.sr_data.domains,
            )
            self._warned_one_domain = True
        return domain.float()

    def discriminator_step(
        self, batch: dict[str, torch.Tensor], hr: torch.Tensor, sr: torch.Tensor
    ) -> dict[str, float]:
        d, f = self.train_nets["D"], self.train_nets["F"]
        domain = self.domain_labels(batch).repeat(2)
        real, m_real = d(hr)
        fake, m_fake = d(sr)
        features = torch.cat([m_real, m_fake])
        gan = gan_loss(real, True) + gan_loss(fake, False)
        lam = self.lambda_p(self.iteration)
        with frozen(self.nets["F"]):
            confusion = gan_loss(f(features), 1 - domain)
        self.optimize("D", gan + lam * confusion)
        f_logits = f(features.detach())
        f_loss = gan_loss(f_logits, domain)
        self.optimize("F", f_loss)
        accuracy = ((f_logits > 0).float() == domain).float().mean()
        return {
            "d_loss": gan.item(),
            "d_confusion": confusion.item(),
            "lambda_p": lam,
            "f_loss": f_loss.item(),
            "f_accuracy": accuracy.item(),
        }

    def adversarial_loss(self, sr: torch.Tensor) -> torch.Tensor:
        return gan_loss(self.train_nets["D"](sr)[0], True)

    def validate(self) -> dict[str, float]:
        out = super().validate()
        d, f = self.nets["D"], self.nets["F"]
        hits, d_real, d_fake = [], [], []
        for b, sr in self.val_outputs():
            real, m_real = d(b["target"])
            fake, _ = d(sr)
            hits.append(((f(m_real) > 0).long() == b["domain"]).float().mean().item())
            d_real.append(torch.sigmoid(real).mean().item())
            d_fake.append(torch.sigmoid(fake).mean().item())
        if hits:
            out.update(
                {
                    "val/f_accuracy": float(np.mean(hits)),
                    "val/d_real": float(np.mean(d_real)),
                    "val/d_fake": float(np.mean(d_fake)),
                }
            )
        return out

    def save_figures(self, fig_dir: Path) -> None:
        """Also D's features (global averages, HR and SR val patches) by domain, PCA to 2-D."""
        super().save_figures(fig_dir)
        d, names = self.nets["D"].eval(), self.sr_data.domains
        points, groups = [], []
        with torch.no_grad():
            for b, sr in self.val_outputs():
                for kind, x in (("HR", b["target"]), ("SR", sr)):
                    points.append(to_host(d(x)[1].flatten(2).mean(-1)))
                    groups += [f"{names[int(i)] or 'unnamed'} {kind}" for i in b["domain"]]
        if len(groups) < 3:
            return
        feats = torch.cat(points).double().numpy()
        feats -= feats.mean(0)
        _, _, vt = np.linalg.svd(feats, full_matrices=False)
        figures.group_scatter(
            feats @ vt[:2].T, groups, fig_dir / "d_features_pca.png", "D's features by domain (PCA)"
        )


@TRAINERS.register()
class TwoStageDRAGANTrainer(DRAGANTrainer):
    """Two-stage DRAGAN (§5.2.1): a frozen non-GAN network S restores major structure, a
    DRAGAN-trained G restores detail from S's output; inference runs S then G.

    ``stage1`` is S's model section (default: ``model``), ``stage1_from`` the run directory it
    was trained in (its weights are loaded when training starts and kept in this run's
    checkpoints, so inference needs only this run).
    """

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        stage1: Component(MODELS) | None = None,
        stage1_from: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.stage1_spec = dict(stage1 or cfg.model)
        self.stage1_from = stage1_from
        super().__init__(cfg, run_dir, dist, **kwargs)

    def build_nets(self) -> dict[str, nn.Module]:
        stage1 = MODELS.build(self.stage1_spec, "trainer.stage1").requires_grad_(False)
        return {**super().build_nets(), "S": stage1}

    def initialise_from_runs(self) -> None:
        super().initialise_from_runs()
        if self.stage1_from:
            load_run_weights(self.stage1_from, "G", self.nets["S"], "stage1_from")
        else:
            log.warning("trainer.stage1_from is not set: stage 1 keeps random weights")

    def generator_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return self.nets["S"].eval()(batch["image"])

    def trained_net(self) -> nn.Module:
        return nn.Sequential(self.nets["S"], self.nets["G"])
