"""The Multitasking MRI application: simulate a scan, reconstruct it, report (issue 5).

``simulate`` turns a config into a raw data file (:func:`write_raw`); ``reconstruct`` turns a
raw file (simulated or the user's own, same schema) into the back-projection U0, the ADMM
spatial factor U, the temporal factor Φ, T1 maps and image series (§2.3.2, §6.2). Issue 6
(MALIBU) trains a network g with g(U0) ≈ U and reuses :func:`image_series` / :func:`t1_map`.

Raw data file (``.npz``; complex64 unless stated; R readouts, S samples, C coils, N matrix):

=============== ============== =========================================================
name            shape          meaning
=============== ============== =========================================================
kspace          (C, R, S)      multi-coil samples, readouts in acquisition order
traj            (R, S, 2)      float, radians/pixel in [−π, π], (kx, ky)
times_ms        (R,)           float, readout time since the first inversion
ti_ms           (R,)           float, time since the last inversion pulse
navigator       (R,)           bool, True for navigator (training) readouts
metadata        ()             JSON string: matrix, fov_mm, sequence {tr_ms, te_ms,
                               flip_deg, readouts_per_inversion, inversion_efficiency}
coil_maps       (C, N, N)      optional sensitivities
cardiac_phase   (R,)           optional oracle cardiac phase ∈ [0, 1) (simulations)
resp_position   (R,)           optional oracle respiratory position ∈ [0, 1] (simulations)
=============== ============== =========================================================
Simulated files add ``metadata.simulation`` (the config), from which the truth is rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from scipy.ndimage import binary_erosion

from mrilearn.config import apply_override, read_yaml, to_dataclass
from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_dir, atomic_write, write_json_atomic
from mrilearn.physics import acquisition, subspace
from mrilearn.physics.linop import FiniteDifference, Linop
from mrilearn.physics.nufft import SubspaceEncoding, check_trajectory, radial_density
from mrilearn.physics.phantom import TISSUES, CoilModel, ThoraxPhantom, Tissue, thorax_anatomy
from mrilearn.physics.solvers import ADMM, max_eigenvalue
from mrilearn.physics.subspace import image_series, t1_map

logger = logging.getLogger(__name__)

__all__ = ["image_series", "load_config", "read_raw", "reconstruct", "simulate", "t1_map"]

BLOOD_T1_MS = 1700.0  # the dark-blood TI nulls a curve with this T1


# ------------------------------------------------------------------ configuration
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
    """Read and validate an MT-MRI YAML config; ``overrides`` are ``dotted.key=value``."""
    raw = read_yaml(Path(path))
    for item in overrides:
        apply_override(raw, item)
    return to_dataclass(MtmriConfig, raw, "")


# ------------------------------------------------------------------ raw data
REQUIRED = ("kspace", "traj", "times_ms", "ti_ms", "navigator", "metadata")


@dataclass
class RawData:
    """One scan in the raw schema of this module's docstring."""

    kspace: np.ndarray
    traj: np.ndarray
    times_ms: np.ndarray
    ti_ms: np.ndarray
    navigator: np.ndarray
    metadata: dict[str, Any]
    coil_maps: np.ndarray | None = None
    cardiac_phase: np.ndarray | None = None
    resp_position: np.ndarray | None = None

    @property
    def sequence(self) -> acquisition.IRFlash:
        s = self.metadata["sequence"]
        return acquisition.IRFlash(
            tr_ms=s["tr_ms"],
            te_ms=s["te_ms"],
            flip_deg=s["flip_deg"],
            readouts_per_inversion=s["readouts_per_inversion"],
            n_readouts=self.kspace.shape[1],
            navigator_every=0,
            navigator_angle_deg=0.0,
            samples=self.kspace.shape[2],
            inversion_efficiency=s.get("inversion_efficiency", 1.0),
        )


def write_raw(path: str | Path, raw: RawData) -> Path:
    """Write ``raw`` as one ``.npz`` atomically (complete or absent)."""
    arrays = {k: v for k, v in dataclasses.asdict(raw).items() if v is not None and k != "metadata"}
    arrays["metadata"] = np.array(json.dumps(raw.metadata))
    return atomic_write(Path(path), lambda tmp: np.savez(tmp, **arrays))


def read_raw(path: str | Path) -> RawData:
    """Read and validate a raw file; a DataError names what is missing or inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: raw data file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npz raw data file ({err})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing required field(s) {', '.join(missing)} (see README)")
    meta = json.loads(str(arrays.pop("metadata")))
    for key in ("matrix", "fov_mm", "sequence"):
        if key not in meta:
            raise DataError(f"{path}: metadata lacks {key!r}")
    raw = RawData(metadata=meta, **{k: arrays[k] for k in arrays if k in RawData.__annotations__})
    if raw.kspace.ndim != 3:
        raise DataError(
            f"{path}: kspace must be (coils, readouts, samples), got {raw.kspace.shape}"
        )
    n_readouts = raw.kspace.shape[1]
    check_trajectory(raw.traj, n_readouts)
    if raw.traj.shape[1] != raw.kspace.shape[2]:
        raise DataError(
            f"{path}: traj has {raw.traj.shape[1]} samples, kspace {raw.kspace.shape[2]}"
        )
    for name in ("times_ms", "ti_ms", "navigator", "cardiac_phase", "resp_position"):
        value = getattr(raw, name)
        if value is not None and value.shape != (n_readouts,):
            raise DataError(f"{path}: {name} must have shape ({n_readouts},), got {value.shape}")
    if not np.all(np.isfinite(raw.kspace)):
        raise DataError(f"{path}: kspace holds NaN or infinite values")
    if not raw.navigator.any() or raw.navigator.all():
        raise DataError(f"{path}: need both navigator and imaging readouts")
    return raw


# ------------------------------------------------------------------ simulation
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


def simulate(cfg: SimulateConfig) -> RawData:
    """Simulate one free-breathing IR radial scan with noise at ``cfg.phantom.snr``."""
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


# ------------------------------------------------------------------ reconstruction
@dataclass
class MtmriResult:
    """Everything a reconstruction produces (arrays complex64 unless stated).

    u0, u: (L, N, N) back-projection and ADMM spatial factors; phi: (L, n_TI, n_card, n_resp);
    card_bin, resp_bin: (R,) int bins of every readout; t1_values, curves: the dictionary;
    t1: (N, N) ms and amplitude at (t1_cardiac_bin, resp bin 0); history: ADMM log.
    """

    u0: np.ndarray
    u: np.ndarray
    phi: np.ndarray
    coil_maps: np.ndarray
    card_bin: np.ndarray
    resp_bin: np.ndarray
    resp_signal: np.ndarray
    cardiac_phase: np.ndarray
    t1_values: np.ndarray
    curves: np.ndarray
    t1: np.ndarray
    amplitude: np.ndarray
    t1_cardiac_bin: int
    bright_ti: int
    dark_ti: int
    history: list[dict[str, float]]
    timings: dict[str, float]
    metrics: dict[str, Any] = field(default_factory=dict)


def estimate_coil_maps(raw: RawData, matrix: int, smooth_px: float = 3.0) -> np.ndarray:
    """Relative sensitivities from the time-averaged imaging data: density-compensated coil
    images, Gaussian-smoothed, divided by their root sum of squares. (C, N, N)."""
    from scipy.ndimage import gaussian_filter

    from mrilearn.physics.nufft import NUFFT

    img = ~raw.navigator
    traj = raw.traj[img]
    nufft = NUFFT(traj, (matrix, matrix), (raw.kspace.shape[0],))
    coil_images = nufft.adjoint(raw.kspace[:, img] * radial_density(traj)[None])
    smooth = np.stack(
        [
            gaussian_filter(c.real, smooth_px) + 1j * gaussian_filter(c.imag, smooth_px)
            for c in coil_images
        ]
    )
    rss = np.sqrt(np.sum(np.abs(smooth) ** 2, axis=0))
    return (smooth / np.maximum(rss, 1e-3 * rss.max())).astype(np.complex64)


def _gating(
    raw: RawData, cfg: ReconConfig, u_ti: np.ndarray, ti_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if cfg.gating == "oracle":
        if raw.cardiac_phase is None or raw.resp_position is None:
            raise DataError("gating: oracle needs cardiac_phase and resp_position in the raw file")
        return raw.resp_position, raw.cardiac_phase
    nav = raw.navigator
    resp, phase = subspace.self_gating(raw.kspace[:, nav], raw.times_ms[nav], ti_index[nav], u_ti)
    return subspace.interpolate_gating(raw.times_ms[nav], resp, phase, raw.times_ms)


def _quiet_cardiac_bin(u: np.ndarray, phi: np.ndarray, n_ti: int = 8) -> int:
    """The middle of diastasis at end-expiration: the cardiac bin whose neighbours change
    least, summed over three bins so a long quiet stretch wins over the single turning
    point of end-systole, and over ``n_ti`` inversion times so no blood/myocardium
    isocontrast at one TI hides the motion."""
    n_card = phi.shape[2]
    tis = np.linspace(0, phi.shape[1] - 1, n_ti).astype(int)
    images = np.stack([np.abs(image_series(u, phi, int(t), np.arange(n_card), 0)) for t in tis], 1)
    change = np.array(
        [np.sum((images[(c + 1) % n_card] - images[c - 1]) ** 2) for c in range(n_card)]
    )
    return int(np.argmin(change + np.roll(change, 1) + np.roll(change, -1)))


def spatial_factor_admm(
    normal: Linop,
    rhs: np.ndarray,
    data_norm2: float,
    lam: float,
    rho: float,
    admm_iterations: int,
    cg_iterations: int,
    progress: bool | None = None,
    x0: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """U = argmin ‖d − E_Φ U‖² + λ‖Ψ U‖₁ (SPEC B2) from E*E, E*d and ‖d‖², Ψ = finite differences.

    The problem is normalised first (‖E*E‖ = 1 by power iteration, max |E*d| = 1), so ``lam``
    and ``rho`` mean the same for any data scale; the result is scaled back. Returns U and
    the ADMM log (objective of the normalised problem). ``x0``: the starting U (default 0).
    """
    lam_max = max_eigenvalue(normal, rhs)
    scale = float(np.abs(rhs).max()) / np.sqrt(lam_max)
    unit = scale / np.sqrt(lam_max)
    admm = ADMM(
        (1.0 / lam_max) * normal,
        rhs / (np.sqrt(lam_max) * scale),
        FiniteDifference(rhs.shape),
        lam,
        rho,
        admm_iterations,
        cg_iterations,
        data_norm2=data_norm2 / scale**2,
        x0=None if x0 is None else x0 / unit,
    )
    u = admm.run(progress) * unit
    return u.astype(np.complex64), admm.history


@dataclass
class TemporalModel:
    """The temporal side of one scan: T1 dictionary, motion bins of every readout and Φ."""

    ti_index: np.ndarray
    t1_values: np.ndarray
    curves: np.ndarray
    resp_signal: np.ndarray
    cardiac_phase: np.ndarray
    card_bin: np.ndarray
    resp_bin: np.ndarray
    phi: np.ndarray


def temporal_model(raw: RawData, cfg: ReconConfig) -> TemporalModel:
    """T1 dictionary and basis, gating, motion bins and Φ from the navigator (§6.2.2)."""
    seq = raw.sequence
    ti_index = seq.ti_index(raw.ti_ms)
    if ti_index.min() < 0 or ti_index.max() >= seq.readouts_per_inversion:
        raise DataError("ti_ms lies outside one inversion period of the sequence metadata")
    t1_values, curves = subspace.t1_dictionary(seq, tuple(cfg.t1_range_ms), cfg.dictionary_size)
    u_ti, energy = subspace.t1_basis(curves, cfg.t1_rank)
    logger.info("T1 basis: rank %d captures %.5f of the dictionary energy", cfg.t1_rank, energy)
    resp_signal, cardiac_phase = _gating(raw, cfg, u_ti, ti_index)
    card_bin, resp_bin = subspace.motion_bins(
        cardiac_phase, resp_signal, cfg.cardiac_bins, cfg.resp_bins
    )
    nav = raw.navigator
    phi, _ = subspace.estimate_phi(
        raw.kspace[:, nav],
        ti_index[nav],
        card_bin[nav],
        resp_bin[nav],
        u_ti,
        cfg.rank,
        cfg.cardiac_bins,
        cfg.resp_bins,
        cfg.phi_smoothness,
    )
    return TemporalModel(
        ti_index, t1_values, curves, resp_signal, cardiac_phase, card_bin, resp_bin, phi
    )


def subspace_encoding(
    raw: RawData, cfg: ReconConfig, temporal: TemporalModel
) -> tuple[SubspaceEncoding, np.ndarray]:
    """E_Φ of the imaging readouts and their data d (C, R_img, S)."""
    if cfg.coil_maps == "file":
        if raw.coil_maps is None:
            raise DataError("coil_maps: file, but the raw file has no coil_maps (use estimate)")
        maps = raw.coil_maps.astype(np.complex64)
    else:
        maps = estimate_coil_maps(raw, int(raw.metadata["matrix"]))
    img = ~raw.navigator
    t = temporal
    phi = t.phi[:, t.ti_index[img], t.card_bin[img], t.resp_bin[img]]
    enc = SubspaceEncoding(raw.traj[img], phi, maps, cfg.nufft_eps)
    return enc, raw.kspace[:, img].astype(np.complex64)


def reconstruct(
    raw: RawData,
    cfg: ReconConfig,
    progress: bool | None = None,
    spatial: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> MtmriResult:
    """U0, ADMM U, Φ and T1 map of one scan (§6.2): gating → Φ → E_Φ → U0 → ADMM → T1.

    ``spatial`` maps (U0, Φ) to U in place of ADMM (MALIBU's network, §6.2.3; issue 6)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    seq = raw.sequence
    temporal = temporal_model(raw, cfg)
    phi = temporal.phi
    lap("temporal_factors_s")

    enc, data = subspace_encoding(raw, cfg, temporal)
    u0 = enc.back_project(data, radial_density(enc.traj))
    if spatial is not None:
        lap("back_projection_s")
        u, history = spatial(u0, phi), []
        lap("network_s")
    else:
        rhs = enc.adjoint(data)
        lap("back_projection_s")
        normal = enc.normal()
        lap("toeplitz_kernels_s")
        u, history = spatial_factor_admm(
            normal,
            rhs,
            float(np.linalg.norm(data) ** 2),
            cfg.lam,
            cfg.rho,
            cfg.admm_iterations,
            cfg.cg_iterations,
            progress,
            x0=enc.temporal_unmix(u0) if cfg.warm_start else None,
        )
        lap("admm_s")

    dark_ti = int(np.argmin(np.abs(acquisition.ir_flash_curves(np.array([BLOOD_T1_MS]), seq)[0])))
    bright_ti = seq.readouts_per_inversion - 1
    t1_bin = _quiet_cardiac_bin(u, phi)
    t1, amplitude = t1_map(u, phi, temporal.t1_values, temporal.curves, t1_bin, 0)
    lap("t1_map_s")
    return MtmriResult(
        u0=u0.astype(np.complex64),
        u=u,
        phi=phi,
        coil_maps=enc.maps,
        card_bin=temporal.card_bin,
        resp_bin=temporal.resp_bin,
        resp_signal=temporal.resp_signal,
        cardiac_phase=temporal.cardiac_phase,
        t1_values=temporal.t1_values,
        curves=temporal.curves,
        t1=t1,
        amplitude=amplitude,
        t1_cardiac_bin=t1_bin,
        bright_ti=bright_ti,
        dark_ti=dark_ti,
        history=history,
        timings=timings,
    )


# ------------------------------------------------------------------ evaluation vs truth
def _scaled_nrmse(x: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """‖a·x − t‖ / ‖t‖ over ``mask`` with the least-squares complex scale a (U0 has no
    absolute scale; estimated coil maps carry an arbitrary phase)."""
    xs, ts = x[mask], truth[mask]
    a = np.vdot(xs, ts) / max(np.vdot(xs, xs).real, 1e-30)
    return float(np.linalg.norm(a * xs - ts) / np.linalg.norm(ts))


def truth_state(sub: Subject, result: MtmriResult) -> tuple[float, float]:
    """The true (cardiac phase, respiratory position) of the T1 map's motion bin: the mean
    oracle state of the readouts assigned to it (circular mean for the cardiac phase)."""
    sel = (result.card_bin == result.t1_cardiac_bin) & (result.resp_bin == 0)
    phase = float(
        np.mod(np.angle(np.mean(np.exp(2j * np.pi * sub.cardiac_phase[sel]))) / (2 * np.pi), 1)
    )
    return phase, float(sub.resp_position[sel].mean())


def evaluate(raw: RawData, result: MtmriResult) -> dict[str, Any]:
    """Compare with the simulated truth: T1 per tissue and image NRMSE (U and U0 series).

    T1 statistics (mean, SD, bias of the mean and of the median: noise skews a voxel's T1
    upwards, most for long T1) cover the tissue's pure voxels (no partial volume) and, as ``interior_*``,
    those of them whose four neighbours are pure voxels of the same tissue: a reconstruction's
    point spread mixes in the neighbouring tissue at the edges (one to two pixels wide for
    radial sampling with TV), which on a 3-pixel myocardial wall is most of the wall.
    The truth motion state is :func:`truth_state`, so it works for self-gated and oracle bins.
    """
    sim = to_dataclass(SimulateConfig, raw.metadata["simulation"], "metadata.simulation")
    sub = build_subject(sim)
    matrix, fov = sim.phantom.matrix, sim.phantom.fov_mm
    phase, resp = truth_state(sub, result)
    labels = sub.phantom.labels(phase, resp, matrix, fov)
    t1_rows = []
    for tissue in ("blood", "myocardium", "liver", "muscle", "fat"):
        mask = labels == sub.phantom.tissue_names.index(tissue)
        if mask.sum() == 0:
            continue
        true = sub.phantom.tissues[tissue].t1
        row: dict[str, Any] = {"tissue": tissue, "true_ms": true}
        for prefix, region in (("", mask), ("interior_", binary_erosion(mask))):
            values = result.t1[region].astype(np.float64)
            stats = [None] * 4
            if values.size:
                stats = [values.mean(), values.std(), 100 * (values.mean() / true - 1)]
                stats.append(100 * (np.median(values) / true - 1))
            for key, value in zip(("mean_ms", "sd_ms", "bias_pct", "median_bias_pct"), stats):
                row[prefix + key] = None if value is None else float(value)
            row[prefix + "voxels"] = int(values.size)
        t1_rows.append(row)
    signal = acquisition.tissue_signal(sub.phantom, sub.sequence)
    body = sub.phantom.coverage(phase, resp, matrix, fov)[0] > 0
    tis = np.linspace(0, sub.sequence.readouts_per_inversion - 1, 8).astype(int)
    nrmse: dict[str, list[float]] = {"U": [], "U0": []}
    for ti in tis:
        values = sub.phantom.ellipse_values({n: s[ti] for n, s in signal.items()})
        truth = sub.phantom.image(values, phase, resp, matrix, fov)
        for key, factor in (("U", result.u), ("U0", result.u0)):
            image = image_series(factor, result.phi, int(ti), result.t1_cardiac_bin, 0)
            nrmse[key].append(_scaled_nrmse(image, truth, body))
    metrics: dict[str, Any] = {
        "t1": t1_rows,
        "image_nrmse": {k: float(np.mean(v)) for k, v in nrmse.items()},
        "truth_state": {"cardiac_phase": phase, "resp_position": resp},
    }
    if raw.cardiac_phase is not None:
        offset = np.exp(2j * np.pi * (result.cardiac_phase - raw.cardiac_phase))
        metrics["gating"] = {
            "resp_correlation": float(np.corrcoef(result.resp_signal, raw.resp_position)[0, 1]),
            "cardiac_phase_coherence": float(np.abs(offset.mean())),
        }
    return metrics


# ------------------------------------------------------------------ outputs
def save_result(out_dir: str | Path, cfg: MtmriConfig, raw: RawData, result: MtmriResult) -> Path:
    """Write recon.npz, results.json, config.yaml, figures/ and report.html atomically."""
    from mrilearn.physics import figures

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        arrays = {
            k: getattr(result, k)
            for k in (
                "u0",
                "u",
                "phi",
                "coil_maps",
                "card_bin",
                "resp_bin",
                "t1_values",
                "curves",
                "t1",
                "amplitude",
            )
        }
        np.savez(
            tmp / "recon.npz", ti_ms=raw.sequence.ti_ms(np.arange(result.phi.shape[1])), **arrays
        )
        summary = {
            "rank": int(result.u.shape[0]),
            "t1_cardiac_bin": result.t1_cardiac_bin,
            "bright_ti_ms": float(raw.sequence.ti_ms(result.bright_ti)),
            "dark_ti_ms": float(raw.sequence.ti_ms(result.dark_ti)),
            "timings_s": result.timings,
            "admm": result.history,
            **result.metrics,
        }
        write_json_atomic(tmp / "results.json", summary)
        (tmp / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        figures.write_figures(tmp / "figures", result, raw.sequence, raw.times_ms)
        figures.write_report(tmp, summary, cfg.description)
    return out_dir
