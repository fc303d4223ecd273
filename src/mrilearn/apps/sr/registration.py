"""Rigid registration of a separately acquired LR scan onto its HR scan (§8.4.1).

Real LR/HR pairs come from two scans: the LR lies on another grid, field of view or position.
:func:`register_rigid` finds the rigid transform (SimpleITK ``Euler3DTransform``: three
rotations and a translation) that maps HR points to LR points by maximising Mattes mutual
information (25 % of the voxels sampled, at most ``MAX_SAMPLES`` per level), coarse to fine
(shrink 4, 2, 1 where the volume is large enough), starting from the centres of intensity
mass. :func:`resample_onto` then puts the LR on the HR grid (linear interpolation, zero
outside the LR field of view), the pair a network trains on.

A registration fails when its final metric (negative: lower is better) lies above
``max_metric`` or the transform moves the HR centre by more than ``max_shift_mm`` or rotates
by more than ``max_rotation_deg``: such a pair is reported and left out
(:func:`pairs_without_failures`).

Coordinates are patient LPS millimetres, as in SimpleITK and DICOM; volumes carry RAS+
affines (:class:`~mrilearn.io.volume.Volume`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mrilearn.apps.sr.registration_limits import Limits
from mrilearn.data.manifest import subject_id
from mrilearn.errors import DataError, optional_module
from mrilearn.io.atomic import atomic_write, write_json_atomic
from mrilearn.io.volume import Volume

log = logging.getLogger(__name__)

T = TypeVar("T")
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
REGISTRATION_FILE = "registration.json"  # in a run directory: every pair's registration
MIN_LEVEL_VOXELS = 12  # a pyramid level keeps at least this many voxels along every axis
MAX_SAMPLES = 100_000  # voxels the metric samples per level (25 % of smaller volumes)


@dataclass
class RigidRegistration:
    """The rigid transform from HR (fixed) to LR (moving) points, LPS mm:
    ``x_lr = R (x_hr - centre) + centre + translation``, and how it was found."""

    matrix: np.ndarray  # R, 3 x 3
    translation_mm: np.ndarray
    centre_mm: np.ndarray
    angles_deg: np.ndarray  # Euler angles about X, Y, Z (SimpleITK's convention)
    metric: float
    iterations: int
    stop: str
    seconds: float
    transform: Any = field(repr=False)  # the SimpleITK Euler3DTransform

    @property
    def rotation_deg(self) -> float:
        """The total rotation angle."""
        cos = np.clip((np.trace(self.matrix) - 1) / 2, -1.0, 1.0)
        return float(np.degrees(np.arccos(cos)))

    @property
    def shift_mm(self) -> float:
        return float(np.linalg.norm(self.translation_mm))

    def problem(self, limits: Limits) -> str | None:
        """Why this registration counts as failed, or None."""
        if not np.isfinite(self.metric) or self.metric > limits.max_metric:
            return f"metric {self.metric:.3f} above {limits.max_metric}"
        if self.shift_mm > limits.max_shift_mm:
            return f"shift {self.shift_mm:.1f} mm above {limits.max_shift_mm} mm"
        if self.rotation_deg > limits.max_rotation_deg:
            return f"rotation {self.rotation_deg:.1f}° above {limits.max_rotation_deg}°"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "transform": "Euler3DTransform (HR -> LR points, LPS mm)",
            "angles_deg": _rounded(self.angles_deg),
            "translation_mm": _rounded(self.translation_mm),
            "centre_mm": _rounded(self.centre_mm),
            "matrix": [_rounded(row) for row in self.matrix],
            "rotation_deg": round(self.rotation_deg, 4),
            "shift_mm": round(self.shift_mm, 4),
            "metric": round(self.metric, 6),
            "metric_name": "Mattes mutual information (negative; lower is better)",
            "iterations": self.iterations,
            "stop": self.stop,
            "seconds": round(self.seconds, 3),
        }


class RegistrationFailed(DataError):
    """A pair whose registration failed the :class:`Limits`."""


def _sitk() -> Any:
    return optional_module("SimpleITK", "registration", "hospital")


def _rounded(values: Iterable[float]) -> list[float]:
    return [round(float(v), 6) for v in values]


def to_sitk(volume: Volume) -> Any:
    """The volume as a SimpleITK image (LPS geometry); DataError for a sheared affine."""
    sitk = _sitk()
    data = np.asarray(volume.data)
    if data.ndim != 3:
        raise DataError(f"registration needs a 3-D volume, got shape {data.shape}")
    axes = RAS_TO_LPS @ np.asarray(volume.affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    direction = axes / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise DataError("registration needs a volume whose affine has perpendicular axes")
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0), np.float32))
    image.SetSpacing(spacing.tolist())
    image.SetDirection(direction.flatten().tolist())
    image.SetOrigin((RAS_TO_LPS @ np.asarray(volume.affine)[:3, 3]).tolist())
    return image


def _pyramid(shape: tuple[int, ...]) -> list[int]:
    """Shrink factors 4, 2, 1 as far as every level keeps MIN_LEVEL_VOXELS per axis."""
    return [f for f in (4, 2) if min(shape) // f >= MIN_LEVEL_VOXELS] + [1]


def _method(shrink: list[int], voxels: int, seed: int) -> Any:
    sitk = _sitk()
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    fractions = [min(0.25, MAX_SAMPLES * f**3 / voxels) for f in shrink]
    reg.SetMetricSamplingPercentagePerLevel(fractions, seed + 1)  # SimpleITK: seed 0 = the clock
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=300, relaxationFactor=0.8,
        gradientMagnitudeTolerance=1e-8,
    )  # fmt: skip
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel([max(f // 2, 0) for f in shrink])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


def register_rigid(
    moving: Volume, fixed: Volume, seed: int = 0, shrink: Sequence[int] | None = None
) -> RigidRegistration:
    """Align ``moving`` (the LR scan) to ``fixed`` (the HR scan); the result maps fixed points
    to moving points. ``seed`` fixes the metric's random sampling; ``shrink``: the pyramid's
    shrink factors (default 4, 2, 1 as far as the volume allows)."""
    sitk = _sitk()
    fixed_image, moving_image = to_sitk(fixed), to_sitk(moving)
    start = time.perf_counter()
    initial = sitk.CenteredTransformInitializer(
        fixed_image, moving_image, sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.MOMENTS,
    )  # fmt: skip
    transform = sitk.Euler3DTransform(initial)
    shape = fixed.data.shape[:3]
    levels = shrink or _pyramid((*shape, *moving.data.shape[:3]))  # both images are shrunk
    reg = _method(list(levels), int(np.prod(shape)), seed)
    reg.SetInitialTransform(transform, inPlace=True)
    try:
        reg.Execute(fixed_image, moving_image)
    except RuntimeError as err:  # e.g. the volumes do not overlap
        raise RegistrationFailed(
            f"registration did not converge ({str(err).strip()[-200:]})"
        ) from None
    return RigidRegistration(
        matrix=np.asarray(transform.GetMatrix()).reshape(3, 3),
        translation_mm=np.asarray(transform.GetTranslation()),
        centre_mm=np.asarray(transform.GetCenter()),
        angles_deg=np.degrees(
            [transform.GetAngleX(), transform.GetAngleY(), transform.GetAngleZ()]
        ),
        metric=float(reg.GetMetricValue()),
        iterations=int(reg.GetOptimizerIteration()),
        stop=reg.GetOptimizerStopConditionDescription(),
        seconds=time.perf_counter() - start,
        transform=transform,
    )


def resample_onto(moving: Volume, fixed: Volume, registration: RigidRegistration) -> Volume:
    """``moving`` resampled onto ``fixed``'s grid through the registration (linear; zero
    outside the moving field of view), with ``moving``'s meta."""
    sitk = _sitk()
    image = sitk.Resample(
        to_sitk(moving), to_sitk(fixed), registration.transform, sitk.sitkLinear, 0.0,
        sitk.sitkFloat32,
    )  # fmt: skip
    data = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    return Volume(
        np.ascontiguousarray(data), np.asarray(fixed.affine).copy(), None, dict(moving.meta)
    )


class PairAligner:
    """Registers each pair's LR onto its HR and keeps a record of every pair: the parameters,
    the final metric and whether it was used (``registration.json`` of a run)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.records: dict[str, dict[str, Any]] = {}

    def __call__(self, name: str, moving: Volume, fixed: Volume) -> Volume:
        """``moving`` on ``fixed``'s grid; RegistrationFailed naming ``name`` when the
        registration breaks the limits."""
        try:
            registration = register_rigid(moving, fixed)
        except RegistrationFailed as err:
            self.records[name] = {"status": "excluded", "reason": str(err)}
            raise RegistrationFailed(f"{name}: {err}") from None
        problem = registration.problem(self.limits)
        status = "excluded" if problem else "aligned"
        self.records[name] = {"status": status, "reason": problem, **registration.to_json()}
        if problem is not None:
            raise RegistrationFailed(f"{name}: registration failed: {problem}")
        log.info(
            "%s: registered (metric %.3f, shift %.2f mm, rotation %.2f°, %.1f s)", name,
            registration.metric, registration.shift_mm, registration.rotation_deg,
            registration.seconds,
        )  # fmt: skip
        return resample_onto(moving, fixed, registration)

    def write(self, path: Path) -> Path:
        """The records and the limits as JSON."""
        return write_json_atomic(path, {"limits": asdict(self.limits), "pairs": self.records})


def pairs_without_failures(make: Callable[[Any], T], subjects: Iterable[Any]) -> list[T]:
    """``make(subject)`` for every subject, leaving out (with one warning naming them) those
    whose registration failed."""
    pairs, failed = [], []
    for subject in subjects:
        try:
            pairs.append(make(subject))
        except RegistrationFailed as err:
            failed.append(str(err))
    if failed:
        log.warning(
            "left out %d pair(s) whose registration failed: %s", len(failed), "; ".join(failed)
        )
    return pairs


def sidecars(output: Path) -> tuple[Path, Path]:
    """The transform files written beside a registered volume ``<stem>.nii.gz``:
    ``<stem>.tfm`` (ITK transform file) and ``<stem>.json`` (parameters and final metric)."""
    stem = subject_id(Path(output))
    return output.with_name(f"{stem}.tfm"), output.with_name(f"{stem}.json")


def write_registration(
    registration: RigidRegistration, output: Path, extra: dict[str, Any]
) -> tuple[Path, Path]:
    """The :func:`sidecars` of ``output``, each written atomically (``extra`` goes into the
    JSON)."""
    sitk = _sitk()
    tfm, js = sidecars(output)
    atomic_write(tfm, lambda tmp: sitk.WriteTransform(registration.transform, str(tmp)))
    write_json_atomic(js, {**extra, **registration.to_json()})
    return tfm, js
