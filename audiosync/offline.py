"""Offline sync of two recordings: decode both whole, then one correlation."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from audiosync._sizes import working_length
from audiosync.decoding import commands, describes
from audiosync.errors import InputError, WindowError
from audiosync.halves import Halves, split
from audiosync.lagmap import BREAK_MS, LagMap, anchor, lag_map, warp
from audiosync.matches import find_matches
from audiosync.method import Estimate, estimate, make_correlator
from audiosync.options import FileOptions
from audiosync.producer import Producer
from audiosync.results import Match, Progress, SyncResult
from audiosync.xcorr import Correlator

__all__ = ["compare", "decode_inputs", "locate", "sync_files", "wait_decoded"]

# Without max_seconds, inputs are read up to this long; the buffers are
# zero-filled lazily, so an unused capacity costs no memory.
_DEFAULT_MAX_S = 3600.0
# Transforms longer than this (35 min of both at 16 kHz, about 0.5 GB of buffers) are not made:
# longer inputs are located from windows (lagmap.anchor), which keeps an hour-long pair under 1 GB.
FULL_LIMIT = 1 << 25
_WINDOW_NAMES = ("reference_window", "other_window")


def decode_inputs(inputs, sample_rate: int, max_seconds: float | None = None,
                  timeout: float | None = None, windows=None, halves: bool = True) -> tuple[list[np.ndarray], bool]:
    """Decode every input whole, at once (one ffmpeg each), to mono float32 at ``sample_rate``.

    ``halves``: a long file without a window (and no ``timeout``) is also
    decoded from its middle by a second ffmpeg (:mod:`audiosync.halves`).

    Returns the arrays and whether every input ended before ``timeout``
    (else each array holds what was decoded by then). ``windows``: one
    ``(start_s, duration_s)`` or None per input. Raises InputError for an
    input that gives no audio, WindowError for a window past its end.
    """
    windows = list(windows or [None] * len(inputs))
    halves = describes(halves, timeout)
    cmds = commands(inputs, windows, describe=halves)
    capacity = int(round((max_seconds or _DEFAULT_MAX_S) * sample_rate))
    cond = threading.Condition()
    producers: list = []
    deadline = None if timeout is None else time.monotonic() + timeout
    finished = False
    try:
        for i, (a, header) in enumerate(cmds):
            producers.append(Producer(f"input{i}", a, sample_rate, capacity, cond, buffered=True, header=header))
        # A long file also decoded from its middle on another core (told from the first ffmpeg's
        # description of it).
        for i, (a, header) in enumerate(cmds):
            if header:
                producers[i] = split(f"input{i}", a, producers[i], cond)
        finished = wait_decoded(producers, cond, deadline)
    finally:
        # Stop decoding now: after a timeout an endless input would otherwise go
        # on filling its buffer. The buffers stay valid.
        _stop_all(producers)
    with cond:
        counts = [p.count for p in producers]
        errors = [p.error for p in producers]
    for i, (url, count, error) in enumerate(zip(inputs, counts, errors)):
        if count == 0 and finished and not error and windows[i] is not None:
            name = _WINDOW_NAMES[i] if len(inputs) == 2 else f"window {i}"
            raise WindowError(f"{name} {windows[i]} lies past the end of {str(url)!r}: no audio in it")
        if count == 0 and not finished:
            raise InputError(f"{str(url)!r} gave no audio within the {timeout} s timeout")
        if count == 0:
            raise InputError(f"cannot open or decode {str(url)!r}: {error or 'no audio in it'}")
        if count < 2:
            raise InputError(f"{str(url)!r} holds fewer than 2 samples of audio")
    return [p.buffer[:count] for p, count in zip(producers, counts)], bool(finished)


def _stop_all(producers: list) -> None:
    """Stop every producer, each even when stopping one before it raised (a Ctrl-C)."""
    if producers:
        try:
            producers[0].stop()
        finally:
            _stop_all(producers[1:])


def wait_decoded(producers: list, cond: threading.Condition, deadline: float | None = None) -> bool:
    """Wait until every producer is done (True) or ``deadline`` (a ``time.monotonic()``) passes
    (False), splicing each :class:`Halves` as soon as its halves overlap."""
    def ready():
        return all(p.done for p in producers) or any(isinstance(p, Halves) and p.wants_check() for p in producers)

    while True:
        with cond:
            cond.wait_for(ready, None if deadline is None else max(0.0, deadline - time.monotonic()))
            if all(p.done for p in producers):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
        for p in producers:
            if isinstance(p, Halves):
                p.check()  # outside the condition: it may stop an ffmpeg


def compare(ref: np.ndarray, oth: np.ndarray, method: str, sample_rate: int) -> tuple[int, float, Estimate]:
    """Where ``oth`` sits in ``ref``: (lag, fraction, estimate), ``oth(t) ≈ ref(t + lag + fraction)``
    in samples. The shorter array is searched for in the longer one."""
    lag, fraction, est, _ = _compare(ref, oth, method, sample_rate)
    return lag, fraction, est


def _compare(ref: np.ndarray, oth: np.ndarray, method: str, sample_rate: int
             ) -> tuple[int, float, Estimate, Correlator | None]:
    """:func:`compare`, and the correlator of ``ref`` when ``oth`` was the one searched for."""
    if len(oth) <= len(ref):
        correlator = make_correlator(ref, len(oth), method, sample_rate)
        est = estimate(correlator, oth, method, sample_rate, "offline", beside=True)
        return est.lag, est.fraction, est, correlator
    est = estimate(make_correlator(oth, len(ref), method, sample_rate), ref, method, sample_rate, "offline",
                   beside=True)
    return -est.lag, -est.fraction, est, None


def _fits(ref: np.ndarray, oth: np.ndarray) -> bool:
    """Whether one transform of both stays within FULL_LIMIT."""
    return working_length(len(ref) + len(oth) - 1) <= FULL_LIMIT  # the shorter searched in the longer


def locate(ref: np.ndarray, oth: np.ndarray, opts: FileOptions) -> tuple[float, Estimate, LagMap | None, Correlator | None]:
    """Where ``oth`` sits in ``ref`` as :func:`sync_files` answers it, on decoded arrays: the lag
    (samples, fractional; with ``opts.drift`` at oth's start), its estimate, the lag map (with
    ``opts.drift``) and the correlator of ``ref`` (None when none was made)."""
    rate, method = opts.sample_rate, opts.method
    if _fits(ref, oth):
        lag, fraction, est, correlator = _compare(ref, oth, method, rate)
        if not opts.drift:
            return lag + fraction, est, None, correlator
        lm = lag_map(ref, oth, lag + fraction, rate, method, min_confidence=opts.min_confidence, wide=correlator)
        if lm.drift_ppm is None:
            return lag + fraction, est, lm, correlator
        if correlator is not None and abs(lm.slope) * len(oth) > 0.25:
            # The whole, played at the reference's pace: one sharp peak, judged by the usual rule.
            est = estimate(correlator, warp(oth, lm.slope)[:correlator.max_sample_length], method, rate,
                           "offline", beside=True)
            at = est.lag + est.fraction  # the lag at oth's start (the warped oth starts with it)
            if abs(at - lm.start) > BREAK_MS * rate / 1000.0:
                # The smeared whole had picked another place (a passage that recurs, drifting
                # alike): the map is made again where the sharp peak is, so both tell one place.
                lm = lag_map(ref, oth, at, rate, method, slope=lm.slope, min_confidence=opts.min_confidence,
                             wide=correlator)
                if lm.fitted < 2:
                    return at, est, lm, correlator
        return lm.origin, est, lm, correlator
    start, slope, est = anchor(ref, oth, rate, method, opts.min_confidence)
    lm = lag_map(ref, oth, start, rate, method, slope=slope, min_confidence=opts.min_confidence, margin_s=0.1)
    if lm.fitted >= 2:
        start, slope = lm.start, lm.slope
    if opts.drift:
        return lm.origin if lm.fitted >= 2 else start, est, lm, None
    middle = (max(0.0, -start) + min(len(oth), len(ref) - start)) / 2  # the middle of the overlap
    return start + slope * middle, est, None, None


def sync_files(reference: str | os.PathLike[str], other: str | os.PathLike[str], **options) -> SyncResult:
    """The lag of ``other`` relative to ``reference``: ``other(t) ≈ reference(t + lag_ms)``.

    Parameters
    ----------
    reference, other : str or path
        Anything ffmpeg reads: files of any common format, http(s) URLs,
        YouTube pages (with ``audiosync[youtube]``).
    **options
        The fields of :class:`audiosync.FileOptions`: ``sample_rate``
        (16000), ``max_seconds`` (read at most this many seconds of each;
        default one hour), ``min_confidence`` (0.95), ``keep_audio`` (keep
        the two decoded arrays in ``SyncResult.audio``), ``method``
        (``"phat"`` or ``"seed"``, see the README), ``timeout`` (stop
        decoding after this many seconds and answer from what was decoded,
        never confidently, ``reason="timeout"``), ``drift`` (the lag over
        time: ``lag_map``, ``drift_ppm``, ``breaks``, and ``lag_ms`` at the
        start of ``other``), ``all_matches`` (every confident place in
        ``matches``), ``reference_window`` and ``other_window``
        (``(start_s, duration_s)``: read only that part; lags stay in each
        input's own timeline), ``split_decode`` (default True: a long Opus or
        MP3 file, local or served with byte ranges, is decoded as two halves at once).

    Returns
    -------
    SyncResult
        ``interval_s`` is the seconds of ``other`` used; ``reason`` is
        ``"complete"``. Lags as large as either input is long are found.

    Raises
    ------
    InputNotFoundError (a FileNotFoundError), InputError, WindowError (a ValueError),
    FFmpegNotFoundError, ValueError
    """
    opts = FileOptions(**options)
    sample_rate, method = opts.sample_rate, opts.method
    t0 = time.monotonic()
    (ref, oth), finished = decode_inputs((reference, other), sample_rate, opts.max_seconds, opts.timeout,
                                         (opts.reference_window, opts.other_window), halves=opts.split_decode)
    if opts.all_matches and not _fits(ref, oth):
        raise ValueError(f"all_matches searches one transform of both inputs, at most {FULL_LIMIT} samples in "
                         f"all ({FULL_LIMIT / sample_rate / 60:.0f} min together at {sample_rate} Hz): give "
                         "reference_window or other_window")
    lag, est, lm, correlator = locate(ref, oth, opts)
    # Lags in each input's own timeline: the windows' starts put back. With drift, lag_ms is the
    # lag at other's own 0, not at its window's start: the line is followed back to there.
    shift_ms = 1000.0 * ((opts.reference_window or (0.0,))[0] - (opts.other_window or (0.0,))[0])
    other_start_s = (opts.other_window or (0.0,))[0]
    lag_ms = 1000.0 * lag / sample_rate + shift_ms
    if lm is not None and lm.drift_ppm is not None:
        lag_ms -= lm.drift_ppm * 1e-3 * other_start_s
    matches = None
    if opts.all_matches:
        if len(oth) > len(ref):  # other cannot occur whole in a shorter reference: the one answer
            found = [(lag, est.confidence)] if est.confidence >= opts.min_confidence else []
        else:
            if correlator is None:
                correlator = make_correlator(ref, len(oth), method, sample_rate)
            found = [(e.lag + e.fraction, e.confidence)
                     for e in find_matches(correlator, oth, method, sample_rate, opts.min_confidence)]
        matches = tuple(Match(1000.0 * at / sample_rate + shift_ms, c) for at, c in found)
    confidence, coefficient = est.confidence, est.coefficient
    progress = Progress(interval_s=len(oth) / sample_rate, lag_ms=lag_ms,
                        confidence=confidence, confident=finished and confidence >= opts.min_confidence,
                        downloaded_s=len(ref) / sample_rate, evidence=est.evidence, prominence=est.prominence,
                        elapsed_s=time.monotonic() - t0)
    extra = {}
    if lm is not None:
        extra = dict(
            drift_ppm=lm.drift_ppm, drift_ppm_error=lm.drift_ppm_error,
            lag_map=tuple(p._replace(time_s=p.time_s + other_start_s, lag_ms=p.lag_ms + shift_ms)
                          for p in lm.points),
            breaks=tuple(b._replace(time_s=b.time_s + other_start_s, lag_before_ms=b.lag_before_ms + shift_ms,
                                    lag_after_ms=b.lag_after_ms + shift_ms) for b in lm.breaks))
    return SyncResult(
        lag_ms=lag_ms, confidence=confidence, confident=progress.confident,
        interval_s=progress.interval_s, elapsed_s=time.monotonic() - t0,
        reason="complete" if finished else "timeout",
        lag_samples=int(round(lag_ms * sample_rate / 1000.0)), sample_rate=sample_rate,
        coefficient=float(coefficient), prominence=float(est.prominence), evidence=float(est.evidence),
        history=(progress,), audio=(ref, oth) if opts.keep_audio else None, matches=matches,
        audio_shift_ms=lag_ms - 1000.0 * lag / sample_rate, **extra,
    )
