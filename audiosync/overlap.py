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

__all__ = ["Overlap", "best_overlap", "parabola_top", "OVERLAP_LIMIT"]

# Inputs longer than this together (samples) are not checked: the transforms' memory grows with them.
OVERLAP_LIMIT = 1 << 23


class Overlap(NamedTuple):
    lag: float
    """``y[i]`` meets ``x[i + lag]`` (sub-sample: a parabola through the peak)."""
    coefficient: float
    """The overlap's Pearson coefficient at ``lag`` (the parabola's top: a peak between two
    samples is not judged by the samples beside it)."""
    at: float
    """Likewise the best coefficient within ``reach`` samples of the lag asked about (``at``; 0
    when none of those overlaps enough)."""


def best_overlap(x: np.ndarray, y: np.ndarray, min_overlap: int, at: float = 0.0, reach: int = 0) -> Overlap | None:
    """The lag of ``y`` against ``x`` whose overlap (at least ``min_overlap`` samples) has the
    highest Pearson coefficient (each overlap's own means removed), and the best coefficient
    within ``reach`` of lag ``at``; None when no lag overlaps that much, no overlap correlates
    positively, or the inputs are longer together than OVERLAP_LIMIT."""
    m, n = len(x), len(y)
    min_overlap = max(2, min_overlap)
    if min(m, n) < min_overlap or m + n > OVERLAP_LIMIT:
        return None
    x = np.asarray(x, np.float64) - float(np.mean(x))  # centred first: the sums below stay exact
    y = np.asarray(y, np.float64) - float(np.mean(y))
    size = 1 << int(m + n - 1).bit_length()
    product = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    lags = np.arange(-(n - min_overlap), m - min_overlap + 1)
    # The overlap at a lag: y[lo:hi] against x[lo + lag:hi + lag]; its sums from running sums.
    lo, hi = np.maximum(0, -lags), np.minimum(n, m - lags)
    count = (hi - lo).astype(np.float64)

    def running(v: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(v)))

    sy, syy, sx, sxx = running(y), running(y * y), running(x), running(x * x)
    y_sum, x_sum = sy[hi] - sy[lo], sx[hi + lags] - sx[lo + lags]
    covariance = product[lags % size] - x_sum * y_sum / count
    y_var = syy[hi] - syy[lo] - y_sum * y_sum / count
    x_var = sxx[hi + lags] - sxx[lo + lags] - x_sum * x_sum / count
    # An overlap that is (nearly) constant in either input, digital silence, tells nothing.
    quiet_y = 1e-6 * float(syy[-1]) / n * count
    quiet_x = 1e-6 * float(sxx[-1]) / m * count
    r = np.zeros(len(lags))
    loud = (y_var > quiet_y) & (x_var > quiet_x)
    r[loud] = covariance[loud] / np.sqrt(y_var[loud] * x_var[loud])
    if not np.any(r > 0):
        return None
    k = int(np.argmax(r))
    fraction, top = parabola_top(r, k)
    at_r = 0.0
    first, last = int(np.floor(at)) - reach - int(lags[0]), int(np.ceil(at)) + reach - int(lags[0])
    for j in range(max(0, first), min(len(r), last + 1)):
        local_top = (j == 0 or r[j] >= r[j - 1]) and (j == len(r) - 1 or r[j] >= r[j + 1])
        at_r = max(at_r, parabola_top(r, j)[1] if local_top else float(r[j]))
    return Overlap(float(lags[k]) + fraction, top, at_r)


def parabola_top(r: np.ndarray, k: int) -> tuple[float, float]:
    """The offset and height of the parabola through r[k-1], r[k], r[k+1] (r[k] a local top)."""
    if 0 < k < len(r) - 1:
        bend = r[k - 1] - 2.0 * r[k] + r[k + 1]
        if bend < 0:
            fraction = float(0.5 * (r[k - 1] - r[k + 1]) / bend)
            return fraction, float(min(1.0, r[k] - 0.25 * (r[k - 1] - r[k + 1]) * fraction))
    return 0.0, float(r[k])
