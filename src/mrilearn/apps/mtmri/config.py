"""Settings of the Multitasking application: what to simulate and how to reconstruct.

A ``configs/mtmri/*.yaml`` file has the sections ``description``, ``simulate`` and ``recon``;
it is read by the framework's one config system (``_base_`` chains, dotted overrides and
errors that name the offending key), here with :class:`MtmriConfig` as its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mrilearn.config import load_typed


@dataclass
class PhantomConfig:
    """Subject and coils (mm, bpm, s). ``snr``: time-averaged myocardium signal over the
    noise standard deviation of a fully sampled N×N Cartesian single-coil image."""

    matrix: int = 96
    fov_mm: float = 300.0
    coils: int = 8
    randomize: bool = True
    parameter_variability: float = 0.05
    heart_rate_bpm: float = 70.0
    heart_rate_variability: float = 0.05
    breathing_period_s: float = 4.0
    breathing_variability: float = 0.15
    resp_amplitude_mm: float = 12.0
    contraction_scale: float = 1.0
    snr: float = 30.0


@dataclass
class SequenceConfig:
    """IR-FLASH timing (ms, degrees); ``samples`` per spoke defaults to the matrix size."""

    tr_ms: float = 6.0
    te_ms: float = 2.0
    flip_deg: float = 5.0
    readouts_per_inversion: int = 344
    n_readouts: int = 4128
    navigator_every: int = 4
    navigator_angle_deg: float = 90.0
    samples: int | None = None
    inversion_efficiency: float = 1.0


@dataclass
class SimulateConfig:
    seed: int = 0
    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)


@dataclass
class ReconConfig:
    """Reconstruction settings (rank L, T1 dictionary, gating, ADMM; λ and ρ are relative to a
    problem normalised so that ‖E*E‖ = 1 and max |E*d| = 1). ``warm_start`` starts ADMM from
    the temporally unmixed back-projection instead of 0: the same iterations then get much
    closer to the solution (less blur, less T1 contrast lost; README)."""

    rank: int = 12
    t1_rank: int = 5
    t1_range_ms: list[float] = field(default_factory=lambda: [100.0, 3000.0])
    dictionary_size: int = 500
    cardiac_bins: int = 20
    resp_bins: int = 6
    gating: Literal["navigator", "oracle"] = "navigator"
    phi_smoothness: float = 0.1
    coil_maps: Literal["file", "estimate"] = "file"
    lam: float = 0.0005
    rho: float = 0.05
    admm_iterations: int = 20
    cg_iterations: int = 20
    nufft_eps: float = 1e-5
    warm_start: bool = True


@dataclass
class MtmriConfig:
    """A ``configs/mtmri/*.yaml`` file: what to simulate and how to reconstruct."""

    description: str = ""
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    recon: ReconConfig = field(default_factory=ReconConfig)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> MtmriConfig:
    """Read and validate an MT-MRI YAML config (a path or a packaged name such as
    ``mtmri/default``); ``overrides`` are ``dotted.key=value``."""
    return load_typed(MtmriConfig, path, overrides)
