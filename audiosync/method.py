"""How a lag and its confidence are decided: the phase transform (default) or the seed method.

The lag: the phase transform (PHAT: the cross-spectrum divided by its
magnitude, so every frequency counts by its phase alone) limited to 0-8 kHz
and to the bands where the capture has sound (empty bands would let codec
noise vote), with 50 ms fades at the cut edges, and a parabola for
sub-sample lags.

The confidence says how unlikely the answer is to be chance, for this
search (bench/calibrate.py, README "How the answer is decided"). Two
tests, each a probability that chance alone explains what was found:

* the peak: the peak over the RMS of the correlation across the searched
  lags is a z-score; the chance that the largest of ``N`` independent lags
  reaches it is ``N * erfc(z / sqrt 2)``, where ``N`` is the number of lags
  searched times the share of the band that took part (lags closer than the
  band's resolution are not independent);
* the waveform: the Pearson coefficient of the overlap at that lag must be
  positive beyond what two unrelated signals of these spectra give over
  this many seconds (its chance spread is ``sqrt(sum(p * q) / 2)`` for the
  two normalised power spectra): the phase transform alone can lock onto a
  faint band that matches while the music does not (unless the peak stands
  alone, below).

The evidence is ``-log10`` of the larger of the two chances; ``EVIDENCE_95``
decades (fitted on some packages of the corpus, reported on the others)
read as confidence 0.95, the same promise at every capture length, search
width and bandwidth. Chance is not the only way to be wrong: a passage
that the song repeats matches twice. So the place must also stand out:
its prominence (the peak over the best place more than 30 ms away) must
reach ``PROMINENCE_95`` to read 0.95, and the waveform must match at the
peak better than at any other likely place by ``LEAD_95`` in Pearson (the phase transform can prefer a louder near-copy, or
a place sharing one faint band, to the exact one). A peak that stands
``PROMINENCE_ALONE`` times over every other place of a wide search is not
asked the waveform's two tests (a microphone in a room, an all-pass master:
the waveform matches poorly where the phase transform is sure). The
confidence is the lesser of the readings. The seed method is the original one: raw
cross-correlation, |Pearson| at the peak as confidence.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from audiosync._sizes import smooth_length
from audiosync.errors import SilentInputError
from audiosync.xcorr import Correlator

__all__ = ["METHODS", "NOTHING", "Estimate", "confidence_of", "dot", "estimate", "lead", "make_correlator", "nearby",
           "pearson", "stands_alone", "waveform_evidence", "window_place"]

METHODS = ("phat", "seed")
BAND_HZ = 8000.0       # above this codecs differ, and whitening empty bins makes false peaks
TAPER_HZ = 1000.0      # raised-cosine edge below BAND_HZ
FADE_S = 0.050         # fade at each cut edge of both signals
GUARD_S = 0.030        # zone around the peak left out of the second peak
MIN_OVERLAP_S = 1.0    # lags overlapping less than this are not considered
SPECTRUM_BANDS = 256   # the capture's spectrum is read in this many bands up to BAND_HZ
EMPTY_BAND_DB = 50.0   # a band this far below the capture's loudest one is empty: it does not vote
WELCH_SEGMENT = 4096   # spectra are averaged over segments this long (256 ms at 16 kHz)
# The evidence, in decades (-log10 of the chance), that reads as confidence 0.95: fitted on
# the corpus's fit packages (bench/calibrate.py) so that no unrelated audio reached it.
EVIDENCE_95 = 8.0
# The prominence (peak over the best place more than 30 ms away) that reads as 0.95: below
# it two places of the song match alike (a repeated passage), fitted likewise on wrong answers.
PROMINENCE_95 = 1.3
# The waveform's lead at the peak over every other likely place (see lead(), in Pearson) below
# which two places sound alike (an exactly repeated passage): the answer is never confident.
# On the fit packages every wrong answer that passed the evidence had a lead below 0 (at most
# -0.002); 0.01 keeps a margin above that.
LEAD_95 = 0.01
# A phase-transform peak this many times higher than any other place of a wide search stands on
# its own: the waveform's tests (its evidence and its lead) are not asked of it. Through a
# microphone in a room or an all-pass master the waveform matches poorly at the true place (its
# Pearson -0.2 to 0.5, below other places') while the peak stands 3 to 80 times over the rest.
# No wrong or unrelated estimate of the fit packages passed a prominence of 1.52 at any length
# from 2 s (bench/calibrate.py; repeat pairs, two places alike by construction, aside): about
# twice that. Calibrated at 16 kHz on captures of 2 s or more, and used only there.
PROMINENCE_ALONE = 3.0
# ... over at least this many seconds of lags (a narrow search has few places to stand out from),
ALONE_SPAN_S = 10.0
# ... for a capture at least this long (the shortest calibrated),
ALONE_MIN_S = 2.0
# ... at this rate.
ALONE_RATE = 16000
# A place of the search's window (the song's start, a player's position) whose waveform matches
# at least this well (Pearson), and better than the peak's, holds the answer back, even a peak that
# stands alone: it is the same audio. No candidate place on unrelated audio of the fit packages
# reached 0.22 (bench/calibrate.py's null and different-song pairs, 3 to 30 s). A lower place is
# no rival: through a microphone the true place can match at 0.1, below chance places of the window.
WINDOW_SAME = 0.9
# A capture shorter than this is reported but never confident (custom schedules).
MIN_CONFIDENT_S = 3.0
# Places whose Pearson at their integer lag is within this of the peak's are read again at their
# best sub-sample shift, the peak too (see refined_pearson): on a bright song the integer lag's
# value depends on where the capture's sample grid falls between the song's.
REFINE_WITHIN = 0.35
# The shifts tried: from half a sample back to half a sample on, in steps of 1/SHIFT_STEPS (even:
# refined_pearson reads each shift s with -s).
SHIFT_STEPS = 8
# Only samples up to this long are read so (60 s at 16 kHz; a live interval is at most 30 s):
# its time and memory grow with the overlap, and a longer one is judged at the integer lags.
REFINE_MAX = 960_000


@dataclass(frozen=True)
class Estimate:
    lag: int              # integer lag, samples
    fraction: float       # sub-sample offset of the peak, in (-0.5, 0.5)
    coefficient: float    # Pearson at the integer lag (0 when silent)
    prominence: float     # peak / best value more than GUARD_S away (nan for seed)
    confidence: float     # in [0, 1]; 0.95 at EVIDENCE_95 (|Pearson| for seed)
    evidence: float = 0.0  # -log10 of the chance of this answer (nan for seed)
    lead: float = math.inf  # the waveform's Pearson lead over other likely places (see lead())

    def lag_ms(self, rate: int) -> float:
        return 1000.0 * (self.lag + self.fraction) / rate


# Nothing to find (a silent overlap): lag 0, not confident.
NOTHING = Estimate(0, 0.0, 0.0, 0.0, 0.0, 0.0)


def confidence_of(evidence: float, evidence_95: float = EVIDENCE_95) -> float:
    """Map evidence (decades) to [0, 1] so that ``evidence_95`` reads 0.95.

    ``1 - 0.05 E95 / e``: 0 up to a twentieth of E95, 0.95 at E95,
    approaching 1 as the chance of the answer vanishes.
    """
    if not evidence > 0:
        return 0.0
    if math.isinf(evidence):
        return 1.0
    return max(0.0, 1.0 - 0.05 * evidence_95 / evidence)


def prominence_confidence(prominence: float, limit: float | None = None) -> float:
    """Map the peak's prominence to [0, 1] so that ``PROMINENCE_95`` reads 0.95.

    ``1 - 0.05 (T - 1) / (p - 1)``: 0 at p <= 1 (another place is as good),
    0.95 at the threshold T, approaching 1 as the peak stands further out.
    """
    limit = PROMINENCE_95 if limit is None else limit
    if not prominence > 1.0:
        return 0.0
    if math.isinf(prominence):
        return 1.0
    return max(0.0, 1.0 - 0.05 * (limit - 1.0) / (prominence - 1.0))


def _log10_erfc(x: float) -> float:
    """log10(erfc(x)), also far beyond where erfc underflows."""
    if x < 25.0:
        return math.log10(max(math.erfc(x), 1e-300))
    return -(x * x) / math.log(10.0) - math.log10(x * math.sqrt(math.pi))


def peak_evidence(value: float, rms: float, independent_lags: float) -> float:
    """-log10 of the chance that the largest of ``independent_lags`` Gaussian lags reaches value / rms."""
    if not (value > 0 and rms > 0):
        return 0.0
    z = value / rms
    return max(0.0, -(math.log10(max(independent_lags, 1.0)) + _log10_erfc(z / math.sqrt(2.0))))


def _band_powers(x: np.ndarray, top: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The power of x (mean removed) in up to SPECTRUM_BANDS equal bands from 0 to ``top`` (a
    share of the Nyquist frequency), summing to 1; and each band's width in bins of x's own DFT.

    Averaged over Hann-windowed segments of WELCH_SEGMENT samples (Welch): about the shares of
    one transform of all of x (the window leaks less, so a band far below the loud ones reads
    lower), at a fixed cost and memory per sample whatever its length.
    """
    length = len(x)
    seg = min(WELCH_SEGMENT, length)
    frames = length // seg
    window = np.hanning(seg) if seg >= 16 else np.ones(seg)
    mean = float(np.mean(x, dtype=np.float64))
    power = np.zeros(seg // 2 + 1)
    for i in range(0, frames, 64):  # 64 segments at a time: bounded memory for an hour
        block = np.asarray(x[i * seg:min(frames, i + 64) * seg], np.float64).reshape(-1, seg) - mean
        spec = np.fft.rfft(block * window, axis=1)
        power += (spec.real ** 2 + spec.imag ** 2).sum(axis=0)
    power = power[1:max(2, int(round((len(power) - 1) * top)) + 1)]
    count = min(SPECTRUM_BANDS, len(power))
    edges = np.linspace(0, len(power), count + 1).astype(int)  # strictly increasing: count <= len
    bands = np.add.reduceat(power, edges[:-1])
    total = bands.sum()
    return (bands / total if total > 0 else bands), np.diff(edges) * (length / seg)


def waveform_evidence(coefficient: float, x: np.ndarray, y: np.ndarray) -> float:
    """-log10 of the chance that two unrelated signals of these spectra reach ``coefficient`` (one-sided).

    Over ``L`` samples the Pearson coefficient of two independent signals with
    normalised power spectra ``p`` and ``q`` (per DFT bin) has variance
    ``sum(p * q) / 2``; white noise gives ``1 / L``. The spectra are read in
    bands (a raw periodogram would overstate ``sum(p * p)``).
    """
    if not coefficient > 0 or len(x) < 16 or len(x) != len(y):
        return 0.0
    (p, width), (q, _) = _band_powers(x), _band_powers(y)
    variance = float(np.sum(p * q / width)) / 2.0
    if not variance > 0:
        return 0.0
    return max(0.0, -(_log10_erfc(coefficient / math.sqrt(2.0 * variance)) - math.log10(2.0)))


@lru_cache(maxsize=2)  # n/2 weights each (40 MB for a 20-minute song): the sizes in use, not a history
def _band(n: int, rate: int) -> np.ndarray:
    step = rate / n  # Hz per bin
    w = np.zeros(n // 2 + 1, np.float32)
    top = min(BAND_HZ, rate / 2)
    # Bins are 1 up to top - TAPER_HZ and tapered up to top: found as runs (ten million bins at a
    # time, for an hour-long pair, cost nothing), the frequencies computed only for the taper.
    flat, stop = _bins_upto(top - TAPER_HZ, step, len(w)), _bins_upto(top, step, len(w))
    w[:flat] = 1.0
    f = np.arange(flat, stop) * step
    w[flat:stop] = 0.5 + 0.5 * np.cos(np.pi * (f - (top - TAPER_HZ)) / TAPER_HZ)
    w.setflags(write=False)
    return w


def _bins_upto(hz: float, step: float, count: int) -> int:
    """How many bins ``k`` (from 0, fewer than ``count``) have ``k * step <= hz``."""
    k = min(count, max(0, int(hz / step) + 1))
    while k < count and k * step <= hz:
        k += 1
    while k > 0 and (k - 1) * step > hz:
        k -= 1
    return k


def make_correlator(source: np.ndarray, max_sample_length: int, method: str, rate: int,
                    precision: str = "single", linear: bool = True) -> Correlator:
    """A correlator of ``source`` prepared for ``method`` (one of METHODS): linear (no wrap), or
    circular (a transform as long as ``source``) for searches of lags that cannot wrap."""
    fade = int(round(FADE_S * rate)) if method == "phat" else 0
    return Correlator(source, max_sample_length=max_sample_length if linear else None, linear=linear,
                      fade=fade, precision=precision)


def _weights(correlator: Correlator, sample: np.ndarray, rate: int) -> np.ndarray:
    """The band weights of the transform with the capture's empty bands left out."""
    band = _band(correlator.n, rate)
    top_hz = min(BAND_HZ, rate / 2)
    powers, width = _band_powers(sample, top_hz / (rate / 2))
    density = powers / width
    if not density.any():
        return band
    empty = density < density.max() * 10 ** (-EMPTY_BAND_DB / 10)
    if not empty.any():
        return band
    # Each transform bin takes the verdict of the capture's band holding its frequency: the
    # bands are runs of bins, so the verdicts are repeated run by run (no per-bin search).
    edges = np.round(np.concatenate([[0], np.cumsum(width)]) * (correlator.n / len(sample))).astype(np.int64)
    edges = np.clip(edges, 0, len(band))
    weights = band.copy()
    for lo, hi in zip(edges[:-1][empty], edges[1:][empty]):
        weights[lo:hi] = 0.0
    return weights


def dot(x: np.ndarray, y: np.ndarray) -> float:
    """Σ x·y of two vectors. Not ``np.dot``: OpenBLAS splits a long dot product across threads,
    which then spin on the other core for a tenth of a second, taking it from ffmpeg and the
    transforms (0.1 s of CPU after each answer's checks)."""
    return float(np.einsum("i,i->", x, y))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return -1.0
    x = np.asarray(x, np.float64) - np.mean(x)
    y = np.asarray(y, np.float64) - np.mean(y)
    den = math.sqrt(dot(x, x) * dot(y, y))
    return dot(x, y) / den if den > 0 else -1.0


def _overlap(source: np.ndarray, sample: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of sample and source that meet at lag: sample[i] ~ source[i + lag]."""
    start = max(0, -lag)
    stop = min(len(sample), len(source) - lag)
    return sample[start:stop], source[start + lag:stop + lag]


def refined_pearson(source: np.ndarray, sample: np.ndarray, lag: int, memo: dict | None = None) -> float:
    """Pearson's coefficient of ``sample`` and ``source`` at ``lag``, at the best shift of up to
    half a sample either way (the overlap's cross-spectrum, summed at SHIFT_STEPS + 1 shifts).

    A capture's samples fall anywhere between the song's: half a sample off, a bright passage
    matches its true place at 0.92 where an exact copy of it elsewhere, whose grid happened to
    fall better, matches at 0.987 (nx-brainsukker through a sound server), so the lead of the
    integer lags made a copy of a loop confidently the answer.

    ``memo``: kept between the readings of one sample (its transform and the shifts' phases, when
    it overlaps whole), which then cost half as much.
    """
    y, x = _overlap(source, sample, lag)  # y: the sample's part, x: the source's
    if min(len(x), len(y)) < 2:
        return -1.0
    size = smooth_length(len(x) + 2)  # numpy's; padded: a shift's wrap-around is of the ends only
    # Kept for the whole sample only: a part is read at one place (and its size's phases would
    # hold 30 MB each).
    memo = {} if memo is None or len(y) < len(sample) else memo
    key = (len(sample), size)
    if key not in memo:
        yc = np.asarray(y, np.float64) - np.mean(y)
        memo[key] = math.sqrt(dot(yc, yc)), np.conj(np.fft.rfft(yc, size))
    y_norm, y_conj = memo[key]
    x = np.asarray(x, np.float64) - np.mean(x)
    den = math.sqrt(dot(x, x)) * y_norm
    if not den > 0:
        return -1.0
    cross = np.fft.rfft(x, size) * y_conj
    # irfft at 0 of the shifted cross-spectrum: the first and (even size) last bins once, the rest twice.
    cross[1:] *= 2.0
    if size % 2 == 0:
        cross[-1] *= 0.5
    real, imag = np.ascontiguousarray(cross.real), np.ascontiguousarray(cross.imag)
    # Shifts s and -s share their cosines and sines: sum(real*cos) -/+ sum(imag*sin).
    best = float(np.sum(real))
    for cos, sin in _shift_phases(size, memo):
        even, odd = dot(real, cos), dot(imag, sin)
        best = max(best, even - odd, even + odd)
    return min(1.0, best / size / den)


def _shift_phases(size: int, memo: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """cos and sin of each bin's phase at the shifts 1/SHIFT_STEPS ... 1/2 sample, for
    :func:`refined_pearson` (kept in ``memo``)."""
    if size not in memo:
        angle = (2.0 * np.pi / (size * SHIFT_STEPS)) * np.arange(size // 2 + 1)
        step = np.exp(1j * angle)
        turn, phases = step, []
        for i in range(SHIFT_STEPS // 2):
            if i:
                turn = turn * step
            phases.append((np.ascontiguousarray(turn.real), np.ascontiguousarray(turn.imag)))
        memo[size] = phases
    return memo[size]


class _Readings(dict):
    """lag -> :func:`refined_pearson` of one sample, each place read once; ``memo`` is what the
    readings share."""

    def __init__(self) -> None:
        super().__init__()
        self.memo: dict = {}


def _fair_margin(source: np.ndarray, sample: np.ndarray, peak, others: dict[int, float],
                 refined: dict[int, float] | None = None) -> float:
    """The peak's Pearson lead over ``others`` (lag: Pearson at its integer lag), the lesser of the
    integer lags' and, for the places within REFINE_WITHIN, their best sub-sample shifts' (see
    refined_pearson; a sample longer than REFINE_MAX is judged at the integer lags): never more
    than the integer lead, so a near copy whose grid fell better no longer wins by its luck.
    ``refined``: lag -> refined Pearson already read for this sample (filled in)."""
    margin = peak.coefficient - max(others.values(), default=-1.0)
    near = [lag for lag, r in others.items() if peak.coefficient - r < REFINE_WITHIN]
    if near and len(sample) <= REFINE_MAX:
        refined = _Readings() if refined is None else refined
        for lag in (peak.lag, *near):
            if lag not in refined:
                refined[lag] = refined_pearson(source, sample, lag, getattr(refined, "memo", None))
        margin = min(margin, refined[peak.lag] - max(refined[lag] for lag in near))
    return margin


def estimate(correlator: Correlator, sample: np.ndarray, method: str, rate: int, mode: str = "offline",
             interval_s: float = math.inf, window: tuple[int, int] | None = None,
             lags: tuple[int, int] | None = None, searched: int | None = None, beside: bool = False,
             trusted: bool = False) -> Estimate:
    """Locate ``sample`` in the correlator's source and say how sure that is.

    Every allowed lag is searched. ``window`` (lags ``lo`` to ``hi``, in
    samples): where the answer probably is (a position hint); when the
    best peak lies there, its chance is that of the narrower search. A
    wrong window therefore changes no answer and adds little confidence.
    ``mode`` ("live" or "offline") only decides whether a capture shorter
    than MIN_CONFIDENT_S may be confident. ``lags`` limits the search to
    lags ``lo`` to ``hi`` (a narrow look around a known lag, or a part of
    the song with other places left out), and ``searched`` says how many
    lags the chance is counted over when more were looked at than ``lags``
    holds (every match of a clip is looked for over the whole range).
    ``trusted=True``: the caller vouches that the answer lies in
    ``window`` (a player's reported position); see :func:`_vouched`.
    ``beside=True`` makes the plain correlation (for :func:`lead`) in a
    thread beside the phase transform, joined before returning, and the
    sample's transform beside the source's, once for both: the kernel
    releases the GIL and each call owns its buffers, so a second core
    halves the wait, for a second set of transform buffers. A sync's
    answer (live or offline) and a tracker's whole-song search ask for it;
    a lag map's windows, already searched two at a time, do not.
    """
    m, n = correlator.source.shape[0], len(sample)
    if method == "seed":
        try:
            peak = correlator.find(sample, lags=lags)
        except SilentInputError:
            return replace(NOTHING, prominence=math.nan, evidence=math.nan)
        except ValueError:  # no lag of ``lags`` leaves an overlap
            return replace(NOTHING, prominence=math.nan, evidence=math.nan)
        return Estimate(peak.lag, 0.0, peak.coefficient, math.nan, abs(peak.coefficient), math.nan)
    overlap = min(int(MIN_OVERLAP_S * rate), n, m)
    lo, hi = -(n - overlap), m - overlap
    if lags is not None:
        lo, hi = max(lo, int(lags[0])), min(hi, int(lags[1]))
        if lo > hi:
            return NOTHING
    weights = _weights(correlator, sample, rate)
    guard = int(round(GUARD_S * rate))
    # The sample transformed once for both searches (beside: while the source is).
    if beside:
        correlator.plan()  # here, not in both threads: one plan, one rounding
        made = _Beside(correlator.sample_spectrum, sample)
        try:
            correlator.prepare()
        finally:
            spectrum = made.result()  # None when it could not be made: each find makes its own
    else:
        try:
            spectrum = correlator.sample_spectrum(sample)
        except ValueError:  # not finite, or of another dtype: find says which, or converts
            spectrum = None
    plain = _Beside(correlator.find, sample, lags=(lo, hi), weights=weights, beta=0.0, guard=guard,
                    spectrum=spectrum) if beside else None
    try:
        peak = correlator.find(sample, lags=(lo, hi), weights=weights, beta=1.0, guard=guard, spectrum=spectrum)
    except SilentInputError:
        peak = None
    except BaseException:
        if plain is not None:
            plain.join()  # no thread outlives the call; its answer no longer matters
        raise
    plain_peak = plain.result() if plain is not None else None  # None: lead() makes it itself
    if peak is None:
        return NOTHING
    searched = hi - lo + 1 if searched is None else max(int(searched), hi - lo + 1)
    if window is not None and window[0] <= peak.lag <= window[1]:
        searched = min(searched, window[1] - window[0] + 1)
    alone = stands_alone(peak.prominence, rate, hi - lo + 1, n)
    evidence, confidence = _judged(correlator, sample, weights, peak, searched, alone)
    others = rivals(correlator, sample, (lo, hi), weights, peak, rate, plain_peak, spectrum)
    refined = _Readings()  # the places read between the samples, read once
    margin = peak.coefficient - max(others.values(), default=-1.0)
    # Read between the samples only where that can hold the answer back: not on unrelated audio,
    # whose near places would cost a tenth of a second of it at every look.
    if confidence > 0.5 and margin >= LEAD_95:
        margin = _fair_margin(correlator.source, sample, peak, others, refined)
    if margin < LEAD_95 and not alone:
        confidence = min(confidence, 0.5)
    held = None
    if window is not None and (confidence > 0.5 or (trusted and window[0] <= peak.lag <= window[1])):
        # The window's best place by the waveform is a rival too (asked only of an answer it can
        # hold back: a tenth of a second for a 30 s capture): a quiet passage there (a fade-in at
        # the song's start) is neither place of the plain correlation, which favours loud ones,
        # and the phase transform can prefer a louder passage of like phases elsewhere.
        held = _window_rival(correlator, sample, (max(lo, window[0]), min(hi, window[1])), peak.lag, rate)
        if held is not None:  # (not in others: _vouched, their reader, takes it apart)
            margin = min(margin, _fair_margin(correlator.source, sample, peak, {held[0]: held[1]}, refined))
            if margin < LEAD_95:
                confidence = min(confidence, 0.5)
    found = Estimate(peak.lag, peak.fraction, peak.coefficient, peak.prominence, confidence, evidence, margin)
    if trusted and window is not None:
        found = _vouched(correlator, sample, rate, weights, spectrum, found, others,
                         (max(lo, window[0]), min(hi, window[1])), held, refined)
    if mode == "live" and n < MIN_CONFIDENT_S * rate - 1:
        found = replace(found, confidence=min(found.confidence, 0.5))
    return found


def _window_rival(correlator: Correlator, sample: np.ndarray, lags: tuple[int, int], peak_lag: int,
                  rate: int) -> tuple[int, float] | None:
    """(lag, Pearson) of the place in ``lags`` other than the peak's that the waveform matches best
    (:func:`window_place`), when it matches at WINDOW_SAME or more; else None. Lower, it is no
    rival: through a microphone the true place can match at 0.1, below chance places of a window."""
    guard = int(round(GUARD_S * rate))
    place = window_place(correlator.source, sample, lags, rate, exclude=(peak_lag - guard, peak_lag + guard))
    if place is None:
        return None
    x, y = _overlap(correlator.source, sample, place)
    if len(x) < min(len(sample), int(MIN_OVERLAP_S * rate)):
        return None
    r = pearson(x, y)
    return (place, r) if r >= WINDOW_SAME else None


def stands_alone(prominence: float, rate: int, span: int, length: int) -> bool:
    """Whether a phase-transform peak of this prominence, found among ``span`` lags for a sample
    ``length`` samples long at ``rate``, is believed on its own (see PROMINENCE_ALONE): only where
    that was calibrated."""
    return (math.isfinite(prominence) and prominence >= PROMINENCE_ALONE and rate == ALONE_RATE
            and span >= ALONE_SPAN_S * rate and length >= ALONE_MIN_S * rate)


def _vouched(correlator: Correlator, sample: np.ndarray, rate: int, weights: np.ndarray, spectrum,
             found: Estimate, places: dict[int, float], window: tuple[int, int],
             held: tuple[int, float] | None = None, refined: dict[int, float] | None = None) -> Estimate:
    """The estimate when the caller vouches that the answer lies in ``window``.

    Only when the whole search's best place lies in the window: it is then
    judged among the window's lags alone (its chance over that many lags,
    its prominence and waveform lead over the window's other places), so a
    place outside that the phase transform likes nearly as well (a
    near-copy of the passage) holds it back no longer. It must still match
    the waveform better, by LEAD_95, than every likely place outside the
    window (``places``: its rivals, with their Pearson), as the lead rule
    asks of any answer: the caller's word never decides between places
    that match alike (an exactly repeated passage), where a wrong window
    would be confidently wrong. The answer itself never changes: a window
    elsewhere (or a lower confidence) leaves the whole search's estimate.
    (A window that overruled the whole search's best place when another
    matched the waveform better made a wrong position confidently wrong on
    a capture through an all-pass filter, whose true place matches poorly.)
    """
    lo, hi = window
    if not lo <= found.lag <= hi:
        return found
    guard = int(round(GUARD_S * rate))
    try:
        peak = correlator.find(sample, lags=(lo, hi), weights=weights, beta=1.0, guard=guard, spectrum=spectrum)
    except SilentInputError:
        return found
    outside = {lag: r for lag, r in places.items() if not lo - guard <= lag <= hi + guard}
    refined = _Readings() if refined is None else refined  # (see _fair_margin)
    if _fair_margin(correlator.source, sample, peak, outside, refined) < LEAD_95:
        return found
    # Nor another place of the window that is the same audio (_window_rival), matching as well.
    if held is not None and abs(held[0] - peak.lag) > guard and \
            _fair_margin(correlator.source, sample, peak, {held[0]: held[1]}, refined) < LEAD_95:
        return found
    evidence, confidence = _judged(correlator, sample, weights, peak, hi - lo + 1)
    margin = lead(correlator, sample, (lo, hi), weights, peak, rate, None, spectrum, refined)
    if margin < LEAD_95:
        confidence = min(confidence, 0.5)
    if confidence <= found.confidence:
        return found
    return Estimate(peak.lag, peak.fraction, peak.coefficient, peak.prominence, confidence, evidence, margin)


def nearby(correlator: Correlator, sample: np.ndarray, rate: int, lags: tuple[int, int]) -> Estimate:
    """A look for ``sample`` within ``lags`` only, where it is already known to be (a lag map's window).

    The phase transform's peak, judged by its chance over these lags and
    the waveform's; no lead over other places (a range a few milliseconds
    wide holds no repeated passage), so it costs one correlation.
    """
    weights = _weights(correlator, sample, rate)
    try:
        peak = correlator.find(sample, lags=lags, weights=weights, beta=1.0, guard=int(round(GUARD_S * rate)))
    except SilentInputError:
        return NOTHING
    evidence, confidence = _judged(correlator, sample, weights, peak, lags[1] - lags[0] + 1)
    return Estimate(peak.lag, peak.fraction, peak.coefficient, peak.prominence, confidence, evidence)


def _judged(correlator: Correlator, sample: np.ndarray, weights: np.ndarray, peak, searched: int,
            alone: bool = False) -> tuple[float, float]:
    """(evidence, confidence) of a phase-transform peak found among ``searched`` lags: the lesser
    of the peak's and the waveform's evidence (the peak's alone with ``alone``, see
    PROMINENCE_ALONE), and its reading capped by the prominence."""
    # Lags closer than the band's resolution are not independent.
    share = float(np.count_nonzero(weights)) / len(weights)
    evidence = peak_evidence(peak.value, peak.rms, searched * share)
    if not alone:
        evidence = min(evidence, waveform_evidence(peak.coefficient, *_overlap(correlator.source, sample, peak.lag)))
    return evidence, min(confidence_of(evidence), prominence_confidence(peak.prominence))


class _Beside:
    """``fn(*args, **kwargs)`` run in a thread of its own; ``result()`` joins it (its value, or
    None when it raised ValueError: a silent overlap, nothing to compare with)."""

    def __init__(self, fn, *args, **kwargs):
        self._value = None
        self._error: BaseException | None = None

        def run():
            try:
                self._value = fn(*args, **kwargs)
            except ValueError:
                pass
            except BaseException as exc:  # MemoryError and the like: raised where result() is read
                self._error = exc

        self._thread = threading.Thread(target=run, name="audiosync-plain", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def lead(correlator: Correlator, sample: np.ndarray, lags: tuple[int, int], weights: np.ndarray,
         peak, rate: int, plain=None, spectrum=None, refined: dict[int, float] | None = None) -> float:
    """How much better the waveform matches at the peak than at any other likely place.

    The other places are :func:`rivals`'. The phase transform weighs every
    band alike: on loop-built music it can prefer a place that shares a
    faint band with the capture, or a louder near-copy of the passage, to
    the exact one. Returns the peak's Pearson coefficient minus the best of
    theirs (each over its own overlap, so a partial overlap is judged fairly
    where the plain correlation's height favours long overlaps): 0 or less
    when another place matches as well (an exactly repeated passage);
    the lesser of that at the integer lags and between them (:func:`_fair_margin`).
    """
    others = rivals(correlator, sample, lags, weights, peak, rate, plain, spectrum)
    return _fair_margin(correlator.source, sample, peak, others, refined)


def rivals(correlator: Correlator, sample: np.ndarray, lags: tuple[int, int], weights: np.ndarray,
           peak, rate: int, plain=None, spectrum=None) -> dict[int, float]:
    """The other likely places for ``sample`` within ``lags``, each with its waveform's Pearson.

    The phase transform's second place, and the plain correlation's (the
    waveforms over the same bands, weighed by energy as Pearson is) best
    and second places, each more than GUARD_S from the peak and overlapping
    at least MIN_OVERLAP_S (``plain``: that search when made already;
    ``spectrum``: the sample's transform, see :meth:`Correlator.sample_spectrum`).
    """
    guard = int(round(GUARD_S * rate))
    places = {peak.second_lag}
    if plain is None:  # not found beside the phase transform: look now
        try:
            plain = correlator.find(sample, lags=lags, weights=weights, beta=0.0, guard=guard, spectrum=spectrum)
        except ValueError:  # silent: nothing else to compare with
            plain = None
    if plain is not None:
        places.update((plain.lag, plain.second_lag))
    found = {}
    for lag in places:
        if abs(lag - peak.lag) <= guard:
            continue
        x, y = _overlap(correlator.source, sample, lag)
        if len(x) < min(len(sample), int(MIN_OVERLAP_S * rate)):
            continue
        found[lag] = pearson(x, y)
    return found


# A window wider than this is not searched by window_place (its cost grows with the width).
WINDOW_PLACE_MAX_S = 120.0


def window_place(source: np.ndarray, sample: np.ndarray, lags: tuple[int, int], rate: int = ALONE_RATE,
                 exclude: tuple[int, int] | None = None) -> int | None:
    """The lag from ``lags[0]`` to ``lags[1]`` (leaving out those from ``exclude[0]`` to
    ``exclude[1]``) where ``sample`` matches ``source`` best by Pearson's coefficient (the
    normalised correlation: a quiet place counts as much as a loud one), or None for an empty or
    too wide range. The source is taken as zero beyond its ends."""
    lo, hi = int(lags[0]), int(lags[1])
    n = len(sample)
    if lo > hi or hi - lo > WINDOW_PLACE_MAX_S * rate or n < 2:
        return None
    seg = np.zeros(hi - lo + n, np.float64)
    a, b = max(0, lo), min(len(source), hi + n)
    if a >= b:
        return None
    seg[a - lo:b - lo] = source[a:b]
    x = np.asarray(sample, np.float64) - np.mean(sample, dtype=np.float64)
    energy = dot(x, x)
    if not energy > 0:
        return None
    # Circular, as long as seg: the lags wanted (x's start from 0 to count - 1) never wrap.
    size = smooth_length(len(seg))  # numpy's transform
    count = hi - lo + 1
    # Σ x·seg over each lag (x sums to 0, so seg's mean does not matter), and seg's variance there.
    products = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(x, size)), size)[:count]
    sums = np.concatenate([[0.0], np.cumsum(seg)])
    squares = np.concatenate([[0.0], np.cumsum(seg * seg)])
    s1 = sums[n:n + count] - sums[:count]
    spread = squares[n:n + count] - squares[:count] - s1 * s1 / n
    # Silent stretches (and float rounding's remains of them) match nothing.
    live = spread > 1e-12 * max(float(np.max(spread)), 1e-30)
    if exclude is not None:
        live[max(0, exclude[0] - lo):max(0, exclude[1] - lo + 1)] = False
    if not live.any():
        return None
    r = np.where(live, products / np.sqrt(np.where(live, spread, 1.0) * energy), -np.inf)
    return lo + int(np.argmax(r))
