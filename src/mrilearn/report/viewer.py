"""The report's slice viewer: scroll through LR, each method, HR and the errors in sync, in
any of the three planes, in the HTML page itself (works offline, no server, no CDN).

An evaluation saves the volumes of one subject with :func:`save_viewer` into
``figures/viewer/``: every image as an 8-bit grey PNG mosaic of its slices along axis 2, all
on the reference's grey mapping, and ``viewer.json`` (shape, spacing, error scale, colour
map). :func:`viewer_html` embeds them into the report as data URIs with ``viewer.js``, which
decodes the mosaics on a canvas and draws the slices; errors are |image − reference| of the
8-bit values (display only: the tables hold the exact numbers).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_dir
from mrilearn.report.figures import erode

VIEWER_DIR = "viewer"  # under the run's figures/
META = "viewer.json"
MAX_VOXELS = 2_000_000  # per image; larger volumes are subsampled by a whole stride


def save_viewer(
    folder: Path,
    images: Mapping[str, np.ndarray],
    reference: str,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    subject: str = "",
    plane: int = 2,
    max_voxels: int = MAX_VOXELS,
) -> Path:
    """Write the viewer's data for ``images`` (name → (X, Y, Z) volume on one grid, shown in
    this order) into ``folder`` (replaced whole); ``plane``: the axis the viewer opens on."""
    vols = {k: np.asarray(v, np.float32) for k, v in images.items()}
    ref = vols.get(reference)
    if ref is None or ref.ndim != 3 or any(v.shape != ref.shape for v in vols.values()):
        shapes = {k: v.shape for k, v in vols.items()}
        raise DataError(
            f"viewer: need 3-D images on one grid including {reference!r}, got {shapes}"
        )
    stride = max(1, math.ceil((ref.size / max_voxels) ** (1 / 3)))
    lo, hi = float(ref.min()), float(np.percentile(ref, 99.9))
    hi = hi if hi > lo else lo + 1.0
    levels = {k: quantize(v[::stride, ::stride, ::stride], lo, hi) for k, v in vols.items()}
    meta = {
        "subject": subject,
        "shape": list(levels[reference].shape),
        "spacing": [float(s) * stride for s in spacing],
        "stride": stride,
        "plane": plane,
        "reference": reference,
        "value_per_level": (hi - lo) / 255,
        "error_max": _error_scale(levels, reference),
        "colormap": _magma(),
        "images": [],
    }
    with atomic_dir(folder) as tmp:
        for i, (name, level) in enumerate(levels.items()):
            (tmp / f"{i}.png").write_bytes(mosaic_png(level))
            meta["images"].append({"name": name, "file": f"{i}.png"})
        (tmp / META).write_text(json.dumps(meta))
    return Path(folder)


def quantize(volume: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``volume`` mapped linearly from [lo, hi] onto 0…255 (uint8, clipped)."""
    return np.clip(np.rint((volume - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)


def mosaic_columns(nz: int) -> int:
    return max(1, math.ceil(math.sqrt(nz)))


def mosaic_png(level: np.ndarray) -> bytes:
    """An (X, Y, Z) uint8 volume as one grey PNG: slice z is the tile at row ``z // cols``,
    column ``z % cols``, its pixel (row y, column x) holding voxel (x, y, z)."""
    nx, ny, nz = level.shape
    cols = mosaic_columns(nz)
    rows = math.ceil(nz / cols)
    canvas = np.zeros((rows * ny, cols * nx), np.uint8)
    for z in range(nz):
        r, c = divmod(z, cols)
        canvas[r * ny : (r + 1) * ny, c * nx : (c + 1) * nx] = level[:, :, z].T
    buf = io.BytesIO()
    Image.fromarray(canvas, "L").save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _error_scale(levels: Mapping[str, np.ndarray], reference: str) -> float:
    """One error scale (grey levels) for every map: the 99th percentile of |image − ref|
    inside the reference's foreground away from its edge."""
    ref = levels[reference].astype(np.int16)
    fg = ref > 0.05 * 255
    interior = np.stack([erode(fg[:, :, z], 2) for z in range(fg.shape[2])], -1)
    region = interior if interior.any() else np.ones_like(fg)
    errors = [np.abs(v.astype(np.int16) - ref)[region] for k, v in levels.items() if k != reference]
    scale = max((float(np.percentile(e, 99)) for e in errors if e.size), default=0.0)
    return max(scale, 1.0)


def _magma() -> list[int]:
    from matplotlib import colormaps

    rgb = colormaps["magma"](np.linspace(0, 1, 256))[:, :3]
    return [int(round(c * 255)) for c in rgb.ravel()]


def viewer_html(folder: Path) -> str:
    """The viewer section of a report: ``folder``'s data embedded, or ``""`` if it has none."""
    folder = Path(folder)
    if not (folder / META).is_file():
        return ""
    meta: dict[str, Any] = json.loads((folder / META).read_text())
    for image in meta["images"]:
        data = base64.b64encode((folder / image["file"]).read_bytes()).decode("ascii")
        image["data"] = "data:image/png;base64," + data
    payload = json.dumps(meta).replace("</", "<\\/")
    script = resources.files("mrilearn.report").joinpath("viewer.js").read_text()
    what = f" of {html.escape(meta['subject'])}" if meta.get("subject") else ""
    return (
        f"<h2>Slice viewer{what}</h2><p class=note>Scroll (mouse wheel, slider or arrow keys) "
        "through every image in sync; the bottom row is each image's absolute error against "
        f"{html.escape(meta['reference'])}, all on one scale. Grey values are 8-bit, for display."
        + (f" Subsampled by {meta['stride']} for size." if meta["stride"] > 1 else "")
        + "</p><div id=mrilearn-viewer class=viewer></div>"
        f"<script type=application/json id=mrilearn-viewer-data>{payload}</script>"
        f"<script>{script}</script>"
    )
