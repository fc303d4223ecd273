"""Data for SPADE synthesis: axial label/image slice pairs of a segmentation data set, and a
segmentation data set whose training split is extended by extra (e.g. synthesised) pairs.

Both subclass :class:`~mrilearn.apps.seg.data.SegVolumes` and take all of its arguments, so a
SPADE config names the same subjects, split, spacing and label table as the ALAMO config it
serves, and the generator never sees a validation or test subject of that split.

Nearly empty label maps (§8.3.1, Fig. 8.5: SPADE fails on slices with almost no labels): an
axial slice whose fraction of labelled pixels is below ``min_foreground`` is neither trained
on nor synthesised (see :func:`nearly_empty`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import numpy as np
import torch

from mrilearn.apps.seg.augment import draw_index, pad_slab
from mrilearn.apps.seg.data import SLICE_AXIS, Prepared, SegCase, SegVolumes
from mrilearn.constraints import Range
from mrilearn.errors import DataError
from mrilearn.registry import DATASETS

log = logging.getLogger(__name__)

AXIS = SLICE_AXIS["axial"]


def nearly_empty(classes: np.ndarray, min_foreground: float) -> np.ndarray:
    """Per axial slice of an (X, Y, Z) class map: whether less than ``min_foreground`` of its
    pixels carry a label (> 0). Returns (Z,) bool."""
    return (classes > 0).mean(axis=(0, 1)) < min_foreground


@DATASETS.register()
class LabelSlices(SegVolumes):
    """Axial (image, label) slice pairs for SPADE: one slice per sample, cropped at random to
    ``crop`` (padded with the volume minimum / background where smaller), flipped and deformed
    as ALAMO's slabs (left/right labels swapped with a mirroring flip). Only slices with at
    least ``min_foreground`` labelled pixels are drawn (the dissertation used slices "where at
    least one organ is shown"). Validation: ``val_slabs`` whole slices of the validation
    subjects, evenly spaced over their usable slices. Images are z-scored per volume as for
    segmentation. Batches: ``image`` (B, 1, H, W) float32, ``label`` (B, 1, H, W) int64.
    """

    def __init__(
        self, min_foreground: Annotated[float, Range(ge=0, lt=1)] = 0.01, **kwargs: Any
    ) -> None:
        kwargs.setdefault("slices", 1)
        kwargs.setdefault("views", [1, 0, 0])
        if kwargs["slices"] != 1 or list(kwargs["views"])[1:] != [0, 0]:
            raise DataError("data: LabelSlices draws single axial slices (slices 1, views [1,0,0])")
        if not 0 <= min_foreground < 1:
            raise DataError(f"data.min_foreground {min_foreground}: need a fraction in [0, 1)")
        super().__init__(**kwargs)
        self.min_foreground = min_foreground
        self._usable: dict[str, list[tuple[int, int]]] = {}

    def usable_slices(self, split: str) -> list[tuple[int, int]]:
        """(subject index, axial slice) pairs of ``split`` that are not nearly empty."""
        if split not in self._usable:
            subjects = self.prepared(split)
            self._usable[split] = [
                (i, int(z))
                for i, s in enumerate(subjects)
                for z in np.flatnonzero(~nearly_empty(s.label, self.min_foreground))
            ]
            skipped = sum(s.label.shape[AXIS] for s in subjects) - len(self._usable[split])
            log.info("%s: %d usable slices, %d nearly empty skipped",
                     split, len(self._usable[split]), skipped)  # fmt: skip
        return self._usable[split]

    def axial_slice(self, subj: Prepared, z: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole axial slice ``z``: image (1, X, Y) float32, class map (1, X, Y) int64."""
        image = torch.from_numpy(np.ascontiguousarray(subj.image[None, :, :, z]))
        return image, torch.from_numpy(subj.label[None, :, :, z].astype(np.int64))

    def train_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        subjects, pool = self.prepared("train"), self.usable_slices("train")
        if not pool:
            raise DataError(
                f"no training slice has {self.min_foreground:.1%} labelled pixels: add subjects "
                "or lower data.min_foreground"
            )
        images, labels = [], []
        for _ in range(batch_size):
            i, z = pool[draw_index(len(pool), generator)]
            image, label = self.axial_slice(subjects[i], z)
            box = [slice(None)]
            for n, size in zip(image.shape[1:], self.crop):
                offset = draw_index(max(n - size, 0) + 1, generator)
                box.append(slice(offset, offset + size))
            sizes = (1, *self.crop)
            image = pad_slab(image[tuple(box)], sizes, subjects[i].pad_value)
            image, label = self.augment(image, pad_slab(label[tuple(box)], sizes, 0), generator)
            images.append(image)
            labels.append(label)
        return {"image": torch.stack(images), "label": torch.stack(labels)}

    def val_batches(self) -> list[dict[str, torch.Tensor]]:
        if self._val is None:
            subjects, pool = self.prepared("val"), self.usable_slices("val")
            picks = np.linspace(0, len(pool) - 1, min(self.val_slabs, len(pool))).round()
            self._val = []
            for k in picks.astype(int) if pool else []:
                image, label = self.axial_slice(subjects[pool[k][0]], pool[k][1])
                self._val.append({"image": image[None], "label": label[None]})
        return self._val


@DATASETS.register()
class SegVolumesWithExtra(SegVolumes):
    """A segmentation data set whose training split also holds the image/label pairs of
    ``extra_train`` (a manifest or ``images/`` + ``labels/`` folder, e.g. SPADE-synthesised
    images for extra label maps). Validation and test subjects are those of the base split;
    training samples are drawn uniformly over all training subjects, real and extra.
    """

    def __init__(self, extra_train: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_train = extra_train

    def _load_all(self) -> dict[str, list[SegCase]]:
        out = super()._load_all()
        entries = [
            {"name": n, "value": v, "colour": c}
            for n, v, c in zip(self.table.names, self.table.values, self.table.colours)
        ]
        reader = SegVolumes(source=self.extra_train, labels=entries)
        extra = [reader.load_case(s) for s in reader.subjects()]
        clash = {c.id for c in extra} & {c.id for cases in out.values() for c in cases}
        if clash:
            raise DataError(f"{self.extra_train}: subject ids {sorted(clash)[:5]} are also real")
        log.info("training split: %d subjects + %d extra from %s",
                 len(out["train"]), len(extra), self.extra_train)  # fmt: skip
        out["train"] = out["train"] + extra
        return out
