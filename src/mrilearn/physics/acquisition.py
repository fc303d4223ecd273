"""Continuous IR-prepared FLASH with radial golden-angle spokes and navigators (§2.3.2, §6).

Timing: inversion pulses every ``readouts_per_inversion`` × TR; readout j of an inversion
period happens at TI_j = (j + ½)·TR. Every ``navigator_every``-th readout is a navigator
(training) spoke at a fixed angle; the others are imaging spokes whose angle advances by the
golden angle (111.25°). Each readout samples the object in its own motion state and T1
recovery. Trajectories are in radians/pixel, spokes ``(s − S/2)·2π/S``, s = 0 … S−1.
Units: ms, degrees, mm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mrilearn.physics.phantom import CoilModel, ThoraxPhantom
from mrilearn.progress import progress_bar

logger = logging.getLogger(__name__)

GOLDEN_ANGLE = np.pi * (np.sqrt(5) - 1) / 2  # 111.25° in radians


@dataclass(frozen=True)
class IRFlash:
    """The IR-FLASH sequence (times in ms, flip angle in degrees)."""

    tr_ms: float
    te_ms: float
    flip_deg: float
    readouts_per_inversion: int
    n_readouts: int
    navigator_every: int
    navigator_angle_deg: float
    samples: int
    inversion_efficiency: float = 1.0

    def ti_ms(self, ti_index: np.ndarray) -> np.ndarray:
        """Inversion time of readout index j within its period: (j + ½)·TR."""
        return (np.asarray(ti_index) + 0.5) * self.tr_ms

    def ti_index(self, ti_ms: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`ti_ms` (rounded)."""
        return np.rint(np.asarray(ti_ms) / self.tr_ms - 0.5).astype(np.int64)


def ir_flash_curves(t1_ms: np.ndarray, seq: IRFlash) -> np.ndarray:
    """Periodic steady-state signal of continuous IR-FLASH for each T1, (T, n_TI), real.

    Bloch recursion per period (M0 = 1): inversion M → −η M; relaxation M → 1 + (M − 1)e^{−Δt/T1};
    readout signal M·sin α, then M → M cos α. The period map is affine, M_end = a·M_start + b,
    so the steady state M* = b / (1 − a) follows from two runs (M_start = 0 and 1).
    """
    t1 = np.atleast_1d(np.asarray(t1_ms, dtype=np.float64))
    alpha = np.deg2rad(seq.flip_deg)
    e_half, e_full = np.exp(-0.5 * seq.tr_ms / t1), np.exp(-seq.tr_ms / t1)

    def period(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = 1 + (-seq.inversion_efficiency * m - 1) * e_half
        signal = np.empty((t1.size, seq.readouts_per_inversion))
        for j in range(seq.readouts_per_inversion):
            signal[:, j] = m * np.sin(alpha)
            m = 1 + (m * np.cos(alpha) - 1) * (
                e_full if j + 1 < seq.readouts_per_inversion else e_half
            )
        return signal, m

    _, b = period(np.zeros_like(t1))
    _, ab = period(np.ones_like(t1))
    steady = b / (1 - (ab - b))
    return period(steady)[0]


@dataclass
class Schedule:
    """Per-readout timing and geometry of one scan (R readouts, S samples)."""

    times_ms: np.ndarray  # (R,) readout centre since the first inversion
    ti_index: np.ndarray  # (R,) readout index within its inversion period
    navigator: np.ndarray  # (R,) bool
    traj: np.ndarray  # (R, S, 2) radians/pixel


def schedule(seq: IRFlash) -> Schedule:
    """Readout times, TIs, navigator flags and golden-angle/navigator spokes."""
    index = np.arange(seq.n_readouts)
    navigator = index % seq.navigator_every == 0
    imaging_count = np.cumsum(~navigator) - 1
    angles = np.where(
        navigator, np.deg2rad(seq.navigator_angle_deg), np.mod(imaging_count * GOLDEN_ANGLE, np.pi)
    )
    radius = (np.arange(seq.samples) - seq.samples // 2) * 2 * np.pi / seq.samples
    traj = radius[None, :, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)[:, None]
    return Schedule(
        times_ms=(index + 0.5) * seq.tr_ms,
        ti_index=index % seq.readouts_per_inversion,
        navigator=navigator,
        traj=traj,
    )


def motion_traces(
    times_ms: np.ndarray,
    rng: np.random.Generator,
    heart_rate_bpm: float,
    heart_rate_variability: float,
    breathing_period_s: float,
    breathing_variability: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Cardiac phase ∈ [0, 1) and respiratory position ∈ [0, 1] at ``times_ms``.

    Beat lengths (RR) and breath lengths vary as Gaussian fractions of their means (clipped to
    ±3 σ); each breath has its own depth in [0.75, 1], and position sin³(π·breath phase), so
    end-expiration (0) lasts longer than end-inspiration, as in free breathing.
    """
    span = float(times_ms.max()) + 1.0

    def cycles(mean_ms: float, variability: float) -> tuple[np.ndarray, np.ndarray]:
        n = int(span / (mean_ms * 0.4)) + 3
        lengths = mean_ms * (1 + variability * np.clip(rng.standard_normal(n), -3, 3))
        starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]]) - rng.uniform(0, mean_ms)
        k = np.searchsorted(starts, times_ms, side="right") - 1
        return (times_ms - starts[k]) / lengths[k], k

    cardiac, _ = cycles(60000.0 / heart_rate_bpm, heart_rate_variability)
    breath, k = cycles(1000.0 * breathing_period_s, breathing_variability)
    depth = rng.uniform(0.75, 1.0, k.max() + 1)[k]
    return np.mod(cardiac, 1.0), depth * np.sin(np.pi * breath) ** 3


def simulate_kspace(
    phantom: ThoraxPhantom,
    coils: CoilModel,
    seq: IRFlash,
    sched: Schedule,
    cardiac: np.ndarray,
    resp: np.ndarray,
    matrix: int,
    fov_mm: float,
    chunk: int = 128,
    progress: bool | None = None,
) -> np.ndarray:
    """Noiseless (C, R, S) data of the continuous phantom, scaled to the N×N pixel model.

    The continuous transform (mm²) is divided by the pixel area, so data match
    ``Σ_n f_n exp(−i k·n)`` of the rasterised image (pixel values = signal). ``progress``:
    a bar over the readouts (None: on a terminal).
    """
    weight = tissue_signal(phantom, seq)
    pixel = fov_mm / matrix
    k_cyc = sched.traj / (2 * np.pi * pixel)
    out = np.empty((coils.n_coils, seq.n_readouts, seq.samples), dtype=np.complex64)
    starts = range(0, seq.n_readouts, chunk)
    for start in progress_bar(starts, desc="readouts", unit="chunk", enabled=progress):
        sl = slice(start, start + chunk)
        values = phantom.ellipse_values({n: w[sched.ti_index[sl]] for n, w in weight.items()})
        out[:, sl] = phantom.kspace(k_cyc[sl], values, cardiac[sl], resp[sl], coils) / pixel**2
    return out


def tissue_signal(phantom: ThoraxPhantom, seq: IRFlash) -> dict[str, np.ndarray]:
    """Pixel value of each tissue at each TI index: PD · e^{−TE/T2*} · IR-FLASH curve, (n_TI,)."""
    curves = ir_flash_curves(np.array([phantom.tissues[n].t1 for n in phantom.tissue_names]), seq)
    return {
        n: phantom.tissues[n].pd * np.exp(-seq.te_ms / phantom.tissues[n].t2s) * curves[i]
        for i, n in enumerate(phantom.tissue_names)
    }
