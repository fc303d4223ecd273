"""Natural-scene statistics shared by NIQE, PIQE and BRISQUE: MSCN coefficients, neighbour
products, and moment-matching fits of generalised Gaussians (symmetric GGD, asymmetric AGGD)
by a search over the shape α in 0.2..10 (step 0.001), as the authors' MATLAB code does."""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage
import scipy.special
from PIL import Image

GAMMAS = np.arange(0.2, 10.0, 0.001)
R_GAMMA = scipy.special.gamma(2 / GAMMAS) ** 2 / (
    scipy.special.gamma(1 / GAMMAS) * scipy.special.gamma(3 / GAMMAS)
)


def gauss_window(radius: int = 3, sigma: float = 7 / 6) -> np.ndarray:
    w = np.exp(-0.5 * np.arange(-radius, radius + 1) ** 2 / sigma**2)
    return w / w.sum()


def mscn(
    image: np.ndarray, c: float = 1.0, border: str = "constant"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients and the local std, both (H, W).

    Local mean and std come from a separable 7×7 Gaussian (σ = 7/6); ``border`` is the
    scipy.ndimage mode outside the image: zero (NIQE, BRISQUE) or ``nearest`` (PIQE).
    """
    img = np.asarray(image, np.float64)
    w = gauss_window()

    def blur(a: np.ndarray) -> np.ndarray:
        a = scipy.ndimage.correlate1d(a, w, 0, mode=border)
        return scipy.ndimage.correlate1d(a, w, 1, mode=border)

    mu = blur(img)
    sigma = np.sqrt(np.abs(blur(img * img) - mu * mu))
    return (img - mu) / (sigma + c), sigma


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Moment-matching AGGD fit: (shape α, mean, left scale βl, right scale βr)."""
    x = np.ravel(x)
    left, right = x[x < 0], x[x >= 0]
    sl = math.sqrt(np.mean(left * left)) if left.size else 0.0
    sr = math.sqrt(np.mean(right * right)) if right.size else 0.0
    mean_sq = float(np.mean(x * x))
    if sr == 0 or mean_sq == 0:
        return 10.0, 0.0, 0.0, 0.0  # a flat patch: the largest shape of the search range
    g = sl / sr
    r_hat = float(np.mean(np.abs(x))) ** 2 / mean_sq
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = float(GAMMAS[np.argmin((R_GAMMA - r_norm) ** 2)])
    g1, g2, g3 = (scipy.special.gamma(k / alpha) for k in (1, 2, 3))
    ratio = math.sqrt(g1 / g3)
    bl, br = ratio * sl, ratio * sr
    return alpha, (br - bl) * g2 / g1, bl, br


def ggd_fit(x: np.ndarray) -> tuple[float, float]:
    """Moment-matching generalised-Gaussian fit: (shape α, standard deviation σ)."""
    x = np.ravel(np.asarray(x, np.float64))
    var, mean_abs = float(np.mean(x * x)), float(np.mean(np.abs(x)))
    if var == 0:
        return float(GAMMAS[-1]), 0.0  # a flat image: the largest shape of the search range
    alpha = float(GAMMAS[np.argmin(np.abs(var / mean_abs**2 - 1 / R_GAMMA))])
    return alpha, math.sqrt(var)


def pair_products(m: np.ndarray) -> list[np.ndarray]:
    """Products of MSCN neighbours: horizontal, vertical, main and secondary diagonal."""
    down = np.roll(m, 1, axis=0)
    return [
        m * np.roll(m, 1, axis=1),
        m * down,
        m * np.roll(down, 1, axis=1),
        m * np.roll(down, -1, axis=1),
    ]


def half_scale(image: np.ndarray) -> np.ndarray:
    """Bicubic down-sizing by 2 (antialiased, like MATLAB's ``imresize(x, 0.5)``), float32."""
    img = np.asarray(image, np.float32)
    h, w = img.shape
    return np.asarray(Image.fromarray(img, mode="F").resize((w // 2, h // 2), Image.BICUBIC))
