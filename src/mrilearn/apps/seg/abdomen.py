"""Synthetic abdominal MRI with labels of the ten ALAMO organs (§7.2.1), for tests and demos.

Each subject is a T1-VIBE-like fat-suppressed volume (liver and pancreas bright, spleen and
kidneys intermediate, fat, fluid, CSF and vessels dark) of an elliptic trunk with abdominal wall,
spine, spinal canal, aorta/IVC, psoas and paraspinal muscles, colon (unlabelled distractor) and
the ten labelled organs, placed where they lie in a patient (liver right-superior, spleen
left-posterior, kidneys beside the spine, pancreas across the midline to the splenic hilum,
duodenum as a C-loop round the pancreatic head, small bowel loops in the lower abdomen).

World coordinates are RAS+ mm (x to the subject's right, y anterior, z superior), origin at the
centre of the field of view; the array axes follow them (axial slices are along axis 2).
Every subject (``seed``) draws its own trunk size, organ sizes, positions and rotations,
cord end level, bowel loops, tissue intensities, texture, bias field and Rician noise.
Boundaries get a one-voxel linear partial-volume ramp; a voxel is labelled with the structure
that covers more than half of it (structures painted later win, so an unlabelled colon loop
painted over an organ clears that organ's label there).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from mrilearn.apps.seg.synthetic import DEFAULT_SHAPE, DEFAULT_SPACING
from mrilearn.io import Volume, write_nifti
from mrilearn.io.atomic import atomic_dir

log = logging.getLogger(__name__)

# (name, label value, display colour): the organs and colours of Fig. 7.3.
ORGANS: tuple[tuple[str, int, str], ...] = (
    ("liver", 1, "#e41a1c"),
    ("spleen", 2, "#9e9e9e"),
    ("pancreas", 3, "#4daf4a"),
    ("left_kidney", 4, "#ffd92f"),
    ("right_kidney", 5, "#377eb8"),
    ("stomach", 6, "#00e5ee"),
    ("duodenum", 7, "#984ea3"),
    ("small_intestine", 8, "#f7f7f7"),
    ("spinal_cord", 9, "#1f3fff"),
    ("vertebral_bodies", 10, "#7b3f00"),
)
LABEL = {name: value for name, value, _ in ORGANS}


# Mean T1-VIBE (fat-suppressed) intensities; each subject scales each by U(0.9, 1.1).
TISSUE = {
    "fat": 0.18,
    "muscle": 0.35,
    "visceral": 0.22,
    "liver": 0.72,
    "spleen": 0.5,
    "pancreas": 0.85,
    "kidney_cortex": 0.62,
    "kidney_medulla": 0.42,
    "gut_wall": 0.55,
    "stomach_content": 0.12,
    "duodenum_content": 0.3,
    "bowel": 0.48,
    "colon": 0.3,
    "cord": 0.46,
    "csf": 0.1,
    "vertebra": 0.58,
    "disc": 0.3,
    "vessel": 0.2,
}


@dataclass
class _Canvas:
    """The volume being painted: world coordinates of the voxel centres, image and labels."""

    x: np.ndarray  # (X,) mm
    y: np.ndarray  # (Y,) mm
    z: np.ndarray  # (Z,) mm
    ramp: float  # partial-volume ramp width in mm (one voxel)
    image: np.ndarray
    label: np.ndarray

    def box(self, lo: Sequence[float], hi: Sequence[float]) -> tuple[slice, slice, slice]:
        """Index slices of the voxels whose centres lie in the world box [lo, hi] (mm)."""
        return tuple(
            slice(int(np.searchsorted(c, a - self.ramp)), int(np.searchsorted(c, b + self.ramp)))
            for c, a, b in zip((self.x, self.y, self.z), lo, hi)
        )

    def points(self, sl: tuple[slice, slice, slice]) -> np.ndarray:
        """(x, y, z) mm of the voxels in ``sl``, shape (*box, 3)."""
        return np.stack(np.meshgrid(self.x[sl[0]], self.y[sl[1]], self.z[sl[2]], indexing="ij"), -1)

    def paint(
        self,
        sl: tuple[slice, slice, slice],
        depth: np.ndarray,
        intensity: float | np.ndarray,
        label: int = 0,
    ) -> np.ndarray:
        """Composite a structure given its depth (mm inside, negative outside) in box ``sl``;
        returns its occupancy (fraction of each voxel covered)."""
        occ = np.clip(0.5 + depth / self.ramp, 0.0, 1.0)
        img = self.image[sl]
        img *= 1.0 - occ
        img += occ * intensity
        self.label[sl][occ > 0.5] = label
        return occ


def _ellipsoid_depth(
    p: np.ndarray, centre: np.ndarray, radii: np.ndarray, rot: np.ndarray
) -> np.ndarray:
    """Approximate depth (mm) inside an ellipsoid: (1 − normalised radius) × smallest radius."""
    local = (p - centre) @ rot
    r = np.sqrt(((local / radii) ** 2).sum(-1))
    return (1.0 - r) * radii.min()


def _polyline_depth(p: np.ndarray, nodes: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Depth (mm) inside a tube of radius ``radii[i]`` (linear along segments) along ``nodes``."""
    best = np.full(p.shape[:-1], -np.inf)
    for a, b, ra, rb in zip(nodes[:-1], nodes[1:], radii[:-1], radii[1:]):
        ab = b - a
        t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
        dist = np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)
        best = np.maximum(best, ra + t * (rb - ra) - dist)
    return best


def _rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """A random rotation matrix with angles up to ``max_angle`` rad about each axis."""
    ax, ay, az = rng.uniform(-max_angle, max_angle, 3)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rx @ ry @ rz


class _Anatomy:
    """Draws one subject's random anatomy onto a canvas (all sizes in mm)."""

    def __init__(self, canvas: _Canvas, rng: np.random.Generator) -> None:
        self.c = canvas
        self.rng = rng
        self.scale = rng.uniform(0.9, 1.1, 3)
        self.shift = np.array([rng.normal(0, 6), rng.normal(0, 6), rng.uniform(-20, 20)])
        self.tissue = {k: v * rng.uniform(0.9, 1.1) for k, v in TISSUE.items()}

    def place(self, point: Sequence[float], jitter: float = 5.0) -> np.ndarray:
        """A nominal anatomical position scaled and shifted for this subject, plus jitter."""
        return np.asarray(point, float) * self.scale + self.shift + self.rng.normal(0, jitter, 3)

    def ellipsoid(
        self,
        centre: Sequence[float],
        radii: Sequence[float],
        intensity: float,
        label: int = 0,
        tilt: float = 0.15,
        jitter: float = 5.0,
        vary: float = 0.15,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Paint a randomised ellipsoid; returns (centre, radii, rotation) actually used."""
        centre = self.place(centre, jitter)
        radii = np.asarray(radii, float) * self.scale * self.rng.uniform(1 - vary, 1 + vary, 3)
        rot = _rotation(self.rng, tilt)
        reach = radii.max()
        sl = self.c.box(centre - reach, centre + reach)
        self.c.paint(sl, _ellipsoid_depth(self.c.points(sl), centre, radii, rot), intensity, label)
        return centre, radii, rot

    def tube(
        self,
        nodes: Sequence[Sequence[float]],
        radius: float | Sequence[float],
        intensity: float,
        label: int = 0,
        wall: float = 0.0,
        wall_intensity: float = 0.0,
        jitter: float = 5.0,
        placed: bool = False,
    ) -> None:
        """Paint a tube along ``nodes`` (with an optional wall of ``wall`` mm around a lumen)."""
        pts = np.asarray(nodes, float)
        pts = pts if placed else np.stack([self.place(n, jitter) for n in pts])
        radii = np.broadcast_to(np.asarray(radius, float), (len(pts),)) * self.scale.mean()
        reach = radii.max()
        sl = self.c.box(pts.min(0) - reach, pts.max(0) + reach)
        p = self.c.points(sl)
        if wall > 0:
            self.c.paint(sl, _polyline_depth(p, pts, radii), wall_intensity, label)
            radii = np.maximum(radii - wall, 1.0)
        self.c.paint(sl, _polyline_depth(p, pts, radii), intensity, label)

    # --------------------------------------------------------------- anatomy
    def draw(self) -> None:
        t, rng = self.tissue, self.rng
        c = self.c
        # trunk: subcutaneous fat, abdominal wall muscle, visceral fat
        a, b = rng.uniform(135, 165), rng.uniform(95, 115)
        every = (slice(None),) * 3
        p = c.points(every)
        yc = -5 + self.shift[1]
        r = np.sqrt(((p[..., 0] - self.shift[0]) / a) ** 2 + ((p[..., 1] - yc) / b) ** 2)
        for thick, key in ((0.0, "fat"), (18.0, "muscle"), (28.0, "visceral")):
            c.paint(every, (1.0 - r) * b - thick, t[key])
        for side in (-1, 1):  # paraspinal muscles and psoas
            self.tube([[35 * side, -80, -130], [35 * side, -80, 130]], 22, t["muscle"], jitter=2)
            self.tube(
                [[38 * side, -45, -130], [30 * side, -50, 0], [22 * side, -48, 40]],
                [20, 14, 6],
                t["muscle"],
                jitter=3,
            )
        self.spine()
        self.tube([[-15, -25, -130], [-12, -28, 130]], 11, t["vessel"], jitter=2)  # aorta
        self.tube([[22, -22, -130], [25, -20, 130]], 10, t["vessel"], jitter=2)  # IVC
        self.colon()
        self.small_intestine()
        for side, name, z in ((-1, "left_kidney", 0.0), (1, "right_kidney", -15.0)):
            centre, radii, rot = self.ellipsoid(
                [68 * side, -45, z], [24, 20, 48], t["kidney_cortex"], LABEL[name], tilt=0.2
            )
            sl = c.box(centre - radii.max(), centre + radii.max())
            depth = _ellipsoid_depth(c.points(sl), centre, radii * 0.6, rot)
            c.paint(sl, depth, t["kidney_medulla"], LABEL[name])
        self.ellipsoid([-95, -35, 45], [24, 48, 45], t["spleen"], LABEL["spleen"], tilt=0.3)
        liver = LABEL["liver"]
        self.ellipsoid([60, 5, 55], [85, 75, 65], t["liver"], liver, tilt=0.1)
        self.ellipsoid([-5, 35, 75], [55, 35, 32], t["liver"], liver, tilt=0.2)  # left lobe
        pancreas = [[30, 0, -15], [5, 5, 5], [-35, -8, 15], [-72, -22, 25]]
        self.tube(pancreas, [13, 11, 9, 8], t["pancreas"], LABEL["pancreas"], jitter=4)
        duodenum = [[15, 25, 10], [40, 10, 5], [48, 0, -25], [28, -5, -48], [-5, -5, -48]]
        duodenum.append([-25, 0, -32])
        self.tube(
            duodenum, 11, t["duodenum_content"], LABEL["duodenum"], 3.5, t["gut_wall"], jitter=3
        )
        stomach = LABEL["stomach"]
        centre, radii, rot = self.ellipsoid(
            [-45, 25, 55], [40, 32, 45], t["gut_wall"], stomach, tilt=0.2
        )
        sl = c.box(centre - radii.max(), centre + radii.max())
        depth = _ellipsoid_depth(c.points(sl), centre, radii - 4.0, rot)
        c.paint(sl, depth, t["stomach_content"], stomach)
        self.tube(  # antrum to the pylorus
            [centre, self.place([15, 25, 10], 2)],
            [18, 10],
            t["stomach_content"],
            stomach,
            4.0,
            t["gut_wall"],
            placed=True,
        )

    def spine(self) -> None:
        t, rng, c = self.tissue, self.rng, self.c
        centre = self.place([0, -52, 0], 2)
        radius = rng.uniform(17, 22) * self.scale[:2].mean()
        height, disc = rng.uniform(24, 30), rng.uniform(6, 9)
        z0 = rng.uniform(0, height + disc)
        z_lo = c.z[0] - height - disc + z0
        while z_lo < c.z[-1]:
            top = z_lo + disc
            self.tube([[*centre[:2], z_lo], [*centre[:2], top]], radius, t["disc"], placed=True)
            nodes = [[*centre[:2], top], [*centre[:2], top + height]]
            self.tube(nodes, radius, t["vertebra"], LABEL["vertebral_bodies"], placed=True)
            z_lo = top + height
        canal = centre + np.array([0, -radius - 11, 0])
        span = [c.z[0] - 10, c.z[-1] + 10]
        self.tube([[*canal[:2], z] for z in span], 9, t["csf"], placed=True)
        conus = rng.uniform(-60, -20) + self.shift[2]  # where the cord ends
        nodes = [[*canal[:2], conus], [*canal[:2], span[1]]]
        self.tube(nodes, [2.0, 5.0], t["cord"], LABEL["spinal_cord"], placed=True)

    def colon(self) -> None:
        nodes = [[95, 15, -130], [95, 20, -20], [60, 55, -10], [-60, 55, -10], [-95, 15, -20]]
        nodes.append([-85, 10, -130])
        self.tube(nodes, 17, self.tissue["colon"], 0, 3.0, self.tissue["gut_wall"], jitter=6)

    def small_intestine(self) -> None:
        """Random-walk loops in the lower anterior abdomen with varied content signal."""
        rng, label = self.rng, LABEL["small_intestine"]
        lo, hi = np.array([-80.0, -15.0, -110.0]), np.array([80.0, 65.0, -35.0])
        for _ in range(4):
            node = self.place(rng.uniform(lo, hi), 0)
            nodes = [node]
            for _ in range(10):
                step = rng.normal(0, 1, 3)
                node = np.clip(node + 22 * step / np.linalg.norm(step), lo, hi)
                nodes.append(node)
            content = self.tissue["bowel"] * rng.uniform(0.7, 1.2)
            self.tube(nodes, 9, content, label, 2.5, self.tissue["gut_wall"], placed=True)


def synthetic_abdomen(
    seed: int,
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] = DEFAULT_SPACING,
    noise: float = 0.025,
) -> tuple[Volume, Volume]:
    """One synthetic subject: (image, label) Volumes on the same (X, Y, Z) grid.

    ``spacing`` is the voxel size in mm (axis-aligned RAS+ affine, origin at the FOV centre);
    ``noise`` is the Rician noise level relative to liver signal ≈ 0.7. The label map holds
    0 (background) and the values of :data:`ORGANS`.
    """
    shape = tuple(int(s) for s in shape)
    spacing = np.asarray(spacing, float)
    rng = np.random.default_rng(seed)
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    canvas = _Canvas(
        *axes,
        ramp=float(spacing.mean()),
        image=np.zeros(shape, np.float64),
        label=np.zeros(shape, np.uint8),
    )
    _Anatomy(canvas, rng).draw()
    img = canvas.image
    texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), 1.0)
    img *= 1.0 + 0.08 * texture / max(float(texture.std()), 1e-6)
    coords = np.stack(np.meshgrid(*[a / (abs(a).max() or 1) for a in axes], indexing="ij"))
    field = np.tensordot(rng.normal(0, 0.15, 3), coords, 1)
    field += np.tensordot(rng.normal(0, 0.08, 3), coords**2, 1)
    img *= np.exp(field)
    img = np.hypot(img + rng.normal(0, noise, shape), rng.normal(0, noise, shape))
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * spacing
    meta = {"source": f"synthetic_abdomen(seed={seed})"}
    return Volume(img.astype(np.float32), affine, meta=meta), Volume(
        canvas.label, affine, meta=meta
    )


def write_abdomen_dataset(
    out_dir: str | Path,
    subjects: int,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] = DEFAULT_SPACING,
) -> Path:
    """Write ``subjects`` synthetic subjects as ``images/<id>.nii.gz`` + ``labels/<id>.nii.gz``
    and a ``manifest.csv`` (columns subject, image, label) into ``out_dir``; returns the
    manifest path. Subject ``i`` uses seed ``seed * 100_003 + i``, so sets with different
    seeds do not share subjects. The folder appears complete or not at all."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        rows = []
        for i in range(subjects):
            sid = f"abdomen_{seed:03d}_{i:04d}"
            image, label = synthetic_abdomen(seed * 100_003 + i, shape, spacing)
            write_nifti(image, tmp / "images" / f"{sid}.nii.gz")
            write_nifti(label, tmp / "labels" / f"{sid}.nii.gz")
            rows.append([sid, f"images/{sid}.nii.gz", f"labels/{sid}.nii.gz"])
            log.info("wrote subject %s (%d/%d)", sid, i + 1, subjects)
        with open(tmp / "manifest.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "image", "label"])
            writer.writerows(rows)
    return out_dir / "manifest.csv"
