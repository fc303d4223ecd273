"""SPADE trainer (§8.3.1): label map → image GAN on axial slices, and volume synthesis.

Each iteration takes one D step and one G step on the same batch (as SPADE/pix2pixHD). D is
the label-conditioned multi-scale PatchGAN; its loss is ``gan_loss`` (hinge or least
squares) on real and generated pairs, averaged over scales. G's loss is the adversarial term
plus ``lambda_fm`` × feature matching (L1 between D's intermediate features of the real and
generated pair, averaged over layers and scales, real features detached) plus
``lambda_pixel`` × the config's ``loss`` between generated and real image (L1 by default; it
makes the few hundred CPU iterations converge, at the cost of less diversity over z).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mrilearn import components
from mrilearn.apps.seg.grid import Grid
from mrilearn.apps.synthesis.data import LabelSlices, nearly_empty
from mrilearn.apps.synthesis.figures import synthesis_panel
from mrilearn.engine.device import to_host
from mrilearn.engine.trainer import Trainer, frozen
from mrilearn.errors import ConfigError, DataError
from mrilearn.io import Volume
from mrilearn.registry import MODELS, TRAINERS, Component

log = logging.getLogger(__name__)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, mode: str) -> torch.Tensor:
    """Hinge: E[relu(1 − D(real))] + E[relu(1 + D(fake))]; lsgan: E[(D(real) − 1)²] + E[D(fake)²]."""
    if mode == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return ((real - 1) ** 2).mean() + (fake**2).mean()


def generator_loss(fake: torch.Tensor, mode: str) -> torch.Tensor:
    """Hinge: −E[D(fake)]; lsgan: E[(D(fake) − 1)²]."""
    return -fake.mean() if mode == "hinge" else ((fake - 1) ** 2).mean()


def feature_matching(
    real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]
) -> torch.Tensor:
    """Mean L1 between the intermediate features (not the logits) of real and generated
    pairs, over layers and scales; the real features are detached."""
    terms = [
        F.l1_loss(f, r.detach()) for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])
    ]
    return torch.stack(terms).mean()


@dataclass
class Synthesis:
    """A synthesised volume on the label's grid (z-scored intensities, float32), the mask of
    its synthesised voxels (False: from a nearly empty slice, filled with background) and the
    axial slices of the working grid that were nearly empty."""

    image: Volume
    synthesised: np.ndarray
    skipped_slices: list[int]
    slices: int


@TRAINERS.register()
class SpadeTrainer(Trainer):
    """Trains ``G`` (``model``, a :class:`~mrilearn.apps.synthesis.models.SpadeGenerator`) against
    ``D`` (``discriminator``) on :class:`~mrilearn.apps.synthesis.data.LabelSlices`; validation
    logs ``val/l1``, the mean |G(label, z = 0) − image| of the fixed validation slices.

    ``figure_slices``: validation slices in ``figures/synthesis.png`` (label | real | two
    samples of z).
    """

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        discriminator: Component(MODELS) = {"name": "SpadeDiscriminator"},  # noqa: B006
        gan_loss: Literal["hinge", "lsgan"] = "hinge",
        lambda_fm: float = 10.0,
        lambda_pixel: float = 10.0,
        figure_slices: int = 4,
    ) -> None:
        self.discriminator_spec = dict(discriminator)
        super().__init__(cfg, run_dir, dist)
        self.gan_loss, self.lambda_fm, self.lambda_pixel = gan_loss, lambda_fm, lambda_pixel
        self.figure_slices = figure_slices
        if not isinstance(self.data, LabelSlices):
            raise ConfigError("data: SpadeTrainer needs {name: LabelSlices, ...}")
        classes = {self.data.table.classes, self.nets["G"].classes, self.nets["D"].classes}
        if len(classes) != 1:
            raise ConfigError(
                f"model.classes {self.nets['G'].classes} and discriminator classes "
                f"{self.nets['D'].classes} must both be {self.data.table.classes} (background + "
                f"{len(self.data.table.names)} labels of data.labels)"
            )

    def build_nets(self) -> dict[str, nn.Module]:
        g = components.build("model", self.cfg.model)
        spec = {"classes": g.classes, **self.discriminator_spec}
        return {"G": g, "D": MODELS.build(spec, "trainer.discriminator")}

    # --------------------------------------------------------------- training
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        real, label = batch["image"], batch["label"]
        fake = self.train_nets["G"](label)
        d = self.train_nets["D"]
        d_real, d_fake = d(real, label), d(fake.detach(), label)
        d_loss = torch.stack(
            [discriminator_loss(r[-1], f[-1], self.gan_loss) for r, f in zip(d_real, d_fake)]
        ).mean()
        self.optimize("D", d_loss)
        with frozen(self.nets["D"]):
            d_fake = d(fake, label)
            adv = torch.stack([generator_loss(f[-1], self.gan_loss) for f in d_fake]).mean()
            fm = feature_matching(d_real, d_fake)
        pixel = self.loss(fake, real)
        self.optimize("G", adv + self.lambda_fm * fm + self.lambda_pixel * pixel)
        return {"d_loss": d_loss.item(), "g_adv": adv.item(), "g_fm": fm.item(),
                "g_pixel": pixel.item()}  # fmt: skip

    def fixed_z(self, n: int, seed: int | None = None) -> torch.Tensor | None:
        """z = 0 (the prior's mode) or, with ``seed``, a seeded draw; None if G has no z."""
        z_dim = self.nets["G"].z_dim
        if not z_dim:
            return None
        if seed is None:
            return torch.zeros(n, z_dim, device=self.device)
        z = torch.randn(1, z_dim, generator=torch.Generator().manual_seed(seed))
        return z.to(self.device).expand(n, -1)

    def validate(self) -> dict[str, float]:
        batches = self.val_batches()
        if not batches:
            return {}
        g = self.nets["G"]
        l1 = [F.l1_loss(g(b["label"], self.fixed_z(1)), b["image"]).item() for b in batches]
        return {"val/l1": float(np.mean(l1))}

    def save_figures(self, fig_dir: Path) -> None:
        """``synthesis.png``: label | real | G(label) with z = 0 and with a seeded z."""
        batches = self.val_batches()[: self.figure_slices]
        if not batches:
            return
        g, rows = self.nets["G"].eval(), []
        with torch.no_grad():
            for b in batches:
                samples = [to_host(g(b["label"], self.fixed_z(1, seed)))[0, 0].numpy()
                           for seed in (None, 1)]  # fmt: skip
                label, image = to_host(b["label"]), to_host(b["image"])
                rows.append((label[0, 0].numpy(), image[0, 0].numpy(), *samples))
        table = self.data.table
        colours = dict(zip(range(1, table.classes), table.colours))
        synthesis_panel(rows, ["label", "real", "synthetic z=0", "synthetic z~N(0,I)"],
                        colours, fig_dir / "synthesis.png")  # fmt: skip

    # -------------------------------------------------------------- synthesis
    def synthesize(
        self, label: Volume, seed: int | None = None, min_foreground: float | None = None,
        batch: int = 16, where: str = "label map",
    ) -> Synthesis:  # fmt: skip
        """Synthesise an image for a 3-D label map (values of ``data.labels``), axial slice by
        axial slice on the training grid (``data.spacing``), resampled back (linear) onto the
        label's grid. One z for the whole volume (z = 0 without ``seed``) so that neighbouring
        slices match. Slices with less than ``min_foreground`` (default: the training
        threshold) labelled pixels are not synthesised: they get the volume's lowest
        synthesised value (air) and are listed in ``skipped_slices``."""
        data: LabelSlices = self.data
        if label.data.ndim != 3:
            raise DataError(f"{where}: need a 3-D (X, Y, Z) label map, got shape {label.shape}")
        threshold = data.min_foreground if min_foreground is None else min_foreground
        grid = Grid.for_volume(label.shape, label.affine, data.spacing)
        classes = grid.to_working(data.table.to_classes(np.asarray(label.data), where), 0)
        empty = nearly_empty(classes, threshold)
        if empty.all():
            raise DataError(
                f"{where}: every axial slice has less than {threshold:.1%} labelled pixels; "
                "SPADE cannot synthesise anatomy from (nearly) empty label maps"
            )
        keep = np.flatnonzero(~empty)
        out = np.zeros(classes.shape, np.float32)
        g = self.inference_net().eval()
        with torch.no_grad(), self.amp.autocast():
            for chunk in np.array_split(keep, -(-len(keep) // batch)):
                lab = torch.from_numpy(
                    classes[:, :, chunk].transpose(2, 0, 1)[:, None].astype(np.int64)
                )
                image = to_host(g(lab.to(self.device), self.fixed_z(len(chunk), seed)))
                out[:, :, chunk] = image[:, 0].numpy().transpose(1, 2, 0)
        out[:, :, empty] = out[:, :, keep].min()
        image = grid.to_input(out, 1).astype(np.float32)
        synthesised = grid.to_input(np.broadcast_to(~empty, classes.shape).astype(np.uint8), 0)
        skipped = [int(z) for z in np.flatnonzero(empty)]
        return Synthesis(label.with_data(image), synthesised > 0, skipped, len(empty))

    def infer_volume(self, volume: Volume) -> Volume:
        """``mrilearn infer`` on a label map: the synthesised image (z = 0)."""
        values = np.rint(volume.data)
        if not np.allclose(values, volume.data):
            raise DataError("the input holds non-integer values; SPADE needs a label map")
        return self.synthesize(volume.with_data(values.astype(np.int32))).image
