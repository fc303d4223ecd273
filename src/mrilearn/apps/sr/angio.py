"""Synthetic angiography-like volumes: the small second domain of DRAGAN's cross-domain
training (§5.2.2), so it runs offline next to the MNI152 T1 (domain A).

A volume holds bright, tortuous, branching vessel trees on a dark, noisy background, like a
contrast-enhanced MR angiogram. Each tree's centre line is a persistent random walk: the
direction turns a little at every 1-voxel step (tortuosity), the radius tapers, and now and
then a thinner child branch leaves at 25–70°. Tubes are painted with a one-voxel linear
partial-volume edge; vessel brightness drifts slowly along each tree. The background is a
dark, smooth bias field; noise is Rician (magnitude of signal plus complex Gaussian noise).

:func:`write_angio_dataset` writes volumes as NIfTI files with a CSV manifest (columns
``subject, image, lr, domain``), the LR being the k-space truncation of the HR (4×4 in-plane
by default, §5.3); :class:`CrossDomainSR` generates them in memory as domain B beside any
other SR source, so the DRAGAN configs train without files. Real data sets plug in through a
manifest with a ``domain`` column instead.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from mrilearn.apps.sr.data import SRPair, SRVolumes
from mrilearn.apps.sr.degrade import KspaceTruncation
from mrilearn.apps.sr.synthetic import ANGIO_DOMAIN, DEFAULT_AXES, DEFAULT_FACTORS, DEFAULT_SHAPE
from mrilearn.constraints import NonNegativeFloat, NonNegativeInt, PositiveInt
from mrilearn.data.manifest import SPLITS, Subject, split_subjects
from mrilearn.errors import DataError
from mrilearn.io import Volume, write_nifti
from mrilearn.io.atomic import atomic_dir
from mrilearn.registry import DATASETS

log = logging.getLogger(__name__)


def subject_seed(seed: int, index: int) -> int:
    """Seed of subject ``index`` in the set ``seed``: sets with different seeds share none."""
    return seed * 100_003 + index


def _turn(direction: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """``direction`` rotated by ``angle`` (radians) about a random perpendicular axis."""
    axis = np.cross(direction, rng.normal(size=3))
    axis /= np.linalg.norm(axis) + 1e-12
    return np.cos(angle) * direction + np.sin(angle) * np.cross(axis, direction)


def vessel_tree(
    shape: Sequence[int],
    rng: np.random.Generator,
    radius: float,
    min_radius: float = 0.7,
    taper: float = 0.995,
    tortuosity: float = 0.15,
    branch_rate: float = 0.04,
) -> list[tuple[np.ndarray, float, float]]:
    """Centre-line samples ``(point, radius, brightness)`` of one tree, 1 voxel apart.

    The root enters through a random face and heads inwards; a branch ends when it leaves the
    volume, gets thinner than ``min_radius`` or longer than four volume widths. Children start
    on their parent's centre line, so every tree is one connected structure.
    """
    size = np.asarray(shape, float)
    axis, side = int(rng.integers(3)), int(rng.integers(2))
    start = rng.uniform(0.3, 0.7, 3) * size
    start[axis] = 1.0 if side == 0 else size[axis] - 2.0
    heading = np.zeros(3)
    heading[axis] = 1.0 if side == 0 else -1.0
    heading = _turn(heading, rng.uniform(0.0, 0.5), rng)
    stack = [(start, heading, radius, rng.uniform(0.8, 1.0))]
    samples: list[tuple[np.ndarray, float, float]] = []
    max_len = int(4 * size.max())
    while stack and len(samples) < 20 * max_len:
        point, direction, r, bright = stack.pop()
        for _ in range(max_len):
            if r < min_radius or np.any(point < 0) or np.any(point > size - 1):
                break
            samples.append((point.copy(), r, bright))
            if rng.random() < branch_rate:
                child = _turn(direction, rng.uniform(0.45, 1.2), rng)
                stack.append((point.copy(), child, r * rng.uniform(0.55, 0.8), bright))
            direction = _turn(direction, abs(rng.normal(0.0, tortuosity)), rng)
            direction /= np.linalg.norm(direction)
            point = point + direction
            r *= taper
            bright = float(np.clip(bright + rng.normal(0.0, 0.01), 0.6, 1.0))
    return samples


def paint_tubes(
    shape: Sequence[int], samples: Sequence[tuple[np.ndarray, float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """(vessel intensity, partial-volume fraction), both (X, Y, Z) float32 in [0, 1].

    A voxel's fraction is ``clip(r − d + 0.5, 0, 1)`` for its distance ``d`` to the nearest
    centre sample of radius ``r``: one voxel of linear partial volume at the vessel wall.
    """
    frac = np.zeros(shape, np.float32)
    intensity = np.zeros(shape, np.float32)
    for point, r, bright in samples:
        lo = np.maximum(np.floor(point - r - 1), 0).astype(int)
        hi = np.minimum(np.ceil(point + r + 2), shape).astype(int)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        grids = np.ogrid[box]
        d = np.sqrt(sum((g - p) ** 2 for g, p in zip(grids, point)))
        f = np.clip(r - d + 0.5, 0.0, 1.0).astype(np.float32)
        better = f > frac[box]
        frac[box] = np.where(better, f, frac[box])
        intensity[box] = np.where(better, bright, intensity[box])
    return intensity, frac


def angio_volume(
    shape: Sequence[int] = DEFAULT_SHAPE,
    seed: int = 0,
    trees: int = 2,
    noise: float = 0.03,
    background: float = 0.08,
    return_fraction: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One (X, Y, Z) float32 angiogram-like volume, vessels near 1, background near
    ``background``; with ``return_fraction`` also the vessels' partial-volume fraction."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise DataError(f"angiography volume shape {list(shape)}: need three sizes >= 8")
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(trees):
        samples += vessel_tree(shape, rng, radius=rng.uniform(0.035, 0.05) * min(shape))
    intensity, frac = paint_tubes(shape, samples)
    bias = ndimage.gaussian_filter(rng.normal(size=shape), min(shape) / 6, mode="wrap")
    bias = 1.0 + 0.5 * bias / (np.abs(bias).max() + 1e-12)
    clean = (frac * intensity + (1 - frac) * background) * bias
    noisy = np.hypot(clean + rng.normal(0, noise, shape), rng.normal(0, noise, shape))
    out = noisy.astype(np.float32)
    return (out, frac) if return_fraction else out


def write_angio_dataset(
    out_dir: str | Path,
    subjects: int,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_SHAPE,
    factors: Sequence[float] = DEFAULT_FACTORS,
    axes: Sequence[int] = DEFAULT_AXES,
    domain: str = ANGIO_DOMAIN,
) -> Path:
    """Write ``subjects`` volumes as ``hr/<id>.nii.gz`` and their k-space-truncated
    ``lr/<id>.nii.gz`` plus ``manifest.csv`` (subject, image, lr, domain) into ``out_dir``;
    returns the manifest path. The folder appears complete or not at all."""
    if subjects < 1:
        raise DataError(f"--subjects {subjects}: need at least one subject")
    degrade = KspaceTruncation(list(factors), list(axes))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        rows = []
        for i in range(subjects):
            sid = f"{domain}_{seed:03d}_{i:04d}"
            hr = angio_volume(shape, subject_seed(seed, i))
            write_nifti(Volume(hr, np.eye(4)), tmp / "hr" / f"{sid}.nii.gz")
            write_nifti(
                Volume(degrade(hr).astype(np.float32), np.eye(4)), tmp / "lr" / f"{sid}.nii.gz"
            )
            rows.append([sid, f"hr/{sid}.nii.gz", f"lr/{sid}.nii.gz", domain])
            log.info("wrote subject %s (%d/%d)", sid, i + 1, subjects)
        with open(tmp / "manifest.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "image", "lr", "domain"])
            writer.writerows(rows)
    return out_dir / "manifest.csv"


@DATASETS.register()
class CrossDomainSR(SRVolumes):
    """SR pairs of two domains: ``source`` as in :class:`SRVolumes` (domain A, tagged
    ``domain_a`` unless its manifest tags it; e.g. the MNI152 T1 cut into slabs) and
    ``angio_subjects`` synthetic angiography volumes generated in memory (domain B, tag
    ``angio``; 0: none, e.g. when ``source`` is a manifest holding both domains), split
    subject-wise by ``angio_split`` (default: train and val only, so the test split is domain
    A's alone). LR is simulated with ``degradation`` for both domains.
    """

    def __init__(
        self,
        domain_a: str = "brain",
        angio_subjects: NonNegativeInt = 8,
        angio_shape: list[PositiveInt] = list(DEFAULT_SHAPE),  # noqa: B006  (YAML default)
        angio_seed: int = 0,
        angio_split: list[NonNegativeFloat] = [3, 1, 0, 0],  # noqa: B006
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if angio_subjects < 0:
            raise DataError(f"data.angio_subjects {angio_subjects}: need 0 or more")
        self.domain_a = domain_a
        self.angio = {
            f"{ANGIO_DOMAIN}_{angio_seed:03d}_{i:04d}": subject_seed(angio_seed, i)
            for i in range(angio_subjects)
        }
        self.angio_shape = tuple(angio_shape)
        self.angio_split = angio_split

    def load_hr(self, subject: Subject) -> Volume:
        if subject.id in self.angio and not subject.files:
            return Volume(angio_volume(self.angio_shape, self.angio[subject.id]), np.eye(4))
        return super().load_hr(subject)

    def _load_all(self) -> dict[str, list[SRPair]]:
        pairs = super()._load_all()
        for split in SPLITS:
            for pair in pairs[split]:
                pair.domain = pair.domain or self.domain_a
        if self.angio:
            angio = [Subject(sid, {}, ANGIO_DOMAIN) for sid in self.angio]
            for split, subs in split_subjects(angio, self.angio_split, self.split_seed).items():
                pairs[split] += [self.make_pair(s) for s in subs]
        return pairs
