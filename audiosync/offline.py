"""Offline sync of two recordings: decode both whole, then one correlation."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from audiosync.download import input_args
from audiosync.errors import InputError
from audiosync.method import Estimate, estimate, make_correlator
from audiosync.options import FileOptions
from audiosync.producer import Producer
from audiosync.results import Progress, SyncResult

__all__ = ["compare", "decode_inputs", "sync_files"]

# Without max_seconds, inputs are read up to this long; the buffers are
# zero-filled lazily, so an unused capacity costs no memory.
_DEFAULT_MAX_S = 3600.0


def decode_inputs(inputs, sample_rate: int, max_seconds: float | None = None,
                  timeout: float | None = None) -> tuple[list[np.ndarray], bool]:
    """Decode every input whole, at once (one ffmpeg each), to mono float32 at ``sample_rate``.

    Returns the arrays and whether every input ended before ``timeout``
    (else each array holds what was decoded by then). Raises InputError
    for an input that gives no audio.
    """
    args = [input_args(url) for url in inputs]
    capacity = int(round((max_seconds or _DEFAULT_MAX_S) * sample_rate))
    cond = threading.Condition()
    producers: list[Producer] = []
    try:
        for i, a in enumerate(args):
            producers.append(Producer(f"input{i}", a, sample_rate, capacity, cond))
        with cond:
            finished = cond.wait_for(lambda: all(p.done for p in producers), timeout)
            counts = [p.count for p in producers]
            errors = [p.error for p in producers]
    finally:
        # Stop decoding now: after a timeout an endless input would otherwise go
        # on filling its buffer. The buffers stay valid.
        for p in producers:
            p.stop()
    for url, count, error in zip(inputs, counts, errors):
        if count == 0 and not finished:
            raise InputError(f"{str(url)!r} gave no audio within the {timeout} s timeout")
        if count == 0:
            raise InputError(f"cannot open or decode {str(url)!r}: {error or 'no audio in it'}")
        if count < 2:
            raise InputError(f"{str(url)!r} holds fewer than 2 samples of audio")
    return [p.buffer[:count] for p, count in zip(producers, counts)], bool(finished)


def compare(ref: np.ndarray, oth: np.ndarray, method: str, sample_rate: int) -> tuple[int, float, Estimate]:
    """Where ``oth`` sits in ``ref``: (lag, fraction, estimate), ``oth(t) ≈ ref(t + lag + fraction)``
    in samples. The shorter array is searched for in the longer one."""
    if len(oth) <= len(ref):
        est = estimate(make_correlator(ref, len(oth), method, sample_rate), oth, method, sample_rate, "offline")
        return est.lag, est.fraction, est
    est = estimate(make_correlator(oth, len(ref), method, sample_rate), ref, method, sample_rate, "offline")
    return -est.lag, -est.fraction, est


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
        (``"phat"`` or ``"seed"``, see the README) and ``timeout`` (stop
        decoding after this many seconds and answer from what was decoded,
        never confidently, ``reason="timeout"``).

    Returns
    -------
    SyncResult
        ``interval_s`` is the seconds of ``other`` used; ``reason`` is
        ``"complete"``. Lags as large as either input is long are found.

    Raises
    ------
    InputNotFoundError (a FileNotFoundError), InputError, FFmpegNotFoundError, ValueError
    """
    opts = FileOptions(**options)
    sample_rate, method = opts.sample_rate, opts.method
    t0 = time.monotonic()
    (ref, oth), finished = decode_inputs((reference, other), sample_rate, opts.max_seconds, opts.timeout)
    lag, fraction, est = compare(ref, oth, method, sample_rate)
    confidence, coefficient = est.confidence, est.coefficient
    progress = Progress(interval_s=len(oth) / sample_rate, lag_ms=1000.0 * (lag + fraction) / sample_rate,
                        confidence=confidence, confident=finished and confidence >= opts.min_confidence,
                        downloaded_s=len(ref) / sample_rate, evidence=est.evidence, prominence=est.prominence,
                        elapsed_s=time.monotonic() - t0)
    return SyncResult(
        lag_ms=progress.lag_ms, confidence=confidence, confident=progress.confident,
        interval_s=progress.interval_s, elapsed_s=time.monotonic() - t0,
        reason="complete" if finished else "timeout",
        lag_samples=int(lag), sample_rate=sample_rate, coefficient=float(coefficient),
        prominence=float(est.prominence), evidence=float(est.evidence),
        history=(progress,), audio=(ref, oth) if opts.keep_audio else None,
    )
