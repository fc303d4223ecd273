"""Segmentation data (ALAMO, §7.2.1-§7.2.2): image/label pairs, isotropic resampling,
per-volume z-score, multi-view multi-slice slabs with flips and projective deformation.

Sources (``source``):

- a CSV manifest with ``image`` and ``label`` columns, or a folder with ``images/`` and
  ``labels/`` sub-folders holding files of the same names (any spacing and orientation);
- ``synthetic_abdomen``: subjects of :mod:`mrilearn.apps.seg.abdomen`, generated in memory;
- ``mni152_tissue``: the MNI152 2009 template with background / CSF / grey / white matter
  labels: brain = holes-filled (GM + WM > 0.5) closed by 3 mm, CSF = brain − GM − WM
  (clipped at 0), background = 1 − brain; each voxel takes the argmax of (background, CSF,
  GM, WM). The one volume is cut into slabs along ``region_axis`` (``regions``: fractions
  of its extent for train/val/eval/test) so the test slab is never trained on.

Every volume is brought to a grid with the closest RAS+ axis order (no rotation, so no
interpolation across oblique axes) at ``spacing`` mm isotropic (linear for images, nearest
for labels); the :class:`Grid` keeps what maps a prediction back onto the input grid.
Axial slabs are taken along axis 2, coronal along axis 1 and sagittal along axis 0.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from mrilearn.apps.seg import abdomen
from mrilearn.apps.seg.augment import draw_index, draw_uniform, homography, pad_slab, warp
from mrilearn.apps.seg.grid import Grid
from mrilearn.apps.seg.labels import LabelTable
from mrilearn.constraints import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    SpatialAxis,
)
from mrilearn.data.manifest import SPLITS, Subject, read_subjects, split_subjects
from mrilearn.errors import DataError
from mrilearn.io import Volume, check_pair, load_mni152, read_volume
from mrilearn.registry import DATASETS

log = logging.getLogger(__name__)

VIEWS = ("axial", "coronal", "sagittal")
SLICE_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
TISSUE_LABELS = [
    {"name": "csf", "value": 1, "colour": "#3c78d8"},
    {"name": "grey_matter", "value": 2, "colour": "#6aa84f"},
    {"name": "white_matter", "value": 3, "colour": "#f1c232"},
]


@dataclass
class SegCase:
    """One evaluation subject on its input grid: image (float) and label (int values)."""

    id: str
    image: Volume
    label: Volume


@dataclass
class Prepared:
    """A subject on the working grid: z-scored image and class map."""

    id: str
    image: np.ndarray  # (X, Y, Z) float32
    label: np.ndarray  # (X, Y, Z) uint8 class indices
    pad_value: float


def zscore(image: np.ndarray, foreground: bool = False) -> np.ndarray:
    """Per-volume standardisation (§7.2.2): subtract the mean, divide by the std.

    With ``foreground`` the mean and std are taken over the voxels above 10 % of the 1-99th
    percentile range only, so they do not depend on how much air the field of view holds
    (a slab of the MNI head with more air in front would otherwise look brighter)."""
    values = image
    if foreground:
        lo, hi = np.percentile(image, [1, 99])
        values = image[image > lo + 0.1 * (hi - lo)]
        values = values if values.size > 1 else image
    std = float(values.std())
    if not std > 0:
        raise DataError("the image is constant (std 0); it cannot be standardised")
    return ((image - values.mean()) / std).astype(np.float32)


@functools.lru_cache(maxsize=2)
def mni152_tissue(spacing: float) -> tuple[Volume, Volume]:
    """MNI152 T1 and its background/CSF/GM/WM label map (values 0-3, see module notes) at
    ``spacing`` mm; cached (callers must not modify the arrays)."""
    t1, gm, wm = (load_mni152(k) for k in ("t1", "gm", "wm"))
    brain = ndimage.binary_fill_holes(gm.data + wm.data > 0.5)
    radius = max(1, int(round(3.0 / min(t1.spacing))))
    brain = ndimage.binary_closing(brain, ndimage.generate_binary_structure(3, 1), radius)
    brain = ndimage.binary_fill_holes(brain)
    csf = np.clip(brain - gm.data - wm.data, 0, None)
    probs = np.stack([1.0 - brain, csf, gm.data, wm.data])
    label = np.argmax(probs, axis=0).astype(np.uint8)
    grid = Grid.for_volume(t1.shape, t1.affine, spacing)
    image = Volume(grid.to_working(t1.data, 1), grid.affine, meta=dict(t1.meta))
    return image, Volume(grid.to_working(label, 0), grid.affine, meta={"source": "mni152_tissue"})


@DATASETS.register()
class SegVolumes:
    """Image/label pairs for multi-slice 2-D segmentation networks (§7.2).

    A training sample is ``slices`` contiguous slices (the channels) of one view, chosen at
    the ``views`` ratio (axial:coronal:sagittal, 4:1:1 in §7.2.6), cropped at random to
    ``crop`` (in-plane, first then second remaining array axis; smaller extents are padded with
    the volume minimum and background), flipped along each in-plane axis with ``flip_prob``
    and deformed with ``projective_prob`` by a random homography (rotation ±``rotation`` rad,
    shear ±``shear``, projective ±``projective`` per pixel from the crop centre), the same for
    image (bilinear) and label (nearest). With ``organ_prob`` > 0 that fraction of training
    slabs is placed to contain a random voxel of an organ drawn uniformly among those present
    (class-balanced sampling, not in §7: a thin organ along the slice axis, like the spinal
    cord in coronal and sagittal slabs, lies in only a few of the ~100 slab positions and is
    otherwise rarely seen). Images are z-scored per volume (``normalize:
    volume``, §7.2.2) or over their foreground voxels (``foreground``, see :func:`zscore`).
    Batches: ``image`` (B, N, H, W) float32,
    ``label`` (B, 1, N, H, W) int64 class indices.
    """

    def __init__(
        self,
        source: str = "synthetic_abdomen",
        labels: list[dict[str, Any]] | None = None,
        spacing: PositiveFloat | None = 1.2,
        slices: PositiveInt = 20,
        crop: list[PositiveInt] = [256, 160],  # noqa: B006  (YAML default, never mutated)
        views: list[NonNegativeFloat] = [4, 1, 1],  # noqa: B006
        flip_prob: Probability = 0.5,
        projective_prob: Probability = 0.5,
        rotation: NonNegativeFloat = 0.05,
        shear: NonNegativeFloat = 0.3,
        projective: NonNegativeFloat = 0.003,
        split: list[NonNegativeFloat] = [66, 16, 0, 20],  # noqa: B006
        split_seed: int = 0,
        val_slabs: NonNegativeInt = 8,
        synthetic_subjects: NonNegativeInt = 24,
        synthetic_shape: list[PositiveInt] = list(abdomen.DEFAULT_SHAPE),  # noqa: B006
        synthetic_spacing: list[PositiveFloat] = list(abdomen.DEFAULT_SPACING),  # noqa: B006
        synthetic_seed: int = 0,
        regions: list[NonNegativeFloat] = [0.6, 0.15, 0.0, 0.25],  # noqa: B006
        region_axis: SpatialAxis = 1,
        normalize: str = "volume",
        organ_prob: Probability = 0.0,
    ) -> None:
        if labels is None:
            defaults = {
                "synthetic_abdomen": [
                    {"name": n, "value": v, "colour": c} for n, v, c in abdomen.ORGANS
                ],
                "mni152_tissue": TISSUE_LABELS,
            }
            if source not in defaults:
                raise DataError("data.labels: a label table (name, value, colour) is required")
            labels = defaults[source]
        self.table = LabelTable.from_config(labels)
        if len(views) != 3 or min(views) < 0 or sum(views) <= 0:
            raise DataError(f"data.views {views}: need three non-negative axial:coronal:sagittal")
        if slices < 1 or len(crop) != 2 or min(crop) < 1:
            raise DataError(f"data.slices {slices} / data.crop {crop}: need positive sizes")
        if normalize not in ("volume", "foreground"):
            raise DataError(f"data.normalize {normalize!r}: use volume or foreground")
        if not 0 <= organ_prob <= 1:
            raise DataError(f"data.organ_prob {organ_prob}: need a probability in [0, 1]")
        self.normalize = normalize
        self.organ_prob = organ_prob
        self._organ_voxels: dict[str, list[np.ndarray]] = {}
        self.source = source
        self.spacing = spacing
        self.slices = slices
        self.crop = tuple(crop)
        self.view_weights = torch.tensor(views, dtype=torch.float64)
        self.flip_prob = flip_prob
        self.projective_prob = projective_prob
        self.deform = (rotation, shear, projective)
        self.split_ratios = split
        self.split_seed = split_seed
        self.val_slabs = val_slabs
        self.synthetic = (synthetic_subjects, synthetic_shape, synthetic_spacing, synthetic_seed)
        self.regions = regions
        self.region_axis = region_axis
        self._cases: dict[str, list[SegCase]] | None = None
        self._prepared: dict[str, list[Prepared]] = {}
        self._val: list[dict[str, torch.Tensor]] | None = None

    @property
    def views(self) -> list[str]:
        """The views with a non-zero training weight."""
        return [v for v, w in zip(VIEWS, self.view_weights.tolist()) if w > 0]

    # ------------------------------------------------------------- loading
    def subjects(self) -> list[Subject]:
        """Subjects of a manifest or of an ``images/`` + ``labels/`` folder."""
        path = Path(self.source)
        if path.is_dir() and (path / "images").is_dir():
            images = {s.id: s.files["image"] for s in read_subjects(path / "images")}
            labels = {s.id: s.files["label"] for s in read_subjects(path / "labels", "label")}
            missing = sorted(set(images) ^ set(labels))
            if missing:
                raise DataError(f"{path}: images and labels do not pair up for {missing[:5]}")
            return [Subject(k, {"image": images[k], "label": labels[k]}) for k in sorted(images)]
        subjects = read_subjects(path)
        bad = [s.id for s in subjects if not {"image", "label"} <= set(s.files)]
        if bad:
            raise DataError(
                f"{path}: subjects {bad[:5]} lack an image or label; segmentation needs a "
                "manifest with image and label columns or images/ and labels/ folders"
            )
        return subjects

    def load_case(self, subject: Subject) -> SegCase:
        image = read_volume(subject.files["image"])
        label = read_volume(subject.files["label"], label=True)
        check_pair(image, label, "image/label")
        return SegCase(subject.id, image, label)

    def cases(self, split: str) -> list[SegCase]:
        """The subjects of ``split`` on their input grids (loaded once)."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        if self._cases is None:
            self._cases = self._load_all()
        return self._cases[split]

    def subject_count(self, split: str) -> int:
        return len(self.cases(split))

    def _load_all(self) -> dict[str, list[SegCase]]:
        if self.source == "mni152_tissue":
            return self._mni_regions()
        if self.source == "synthetic_abdomen":
            n, shape, spacing, seed = self.synthetic
            subjects = [Subject(f"abdomen_{seed:03d}_{i:04d}", {}) for i in range(n)]
        else:
            subjects = self.subjects()
        by_split = split_subjects(subjects, self.split_ratios, self.split_seed)
        out = {}
        for name, subs in by_split.items():
            if self.source == "synthetic_abdomen":
                ids = [int(s.id.rsplit("_", 1)[1]) for s in subs]
                pairs = [abdomen.synthetic_abdomen(seed * 100_003 + i, shape, spacing) for i in ids]
                out[name] = [SegCase(s.id, *p) for s, p in zip(subs, pairs)]
            else:
                out[name] = [self.load_case(s) for s in subs]
        return out

    def _mni_regions(self) -> dict[str, list[SegCase]]:
        """The MNI152 volume cut into one slab per split along ``region_axis``."""
        if len(self.regions) != len(SPLITS) or min(self.regions) < 0 or sum(self.regions) <= 0:
            raise DataError(f"data.regions {self.regions}: need four fractions for {SPLITS}")
        image, label = mni152_tissue(self.spacing or 1.0)
        n = image.shape[self.region_axis]
        edges = np.cumsum([0, *self.regions]) / sum(self.regions) * n
        out: dict[str, list[SegCase]] = {}
        for name, lo, hi in zip(SPLITS, edges[:-1].round().astype(int), edges[1:].round()):
            out[name] = []
            if hi - lo >= 1:
                box = [slice(None)] * 3
                box[self.region_axis] = slice(int(lo), int(hi))
                out[name].append(SegCase(f"mni152_{name}", *(_sub(v, box) for v in (image, label))))
        return out

    def prepared(self, split: str) -> list[Prepared]:
        """Subjects of ``split`` on the working grid, ready for sampling (prepared once)."""
        if split not in self._prepared:
            self._prepared[split] = [self.prepare_case(c) for c in self.cases(split)]
        return self._prepared[split]

    def prepare_image(self, image: Volume) -> tuple[np.ndarray, Grid]:
        """Input volume → (z-scored working-grid image, its Grid); used at inference too."""
        if image.data.ndim != 3:
            raise DataError(
                f"segmentation needs a 3-D (X, Y, Z) image, got shape {image.data.shape}"
            )
        grid = Grid.for_volume(image.shape, image.affine, self.spacing)
        working = grid.to_working(image.data.astype(np.float32), 1)
        return zscore(working, self.normalize == "foreground"), grid

    def prepare_case(self, case: SegCase) -> Prepared:
        image, grid = self.prepare_image(case.image)
        classes = self.table.to_classes(case.label.data, f"{case.id} label")
        label = grid.to_working(classes, 0)
        if not label.any():
            log.warning("%s: the label map is empty (background only)", case.id)
        return Prepared(case.id, image, label, float(image.min()))

    # ------------------------------------------------------------- batches
    def train_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``batch_size`` random augmented slabs (views at the configured ratio)."""
        subjects = self.prepared("train")
        if not subjects:
            raise DataError("the training split is empty: add subjects or change data.split")
        images, labels = [], []
        for _ in range(batch_size):
            subj = subjects[draw_index(len(subjects), generator)]
            view = VIEWS[int(torch.multinomial(self.view_weights, 1, generator=generator))]
            focus = None
            if self.organ_prob and draw_uniform(generator) < self.organ_prob:
                focus = self.organ_voxel(subj, generator)
            image, label = self.slab(subj, view, generator, focus)
            image, label = self.augment(image, label, generator, view)
            images.append(image)
            labels.append(label)
        return {"image": torch.stack(images), "label": torch.stack(labels)[:, None]}

    def organ_voxel(self, subj: Prepared, generator: torch.Generator) -> tuple[int, ...] | None:
        """A random voxel (index) of an organ drawn uniformly among the organs present in
        ``subj``; None for an empty label map. Voxel lists are built once per subject."""
        if subj.id not in self._organ_voxels:
            flat = subj.label.ravel()
            order = np.argsort(flat, kind="stable")
            groups = np.split(order, np.cumsum(np.bincount(flat))[:-1])
            self._organ_voxels[subj.id] = [g.copy() for g in groups[1:] if g.size]
        organs = self._organ_voxels[subj.id]
        if not organs:
            return None
        voxels = organs[draw_index(len(organs), generator)]
        index = np.unravel_index(voxels[draw_index(voxels.size, generator)], subj.label.shape)
        return tuple(int(i) for i in index)

    def slab(
        self,
        subj: Prepared,
        view: str,
        generator: torch.Generator,
        focus: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random (N, H, W) image slab and its (N, H, W) class map, padded to ``crop``;
        with ``focus`` (a voxel index) a random one of those containing that voxel."""
        axis = SLICE_AXIS[view]
        order = [axis, *(a for a in range(3) if a != axis)]
        sizes = [self.slices, *self.crop]
        box = {}
        for a, size in zip(order, sizes):
            n = subj.image.shape[a]
            if focus is None:
                offset = draw_index(max(n - size, 0) + 1, generator)
            else:
                offset = min(max(focus[a] - draw_index(size, generator), 0), max(n - size, 0))
            box[a] = slice(offset, offset + size)
        sl = tuple(box[a] for a in range(3))
        image = torch.from_numpy(np.ascontiguousarray(subj.image[sl].transpose(order)))
        label = torch.from_numpy(subj.label[sl].transpose(order).astype(np.int64))
        return pad_slab(image, sizes, subj.pad_value), pad_slab(label, sizes, 0)

    def augment(
        self,
        image: torch.Tensor,
        label: torch.Tensor,
        generator: torch.Generator,
        view: str = "axial",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random flips of both in-plane axes, then a random projective deformation (§7.2.2).

        A flip of the left-right axis (in-plane in axial and coronal slabs) mirrors the
        anatomy, so ``left_*``/``right_*`` labels are swapped with it: otherwise the left and
        right kidney would each be labelled on both sides and could not be told apart."""
        for dim in (1, 2):
            if draw_uniform(generator) < self.flip_prob:
                image, label = image.flip(dim), label.flip(dim)
                if dim == 1 and SLICE_AXIS[view] != 0:  # slab axis 1 is array axis 0 (L-R)
                    label = torch.from_numpy(self.table.mirror)[label]
        if draw_uniform(generator) < self.projective_prob:
            rot, shear, proj = self.deform
            u = (torch.rand(4, generator=generator, dtype=torch.float64) * 2 - 1).tolist()
            h = homography(u[0] * rot, u[1] * shear, (u[2] * proj, u[3] * proj))
            image, label = warp(image, label, h)
        return image, label

    def val_batches(self) -> list[dict[str, torch.Tensor]]:
        """Fixed, unaugmented slabs of the validation subjects, cycling over the views."""
        if self._val is None:
            subjects = self.prepared("val")
            gen = torch.Generator().manual_seed(self.split_seed + 1)
            self._val = []
            for i in range(self.val_slabs if subjects else 0):
                view = self.views[i % len(self.views)]
                image, label = self.slab(subjects[i % len(subjects)], view, gen)
                self._val.append({"image": image[None], "label": label[None, None]})
        return self._val


def _sub(volume: Volume, box: Sequence[slice]) -> Volume:
    """The sub-volume ``box`` with its affine moved to the box corner."""
    affine = volume.affine.copy()
    start = [sl.indices(n)[0] for sl, n in zip(box, volume.shape)]
    affine[:3, 3] = volume.affine[:3, :3] @ np.asarray(start, float) + volume.affine[:3, 3]
    return Volume(np.ascontiguousarray(volume.data[tuple(box)]), affine, meta=dict(volume.meta))
