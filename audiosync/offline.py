"""Offline sync of two recordings: decode both whole, then one correlation."""

from __future__ import annotations

import math
import os
import threading
import time

from audiosync.download import input_args
from audiosync.errors import InputError
from audiosync.producer import Producer
from audiosync.session import Progress, SyncResult
from audiosync.method import METHODS, estimate, make_correlator

__all__ = ["sync_files"]

# Without max_seconds, inputs are read up to this long; the buffers are
# zero-filled lazily, so an unused capacity costs no memory.
_DEFAULT_MAX_S = 3600.0


def sync_files(reference: str | os.PathLike[str], other: str | os.PathLike[str], *,
               sample_rate: int = 48000, max_seconds: float | None = None,
               min_confidence: float = 0.95, keep_audio: bool = False,
               timeout: float | None = None, method: str = "phat") -> SyncResult:
    """The lag of ``other`` relative to ``reference``: ``other(t) ≈ reference(t + lag_ms)``.

    Parameters
    ----------
    reference, other : str or path
        Anything ffmpeg reads: files of any common format, http(s) URLs,
        YouTube pages (with ``audiosync[youtube]``).
    sample_rate : int
        Rate both are decoded at.
    max_seconds : float or None
        Read at most this many seconds of each (default: one hour).
    min_confidence : float
        Threshold on the confidence (|Pearson| at the peak).
    keep_audio : bool
        Keep the two decoded arrays in ``SyncResult.audio``.
    method : {"phat", "seed"}
        How the lag and the confidence are found (see the README).
    timeout : float or None
        Stop decoding after this many seconds and answer from what was
        decoded, never confidently (``reason="timeout"``).

    Returns
    -------
    SyncResult
        ``interval_s`` is the seconds of ``other`` used; ``reason`` is
        ``"complete"``. Lags as large as either input is long are found.

    Raises
    ------
    FileNotFoundError, InputError, FFmpegNotFoundError, ValueError
    """
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be an int from 8000 to 192000, got {sample_rate!r}")
    if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if timeout is not None and not (timeout > 0):
        raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
    t0 = time.monotonic()
    args = [input_args(reference), input_args(other)]
    capacity = int(round((max_seconds or _DEFAULT_MAX_S) * sample_rate))
    cond = threading.Condition()
    producers: list[Producer] = []
    try:
        for name, a in zip(("reference", "other"), args):
            producers.append(Producer(name, a, sample_rate, capacity, cond))
        with cond:
            finished = cond.wait_for(lambda: all(p.done for p in producers), timeout)
            counts = [p.count for p in producers]
            errors = [p.error for p in producers]
        # Stop decoding now: after a timeout an endless input would otherwise go
        # on filling its buffer while the kernel runs. The buffers stay valid.
        for p in producers:
            p.stop()
        for url, count, error in zip((reference, other), counts, errors):
            if count == 0 and not finished:
                raise InputError(f"{str(url)!r} gave no audio within the {timeout} s timeout")
            if count == 0:
                raise InputError(f"cannot open or decode {str(url)!r}: {error or 'no audio in it'}")
        ref = producers[0].buffer[: counts[0]]
        oth = producers[1].buffer[: counts[1]]
        if len(ref) < 2 or len(oth) < 2:
            raise InputError("an input holds fewer than 2 samples of audio")
        if len(oth) <= len(ref):
            est = estimate(make_correlator(ref, len(oth), method, sample_rate), oth, method,
                           sample_rate, "offline")
            lag, fraction = est.lag, est.fraction
        else:  # correlate the other way round and flip the sign
            est = estimate(make_correlator(oth, len(ref), method, sample_rate), ref, method,
                           sample_rate, "offline")
            lag, fraction = -est.lag, -est.fraction
    finally:
        for p in producers:
            p.stop()
    confidence, coefficient = est.confidence, est.coefficient
    progress = Progress(interval_s=len(oth) / sample_rate, lag_ms=1000.0 * (lag + fraction) / sample_rate,
                        confidence=confidence, confident=finished and confidence >= min_confidence,
                        downloaded_s=len(ref) / sample_rate)
    return SyncResult(
        lag_ms=progress.lag_ms, confidence=confidence, confident=progress.confident,
        interval_s=progress.interval_s, elapsed_s=time.monotonic() - t0,
        reason="complete" if finished else "timeout",
        lag_samples=int(lag), sample_rate=sample_rate, coefficient=float(coefficient),
        prominence=float(est.prominence),
        history=(progress,), audio=(ref, oth) if keep_audio else None,
    )
