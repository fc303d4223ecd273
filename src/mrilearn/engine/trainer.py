"""The training loop: one loop, counted in iterations, with hooks for each application.

A trainer subclass overrides ``train_step(batch) -> dict`` (and ``validate``,
``save_figures`` and the inference side of :class:`~mrilearn.engine.contract.Predictor`
where it has something to add). Nets and optimisers are dicts keyed by role (``G``, ``D``,
``F``), so GAN trainers use the same loop. Checkpoints hold nets, optimisers, schedulers, the
loss scaler, every process's random state, the iteration, the best value, the config and the
trainer name; the training batches are a function of (seed, rank, iteration)
(:mod:`mrilearn.engine.loader`), so the iteration is all a resumed run needs of them.

The nets live on ``train.device`` (``--device`` wins); forward passes and losses run under
``train.precision``'s autocast (:mod:`mrilearn.engine.precision`). Inference keeps volumes
and merged results in host memory and sends batches of patches or slabs to the device.

With ``train.ema`` every trained net also keeps an exponential moving average of its
parameters (:class:`torch.optim.swa_utils.AveragedModel`); validation, the choice of the
best checkpoint, the figures and inference (a checkpoint loaded ``weights_only``) use the
averaged parameters, while training goes on with the raw ones. Buffers are not averaged:
the nets' own buffers (normalisation statistics, stored scales) are used with either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import signal
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mrilearn import components
from mrilearn.config import Config
from mrilearn.engine.checkpoint import (
    check_world_size,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
)
from mrilearn.engine.contract import Batch, ClassProbabilities, TrainingData
from mrilearn.engine.device import process_device, requested_device, resolve_device, to_device
from mrilearn.engine.distributed import DistInfo, all_reduce_flag, gather_objects
from mrilearn.engine.loader import batch_stream, default_workers
from mrilearn.engine.logger import RunLogger
from mrilearn.engine.precision import MixedPrecision, resolve_precision
from mrilearn.errors import CheckpointError, ConfigError, MrilearnError
from mrilearn.io.volume import Label, Volume, fmt_spacing, spacing_matches
from mrilearn.progress import progress_bar

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
_INFERENCE_ONLY = ContextVar("mrilearn_inference_only", default=False)  # see inference_trainer
DIVERGED_HINT = (
    "the checkpoints written before are kept; lower optim.lr, set train.grad_clip or check the "
    "data for extreme values"
)


class Trainer:
    """Owns the nets, optimisers and loop of one run.

    ``train.batch_size`` samples are drawn per process per iteration with a generator
    seeded by (seed, rank, iteration), in the process or in ``train.workers`` background
    processes: a resumed run draws exactly the batches an uninterrupted run would have drawn.
    """

    def __init__(self, cfg: Config, run_dir: Path, dist: DistInfo = DistInfo()) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dist = dist
        self.iteration = 0
        self.best_value: float | None = None
        self.stop_requested = False
        self.package_info: dict[str, Any] | None = None  # set when loaded from a package
        # the voxel size (mm) of the training data: measured when training starts, kept in
        # checkpoints and packages, compared with every input at inference
        self.voxel_size: tuple[float, ...] | None = None
        self._replacement: nn.Module | None = None
        self._stream: Generator[Batch, None, None] | None = None
        self._stream_at = -1  # the iteration whose batch the stream yields next
        self._val: list[Batch] | None = None
        self.data_wait = 0.0  # seconds this fit has waited for training batches
        torch.manual_seed(cfg.seed)
        tc = cfg.train
        self.device = process_device(tc.device, dist.local_rank, dist.local_size)
        self.amp = MixedPrecision(resolve_precision(tc.precision, self.device), self.device)
        self.nets = {k: self._placed(net) for k, net in self.build_nets().items()}
        trains = not _INFERENCE_ONLY.get()  # inference needs no optimisers (nor their import)
        self.optims = {
            k: components.build("optim", cfg.optim, params=net.parameters())
            for k, net in self.nets.items()
            if trains and any(p.requires_grad for p in net.parameters())
        }
        self.scheds = {
            k: components.build("scheduler", cfg.scheduler, optimizer=opt)
            for k, opt in self.optims.items()
            if cfg.scheduler is not None
        }
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.train_nets = {
            k: DistributedDataParallel(net, device_ids=ids)
            if dist.enabled and k in self.optims
            else net
            for k, net in self.nets.items()
        }
        decay = cfg.train.ema
        self.averages = {
            k: AveragedModel(self.nets[k], multi_avg_fn=get_ema_multi_avg_fn(decay))
            for k in (self.optims if decay else ())
        }

    def _placed(self, net: nn.Module) -> nn.Module:
        """``net`` on the device; with ``train.sync_bn`` in DDP, its BatchNorm synchronised."""
        if self.cfg.train.sync_bn and self.dist.enabled:
            if self.device.type != "cuda":
                raise ConfigError("train.sync_bn needs CUDA devices (SyncBatchNorm runs on GPUs)")
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return net.to(self.device)

    # ----------------------------------------------------------------- hooks
    @functools.cached_property
    def data(self) -> TrainingData:
        """The data set, built on first use (inference needs none)."""
        return components.build("data", self.cfg.data)

    @functools.cached_property
    def loss(self) -> nn.Module:
        return components.build("loss", self.cfg.loss)

    def build_nets(self) -> dict[str, nn.Module]:
        return {"G": components.build("model", self.cfg.model)}

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        return {}

    def val_batches(self) -> list[Batch]:
        """The data set's fixed validation batches, on the device (moved once)."""
        if self._val is None:
            self._val = [to_device(b, self.device) for b in self.data.val_batches()]
        return self._val

    def save_figures(self, fig_dir: Path) -> None:
        """Write the figures of the report (called by rank 0 after training)."""

    # ------------------------------------------------- inference (the Predictor contract)
    def trained_net(self) -> nn.Module:
        """The trained network that maps an input to the prediction (two-stage trainers chain
        theirs)."""
        return self.nets["G"]

    def inference_net(self) -> nn.Module:
        """The network inference runs: a replacement (:meth:`use_inference_net`), else
        :meth:`trained_net`."""
        return self._replacement if self._replacement is not None else self.trained_net()

    def use_inference_net(self, net: nn.Module | None) -> None:
        self._replacement = net

    def infer_volume(self, volume: Volume) -> Volume:
        raise MrilearnError(f"trainer {type(self).__name__} does not infer volumes")

    def prepare_input(
        self, volume: Volume, where: str, reduced: bool = False,
        target_shape: Sequence[int] | None = None,
    ) -> Volume:  # fmt: skip
        """The scan as :meth:`infer_volume` takes it, with a warning when its voxel size is
        unlike the training data's. Reduced-matrix inputs are for applications that know how
        to bring them onto the model's grid (super-resolution)."""
        if reduced or target_shape is not None:
            raise ConfigError(
                f"--reduced/--target-shape: trainer {type(self).__name__} takes no "
                "reduced-matrix inputs (super-resolution runs do)"
            )
        self.check_voxel_size(volume, where)
        return volume

    def measured_voxel_size(self) -> tuple[float, ...] | None:
        """The voxel size (mm) of the training data, per array axis; None where it does not
        matter (an application that resamples every input onto its own grid)."""
        return None

    def check_voxel_size(self, volume: Volume, where: str, hint: str = "") -> None:
        """Warn when ``volume``'s voxel size differs from the training voxel size by more than
        10 % along an axis (``hint``: what else to say)."""
        trained = self.voxel_size
        if trained is None or spacing_matches(volume.spacing, trained):
            return
        log.warning(
            "%s: voxel size %s mm differs from the %s mm the model was trained at by more "
            "than 10 %%; the result may be poor: resample the scan to the training voxel "
            "size%s", where, fmt_spacing(volume.spacing), fmt_spacing(trained), hint,
        )  # fmt: skip

    def class_probabilities(self, volume: Volume) -> ClassProbabilities | None:
        return None

    def label_table(self) -> Sequence[Label] | None:
        return None

    def attention_map(self, volume: Volume, voxel: Sequence[int]) -> Volume:
        raise ConfigError(f"trainer {type(self).__name__} has no attention maps")

    def io_conventions(self) -> dict[str, Any]:
        return {
            "trainer": self.cfg.trainer["name"],
            "model": self.cfg.model["name"],
            "inferer": self.cfg.inference,
            "task": "other",
            "voxel_size_mm": None if self.voxel_size is None else list(self.voxel_size),
        }

    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        raise MrilearnError(f"trainer {type(self).__name__} has no evaluation")

    # ------------------------------------------------------------- utilities
    def optimize(self, key: str, loss: torch.Tensor) -> None:
        """Backward, clip, step for the optimiser of net ``key``."""
        if not torch.isfinite(loss):
            raise MrilearnError(
                f"training diverged: loss became {loss.item()} at iteration "
                f"{self.iteration + 1}; {DIVERGED_HINT}"
            )
        opt = self.optims[key]
        opt.zero_grad(set_to_none=True)
        self.amp.backward(loss)
        self.amp.step(opt, self.nets[key].parameters(), self.cfg.train.grad_clip)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / CHECKPOINTS

    def state_dict(self) -> dict[str, Any]:
        return {
            "trainer": type(self).__name__,
            "iteration": self.iteration,
            "config": self.cfg.to_dict(),
            "nets": {k: net.state_dict() for k, net in self.nets.items()},
            "optims": {k: opt.state_dict() for k, opt in self.optims.items()},
            "scheds": {k: s.state_dict() for k, s in self.scheds.items()},
            "averages": {k: a.state_dict() for k, a in self.averages.items()},
            "scaler": self.amp.state_dict(),
            "rng": {"ranks": gather_objects(self._random_state(), self.dist)},
            "best": self.best_value,
            "world_size": self.dist.world_size,
            "voxel_size": None if self.voxel_size is None else list(self.voxel_size),
        }

    def load_state(self, state: dict[str, Any], where: str, weights_only: bool = False) -> None:
        """Restore nets (and, to resume, everything else) from a checkpoint dict."""
        if state["trainer"] != type(self).__name__:
            raise CheckpointError(
                f"{where}: written by trainer {state['trainer']}, not {type(self).__name__}"
            )
        for k, net in self.nets.items():
            if k not in state["nets"]:
                raise CheckpointError(f"{where}: has no weights for net {k!r}")
            weights = inference_weights(state, k, net) if weights_only else state["nets"][k]
            load_state_dict(net, weights, f"{where} [{k}]")
        voxel_size = state.get("voxel_size")  # older checkpoints have none
        self.voxel_size = None if voxel_size is None else tuple(float(v) for v in voxel_size)
        if weights_only:
            return
        averages = state.get("averages", {})
        for k, average in self.averages.items():
            if k in averages:
                load_state_dict(average, averages[k], f"{where} [average {k}]")
            else:  # train.ema switched on at resume: the average starts here
                log.warning("%s: no weight average for %s; it starts at this iteration", where, k)
        check_world_size(state, self.dist.world_size, where)
        for k, opt in self.optims.items():
            opt.load_state_dict(state["optims"][k])
        for k, sched in self.scheds.items():
            sched.load_state_dict(state["scheds"][k])
        self.amp.load_state_dict(state.get("scaler"))
        rng = state["rng"]  # older checkpoints: rank 0's "torch" state and data streams
        self._set_random_state(rng["ranks"][self.dist.rank] if "ranks" in rng else rng)
        self.iteration = int(state["iteration"])
        self.best_value = state["best"]

    def _random_state(self) -> dict[str, torch.Tensor | None]:
        """This process's global random streams (dropout masks, gradient-penalty mixes)."""
        cuda = self.device.type == "cuda"
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(self.device) if cuda else None,
        }

    def _set_random_state(self, state: dict[str, torch.Tensor | None]) -> None:
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """The averaged parameters in the nets for the block (no-op without ``train.ema``)."""
        raw = {k: [p.detach().clone() for p in self.nets[k].parameters()] for k in self.averages}
        for k, average in self.averages.items():
            if average.n_averaged > 0:
                _copy_parameters(list(average.module.parameters()), self.nets[k])
        try:
            yield
        finally:
            for k, params in raw.items():
                _copy_parameters(params, self.nets[k])

    def save(self, name: str, state: dict[str, Any] | None = None) -> None:
        """Write checkpoint ``name``; weights that are no longer finite are never written
        (every rank checks, so all stop together)."""
        state = state if state is not None else self.state_dict()
        bad = [k for k, t in _tensors(state, "nets", "averages") if not torch.isfinite(t).all()]
        if bad:
            raise MrilearnError(
                f"training diverged: {bad[0]} is not finite at iteration {self.iteration}, so "
                f"{name}.pt was not written; {DIVERGED_HINT}"
            )
        if self.dist.is_main:
            save_checkpoint(state, self.checkpoint_dir / f"{name}.pt")

    def request_stop(self, *_: Any) -> None:
        """Finish the current iteration, save ``latest`` and return (pause)."""
        self.stop_requested = True

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> bool:
        """Train to ``train.iterations``; returns False if paused by a signal."""
        tc = self.cfg.train
        if resume:
            path = self.checkpoint_dir / "latest.pt"
            self.load_state(load_checkpoint(path), str(path))
            log.info("resumed from %s at iteration %d", path, self.iteration)
        if self.voxel_size is None:
            self.voxel_size = self.measured_voxel_size()
        logger = RunLogger(self.run_dir, self.dist.is_main, self.iteration if resume else None)
        previous = self._install_signal_handlers()
        bar = progress_bar(
            total=tc.iterations,
            initial=self.iteration,
            desc=self.cfg.experiment,
            enabled=None if self.dist.is_main else False,
        )
        start, start_iter = time.perf_counter(), self.iteration
        self.data_wait = 0.0
        try:
            while self.iteration < tc.iterations:
                stats = self.step()
                bar.update(1)
                self._after_step(stats, logger, bar, start, start_iter)
                if all_reduce_flag(self.stop_requested, self.dist):
                    self.save("latest")
                    log.warning("paused at iteration %d; continue with --resume", self.iteration)
                    return False
            self.save("latest")
        finally:
            self.close_stream()
            bar.close()
            logger.close()
            self._restore_signal_handlers(previous)
        if self.dist.is_main:
            with self.averaged_weights():
                self.save_figures(self.run_dir / "figures")
        return True

    def step(self) -> dict[str, float]:
        """One iteration: draw a batch, ``train_step``, update the weight averages and the
        schedulers. Federated sites run their local rounds with it too."""
        for net in self.nets.values():
            net.train()
        batch = self.next_batch()
        with self.amp.autocast():
            stats = self.train_step(batch)
        self.amp.update()
        for k, average in self.averages.items():
            average.update_parameters(self.nets[k])
        self.iteration += 1
        for sched in self.scheds.values():
            sched.step()
        return stats

    def next_batch(self) -> Batch:
        """The training batch of the current iteration, on the device."""
        if self._stream is None or self._stream_at != self.iteration:
            self.close_stream()  # first use, or the iteration was set (resume, federated)
            tc = self.cfg.train
            workers = default_workers(self.device) if tc.workers is None else tc.workers
            self._stream = batch_stream(
                self.data, tc.batch_size, self.cfg.seed, self.dist.rank, self.iteration,
                workers, self.device,
            )  # fmt: skip
        t0 = time.perf_counter()
        batch = next(self._stream)
        self.data_wait += time.perf_counter() - t0
        self._stream_at = self.iteration + 1
        return batch

    def close_stream(self) -> None:
        """Stop the background data-loading processes (a later step starts new ones)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _after_step(
        self, stats: dict[str, float], logger: RunLogger, bar: Any, t0: float, i0: int
    ) -> None:
        tc, it = self.cfg.train, self.iteration
        last = it == tc.iterations
        if it % tc.log_every == 0 or last:
            record = {f"train/{k}": v for k, v in stats.items()}
            for k, opt in self.optims.items():
                record[f"lr/{k}"] = opt.param_groups[0]["lr"]
            elapsed = time.perf_counter() - t0
            rate = elapsed / max(it - i0, 1)
            record["time/iteration_s"] = rate
            record["time/data_wait_fraction"] = self.data_wait / max(elapsed, 1e-9)
            logger.log(it, record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()}, refresh=False)
            log.info(
                "iteration %d/%d %s eta %.0f s",
                it,
                tc.iterations,
                _fmt(stats),
                rate * (tc.iterations - it),
            )
        state = None
        if tc.val_every and (it % tc.val_every == 0 or last):
            state = self._validate_and_keep_best(logger)
        if tc.checkpoint_every and it % tc.checkpoint_every == 0:
            state = state or self.state_dict()
            self.save(f"iter_{it:07d}", state)
            self.save("latest", state)

    def _validate_and_keep_best(self, logger: RunLogger) -> dict[str, Any]:
        tc = self.cfg.train
        values = {}
        if self.dist.is_main:
            for net in self.nets.values():
                net.eval()
            with torch.no_grad(), self.averaged_weights(), self.amp.autocast():
                values = self.validate()
            logger.log(self.iteration, values)
            log.info("validation at %d: %s", self.iteration, _fmt(values))
        value = gather_objects(values.get(tc.best_metric), self.dist)[0]
        improved = value is not None and (
            self.best_value is None
            or (value < self.best_value if tc.best_mode == "min" else value > self.best_value)
        )
        if improved:
            self.best_value = float(value)
        state = self.state_dict()  # collective in DDP: every rank takes part
        if improved:
            self.save("best", state)
        return state

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``net`` inside the block (gradients still flow through it)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def trainer_of(cfg: Config, run_dir: Path, dist: DistInfo = DistInfo()) -> Trainer:
    """The config's trainer for ``run_dir``, built from the registries as they are."""
    return components.build("trainer", cfg.trainer, cfg=cfg, run_dir=run_dir, dist=dist)


def inference_trainer(cfg: Config, run_dir: Path) -> Trainer:
    """A trained run's trainer for inference on this computer: on the device asked for here
    (``--device``, else auto), not the one it trained on, in the run's precision where that
    has native kernels here and in fp32 elsewhere (``--precision`` overrides). ``cfg`` stays
    the run's own (packages record it). It has no optimisers or schedulers: building the
    first optimiser imports ``torch._dynamo``, seconds of start-up that inference never uses."""
    device = resolve_device(requested_device())
    precision = resolve_precision(cfg.train.precision, device, inherited=True)
    train = dataclasses.replace(cfg.train, device=str(device), precision=precision)
    token = _INFERENCE_ONLY.set(True)
    try:
        trainer = trainer_of(dataclasses.replace(cfg, train=train), run_dir)
    finally:
        _INFERENCE_ONLY.reset(token)
    trainer.cfg = cfg
    return trainer


def _fmt(values: dict[str, float]) -> str:
    return " ".join(
        f"{k}={v:.4g}" for k, v in values.items() if isinstance(v, float) and math.isfinite(v)
    )


def inference_weights(state: dict[str, Any], key: str, net: nn.Module) -> dict[str, torch.Tensor]:
    """Net ``key``'s weights in a checkpoint for inference: its buffers, and the averaged
    parameters where the run kept an average (``train.ema``), else its own."""
    weights = dict(state["nets"][key])
    average = state.get("averages", {}).get(key)
    if average is not None and int(average["n_averaged"]) > 0:
        weights.update({n: average[f"module.{n}"] for n, _ in net.named_parameters()})
    return weights


def _tensors(state: dict[str, Any], *sections: str) -> Iterator[tuple[str, torch.Tensor]]:
    """(``net.name``, tensor) of every floating-point tensor in the state's ``sections``."""
    for section in sections:
        for net, tensors in state.get(section, {}).items():
            for name, t in tensors.items():
                if isinstance(t, torch.Tensor) and t.is_floating_point():
                    yield f"{net}.{name}", t


def _copy_parameters(params: list[torch.Tensor], net: nn.Module) -> None:
    with torch.no_grad():
        for target, source in zip(net.parameters(), params, strict=True):
            target.copy_(source)
