"""The MNI152 2009 templates that ship inside nilearn's wheel, found without any network.

nilearn's ``datasets`` fetchers may download; here the files are located from the installed
package's location only (``importlib.util.find_spec``, which does not even import nilearn).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from mrilearn.errors import DataError
from mrilearn.io.volume import Volume

logger = logging.getLogger(__name__)

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
# The files store uint8 0..255; dividing by this gives intensities / probabilities in [0, 1].
_STORED_MAX = 255.0


def _nilearn_data_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the MNI152 templates come from the nilearn package, which is not installed; "
            "install it (pip install nilearn) in this environment"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def mni152_paths() -> dict[str, Path]:
    """Paths of the MNI152 2009 T1, grey- and white-matter templates (keys t1, gm, wm)."""
    data_dir = _nilearn_data_dir()
    paths = {kind: data_dir / name for kind, name in _FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DataError(
            f"MNI152 template files missing from the nilearn installation: {', '.join(missing)}; "
            "reinstall nilearn (pip install --force-reinstall nilearn)"
        )
    return paths


def load_mni152(kind: str = "t1", normalize: bool = True) -> Volume:
    """The MNI152 2009 template ``kind`` ('t1', 'gm' or 'wm'), 197x233x189 at 1 mm, float32.

    With ``normalize`` (default) values are divided by 255 so the T1 lies in [0, 1] and the
    grey/white-matter maps are probabilities; otherwise the stored 0..255 values are returned.
    """
    if kind not in _FILES:
        raise DataError(f"unknown MNI152 template '{kind}'; choose one of {sorted(_FILES)}")
    path = mni152_paths()[kind]
    try:
        img = nib.load(str(path))
        data = img.get_fdata(dtype=np.float32)
    except Exception as exc:
        raise DataError(
            f"{path}: the MNI152 template cannot be read ({exc}); reinstall nilearn"
        ) from exc
    if normalize:
        data = data / np.float32(_STORED_MAX)
    meta = {"source": str(path), "format": "nifti", "template": f"MNI152NLin2009aSym-{kind}"}
    return Volume(data=data, affine=np.asarray(img.affine, float), header=img.header, meta=meta)


def embedded_datasets() -> dict[str, str]:
    """What offline data was found, one line per item (for an ``info`` command); never
    raises."""
    try:
        paths = mni152_paths()
    except DataError as exc:
        return {"mni152": f"not available: {exc}"}
    found = {}
    for kind, path in paths.items():
        try:
            img = nib.load(str(path))
            shape = "x".join(str(s) for s in img.shape)
            zooms = "x".join(f"{z:g}" for z in img.header.get_zooms()[:3])
            found[f"mni152_{kind}"] = f"{path} ({shape} voxels, {zooms} mm)"
        except Exception as exc:  # report, don't fail an info listing
            found[f"mni152_{kind}"] = f"unreadable: {path} ({exc})"
    return found
