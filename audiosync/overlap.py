"""Where two recordings overlap best: the lag whose overlap matches best, judged per overlap.

The offline method finds a short input inside a long one, where every lag
sees the whole of the short one. Two excerpts that only partly overlap
are another matter: a lag that lays them over each other for 19 s at a
Pearson coefficient of 0.4 (a loop heard again) outscores the true lag's
7 s at 0.99 in a plain correlation sum. Normalised by each lag's own
overlap, the true lag wins. Used by :func:`audiosync.align` to check each
pair (numpy transforms: the inputs are short, and this runs once per pair).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Overlap", "best_overlap", "OVERLAP_LIMIT"]

# Inputs longer than this together (samples) are not checked: the transforms' memory grows with them.
OVERLAP_LIMIT = 1 << 23


class Overlap(NamedTuple):
    lag: float
    """``y[i]`` meets ``x[i + lag]`` (sub-sample: a parabola through the peak)."""
    coefficient: float
    """The overlap's Pearson coefficient at ``lag`` (means removed over the whole inputs)."""
    second: float
    """The best coefficient more than ``apart`` samples from ``lag`` (a repeat: 0 when none)."""
    at: float
    """The coefficient at the lag asked about (``at``; 0 when it overlaps too little)."""


def best_overlap(x: np.ndarray, y: np.ndarray, min_overlap: int, apart: int, at: float = 0.0) -> Overlap | None:
    """The lag of ``y`` against ``x`` whose overlap (at least ``min_overlap`` samples) has the
    highest Pearson coefficient, and the coefficient at lag ``at``; None when no lag overlaps
    that much, the inputs are silent, or they are longer together than OVERLAP_LIMIT."""
    m, n = len(x), len(y)
    min_overlap = max(1, min_overlap)
    if min(m, n) < min_overlap or m + n > OVERLAP_LIMIT:
        return None
    x = np.asarray(x, np.float64) - float(np.mean(x))
    y = np.asarray(y, np.float64) - float(np.mean(y))
    size = 1 << int(m + n - 1).bit_length()
    product = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    lags = np.arange(-(n - min_overlap), m - min_overlap + 1)
    sums = product[lags % size]  # sum_i y[i] x[i + lag]
    # The overlap at a lag: y[lo:hi] against x[lo + lag:hi + lag]; energies from running sums.
    lo, hi = np.maximum(0, -lags), np.minimum(n, m - lags)
    ey = np.concatenate(([0.0], np.cumsum(y * y)))
    ex = np.concatenate(([0.0], np.cumsum(x * x)))
    energy = (ey[hi] - ey[lo]) * (ex[hi + lags] - ex[lo + lags])
    floor = 1e-12 * float(ey[-1]) * float(ex[-1])
    r = np.zeros(len(lags))
    loud = energy > floor  # an overlap that is silent in either input tells nothing
    r[loud] = sums[loud] / np.sqrt(energy[loud])
    if not np.any(r > 0):
        return None
    k = int(np.argmax(r))
    away = np.abs(lags - lags[k]) > apart
    second = float(np.max(r[away])) if np.any(away) else 0.0
    fraction = 0.0
    if 0 < k < len(r) - 1:
        bend = r[k - 1] - 2.0 * r[k] + r[k + 1]
        fraction = float(0.5 * (r[k - 1] - r[k + 1]) / bend) if bend < 0 else 0.0
    there = int(round(at)) - int(lags[0])
    at_r = float(r[there]) if 0 <= there < len(r) else 0.0
    return Overlap(float(lags[k]) + fraction, float(r[k]), max(0.0, second), at_r)
