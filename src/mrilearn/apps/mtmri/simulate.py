"""Simulated Multitasking scans: a thorax phantom with cardiac and respiratory motion,
coils and an IR-FLASH radial acquisition with noise (§2.3.2)."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from mrilearn.apps.mtmri.config import SimulateConfig
from mrilearn.apps.mtmri.raw import RawData
from mrilearn.physics import acquisition
from mrilearn.physics.phantom import TISSUES, CoilModel, ThoraxPhantom, Tissue, thorax_anatomy

logger = logging.getLogger(__name__)


@dataclass
class Subject:
    """A simulated subject, rebuilt deterministically from the simulation config."""

    phantom: ThoraxPhantom
    coils: CoilModel
    sequence: acquisition.IRFlash
    schedule: acquisition.Schedule
    cardiac_phase: np.ndarray
    resp_position: np.ndarray


def build_subject(cfg: SimulateConfig) -> Subject:
    """Anatomy, tissue parameters, coils, sequence and motion traces from ``cfg.seed``."""
    p, s = cfg.phantom, cfg.sequence
    rng = np.random.default_rng(cfg.seed)
    anatomy = thorax_anatomy(rng if p.randomize else None)
    var = p.parameter_variability

    def jitter() -> float:
        return float(1 + var * np.clip(rng.standard_normal(), -2, 2))

    tissues = {n: Tissue(t.t1 * jitter(), t.t2s, t.pd * jitter()) for n, t in TISSUES.items()}
    phantom = ThoraxPhantom(anatomy, tissues, p.resp_amplitude_mm, p.contraction_scale)
    coils = CoilModel(p.coils, p.fov_mm, rng)
    seq = acquisition.IRFlash(**{**dataclasses.asdict(s), "samples": s.samples or p.matrix})
    sched = acquisition.schedule(seq)
    cardiac, resp = acquisition.motion_traces(
        sched.times_ms,
        rng,
        p.heart_rate_bpm,
        p.heart_rate_variability,
        p.breathing_period_s,
        p.breathing_variability,
    )
    return Subject(phantom, coils, seq, sched, cardiac, resp)


def simulate(cfg: SimulateConfig, progress: bool | None = None) -> RawData:
    """Simulate one free-breathing IR radial scan with noise at ``cfg.phantom.snr``;
    ``progress``: a bar over the readouts (None: on a terminal)."""
    p = cfg.phantom
    sub = build_subject(cfg)
    start = time.perf_counter()
    kspace = acquisition.simulate_kspace(
        sub.phantom,
        sub.coils,
        sub.sequence,
        sub.schedule,
        sub.cardiac_phase,
        sub.resp_position,
        p.matrix,
        p.fov_mm,
        progress=progress,
    )
    myo = np.abs(acquisition.tissue_signal(sub.phantom, sub.sequence)["myocardium"]).mean()
    sigma = p.matrix * myo / p.snr
    rng = np.random.default_rng([cfg.seed, 1])
    noise = rng.standard_normal((2, *kspace.shape), dtype=np.float32) * np.float32(
        sigma / np.sqrt(2)
    )
    kspace += noise[0] + 1j * noise[1]
    logger.info(
        "simulated %d readouts in %.1f s", sub.sequence.n_readouts, time.perf_counter() - start
    )
    seq = sub.sequence
    return RawData(
        kspace=kspace.astype(np.complex64),
        traj=sub.schedule.traj.astype(np.float32),
        times_ms=sub.schedule.times_ms,
        ti_ms=seq.ti_ms(sub.schedule.ti_index),
        navigator=sub.schedule.navigator,
        coil_maps=sub.coils.maps(p.matrix, p.fov_mm),
        cardiac_phase=sub.cardiac_phase,
        resp_position=sub.resp_position,
        metadata={
            "matrix": p.matrix,
            "fov_mm": p.fov_mm,
            "sequence": {
                k: getattr(seq, k)
                for k in (
                    "tr_ms",
                    "te_ms",
                    "flip_deg",
                    "readouts_per_inversion",
                    "inversion_efficiency",
                )
            },
            "noise_sigma": float(sigma),
            "simulation": dataclasses.asdict(cfg),
        },
    )
