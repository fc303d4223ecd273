"""MALIBU training data (§6.3.1): stored subjects, canonical features, batches.

A data set folder (:func:`mrilearn.apps.malibu.dataset.generate_dataset`) holds one
``<id>.npz`` per subject plus ``manifest.csv`` (columns ``subject``, ``data``) and
``dataset.json`` (the generating config). Subject file (complex64 unless stated):

=============== ============== =========================================================
name            shape          meaning
=============== ============== =========================================================
u0              (L, N, N)      back-projection U0 = E*_{Φ,pc}(d), the network input
u               (L, N, N)      iterative (ADMM) spatial factor, the label
phi             (L, TI, C, R)  temporal factor Φ (TI, cardiac, respiratory bins)
t1              (N, N)         float32, iterative T1 map (ms)
labels          (N, N)         int8, phantom tissue index of pure pixels at the T1 map's
                               motion state, −1 elsewhere
t1_values       (T,)           float32, dictionary T1 values (ms)
curves          (T, TI)        float32, dictionary curves
metadata        ()             JSON: id, simulation config, t1_cardiac_bin, bright_ti,
                               dark_ti, tissue_names, true_t1_ms, timings_s, truth metrics
=============== ============== =========================================================

**Canonical feature space.** Φ's rows come ordered by singular value (the SVD in
:func:`mrilearn.physics.subspace.estimate_phi`) but each row is only defined up to a unit
complex factor. :func:`canonicalize` rotates every row φ_l so that its largest-magnitude entry
is real and positive and rotates u_l (in U0 and U) by the conjugate factor, so U Φ is unchanged
and subjects share one convention for what a channel means.

**Representation.** L complex maps are packed as 2L real channels [Re u_1..Re u_L, Im u_1..
Im u_L] (:func:`pack`). Instance-wise normalisation subtracts the mean and divides by the
standard deviation of the packed input (§6.3.2). The label is normalised with the input's
statistics times ``label_scale`` k, the median std(U)/std(U0) of the training subjects (U0 and
U differ by a protocol-dependent constant); the dissertation normalised the label with its own
statistics, which are unknown at inference, whereas this choice is inverted exactly there.
With ``channel_norm`` every channel gets its own statistics and its own k, so that the small
basis components, which carry the T1 contrast, weigh as much in the loss as the first.

**T1 series.** Batches also carry what the T1 fit sees: ``curve_basis`` (B, L, TI), the columns of
Φ at the subject's T1 cardiac bin and end-expiration (:func:`curve_basis`), so a loss can compare
the recovery curves U Φ[:, :, bin, 0] and not only U (``MalibuTrainer(series_weight=...)``),
and ``std`` (B, 1 or 2L, 1, 1), the label's normalisation (as in validation batches), to map a
normalised difference back to U.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrilearn.constraints import NonNegativeFloat, PositiveInt
from mrilearn.data.manifest import SPLITS, read_subjects, split_subjects
from mrilearn.errors import DataError
from mrilearn.registry import DATASETS

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"


# ------------------------------------------------------------------ features
def canonical_rotation(phi: np.ndarray) -> np.ndarray:
    """(L,) unit complex factors c_l such that c_l φ_l has its largest-magnitude entry real > 0."""
    flat = phi.reshape(phi.shape[0], -1)
    peak = flat[np.arange(flat.shape[0]), np.argmax(np.abs(flat), axis=1)]
    return (np.conj(peak) / np.maximum(np.abs(peak), 1e-30)).astype(phi.dtype)


def canonicalize(phi: np.ndarray, *factors: np.ndarray) -> tuple[np.ndarray, ...]:
    """(c Φ, conj(c) U for every U in ``factors``) with c = :func:`canonical_rotation`; U Φ is
    unchanged. Shapes: phi (L, ...), factors (L, N, N)."""
    c = canonical_rotation(phi)
    rotated = tuple(np.conj(c)[:, None, None] * u for u in factors)
    return (c.reshape(-1, *[1] * (phi.ndim - 1)) * phi, *rotated)


def curve_basis(phi: np.ndarray, cardiac_bin: int) -> np.ndarray:
    """Φ[:, :, cardiac_bin, 0] (L, TI), scaled to Frobenius norm √L (that of the whole Φ, whose
    rows are orthonormal), so that the recovery curves it forms carry U's energy."""
    basis = phi[:, :, cardiac_bin, 0]
    return (basis * np.sqrt(basis.shape[0]) / np.linalg.norm(basis)).astype(np.complex64)


def pack(u: np.ndarray) -> np.ndarray:
    """Complex (L, N, N) → real float32 (2L, N, N): real parts, then imaginary parts."""
    return np.concatenate([u.real, u.imag]).astype(np.float32)


def unpack(x: np.ndarray) -> np.ndarray:
    """Real (2L, N, N) → complex64 (L, N, N), the inverse of :func:`pack`."""
    half = x.shape[0] // 2
    return (x[:half] + 1j * x[half:]).astype(np.complex64)


@dataclass(frozen=True)
class Normalisation:
    """y = (x − mean) / std with statistics from one instance, shape (1, 1, 1) (over all
    channels) or (C, 1, 1) (per channel); :meth:`invert` undoes it."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(
        cls, x: np.ndarray, scale: float | np.ndarray = 1.0, per_channel: bool = False
    ) -> Normalisation:
        """The statistics of ``x`` (C, H, W), both multiplied by ``scale`` (a scalar or one
        factor per channel)."""
        axes = (1, 2) if per_channel else None
        std = np.std(x, axis=axes, dtype=np.float64, keepdims=True).reshape(-1, 1, 1)
        if not (std > 0).all():
            raise DataError("cannot normalise a constant feature map (std = 0)")
        mean = np.mean(x, axis=axes, dtype=np.float64, keepdims=True).reshape(-1, 1, 1)
        factor = np.reshape(np.asarray(scale, np.float64), (-1, 1, 1))
        return cls(factor * mean, factor * std)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.float64) - self.mean) / self.std).astype(np.float32)

    def invert(self, y: np.ndarray) -> np.ndarray:
        return (y.astype(np.float64) * self.std + self.mean).astype(np.float32)


# ------------------------------------------------------------------ data set
@dataclass
class MalibuSubject:
    """One stored subject (canonical U0, U, Φ) and what evaluation needs."""

    id: str
    u0: np.ndarray
    u: np.ndarray
    phi: np.ndarray
    t1: np.ndarray
    labels: np.ndarray
    t1_values: np.ndarray
    curves: np.ndarray
    meta: dict[str, Any]


def read_subject(path: str | Path) -> MalibuSubject:
    """Load one subject file written by :func:`make_subject`."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("metadata")))
    return MalibuSubject(id=meta["id"], meta=meta, **arrays)


@DATASETS.register()
class MalibuMaps:
    """U0 → U pairs of a generated data set as normalised 2L-channel maps (§6.3.1–2).

    ``source``: the folder written by ``mrilearn simulate mtmri-dataset`` (or its manifest);
    ``split``: subject ratios for train/val/eval/test; ``crop``: side of random square training
    crops (None: whole maps); ``flips``: random up-down/left-right flips (spatial flips leave Φ
    valid). Batches: ``image`` (B, 2L, H, W) normalised U0, ``target`` the normalised U,
    ``mean``/``std`` (B,) the label's normalisation for NRMSE in physical units.
    """

    def __init__(
        self,
        source: str = "malibu_data",
        split: list[NonNegativeFloat] = [0.7, 0.1, 0.0, 0.2],  # noqa: B006  (YAML default)
        split_seed: int = 0,
        crop: PositiveInt | None = 32,
        flips: bool = True,
        channel_norm: bool = False,
    ) -> None:
        path = Path(source)
        manifest = path / MANIFEST if path.is_dir() else path
        if not manifest.is_file():
            raise DataError(
                f"{source}: no {MANIFEST}; generate subjects with mrilearn simulate mtmri-dataset"
            )
        self.split = split_subjects(read_subjects(manifest), list(split), split_seed)
        if not self.split["train"]:
            raise DataError(f"{source}: the split {split} leaves no training subject")
        self.crop = crop
        self.flips = flips
        self.channel_norm = channel_norm

    @cached_property
    def _subjects(self) -> dict[str, list[MalibuSubject]]:
        return {s: [read_subject(x.files["data"]) for x in self.split[s]] for s in SPLITS}

    def subjects(self, split: str) -> list[MalibuSubject]:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; choose from {SPLITS}")
        return self._subjects[split]

    def subject_count(self, split: str) -> int:
        return len(self.subjects(split))

    @cached_property
    def label_scale(self) -> np.ndarray:
        """k = median over training subjects of std(pack(U)) / std(pack(U0)): shape (1,), or
        (2L,) per channel with ``channel_norm``."""
        axes = (1, 2) if self.channel_norm else None
        ratios = [
            np.atleast_1d(np.std(pack(s.u), axis=axes) / np.std(pack(s.u0), axis=axes))
            for s in self.subjects("train")
        ]
        return np.median(ratios, axis=0)

    def pair(self, subject: MalibuSubject) -> tuple[np.ndarray, np.ndarray, Normalisation]:
        """Normalised (2L, N, N) input and label, and the label's normalisation."""
        x = pack(subject.u0)
        norm = Normalisation.of(x, per_channel=self.channel_norm)
        label_norm = Normalisation.of(x, self.label_scale, self.channel_norm)
        return norm.apply(x), label_norm.apply(pack(subject.u)), label_norm

    def series_terms(self, subject: MalibuSubject, norm: Normalisation) -> dict[str, np.ndarray]:
        """``curve_basis`` (L, TI) and the label normalisation's ``std`` (1 or 2L, 1, 1) of one
        subject (module docstring); float32, as every tensor that goes to the device (MPS has
        no float64)."""
        basis = curve_basis(subject.phi, subject.meta["t1_cardiac_bin"])
        return {"curve_basis": basis, "std": norm.std.astype(np.float32)}

    @cached_property
    def _train_pairs(self) -> list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        pairs = []
        for s in self.subjects("train"):
            x, y, norm = self.pair(s)
            pairs.append((x, y, self.series_terms(s, norm)))
        return pairs

    def train_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random subjects, random crops and flips: (B, 2L, crop, crop) image and target, and
        each subject's ``curve_basis`` and label ``std``."""
        images, targets, terms = [], [], []
        for _ in range(batch_size):
            i = int(torch.randint(len(self._train_pairs), (1,), generator=generator))
            x, y, series = self._train_pairs[i]
            terms.append(series)
            n = x.shape[-1]
            c = min(self.crop or n, n)
            r0, c0 = (int(torch.randint(n - c + 1, (1,), generator=generator)) for _ in "rc")
            x, y = x[:, r0 : r0 + c, c0 : c0 + c], y[:, r0 : r0 + c, c0 : c0 + c]
            if self.flips:
                for axis in (1, 2):
                    if torch.rand((), generator=generator) < 0.5:
                        x, y = np.flip(x, axis), np.flip(y, axis)
            images.append(np.ascontiguousarray(x))
            targets.append(np.ascontiguousarray(y))
        return {
            "image": torch.from_numpy(np.stack(images)),
            "target": torch.from_numpy(np.stack(targets)),
            **{k: torch.from_numpy(np.stack([t[k] for t in terms])) for k in terms[0]},
        }

    def val_batches(self) -> list[dict[str, torch.Tensor]]:
        """One whole-map batch per validation subject."""
        batches = []
        for s in self.subjects("val"):
            x, y, norm = self.pair(s)
            batches.append(
                {
                    "image": torch.from_numpy(x[None]),
                    "target": torch.from_numpy(y[None]),
                    "mean": torch.from_numpy(norm.mean[None]),
                    **{k: torch.from_numpy(v[None]) for k, v in self.series_terms(s, norm).items()},
                }
            )
        return batches
