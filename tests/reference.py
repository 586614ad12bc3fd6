"""NumPy ground truth: brute-force assignment, the SQ loss and Lloyd k-means."""

from __future__ import annotations

import numpy as np


def sq_dists(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    x = pixels.astype(np.float64)
    y = palette.astype(np.float64)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def assign(pixels: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = sq_dists(pixels, palette)
    idx = d.argmin(1)  # numpy argmin also breaks ties by the lowest index
    return idx, d[np.arange(len(d)), idx]


def power_loss(palette, pixels, rank=2.0, weights=None) -> float:
    d = np.sqrt(sq_dists(pixels, palette).min(1)) ** rank
    w = np.ones(len(d)) if weights is None else np.asarray(weights, np.float64)
    return float((w * d).sum() / w.sum())


def sq_gradient(palette, pixels, rank=2.0) -> np.ndarray:
    """SQ's stochastic generalised gradient of the batch-mean loss, by its formula."""
    palette = palette.astype(np.float64)
    idx, _ = assign(pixels, palette)
    g = np.zeros_like(palette)
    for x, k in zip(pixels.astype(np.float64), idx, strict=True):
        diff = palette[k] - x
        norm = np.linalg.norm(diff)
        if norm > 0:
            g[k] += rank * norm ** (rank - 2) * diff
    return g / len(pixels)


def kmeans(pixels: np.ndarray, k: int, seed: int = 0, iters: int = 100) -> np.ndarray:
    """Lloyd's k-means from a plain k-means++ seed; returns the float64 palette."""
    rng = np.random.default_rng(seed)
    x = pixels.astype(np.float64)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = sq_dists(x, np.array(centres)).min(1)
        p = d / d.sum() if d.sum() > 0 else np.full(len(x), 1 / len(x))
        centres.append(x[rng.choice(len(x), p=p)])
    c = np.array(centres)
    for _ in range(iters):
        idx, _ = assign(x, c)
        new = np.array([x[idx == j].mean(0) if np.any(idx == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c
