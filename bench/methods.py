"""Candidate sync methods, prototyped in numpy/scipy (not part of the package).

Every method works on decoded mono float arrays, ``source`` = the download
and ``sample`` = the capture, both at ``sr`` (48 kHz in the evaluation), and
finds ``lag`` with ``sample[i] ≈ source[i + lag]`` (the package's convention).

The building block is :func:`correlate`: a generalised cross-correlation

    X = rfft(source, n),  Y = rfft(sample, n),  n = next_fast_len(M + N)
    G = X · conj(Y) · B(f) / (|X| |Y| + eps)^beta
    r = irfft(G, n)

with ``beta`` = 0 the plain cross-correlation of the package, ``beta`` = 1
GCC-PHAT (phase only), ``B(f)`` a band mask with raised-cosine edges, the
peak = argmax |r| over the admissible lags, refined by a parabola through the
three samples around it, and these confidence features:

* ``prominence`` = |r|(peak) / max |r| outside ±guard_ms of the peak;
* ``z`` = |r|(peak) / RMS of r over the admissible lags;
* ``pearson`` = Pearson coefficient of the raw overlapping segments at the
  (integer, full-rate) lag, as the package computes it.

:func:`live_history` runs one correlation per interval of the live schedule
(the first T seconds of the capture against the download), and
:class:`LiveRule` decides at which interval the answer is confident.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import fft as sfft
from scipy import signal

SCHEDULE = (3, 6, 10, 15, 20, 30)
WORKERS = 2


@dataclass(frozen=True)
class Variant:
    """One way of correlating."""

    rate: int = 16000          # processing rate (the inputs are resampled to it)
    beta: float = 1.0          # whitening exponent: 0 plain, 1 PHAT
    band: tuple[float, float] | None = (100.0, 4000.0)  # Hz, None = all
    guard_ms: float = 30.0     # the zone around the peak ignored for the second peak
    min_overlap_s: float = 1.0  # lags with less overlap than this are not considered
    polarity: bool = True      # search |r| (an inverted capture is found too)
    taper_ms: float = 0.0      # raised-cosine fade-in/out of both signals' ends before the FFT

    def label(self) -> str:
        band = "full" if self.band is None else f"{self.band[0]:g}-{self.band[1]:g}"
        return f"{self.rate // 1000}k b{self.beta:g} {band} g{self.guard_ms:g} t{self.taper_ms:g}"


def taper(x: np.ndarray, k: int) -> np.ndarray:
    """x with its first and last k samples faded by a half-Hann ramp (a copy)."""
    if k <= 0 or len(x) < 4 * k:
        return x
    x = np.array(x, np.float32, copy=True)
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)).astype(np.float32)
    x[:k] *= ramp
    x[-k:] *= ramp[::-1]
    return x


def resample(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Linear-phase polyphase resampling (no delay): sr -> rate."""
    if rate == sr:
        return np.asarray(x, np.float32)
    f = Fraction(rate, sr)
    return signal.resample_poly(np.asarray(x, np.float32), f.numerator, f.denominator).astype(np.float32)


def band_mask(n: int, rate: int, band: tuple[float, float] | None) -> np.ndarray | None:
    """Band mask over the rfft bins of size n: 1 inside, raised-cosine edges (lo/2, hi/8 wide)."""
    if band is None:
        return None
    lo, hi = band
    f = np.arange(n // 2 + 1) * (rate / n)
    m = np.zeros(len(f), np.float32)
    wl, wh = lo / 2, hi / 8
    inside = (f >= lo) & (f <= hi - wh)
    m[inside] = 1
    rise = (f >= lo - wl) & (f < lo)
    m[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - (lo - wl)) / wl)
    fall = (f > hi - wh) & (f <= hi)
    m[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - (hi - wh)) / wh)
    return m


class SpectrumCache:
    """rfft of the downloads, kept across calls (a benchmark speed-up: the download is shared)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._d: dict = {}
        self._masks: dict = {}

    def rfft(self, key, x: np.ndarray, n: int) -> np.ndarray:
        if not self.enabled or key is None:
            return sfft.rfft(x, n, workers=WORKERS)
        k = (key, n)
        if k not in self._d:
            self._d[k] = sfft.rfft(x, n, workers=WORKERS)
        return self._d[k]

    def resampled(self, key, x: np.ndarray, sr: int, rate: int) -> np.ndarray:
        if not self.enabled or key is None or rate == sr:
            return resample(x, sr, rate)
        k = ("rs", key, rate)
        if k not in self._d:
            self._d[k] = resample(x, sr, rate)
        return self._d[k]

    def mask(self, n, rate, band):
        k = (n, rate, band)
        if k not in self._masks:
            self._masks[k] = band_mask(n, rate, band)
        return self._masks[k]

    def clear(self):
        self._d.clear()


def pearson_at(source: np.ndarray, sample: np.ndarray, lag: int) -> float:
    """Pearson of the overlap at ``sample[i] ≈ source[i + lag]`` (0.0 when undefined)."""
    if lag >= 0:
        x = sample[: max(0, min(len(sample), len(source) - lag))]
        y = source[lag: lag + len(x)]
    else:
        x = sample[-lag:][: len(source)]
        y = source[: len(x)]
    if len(x) < 2:
        return 0.0
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    x = x - x.mean()
    y = y - y.mean()
    d = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    return float(np.dot(x, y) / d) if d > 0 else 0.0


def correlate(source: np.ndarray, sample: np.ndarray, sr: int, variants: list[Variant], *,
              nfft_samples: int | None = None, cache: SpectrumCache | None = None,
              source_key=None, want_pearson: bool = True, sample_key=None) -> list[dict]:
    """Features of every variant (variants of one rate share the transforms).

    ``nfft_samples``: the longest sample (at ``sr``) to size the transform for,
    so the download's transform can be reused for every interval.
    """
    cache = cache or SpectrumCache(enabled=False)
    out: dict[Variant, dict] = {}
    by_rate: dict[tuple, list[Variant]] = {}
    for v in variants:
        by_rate.setdefault((v.rate, v.taper_ms), []).append(v)
    for (rate, taper_ms), vs in by_rate.items():
        k_t = int(round(taper_ms * rate / 1000))
        src = taper(cache.resampled(source_key, source, sr, rate), k_t)
        smp = taper(resample(sample, sr, rate), k_t)
        if k_t and source_key is not None:
            source_key = (source_key, "taper", k_t)
        if k_t and sample_key is not None:
            sample_key = (sample_key, "taper", k_t)
        m, nn = len(src), len(smp)
        longest = nn if nfft_samples is None else max(nn, int(math.ceil(nfft_samples * rate / sr)) + 1)
        n = sfft.next_fast_len(m + longest, real=True)
        if not np.any(smp):
            for v in vs:
                out[v] = {"lag_ms": 0.0, "lag": 0, "prominence": 0.0, "z": 0.0, "pearson": 0.0,
                          "peak": 0.0, "silent": True}
            continue
        X = cache.rfft(source_key and (source_key, rate), src, n)
        Y = cache.rfft(sample_key and (sample_key, rate), smp, n)
        G0 = X * np.conj(Y)
        mag = None
        for v in vs:
            if v.beta:
                if mag is None:
                    mag = np.abs(G0)
                    eps = 1e-6 * float(mag.mean()) + 1e-30
                G = G0 / (mag + eps) ** v.beta
            else:
                G = G0
            mask = cache.mask(n, rate, v.band)
            if mask is not None:
                G = G * mask
            r = sfft.irfft(G, n, workers=WORKERS)
            ov = max(1, min(int(v.min_overlap_s * rate), nn))
            neg = nn - ov            # lags down to -(N - overlap)
            pos = m - ov             # lags up to M - overlap
            seg = np.concatenate([r[n - neg:], r[: pos + 1]]) if neg > 0 else r[: pos + 1]
            a = np.abs(seg) if v.polarity else seg
            i = int(np.argmax(a))
            peak = float(a[i])
            g = int(round(v.guard_ms * rate / 1000))
            lo, hi = max(0, i - g), min(len(a), i + g + 1)
            second = max(float(a[:lo].max()) if lo > 0 else 0.0,
                         float(a[hi:].max()) if hi < len(a) else 0.0)
            rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))
            lag = i - neg
            # parabolic refinement on the signed correlation
            frac = 0.0
            if 0 < i < len(seg) - 1:
                y0, y1, y2 = float(seg[i - 1]), float(seg[i]), float(seg[i + 1])
                den = y0 - 2 * y1 + y2
                if den != 0:
                    frac = max(-0.5, min(0.5, 0.5 * (y0 - y2) / den))
            lag_ms = (lag + frac) * 1000.0 / rate
            full_lag = int(round((lag + frac) * sr / rate))
            out[v] = {
                "lag_ms": lag_ms, "lag": full_lag, "peak": peak, "second": second,
                "prominence": peak / second if second > 0 else float("inf"),
                "z": peak / rms if rms > 0 else 0.0,
                "pearson": pearson_at(source, sample, full_lag) if want_pearson else None,
                "sign": 1 if seg[i] >= 0 else -1, "silent": False,
            }
    return [out[v] for v in variants]


def live_history(source, sample, sr, variants, *, schedule=SCHEDULE, cache=None, source_key=None,
                 want_pearson=True, sample_key=None) -> list[list[dict]]:
    """Per interval T of the schedule: features of every variant for capture[:T]."""
    hist = []
    nmax = int(schedule[-1] * sr)
    for t in schedule:
        n = int(round(t * sr))
        if n > len(sample):
            break
        feats = correlate(source, sample[:n], sr, variants, nfft_samples=nmax, cache=cache,
                          source_key=source_key, want_pearson=want_pearson,
                          sample_key=sample_key and (sample_key, t))
        for f in feats:
            f["interval_s"] = t
        hist.append(feats)
    # transpose: one list per variant
    return [[h[j] for h in hist] for j in range(len(variants))]


@dataclass(frozen=True)
class LiveRule:
    """When a live answer is confident.

    At interval k: confident if prominence_k >= ``thresholds[k]`` (one per
    interval, or one for all), or, when ``agree`` is set, if prominence of
    this and the previous interval are both >= ``agree`` and their lags are
    within ``agree_ms`` of each other. ``min_pearson`` adds |Pearson| >= it.
    """

    thresholds: tuple[float, ...] = (2.0,)
    agree: float | None = None
    agree_ms: float = 1.0
    min_pearson: float = 0.0
    feature: str = "prominence"

    def threshold(self, k: int) -> float:
        return self.thresholds[min(k, len(self.thresholds) - 1)]

    def decide(self, hist: list[dict]) -> tuple[int | None, int]:
        """(index of the deciding interval or None, index of the answer given)."""
        best = None
        for k, f in enumerate(hist):
            if f.get("silent"):
                continue
            ok_p = abs(f.get("pearson") or 0.0) >= self.min_pearson
            if ok_p and f[self.feature] >= self.threshold(k):
                return k, k
            if (self.agree is not None and k > 0 and ok_p and not hist[k - 1].get("silent")
                    and f[self.feature] >= self.agree and hist[k - 1][self.feature] >= self.agree
                    and abs(f["lag_ms"] - hist[k - 1]["lag_ms"]) <= self.agree_ms):
                return k, k
            if best is None or f[self.feature] >= hist[best][self.feature]:
                best = k
        return None, (best if best is not None else max(0, len(hist) - 1))
