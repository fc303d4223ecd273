"""Whole-volume multi-slice 2-D inference per view and multi-view majority voting (§7.2.6).

A view (axial: slices along axis 2, coronal: axis 1, sagittal: axis 0 of a RAS-ordered
volume) is predicted slab by slab: N contiguous slices in, class probabilities of all N out
(see :mod:`mrilearn.models.unet`); slabs start every ``stride`` slices (default N/2, the last
slab ends at the last slice) and overlapping probabilities are averaged. In-plane sizes are
padded with the volume minimum to a multiple of the network's down-sampling factor and
cropped back. Several views are fused by majority vote of their label maps; ties go to the
tied class with the largest probability summed over the views. The volume and the merged
probabilities stay in host memory; batches of ``batch_size`` slabs run on the device.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mrilearn.constraints import PositiveInt
from mrilearn.engine.device import to_host
from mrilearn.errors import ConfigError, DataError
from mrilearn.progress import inner_enabled, progress_bar
from mrilearn.registry import INFERERS

log = logging.getLogger(__name__)

SLICE_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


@dataclass
class MultiViewResult:
    """Fused class map (X, Y, Z), mean class probabilities (C, X, Y, Z), per-view class maps
    and seconds per view (all on the grid the inferer was given)."""

    labels: np.ndarray
    probabilities: np.ndarray
    views: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def majority_vote(labels: Sequence[np.ndarray], prob_sum: np.ndarray) -> np.ndarray:
    """Per voxel, the class most views chose; ties broken by ``prob_sum`` (C, X, Y, Z), the
    class probabilities summed over the views. Returns uint8 (X, Y, Z).

    Classes are scored one at a time (votes + summed probability / (views + 1): the summed
    probabilities are < views + 1, so they only order classes with equal votes), which keeps
    the extra memory at a few volumes instead of several (C, X, Y, Z) arrays."""
    fused = np.zeros(prob_sum.shape[1:], np.uint8)
    best = np.full(prob_sum.shape[1:], -np.inf, np.float32)
    for c in range(prob_sum.shape[0]):
        score = sum((lab == c for lab in labels), np.zeros(best.shape, np.float32))
        score += prob_sum[c] / (len(labels) + 1)
        better = score > best
        fused[better] = c
        np.copyto(best, score, where=better)
    return fused


@INFERERS.register()
class MultiView:
    """Slab-wise prediction in each of ``views`` and, for more than one, majority voting.

    Args:
        views: any of ``axial``, ``coronal``, ``sagittal``; one view = single-view inference.
        stride: slices between slab starts (default ⌈N/2⌉).
        batch_size: slabs per forward pass.
    """

    def __init__(
        self,
        views: list[str] = ["axial", "coronal", "sagittal"],  # noqa: B006  (YAML default)
        stride: PositiveInt | None = None,
        batch_size: PositiveInt = 4,
    ) -> None:
        unknown = [v for v in views if v not in SLICE_AXIS]
        if not views or unknown or len(set(views)) != len(views):
            raise ConfigError(f"inference.views {views}: use distinct {', '.join(SLICE_AXIS)}")
        if stride is not None and stride < 1 or batch_size < 1:
            raise ConfigError(f"inference: stride {stride} and batch_size {batch_size} must be ≥ 1")
        self.views = list(views)
        self.stride = stride
        self.batch_size = batch_size

    @property
    def fused_name(self) -> str:
        """The method name of the fused result in tables, e.g. ``3-view vote``."""
        return self.views[0] if len(self.views) == 1 else f"{len(self.views)}-view vote"

    def slab_starts(self, depth: int, n: int) -> list[int]:
        """First slices of the N-slice slabs covering ``depth`` (≥ N) slices: every ``stride``
        (default ⌈N/2⌉), the last ending at the last slice."""
        starts = list(range(0, depth - n + 1, self.stride or max(1, -(-n // 2))))
        return starts if starts[-1] == depth - n else [*starts, depth - n]

    def predict_view(
        self, net: nn.Module, image: np.ndarray, view: str, device: torch.device | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class map (X, Y, Z, uint8) and class probabilities (C, X, Y, Z) of an (X, Y, Z)
        image from slabs of one view. The class map is taken before the axes are permuted
        back: an argmax over the permuted probabilities would copy all of them."""
        n, factor = net.in_slices, 2 ** (net.levels - 1)
        axis = SLICE_AXIS[view]
        order = [axis, *(a for a in range(3) if a != axis)]
        vol = torch.from_numpy(np.ascontiguousarray(image.transpose(order), np.float32))
        depth, h, w = vol.shape
        pad_h, pad_w = -h % factor, -w % factor
        vol = F.pad(vol, (0, pad_w, 0, pad_h), value=float(vol.min()))
        if depth < n:  # too few slices for one slab: repeat the last one
            vol = torch.cat([vol, vol[-1:].expand(n - depth, -1, -1)])
        starts = self.slab_starts(vol.shape[0], n)
        probs = torch.zeros((net.classes, vol.shape[0], *vol.shape[1:]))
        count = torch.zeros(vol.shape[0])
        batches = range(0, len(starts), self.batch_size)
        bar = progress_bar(batches, desc=f"{view} slabs", enabled=inner_enabled(False), leave=False)
        with torch.inference_mode():
            for i in bar:
                chunk = starts[i : i + self.batch_size]
                slabs = torch.stack([vol[s : s + n] for s in chunk])
                out = to_host(net(slabs.to(device or slabs.device)).float().softmax(1))
                for s, p in zip(chunk, out):
                    probs[:, s : s + n] += p
                    count[s : s + n] += 1
        probs = probs.div_(count[None, :, None, None])[:, :depth, :h, :w]
        inverse = np.argsort(order)
        labels = probs.argmax(0).to(torch.uint8).numpy().transpose(inverse)
        return labels, probs.numpy().transpose(0, *(inverse + 1))

    def __call__(
        self, net: nn.Module, image: np.ndarray, device: torch.device | None = None
    ) -> MultiViewResult:
        """Predict ``image`` (X, Y, Z, z-scored) in every view, slabs on ``device`` (default:
        the CPU), and fuse."""
        if image.ndim != 3:
            raise DataError(f"inference needs an (X, Y, Z) image, got shape {image.shape}")
        prob_sum: np.ndarray | None = None
        views, seconds = {}, {}
        for view in self.views:
            t0 = time.perf_counter()
            views[view], probs = self.predict_view(net, image, view, device)
            seconds[view] = time.perf_counter() - t0
            if prob_sum is None:
                prob_sum = probs
            else:
                prob_sum += probs
            log.debug("%s view: %.2f s", view, seconds[view])
        labels = (
            views[self.views[0]]
            if len(views) == 1
            else majority_vote(list(views.values()), prob_sum)
        )
        prob_sum /= len(views)  # in place: the mean probabilities
        return MultiViewResult(labels, prob_sum, views, seconds)
