"""Whole-volume inference with patch-trained 3-D networks (§3.3).

Two ways to merge patch predictions into a volume:

- :class:`SlidingWindow` — overlapping patches averaged (MONAI's
  ``sliding_window_inference``), e.g. half-patch overlap as in §3;
- :class:`MarginCrop` — patches whose outer ``margin`` voxels are dropped and whose
  cores tile the volume exactly once, no averaging (70³ with a 3-voxel margin, §4).
  For a fully convolutional model whose receptive-field radius is ≤ ``margin`` the
  result equals a single forward pass over the whole volume.

Both take a model mapping (B, C_in, X, Y, Z) → (B, C_out, X, Y, Z) and a volume
(N, C_in, X, Y, Z) or (C_in, X, Y, Z), and return (N, C_out, X, Y, Z) or
(C_out, X, Y, Z) on the volume's device. Patches run on ``device`` (the call's, else
the inferer's, else the volume's device) in batches of ``batch_size``, so a large volume
and its merged output stay in host memory while patches go to a GPU: device memory is
bounded by one batch of patches whatever the volume size. Half-precision (autocast)
outputs are merged in float32.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from mrilearn.constraints import NonNegativeInt, PositiveInt, Range
from mrilearn.errors import ConfigError, DataError
from mrilearn.progress import inner_enabled, progress_bar, shown
from mrilearn.registry import INFERERS

Model = Callable[[Tensor], Tensor]


def _as_batch(volume: Tensor) -> tuple[Tensor, bool]:
    """(N, C, X, Y, Z) view of the volume and whether a batch axis was added."""
    if not isinstance(volume, Tensor):
        raise DataError(f"inference needs a torch.Tensor volume, got {type(volume).__name__}")
    if volume.ndim == 4:
        return volume.unsqueeze(0), True
    if volume.ndim == 5:
        return volume, False
    raise DataError(
        f"inference needs a (C, X, Y, Z) or (N, C, X, Y, Z) volume, got shape "
        f"{tuple(volume.shape)}; add a channel axis with volume[None]"
    )


def _batch_size(batch_size: int, sw_batch_size: int | None, name: str) -> int:
    """``batch_size``, or the older spelling ``sw_batch_size`` where a config gives it."""
    size = batch_size if sw_batch_size is None else sw_batch_size
    if size < 1:
        raise ConfigError(f"{name}: batch_size must be ≥ 1, got {size}")
    return size


def _check_roi(roi_size: Sequence[int], name: str) -> tuple[int, int, int]:
    if len(roi_size) != 3 or any(int(r) < 1 for r in roi_size):
        raise ConfigError(f"{name}: roi_size must be 3 positive integers, got {list(roi_size)}")
    return tuple(int(r) for r in roi_size)


@INFERERS.register()
class SlidingWindow:
    """Overlapping patches whose predictions are averaged (``mode="gaussian"`` weights
    patch centres more). Volumes smaller than ``roi_size`` are padded by replicating
    the edge voxels and cropped back.

    Args:
        roi_size: patch size (X, Y, Z) in voxels.
        overlap: fraction of a patch shared with its neighbour along each axis (0 ≤ … < 1).
        mode: ``"constant"`` plain average, ``"gaussian"`` Gaussian-weighted average.
        batch_size: patches per forward pass (``sw_batch_size``: the same, older name).
        progress: always show a progress bar over the patches (``mrilearn infer`` shows it
            on a terminal anyway).
        device: where patches run (e.g. ``"cuda"``); None = the trained run's device.
    """

    def __init__(
        self,
        roi_size: list[PositiveInt] = [64, 64, 64],  # noqa: B006  (YAML-typed config default)
        overlap: Annotated[float, Range(ge=0, lt=1)] = 0.5,
        mode: Literal["constant", "gaussian"] = "constant",
        batch_size: PositiveInt = 1,
        progress: bool = False,
        device: str | None = None,
        sw_batch_size: PositiveInt | None = None,
    ) -> None:
        self.roi_size = _check_roi(roi_size, "SlidingWindow")
        if not 0 <= overlap < 1:
            raise ConfigError(f"SlidingWindow: overlap must be in [0, 1), got {overlap}")
        if mode not in ("constant", "gaussian"):
            raise ConfigError(f"SlidingWindow: mode must be 'constant' or 'gaussian', got {mode!r}")
        self.batch_size = _batch_size(batch_size, sw_batch_size, "SlidingWindow")
        self.overlap = float(overlap)
        self.mode = mode
        self.progress = progress
        self.device = device

    def __call__(
        self, model: Model, volume: Tensor, device: torch.device | str | None = None
    ) -> Tensor:
        from monai.inferers import sliding_window_inference  # MONAI: seconds to import

        batch, added = _as_batch(volume)
        with torch.inference_mode():
            out = sliding_window_inference(
                batch,
                roi_size=self.roi_size,
                sw_batch_size=self.batch_size,
                predictor=lambda patches: _merged_dtype(model(patches)),
                overlap=self.overlap,
                mode=self.mode,
                padding_mode="replicate",
                sw_device=self.device or device or batch.device,
                device=batch.device,
                progress=shown(inner_enabled(self.progress)),
            )
        out = torch.as_tensor(out)  # plain Tensor, not a MONAI MetaTensor
        return out[0] if added else out


def _merged_dtype(pred: Tensor) -> Tensor:
    """Autocast's half-precision predictions as float32 for the merge."""
    return pred.float() if pred.dtype in (torch.bfloat16, torch.float16) else pred


def axis_tiles(n: int, roi: int, margin: int) -> list[tuple[int, int, int]]:
    """Tiles along one axis of size ``n ≥ roi`` as ``(start, keep_lo, keep_hi)``.

    A tile covers ``[start, start + roi)`` and keeps ``[keep_lo, keep_hi)``; the kept
    ranges partition ``[0, n)``. A kept voxel is at least ``margin`` voxels from its
    tile's edge unless that edge is the volume border. Tiles step by the core size
    ``roi - 2·margin``; the last tile is shifted back to end at ``n`` and keeps only
    what the previous one did not.
    """
    core = roi - 2 * margin
    tiles = []
    start, lo = 0, 0
    while True:
        start = min(start, n - roi)
        last = start == n - roi
        hi = n if last else start + roi - margin
        tiles.append((start, lo, hi))
        if last:
            return tiles
        lo, start = hi, start + core


@INFERERS.register()
class MarginCrop:
    """Patches of ``roi_size`` whose outer ``margin`` voxels are discarded; the kept
    cores tile the volume exactly once (no averaging), tiles at the volume border keep
    their outer side. Sizes that are not a multiple of the core are handled by
    shifting the last tile back; axes smaller than ``roi_size`` are padded by
    replicating the edge voxels, then cropped back.

    Args:
        roi_size: patch size (X, Y, Z) in voxels; each must exceed ``2·margin``.
        margin: voxels dropped at each inner patch face; set it ≥ the model's
            receptive-field radius for seamless output.
        batch_size: patches per forward pass (``sw_batch_size``: the same, older name).
        progress: always show a progress bar over the patches (``mrilearn infer`` shows it
            on a terminal anyway).
        device: where patches run (e.g. ``"cuda"``); None = the trained run's device.
    """

    def __init__(
        self,
        roi_size: list[PositiveInt] = [70, 70, 70],  # noqa: B006  (YAML-typed config default)
        margin: NonNegativeInt = 3,
        batch_size: PositiveInt = 1,
        progress: bool = False,
        device: str | None = None,
        sw_batch_size: PositiveInt | None = None,
    ) -> None:
        self.roi_size = _check_roi(roi_size, "MarginCrop")
        if margin < 0 or any(r <= 2 * margin for r in self.roi_size):
            raise ConfigError(
                f"MarginCrop: margin must be ≥ 0 and leave a core (roi_size > 2·margin), "
                f"got margin {margin} with roi_size {list(self.roi_size)}"
            )
        self.batch_size = _batch_size(batch_size, sw_batch_size, "MarginCrop")
        self.margin = margin
        self.progress = progress
        self.device = device

    def __call__(
        self, model: Model, volume: Tensor, device: torch.device | str | None = None
    ) -> Tensor:
        batch, added = _as_batch(volume)
        size = batch.shape[2:]
        pad = [max(0, r - n) for r, n in zip(self.roi_size, size, strict=True)]
        if any(pad):  # F.pad lists the last axis first
            batch = F.pad(batch, (0, pad[2], 0, pad[1], 0, pad[0]), mode="replicate")
        with torch.inference_mode():
            out = self._run(model, batch, torch.device(self.device or device or batch.device))
        out = out[:, :, : size[0], : size[1], : size[2]]
        return out[0] if added else out

    def _run(self, model: Model, batch: Tensor, device: torch.device) -> Tensor:
        tiles = list(
            itertools.product(
                *(
                    axis_tiles(n, r, self.margin)
                    for n, r in zip(batch.shape[2:], self.roi_size, strict=True)
                )
            )
        )
        jobs = [(b, t) for b in range(batch.shape[0]) for t in tiles]
        out: Tensor | None = None
        chunks = self._chunks(jobs)
        total = -(-len(jobs) // self.batch_size)
        bar = progress_bar(
            chunks, total=total, desc="patches", enabled=inner_enabled(self.progress), leave=False
        )
        for chunk in bar:
            patches = torch.stack([batch[(b, slice(None), *self._window(t))] for b, t in chunk]).to(
                device
            )
            pred = _merged_dtype(model(patches))
            if pred.shape[0] != patches.shape[0] or pred.shape[2:] != patches.shape[2:]:
                raise DataError(
                    f"the model maps patches {tuple(patches.shape)} to {tuple(pred.shape)}; "
                    "MarginCrop needs a same-size output (B, C, X, Y, Z)"
                )
            if out is None:
                out = torch.empty(
                    (batch.shape[0], pred.shape[1], *batch.shape[2:]),
                    dtype=pred.dtype,
                    device=batch.device,
                )
            for p, (b, t) in zip(pred, chunk, strict=True):
                src = tuple(slice(lo - s, hi - s) for s, lo, hi in t)
                dst = tuple(slice(lo, hi) for _, lo, hi in t)
                out[(b, slice(None), *dst)] = p[(slice(None), *src)].to(out.device)
        assert out is not None  # at least one tile always exists
        return out

    def _window(self, tile: tuple[tuple[int, int, int], ...]) -> tuple[slice, ...]:
        """The patch of a 3-D tile as slices of the (padded) volume."""
        return tuple(slice(s, s + r) for (s, _, _), r in zip(tile, self.roi_size, strict=True))

    def _chunks(self, jobs: list) -> Iterator[list]:
        for i in range(0, len(jobs), self.batch_size):
            yield jobs[i : i + self.batch_size]
