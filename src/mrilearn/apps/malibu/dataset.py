"""MALIBU training data sets: many distinct simulated Multitasking subjects, each reconstructed
with the iterative recon (§6.3.1).

Subjects differ in anatomy, tissue T1/PD, coils and motion traces (from a per-subject seed) and
in heart rate, breathing period and depth, contraction and SNR (drawn from
``SUBJECT_RANGES``). The folder layout and subject file are those
:class:`~mrilearn.apps.malibu.data.MalibuMaps` reads.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from mrilearn.apps.malibu.data import MANIFEST, canonicalize
from mrilearn.apps.mtmri.config import MtmriConfig, SimulateConfig
from mrilearn.apps.mtmri.evaluation import evaluate, truth_state
from mrilearn.apps.mtmri.recon import reconstruct
from mrilearn.apps.mtmri.simulate import build_subject, simulate
from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_path, atomic_write, write_json_atomic
from mrilearn.progress import progress_bar

log = logging.getLogger(__name__)

DATASET_INFO = "dataset.json"
DATASET_ENTRIES = (DATASET_INFO, MANIFEST, "sub[0-9][0-9][0-9][0-9].npz")  # all it writes
# Per-subject draws (uniform) on top of the seed's anatomy, tissue values, coils and traces.
SUBJECT_RANGES = {
    "heart_rate_bpm": (55.0, 95.0),
    "breathing_period_s": (3.0, 6.0),
    "resp_amplitude_mm": (6.0, 16.0),
    "contraction_scale": (0.7, 1.3),
    "snr": (15.0, 60.0),
}
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def subject_config(base: SimulateConfig, index: int) -> SimulateConfig:
    """The ``SimulateConfig`` of subject ``index``: its own seed and SUBJECT_RANGES draws."""
    rng = np.random.default_rng([base.seed, index])
    draws = {k: float(rng.uniform(*r)) for k, r in SUBJECT_RANGES.items()}
    phantom = dataclasses.replace(base.phantom, randomize=True, **draws)
    return dataclasses.replace(base, seed=int(rng.integers(2**31)), phantom=phantom)


def subject_id(index: int) -> str:
    return f"sub{index:04d}"


def make_subject(cfg: MtmriConfig, index: int, out_dir: Path) -> Path:
    """Simulate, reconstruct iteratively and write subject ``index`` (see the module table)."""
    sim = subject_config(cfg.simulate, index)
    raw = simulate(sim, progress=False)
    result = reconstruct(raw, cfg.recon, progress=False)
    phi, u0, u = canonicalize(result.phi, result.u0, result.u)
    sub = build_subject(sim)
    phase, resp = truth_state(sub, result)
    labels = sub.phantom.labels(phase, resp, sim.phantom.matrix, sim.phantom.fov_mm)
    meta = {
        "id": subject_id(index),
        "simulation": dataclasses.asdict(sim),
        "t1_cardiac_bin": result.t1_cardiac_bin,
        "bright_ti": result.bright_ti,
        "dark_ti": result.dark_ti,
        "tissue_names": sub.phantom.tissue_names,
        "true_t1_ms": {n: t.t1 for n, t in sub.phantom.tissues.items()},
        "timings_s": result.timings,
        "truth_metrics": evaluate(raw, result),
    }
    arrays = {
        "u0": u0.astype(np.complex64),
        "u": u.astype(np.complex64),
        "phi": phi.astype(np.complex64),
        "t1": result.t1.astype(np.float32),
        "labels": labels.astype(np.int8),
        "t1_values": result.t1_values.astype(np.float32),
        "curves": result.curves.astype(np.float32),
        "metadata": np.array(json.dumps(meta)),
    }
    path = out_dir / f"{subject_id(index)}.npz"
    return atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


@contextlib.contextmanager
def _one_thread_per_worker() -> Iterator[None]:
    """Child processes started inside inherit single-threaded BLAS/OpenMP (no oversubscription)."""
    old = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def generate_dataset(
    cfg: MtmriConfig,
    out_dir: str | Path,
    subjects: int,
    workers: int = 1,
    progress: bool | None = None,
) -> Path:
    """Write ``subjects`` subjects into ``out_dir`` (skipping finished ones) and the manifest.

    ``cfg`` is an MT-MRI config (:func:`mrilearn.apps.mtmri.recon.load_config`); ``workers`` > 1
    runs subjects in that many processes. Resuming with another config is an error.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / DATASET_INFO
    config = dataclasses.asdict(cfg)
    if info_path.is_file() and json.loads(info_path.read_text())["config"] != config:
        raise DataError(f"{out}: holds subjects of another config; use a new --out folder")
    write_json_atomic(info_path, {"config": config, "subject_ranges": SUBJECT_RANGES})
    todo = [i for i in range(subjects) if not (out / f"{subject_id(i)}.npz").is_file()]
    log.info("%d of %d subjects to generate in %s", len(todo), subjects, out)
    with progress_bar(
        total=subjects, initial=subjects - len(todo), desc="subjects", enabled=progress
    ) as bar:
        if workers <= 1:
            for i in todo:
                make_subject(cfg, i, out)
                bar.update(1)
        else:
            with _one_thread_per_worker():
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(workers, mp_context=context) as pool:
                    for future in as_completed(
                        pool.submit(make_subject, cfg, i, out) for i in todo
                    ):
                        future.result()
                        bar.update(1)
    return write_manifest(out)


def write_manifest(folder: Path) -> Path:
    """``manifest.csv`` listing every subject file in ``folder`` (sorted by id)."""
    files = sorted(folder.glob("sub*.npz"))
    path = folder / MANIFEST
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["subject", "data"])
        writer.writerows([p.stem, p.name] for p in files)
    return path
