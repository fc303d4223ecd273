"""BRISQUE (Mittal et al. 2012) scored with the user's copy of the trained model.

The 36 features: at full and half scale, a generalised-Gaussian fit of the MSCN coefficients
(shape α, variance) and asymmetric generalised-Gaussian fits of the four neighbour products
(α, mean, left and right variance), as the authors' ``brisque_feature.m`` computes them. They
are scaled with the release's ``allrange`` (libsvm ``svm-scale`` range file) and scored with
its ``allmodel`` (a libsvm ε-SVR with an RBF kernel): score = Σ coefᵢ·exp(−γ‖x − svᵢ‖²) − ρ.
Both are plain text, parsed here (no pickles, no libsvm needed); the model cannot be
downloaded at run time, so :func:`load_brisque_model` reads it from a folder the user gives.
Lower is better (0 ≈ pristine, 100 ≈ badly distorted natural images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrilearn.errors import DataError
from mrilearn.metrics.nss import aggd_fit, ggd_fit, half_scale, mscn, pair_products

N_FEATURES = 36
MODEL_FILE, RANGE_FILE = "allmodel", "allrange"


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The (36,) BRISQUE features of a 2-D image on a 0..255 scale."""
    img = np.asarray(image, np.float32)
    if img.ndim != 2 or min(img.shape) < 8:
        raise DataError(f"BRISQUE needs a 2-D image of at least 8×8, got shape {img.shape}")
    feats: list[float] = []
    for _ in range(2):
        m, _ = mscn(img)
        alpha, sigma = ggd_fit(m)
        feats += [alpha, sigma**2]
        for prod in pair_products(m):
            a, mean, bl, br = aggd_fit(prod)
            to_std = math.sqrt(math.gamma(3 / a) / math.gamma(1 / a))  # scale β → std
            feats += [a, mean, (bl * to_std) ** 2, (br * to_std) ** 2]
        img = half_scale(img)
    return np.asarray(feats)


@dataclass
class BrisqueModel:
    """An ε-SVR (RBF) over range-scaled features: support vectors (S, 36), their coefficients
    (S,), γ, ρ, and the scaling (target ``lower``/``upper``, per-feature ``fmin``/``fmax``)."""

    sv: np.ndarray
    coef: np.ndarray
    gamma: float
    rho: float
    lower: float
    upper: float
    fmin: np.ndarray
    fmax: np.ndarray
    source: str = ""

    def scale(self, feats: np.ndarray) -> np.ndarray:
        """``svm-scale -r``: map [fmin, fmax] to [lower, upper]; constant features become 0."""
        span = self.fmax - self.fmin
        ok = span != 0
        out = np.zeros_like(feats, dtype=np.float64)
        out[ok] = self.lower + (self.upper - self.lower) * (feats[ok] - self.fmin[ok]) / span[ok]
        return out

    def predict(self, feats: np.ndarray) -> float:
        x = self.scale(np.asarray(feats, np.float64))
        k = np.exp(-self.gamma * ((self.sv - x) ** 2).sum(1))
        return float(self.coef @ k - self.rho)


def brisque(image: np.ndarray, model: BrisqueModel) -> float:
    """BRISQUE score of a 2-D image (0..255)."""
    return model.predict(brisque_features(image))


def load_brisque_model(folder: str | Path) -> BrisqueModel:
    """Read ``allmodel`` and ``allrange`` (the BRISQUE release's libsvm files) from ``folder``."""
    folder = Path(folder)
    model_path, range_path = folder / MODEL_FILE, folder / RANGE_FILE
    for p in (model_path, range_path):
        if not p.is_file():
            raise DataError(
                f"{p}: not found; trainer.brisque_model must be a folder holding the BRISQUE "
                f"release's {MODEL_FILE} and {RANGE_FILE} (libsvm text files)"
            )
    try:
        header, sv, coef = _read_libsvm_model(model_path)
        lower, upper, fmin, fmax = _read_range(range_path)
        model = BrisqueModel(
            sv, coef, float(header["gamma"]), float(header["rho"]), lower, upper, fmin, fmax,
            str(folder),
        )  # fmt: skip
    except (KeyError, ValueError, IndexError) as err:
        raise DataError(f"{folder}: not a BRISQUE libsvm model ({str(err)[:200]})") from None
    if header.get("kernel_type") != "rbf" or "svr" not in header.get("svm_type", ""):
        raise DataError(f"{model_path}: need an RBF-kernel SVR, got {header}")
    return model


def _read_libsvm_model(path: Path) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Header (``key value`` lines up to ``SV``), support vectors and their coefficients."""
    lines = path.read_text().splitlines()
    start = lines.index("SV")
    header = dict(line.split(None, 1) for line in lines[:start] if line.strip())
    rows = [line.split() for line in lines[start + 1 :] if line.strip()]
    sv = np.zeros((len(rows), N_FEATURES))
    coef = np.empty(len(rows))
    for i, row in enumerate(rows):
        coef[i] = float(row[0])
        for item in row[1:]:
            index, value = item.split(":")
            sv[i, int(index) - 1] = float(value)
    if not len(rows) or int(header.get("total_sv", len(rows))) != len(rows):
        raise ValueError(f"{len(rows)} support vectors, header says {header.get('total_sv')}")
    return header, sv, coef


def _read_range(path: Path) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``svm-scale`` range file: ``x``, ``lower upper``, then ``index min max`` lines."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if lines[0] != ["x"]:
        raise ValueError("range file must start with a line 'x' (feature scaling)")
    lower, upper = (float(v) for v in lines[1])
    fmin, fmax = np.zeros(N_FEATURES), np.zeros(N_FEATURES)
    for index, lo, hi in lines[2:]:
        fmin[int(index) - 1], fmax[int(index) - 1] = float(lo), float(hi)
    return lower, upper, fmin, fmax
