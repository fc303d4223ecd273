"""The raw data file of one Multitasking scan, simulated or the user's own (same schema).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_write
from mrilearn.physics import acquisition
from mrilearn.physics.nufft import check_trajectory

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
        raise DataError(
            f"{path}: missing required field(s) {', '.join(missing)} (schema: docs/mtmri.md)"
        )
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
