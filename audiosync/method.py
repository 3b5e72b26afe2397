"""How a lag and its confidence are decided: the phase transform (default) or the seed method.

Measured on the project's corpus of real music (bench/accuracy.py, README):
the phase transform (PHAT: the cross-spectrum divided by its magnitude, so
every frequency counts by its phase alone) limited to 0-8 kHz, with 50 ms
fades at the cut edges, a peak prominence as confidence (the peak over the
largest value more than 30 ms away) and a parabola for sub-sample lags. The
seed method is the original one: raw cross-correlation, |Pearson| at the
peak as confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from audiosync.errors import SilentInputError
from audiosync.xcorr import Correlator

__all__ = ["METHODS", "NOTHING", "Estimate", "confidence_of", "estimate", "make_correlator"]

METHODS = ("phat", "seed")
BAND_HZ = 8000.0       # above this codecs differ, and whitening empty bins makes false peaks
TAPER_HZ = 1000.0      # raised-cosine edge below BAND_HZ
FADE_S = 0.050         # fade at each cut edge of both signals
GUARD_S = 0.030        # zone around the peak left out of the second peak
MIN_OVERLAP_S = 1.0    # lags overlapping less than this are not considered
# Prominence at which the corpus had no confident different-song pair and
# no confident null interval: confidence 0.95 is mapped to it. Offline the
# whole inputs are seen; live, short captures match more places by chance,
# so the first intervals ask for more (2.0 at 3 s, 1.9 at 6 s, 1.6 from 10 s).
OFFLINE_THRESHOLD = 1.5
LIVE_THRESHOLDS = ((3.0, 2.0), (6.0, 1.9), (math.inf, 1.6))
# The thresholds were calibrated on captures of 3 s and more; a shorter one
# (a custom schedule) is reported but never confident.
MIN_CONFIDENT_S = 3.0


def threshold(mode: str, interval_s: float = math.inf) -> float:
    """The prominence that reads as confidence 0.95 (offline, or live after interval_s of capture)."""
    if mode == "offline":
        return OFFLINE_THRESHOLD
    return next(t for upto, t in LIVE_THRESHOLDS if interval_s <= upto + 1e-9)


@dataclass(frozen=True)
class Estimate:
    lag: int              # integer lag, samples
    fraction: float       # sub-sample offset of the peak, in (-0.5, 0.5)
    coefficient: float    # Pearson at the integer lag (0 when silent)
    prominence: float     # peak / best value more than GUARD_S away (nan for seed)
    confidence: float     # in [0, 1]; 0.95 at the mode's threshold

    def lag_ms(self, rate: int) -> float:
        return 1000.0 * (self.lag + self.fraction) / rate


# Nothing to find (a silent overlap): lag 0, not confident.
NOTHING = Estimate(0, 0.0, 0.0, 0.0, 0.0)


def confidence_of(prominence: float, limit: float) -> float:
    """Map a prominence to [0, 1] so that the calibrated threshold ``limit`` reads 0.95.

    ``1 - 0.05 (T - 1) / (p - 1)``: 0 at p <= 1 (no peak stands out), 0.95
    at the threshold T, approaching 1 as the peak stands further out.
    """
    if not prominence > 1.0 or not math.isfinite(prominence):
        return 0.0 if not prominence > 1.0 else 1.0
    return max(0.0, 1.0 - 0.05 * (limit - 1.0) / (prominence - 1.0))


@lru_cache(maxsize=16)
def _band(n: int, rate: int) -> np.ndarray:
    f = np.arange(n // 2 + 1) * (rate / n)
    w = np.zeros(n // 2 + 1, np.float32)
    top = min(BAND_HZ, rate / 2)
    w[f <= top - TAPER_HZ] = 1.0
    edge = (f > top - TAPER_HZ) & (f <= top)
    w[edge] = 0.5 + 0.5 * np.cos(np.pi * (f[edge] - (top - TAPER_HZ)) / TAPER_HZ)
    w.setflags(write=False)
    return w


def make_correlator(source: np.ndarray, max_sample_length: int, method: str, rate: int,
                    precision: str = "single") -> Correlator:
    """A linear correlator of ``source`` prepared for ``method`` (one of METHODS)."""
    fade = int(round(FADE_S * rate)) if method == "phat" else 0
    return Correlator(source, max_sample_length=max_sample_length, linear=True, fade=fade,
                      precision=precision)


def estimate(correlator: Correlator, sample: np.ndarray, method: str, rate: int, mode: str,
             interval_s: float = math.inf) -> Estimate:
    """Locate ``sample`` in the correlator's source and say how sure that is."""
    m, n = correlator.source.shape[0], len(sample)
    if method == "seed":
        try:
            peak = correlator.find(sample)
        except SilentInputError:
            return replace(NOTHING, prominence=math.nan)
        return Estimate(peak.lag, 0.0, peak.coefficient, math.nan, abs(peak.coefficient))
    overlap = min(int(MIN_OVERLAP_S * rate), n, m)
    lags = (-(n - overlap), m - overlap)
    try:
        peak = correlator.find(sample, lags=lags, weights=_band(correlator.n, rate), beta=1.0,
                               guard=int(round(GUARD_S * rate)))
    except SilentInputError:
        return NOTHING
    confidence = confidence_of(peak.prominence, threshold(mode, interval_s))
    if mode == "live" and n < MIN_CONFIDENT_S * rate - 1:
        confidence = min(confidence, 0.5)
    return Estimate(peak.lag, peak.fraction, peak.coefficient, peak.prominence, confidence)
