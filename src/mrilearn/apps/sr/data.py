"""Super-resolution data: HR volumes, their k-space-truncated LR versions, patch pairs.

LR volumes are simulated from HR with the configured degradation (§3.2.1), or read
from the manifest's ``lr`` column when real LR/HR pairs exist. Each pair is scaled
by one factor taken from the LR volume (the only thing known at inference), so
predictions can be scaled back exactly.

Splits are subject-wise (``split``). A single volume, such as the embedded MNI152
template, can instead be cut into slabs along ``region_axis`` (``regions``: the
fractions of its foreground extent for train/val/eval/test, separated by
``region_gap`` voxels): training patches lie entirely inside the training slab, so
the network never sees the HR voxels it is evaluated on. A source of several subjects is
split by subject whatever ``regions`` says (one info line), so a config made for the
MNI152 template trains on a folder as it is.

Subjects carry the manifest's ``domain`` tag; batches carry ``domain``, the index of each
sample's tag in ``domains`` (default: the sorted tags of all subjects). With
``domain_ratio`` each training sample first draws its domain with those odds, so a small
domain is not drowned by a large one (DRAGAN's cross-domain training, §5.2).

An ``lr`` scan acquired separately from its HR may lie on another grid, field of view or
position: ``register: rigid`` aligns each such pair first (:mod:`mrilearn.apps.sr.registration`;
``register_max_*``: when a registration counts as failed, and its pair is left out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch

from mrilearn.apps.sr.registration import PairAligner, pairs_without_failures
from mrilearn.apps.sr.registration_limits import Limits
from mrilearn.constraints import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    SpatialAxis,
)
from mrilearn.data.manifest import SPLITS, Subject, read_subjects, split_subjects
from mrilearn.errors import DataError
from mrilearn.io import Volume, check_pair, load_mni152, read_volume
from mrilearn.registry import DATASETS, DEGRADATIONS, Component

log = logging.getLogger(__name__)
UNREGISTERED_HINT = (
    "For an LR scan acquired separately from its HR, set data.register=rigid to align and "
    "resample it onto the HR grid"
)

Region = tuple[slice, slice, slice]


@dataclass
class SRPair:
    """One subject's normalised LR/HR pair and the region a split may use."""

    id: str
    lr: np.ndarray
    hr: np.ndarray
    region: Region
    scale: float
    volume: Volume
    domain: str = ""


@DATASETS.register()
class SRVolumes:
    """(LR, HR) pairs for 3-D super-resolution; batches are random 3-D patch pairs."""

    def __init__(
        self,
        source: str = "mni152",
        degradation: Component(DEGRADATIONS) | None = None,
        patch_size: list[PositiveInt] = [32, 32, 32],  # noqa: B006  (YAML default, never mutated)
        val_patches: NonNegativeInt = 8,
        split: list[NonNegativeFloat] = [7, 1, 1, 1],  # noqa: B006
        split_seed: int = 0,
        regions: list[NonNegativeFloat] | None = None,
        region_axis: SpatialAxis = 1,
        region_gap: NonNegativeInt = 4,
        scale_percentile: Annotated[float, Range(gt=0, le=100)] = 99.5,
        domains: list[str] | None = None,
        domain_ratio: list[NonNegativeFloat] | None = None,
        register: Literal["rigid"] | None = None,
        register_max_metric: Annotated[float, Range(le=0)] = Limits.max_metric,
        register_max_shift_mm: PositiveFloat = Limits.max_shift_mm,
        register_max_rotation_deg: PositiveFloat = Limits.max_rotation_deg,
    ) -> None:
        self.source = source
        self.degradation = DEGRADATIONS.build(
            degradation or {"name": "KspaceTruncation"}, "data.degradation"
        )
        if len(patch_size) != 3 or min(patch_size) < 1:
            raise DataError(f"data.patch_size {patch_size}: need three positive sizes")
        self.patch_size = tuple(patch_size)
        self.val_patches = val_patches
        self.split_ratios = split
        self.split_seed = split_seed
        self.regions = regions
        self.region_axis = region_axis
        self.region_gap = region_gap
        self.scale_percentile = scale_percentile
        if domain_ratio is not None and (
            min(domain_ratio, default=0) < 0 or sum(domain_ratio) <= 0
        ):
            raise DataError(f"data.domain_ratio {domain_ratio}: need non-negative odds")
        self._domains = domains
        self.domain_ratio = domain_ratio
        limits = Limits(register_max_metric, register_max_shift_mm, register_max_rotation_deg)
        self.aligner = PairAligner(limits) if register else None
        self._pairs: dict[str, list[SRPair]] | None = None
        self._val: list[dict[str, torch.Tensor]] | None = None

    # ------------------------------------------------------------- loading
    def subjects(self) -> list[Subject]:
        if self.source == "mni152":
            return [Subject("mni152_t1", {})]
        return read_subjects(self.source)

    def load_hr(self, subject: Subject) -> Volume:
        if not subject.files:
            return load_mni152("t1")
        return read_volume(subject.files["image"])

    def make_pair(self, subject: Subject, region: Region | None = None) -> SRPair:
        hr_vol = self.load_hr(subject)
        hr = hr_vol.data.astype(np.float32)
        if "lr" in subject.files:
            lr_vol = read_volume(subject.files["lr"])
            if self.aligner is not None:
                lr_vol = self.aligner(subject.id, lr_vol, hr_vol)
            check_pair(lr_vol, hr_vol, "lr/image", hint=UNREGISTERED_HINT)
            lr = lr_vol.data.astype(np.float32)
        else:
            lr = self.degradation(hr).astype(np.float32)
        scale = self.scale_of(lr)
        full = (slice(None),) * 3
        return SRPair(
            subject.id, lr / scale, hr / scale, region or full, scale, hr_vol, subject.domain
        )

    def scale_of(self, lr: np.ndarray) -> float:
        """Intensity scale from the LR volume alone (available at inference)."""
        scale = float(np.percentile(lr, self.scale_percentile))
        if not np.isfinite(scale) or scale <= 0:
            raise DataError(
                f"volume has no positive intensities (percentile {self.scale_percentile} is {scale})"
            )
        return scale

    def pairs(self, split: str) -> list[SRPair]:
        """All pairs of a split, loaded once."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        if self._pairs is None:
            self._pairs = self._load_all()
        return self._pairs[split]

    def subject_count(self, split: str) -> int:
        return len(self.pairs(split))

    def _load_all(self) -> dict[str, list[SRPair]]:
        subjects = self.subjects()
        if self.regions is not None and len(subjects) > 1:
            log.info("data.regions cuts one volume into slabs; %s holds %d subjects: split by "
                     "subject (data.split) instead", self.source, len(subjects))  # fmt: skip
        elif self.regions is not None:
            pair = self.make_pair(subjects[0])
            return {
                name: [SRPair(**{**pair.__dict__, "region": reg})] if reg else []
                for name, reg in zip(SPLITS, self._slabs(pair.hr))
            }
        by_split = split_subjects(subjects, self.split_ratios, self.split_seed)
        return {n: pairs_without_failures(self.make_pair, s) for n, s in by_split.items()}

    def _slabs(self, hr: np.ndarray) -> list[Region | None]:
        """Slabs of the foreground extent along ``region_axis``, ``region_gap`` apart."""
        if len(self.regions) != len(SPLITS) or any(r < 0 for r in self.regions):
            raise DataError(f"data.regions {self.regions}: need four fractions for {SPLITS}")
        fg = np.nonzero(hr > 0.05 * hr.max())
        lo, hi = (int(a.min()) for a in fg), (int(a.max()) + 1 for a in fg)
        box = [slice(a, b) for a, b in zip(lo, hi)]
        start, stop = box[self.region_axis].start, box[self.region_axis].stop
        usable = stop - start - self.region_gap * (sum(1 for r in self.regions if r > 0) - 1)
        total = sum(self.regions)
        out: list[Region | None] = []
        pos = start
        for frac in self.regions:
            if frac == 0:
                out.append(None)
                continue
            width = int(usable * frac / total)
            region = list(box)
            region[self.region_axis] = slice(pos, pos + width)
            out.append(tuple(region))
            pos += width + self.region_gap
        return out

    # ------------------------------------------------------------- domains
    @property
    def domains(self) -> list[str]:
        """Domain names; a sample's ``domain`` in a batch is its index here."""
        if self._domains is None:
            self._domains = sorted({p.domain for split in SPLITS for p in self.pairs(split)})
        return self._domains

    def domain_of(self, pair: SRPair) -> int:
        if pair.domain not in self.domains:
            raise DataError(
                f"{pair.id}: domain {pair.domain!r} is not in data.domains {self.domains}"
            )
        return self.domains.index(pair.domain)

    def _draw_pair(self, pairs: list[SRPair], generator: torch.Generator) -> SRPair:
        if self.domain_ratio is not None:
            if len(self.domain_ratio) != len(self.domains):
                raise DataError(
                    f"data.domain_ratio {self.domain_ratio} needs one value per domain "
                    f"{self.domains}"
                )
            odds = torch.tensor(self.domain_ratio, dtype=torch.float64)
            domain = self.domains[int(torch.multinomial(odds, 1, generator=generator))]
            pairs = [p for p in pairs if p.domain == domain]
            if not pairs:
                raise DataError(f"domain {domain!r} has no training subjects")
        return pairs[int(torch.randint(len(pairs), (1,), generator=generator))]

    # ------------------------------------------------------------- batches
    def train_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random patch pairs from the training split: (B, 1, *patch_size) each, and the
        samples' domain indices (B,)."""
        pairs = self.pairs("train")
        if not pairs:
            raise DataError("the training split is empty: add subjects or change data.split")
        lrs, hrs, domains = [], [], []
        for _ in range(batch_size):
            pair = self._draw_pair(pairs, generator)
            sl = self._random_patch(pair, generator)
            lrs.append(pair.lr[sl])
            hrs.append(pair.hr[sl])
            domains.append(self.domain_of(pair))
        return {"image": _stack(lrs), "target": _stack(hrs), "domain": torch.tensor(domains)}

    def _random_patch(self, pair: SRPair, generator: torch.Generator) -> Region:
        out = []
        for axis, (size, sl) in enumerate(zip(self.patch_size, pair.region)):
            start, stop, _ = sl.indices(pair.hr.shape[axis])
            room = stop - start - size
            if room < 0:
                raise DataError(
                    f"{pair.id}: region of {stop - start} voxels along axis {axis} "
                    f"is smaller than data.patch_size {size}"
                )
            offset = start + int(torch.randint(room + 1, (1,), generator=generator))
            out.append(slice(offset, offset + size))
        return tuple(out)

    def val_batches(self) -> list[dict[str, torch.Tensor]]:
        """Fixed patch pairs from the validation split (the same at every validation)."""
        if self._val is None:
            pairs = self.pairs("val")
            gen = torch.Generator().manual_seed(self.split_seed + 1)
            self._val = []
            for i in range(self.val_patches if pairs else 0):
                pair = pairs[i % len(pairs)]
                sl = self._random_patch(pair, gen)
                self._val.append(
                    {
                        "image": _stack([pair.lr[sl]]),
                        "target": _stack([pair.hr[sl]]),
                        "domain": torch.tensor([self.domain_of(pair)]),
                    }
                )
        return self._val


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)[:, None].copy())
