"""The lag over time: windows of ``other`` found near a model line, clock drift and breaks.

Two clocks never run at exactly the same rate: ``other(t) ≈ ref(t (1 + d) + a)``.
One correlation of the whole answers the lag of the middle and smears the
peak by ``d`` times the length. Here ``other`` is cut into windows; each
window is looked for in a narrow range of the reference around the model
line ``lag(t) = a + d t``, with the reference read along that line (cubic
interpolation), so a window's peak stays sharp whatever the drift. The
window lags are fitted by a line (least squares on the windows that agree,
the others left out), and the search is done again along the new line:
two rounds reach the precision of the windows themselves.

A window that is not found near the line is looked for in the whole
reference when a correlator for that is at hand: a confident place
elsewhere is a break (an edit, a lost buffer, another intro).

Inputs too long for one transform of both (an hour each) get their first
line from :func:`anchor`: a few windows of ``other`` looked for in the
whole reference at a low rate.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from audiosync.method import Estimate, estimate, make_correlator, nearby
from audiosync.xcorr import Correlator, free_buffers

__all__ = ["Break", "LagMap", "MapPoint", "anchor", "decimate", "lag_map", "warp", "window_samples"]

MAX_WINDOW_S = 10.0    # longer windows add little precision and blur a break's place
MIN_WINDOW_S = 2.0     # shorter ones are too often not confident
WINDOWS = 6            # a short overlap is cut into this many windows (a line needs 3)
FIRST_MARGIN_S = 0.1   # the first round's reach around the line, plus FIRST_PPM of the overlap
FIRST_PPM = 1000.0     # clocks drifting more than this are not clocks but speed changes
FINAL_MARGIN_S = 0.005  # the last round's reach beyond the spread of the first
BREAK_MS = 1.0         # a window this far off the line (and beyond its noise) is elsewhere
MIN_FIT = 3            # windows needed for a drift
SHARED_SAMPLES = 0.1   # a lag error (samples) the windows can share: a floor under drift_ppm_error
MAX_WIDE = 8           # windows looked for in the whole reference, at most (each costs a whole search)
PROBE_WINDOWS = 24     # with twice as many windows or more, the first line comes from about this many


class MapPoint(NamedTuple):
    """One window of the lag map."""

    time_s: float
    """The window's middle, in seconds of ``other``'s own timeline."""
    lag_ms: float
    """The lag there: ``other(time_s) ≈ reference(time_s + lag_ms / 1000)``."""
    confidence: float


class Break(NamedTuple):
    """A jump of the lag between two neighbouring windows."""

    time_s: float
    lag_before_ms: float
    lag_after_ms: float


@dataclass(frozen=True)
class LagMap:
    """What :func:`lag_map` found (lags in samples of the analysis rate, times in samples of other)."""

    start: float             # the line's lag at other's sample 0
    slope: float             # d: lag samples per sample of other
    slope_error: float       # its standard error (inf with fewer than MIN_FIT windows)
    points: tuple[MapPoint, ...]
    breaks: tuple[Break, ...]
    fitted: int              # windows on the line
    origin: float = math.nan  # the lag at other's sample 0 of the stretch that starts it (start when no break)

    @property
    def drift_ppm(self) -> float | None:
        return None if self.fitted < MIN_FIT else 1e6 * self.slope

    @property
    def drift_ppm_error(self) -> float | None:
        return None if self.fitted < MIN_FIT else 1e6 * self.slope_error


def window_samples(overlap: int, rate: int) -> int:
    """The window length for an overlap of ``overlap`` samples."""
    w = min(MAX_WINDOW_S * rate, max(MIN_WINDOW_S * rate, overlap / WINDOWS))
    return int(min(w, overlap))


def _along(ref: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``ref`` read at fractional ``positions`` (Catmull-Rom cubic; 0 outside)."""
    i = np.floor(positions).astype(np.int64)
    t = positions - i
    inside = (i >= 1) & (i < len(ref) - 2)
    i = np.where(inside, i, 1)
    # The positions need float64 (an hour is 5.8e7 samples); the weights and samples do not.
    t = t.astype(np.float32)
    p0, p1, p2, p3 = (np.asarray(ref[i + k], np.float32) for k in (-1, 0, 1, 2))
    y = p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)))
    return np.where(inside, y, np.float32(0.0))


def warp(oth: np.ndarray, slope: float) -> np.ndarray:
    """``oth`` played back ``1 + slope`` times slower, so that it keeps time with the reference."""
    length = int(len(oth) * (1.0 + slope))
    return _along(oth, np.arange(length, dtype=np.float64) / (1.0 + slope))


def _find_near(ref: np.ndarray, x: np.ndarray, s: int, start: float, slope: float, margin: int,
               method: str, rate: int) -> Estimate | None:
    """Window ``x`` (other from sample ``s``) looked for within ``margin`` of the line.

    Returns the estimate with ``lag`` the window's offset from the line (in
    samples), or None when the line leaves the reference there.
    """
    w = len(x)
    ks = np.arange(-margin, w + margin, dtype=np.float64)
    positions = start + (s + ks) * (1.0 + slope)
    if positions[0] < 1 or positions[-1] >= len(ref) - 2:
        return None
    y = _along(ref, positions)
    # Lags 0 to 2 margin only, which never wrap in a transform as long as y: half the linear one.
    correlator = make_correlator(y, w, method, rate, linear=False)
    if method == "phat":
        est = nearby(correlator, x, rate, (0, 2 * margin))
    else:
        est = estimate(correlator, x, method, rate, "offline", lags=(0, 2 * margin))
    return replace(est, lag=est.lag - margin)


def _each(fn, items: list) -> list:
    """``[fn(x) for x in items]``, every other item on a second thread when there are two cores:
    the windows are independent and alike in size, and the kernel and numpy's large operations
    release the GIL."""
    if len(items) < 2 or (os.cpu_count() or 1) < 2:
        return [fn(x) for x in items]
    out: list = [None] * len(items)
    failed: list[BaseException] = []

    def odd() -> None:
        try:
            out[1::2] = [fn(x) for x in items[1::2]]
        except BaseException as exc:  # raised in the caller's thread, below
            failed.append(exc)

    helper = threading.Thread(target=odd, name="audiosync-window", daemon=True)
    helper.start()
    try:
        out[0::2] = [fn(x) for x in items[0::2]]
    finally:
        helper.join()  # no thread outlives the call
    if failed:
        raise failed[0]
    return out


def _median(x: np.ndarray) -> float:
    """np.median of a non-empty 1-D array of finite values (the windows' lags and slopes), without
    the import of numpy.ma that np.median's NaN check makes on first use (10 ms of a short pair's
    answer)."""
    k = len(x) // 2
    if len(x) % 2:
        return float(np.partition(x, k)[k])
    part = np.partition(x, (k - 1, k))
    return 0.5 * (float(part[k - 1]) + float(part[k]))


def _agreeing(t: np.ndarray, lag: np.ndarray, tolerance: float) -> np.ndarray:
    """The points that agree with one line, before any least squares: a jump in the lag (a lost
    buffer) would tilt a fit through all of them. The drift is the median of neighbours' slopes
    (one jump spoils one of them); the points are then grouped by their lag less that drift, and
    the largest group (on a tie, the earliest) is kept."""
    if len(t) < 3:
        return np.ones(len(t), bool)
    order = np.argsort(t)
    steps = np.diff(t[order])
    slopes = np.diff(lag[order])[steps > 0] / steps[steps > 0]
    drift = _median(slopes) if len(slopes) else 0.0
    level = lag - drift * t
    by_level = np.argsort(level)
    groups = np.split(by_level, np.nonzero(np.diff(level[by_level]) > tolerance)[0] + 1)
    best = max(groups, key=lambda g: (len(g), -float(t[g].min())))
    keep = np.zeros(len(t), bool)
    keep[best] = True
    return keep


def _line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The least-squares line through (t, y): (slope, intercept). np.polyfit's answer, without
    the import of numpy.ma and a LAPACK call it makes on first use. The windows' times differ,
    so the spread of t is never 0 (the floor only keeps the division defined)."""
    tm, ym = float(t.mean()), float(y.mean())
    tc = t - tm
    slope = float(np.sum(tc * (y - ym))) / max(float(np.sum(tc * tc)), 1e-300)
    return slope, ym - slope * tm


def _fit(t: np.ndarray, lag: np.ndarray, tolerance: float) -> tuple[float, float, float, np.ndarray]:
    """Robust line through (t, lag): least squares, then again without the points off it.

    Returns (intercept, slope, slope standard error, inlier mask).
    """
    keep = _agreeing(t, lag, tolerance)
    for _ in range(4):
        if keep.sum() < 2:
            break
        slope, intercept = _line(t[keep], lag[keep])
        residual = lag - (intercept + slope * t)
        spread = 1.4826 * _median(np.abs(residual[keep]))
        new = np.abs(residual) <= max(tolerance, 4.0 * spread)
        if (new == keep).all():
            break
        keep = new
    if keep.sum() < 2:
        return float(lag[0]) if len(lag) else 0.0, 0.0, math.inf, keep
    slope, intercept = _line(t[keep], lag[keep])
    n = int(keep.sum())
    if n < MIN_FIT:
        return float(intercept), float(slope), math.inf, keep
    residual = lag[keep] - (intercept + slope * t[keep])
    tc = t[keep] - t[keep].mean()
    scatter = float(np.sum(residual ** 2)) / (n - 2) / max(float(np.sum(tc ** 2)), 1e-300)
    # The windows agree with each other better than with the truth: a window's lag can be off
    # by a share of a sample that they share (the peak's parabola, the cubic reading), which
    # their scatter does not show. Counted as SHARED_SAMPLES at the two ends of the span.
    shared = SHARED_SAMPLES / max(float(t[keep].max() - t[keep].min()), 1.0)
    return float(intercept), float(slope), math.sqrt(scatter + shared ** 2), keep


def lag_map(ref: np.ndarray, oth: np.ndarray, lag: float, rate: int, method: str = "phat",
            slope: float = 0.0, min_confidence: float = 0.95, wide: Correlator | None = None,
            margin_s: float | None = None) -> LagMap:
    """The lag of ``oth`` in ``ref`` window by window, around the line ``lag + slope * t``.

    ``lag`` (samples, fractional) is where the line starts, at ``oth``'s
    sample 0; ``wide`` (a correlator of the whole ``ref`` for samples as
    long as a window) looks for the windows not found near the line.
    """
    m, n = len(ref), len(oth)
    first = max(0, int(math.ceil(-lag)))
    last = min(n, int(math.floor((m - lag) / (1.0 + slope))))
    overlap = last - first
    tolerance = BREAK_MS * rate / 1000.0
    if overlap < MIN_WINDOW_S * rate:
        return LagMap(lag, slope, math.inf, (), (), 0, lag)
    w = window_samples(overlap, rate)
    count = overlap // w
    offset = first + (overlap - count * w) // 2
    starts = [offset + i * w for i in range(count)]
    margin = int(round((FIRST_MARGIN_S + FIRST_PPM * 1e-6 * overlap / rate) * rate)) \
        if margin_s is None else int(round(margin_s * rate))
    line = (float(lag), slope)         # the line the windows are looked for along
    measured = line                     # the line the windows in `found` were measured against
    found: dict[int, Estimate] = {}
    keep = np.zeros(0, bool)
    error = math.inf
    # Many windows (an hour's 330): the first line from a spread few, so that every window is
    # looked for once, along a line already as good as the few make it, and narrowly.
    few = starts[::len(starts) // PROBE_WINDOWS] if len(starts) >= 2 * PROBE_WINDOWS else starts
    probed, first_margin = few is not starts, margin
    for _ in range(4 if probed else 3):  # up to three rounds of all the windows
        use, few = few, starts
        looks = _each(lambda s, line=line, margin=margin: _find_near(ref, oth[s:s + w], s, *line, margin, method, rate),
                      use)
        found = {s: est for s, est in zip(use, looks) if est is not None}
        measured = line
        sure = [s for s in found if found[s].confidence >= min_confidence]
        if len(sure) < 2 and use is not starts:
            continue  # the few found too little: all of them, around the same line
        if len(sure) < 2:
            break
        t = np.array([s + w / 2 for s in sure], np.float64)
        lags = np.array([line[0] + line[1] * (s + w / 2) + found[s].lag + found[s].fraction for s in sure])
        start, new_slope, error, keep = _fit(t, lags, tolerance)
        # Windows measured along a line this close to the new one are as sharp: no new round.
        settled = abs(new_slope - line[1]) * w < 0.05
        line = (start, new_slope)
        residual = lags[keep] - (start + new_slope * t[keep])
        margin = int(math.ceil((float(np.max(np.abs(residual))) if keep.any() else 0.0) + FINAL_MARGIN_S * rate))
        if settled and use is starts:
            break
    if probed and margin < first_margin:
        # Every window was looked for only narrowly: the ones not found there (a jump, another
        # intro) are looked for again as far as the first round reached, along the same line.
        lost = [s for s in starts if not (s in found and found[s].confidence >= min_confidence)]
        again = _each(lambda s: _find_near(ref, oth[s:s + w], s, *measured, first_margin, method, rate), lost)
        found.update((s, est) for s, est in zip(lost, again)
                     if est is not None and est.confidence >= min_confidence)
    start, slope = line
    points: list[MapPoint] = []
    wide_left = MAX_WIDE
    for s in starts:
        mid = s + w / 2
        est = found.get(s)
        if est is not None and est.confidence >= min_confidence:
            lag_here = measured[0] + measured[1] * mid + est.lag + est.fraction
            points.append(MapPoint(mid / rate, 1000.0 * lag_here / rate, est.confidence))
            continue
        if wide is not None and wide_left > 0 and len(keep) and keep.sum() >= 2:  # a line to break from
            wide_left -= 1
            far = estimate(wide, oth[s:s + w], method, rate, "offline")
            if far.confidence >= min_confidence:
                lag_here = far.lag + far.fraction - s  # the window's lag counts from its start
                points.append(MapPoint(mid / rate, 1000.0 * lag_here / rate, far.confidence))
                continue
        confidence = est.confidence if est is not None else 0.0
        guess = measured[0] + measured[1] * mid + (est.lag + est.fraction if est is not None else 0.0)
        points.append(MapPoint(mid / rate, 1000.0 * guess / rate, confidence))
    fitted = int(keep.sum()) if len(keep) else 0
    # The lag at other's start is its first stretch's: the line, unless the first confident
    # windows lie off it (other starts with another part, then jumps to the line's). Two windows
    # must agree on that: one window off the line alone does not move the answer.
    origin = start
    sure_points = [p for p in points if p.confidence >= min_confidence][:2]
    offs = [p.lag_ms * rate / 1000.0 - (start + slope * p.time_s * rate) for p in sure_points]
    if len(offs) == 2 and abs(offs[0]) > tolerance and abs(offs[1] - offs[0]) <= tolerance:
        origin = start + offs[0]
    return LagMap(start, slope, error, tuple(points), _breaks(points, slope, min_confidence, tolerance / rate),
                  fitted, origin)


def _breaks(points: list[MapPoint], slope: float, min_confidence: float, tolerance_s: float) -> tuple[Break, ...]:
    """Where consecutive confident windows disagree with the line between them by more than tolerance."""
    sure = [p for p in points if p.confidence >= min_confidence]
    out = []
    for p, q in zip(sure, sure[1:]):
        expected = p.lag_ms + 1000.0 * slope * (q.time_s - p.time_s)
        if abs(q.lag_ms - expected) > 1000.0 * tolerance_s:
            out.append(Break(round((p.time_s + q.time_s) / 2, 3), p.lag_ms, q.lag_ms))
    return tuple(out)


# -- long inputs: where the line is, from a few windows at a low rate ------------------------

ANCHOR_RATE = 2000     # the rate of the first look at long inputs (0-1 kHz)
ANCHOR_S = 30.0        # each anchor window's length
ANCHORS = 6            # windows spread over other


def decimate(x: np.ndarray, q: int) -> np.ndarray:
    """``x`` averaged over blocks of ``q`` samples: a cheap low-pass and a ``q`` times lower rate."""
    if q <= 1:
        return x
    return x[:len(x) // q * q].reshape(-1, q).mean(axis=1, dtype=np.float32)


def anchor(ref: np.ndarray, oth: np.ndarray, rate: int, method: str, min_confidence: float
           ) -> tuple[float, float, Estimate]:
    """Where ``oth`` lies in ``ref`` without one transform of both: (lag at oth's 0, slope, best estimate).

    A few windows of ``oth`` are looked for in the whole of ``ref``, both
    at ANCHOR_RATE (a transform an eighth as long), and a line is drawn
    through the confident ones. Lags are in samples of ``rate``.
    """
    q = max(1, rate // ANCHOR_RATE)
    low = max(1, int(round(rate / q)))
    r, o = decimate(ref, q), decimate(oth, q)
    w = min(len(o), len(r), int(ANCHOR_S * low))
    correlator = make_correlator(r, w, method, low)
    count = max(1, min(ANCHORS, len(o) // w))
    starts = np.linspace(0, len(o) - w, count).astype(int) if count > 1 else [0]
    # One transform at a time (not two threads, as the lag map's windows): this is the path for
    # inputs too long to spare memory, and two would add 250 MB to an hour's peak.
    found = [(int(s), estimate(correlator, o[s:s + w], method, low, "offline")) for s in starts]
    del correlator, r, o
    free_buffers()  # the low-rate transform's buffers: the windows to come are much shorter
    best = max(found, key=lambda f: f[1].confidence)[1]
    sure = [(s, e) for s, e in found if e.confidence >= min_confidence]
    if len(sure) < 2:
        s_best = max(found, key=lambda f: f[1].confidence)[0]
        return q * (best.lag + best.fraction - s_best), 0.0, best
    t = np.array([q * (s + w / 2) for s, _ in sure], np.float64)
    lags = np.array([q * (e.lag + e.fraction - s) for s, e in sure])  # a window's lag counts from its start
    start, slope, _, keep = _fit(t, lags, 2.0 * q)
    on_line = [e for (_, e), k in zip(sure, keep) if k]
    return start, slope, max(on_line or [best], key=lambda e: e.confidence)
