"""One sync job: two producers, a condition variable, the interval schedule, and its status."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


import numpy as np

from audiosync.capture import capture_input_args
from audiosync.download import input_args
from audiosync.errors import CaptureError, InputError, JobBusyError
from audiosync.producer import Producer
from audiosync.method import METHODS, Estimate, estimate, make_correlator
from audiosync.xcorr import Correlator

__all__ = ["DEFAULT_INTERVALS", "Progress", "SyncJob", "SyncResult"]

log = logging.getLogger("audiosync")

DEFAULT_INTERVALS = (3, 6, 10, 15, 20, 30)
# The download is decoded faster than real time; keep this much of it (or
# twice the longest interval, if more) so a capture that started late in the
# song can still be found.
DEFAULT_DOWNLOAD_S = 120.0
_POLL_S = 0.05  # how often a waiting job looks at abort, pause and the deadline


@dataclass(frozen=True)
class Progress:
    """What one interval found; passed to ``on_progress``."""

    interval_s: float
    """Seconds of capture this estimate used."""
    lag_ms: float
    confidence: float
    confident: bool
    downloaded_s: float
    """Seconds of the download decoded when the estimate was made."""
    decision_ms: float = 0.0
    """Milliseconds from the interval's data being there to this estimate."""


@dataclass(frozen=True)
class SyncResult:
    """The answer of a sync: ``capture(t) ≈ download(t + lag_ms)``."""

    lag_ms: float
    """Milliseconds into the download at which the capture started (negative: before it)."""
    confidence: float
    """In [0, 1]: the peak's prominence mapped so 0.95 is the calibrated threshold
    (|Pearson| at the peak with ``method="seed"``)."""
    confident: bool
    """``confidence >= min_confidence``."""
    interval_s: float
    """Seconds of capture the answer used."""
    elapsed_s: float
    """Wall-clock seconds from the call to the answer."""
    reason: str = "confident"
    """Why it stopped: confident, exhausted (every interval tried), capture-ended, timeout,
    aborted; complete for :func:`audiosync.sync_files`."""
    lag_samples: int = 0
    sample_rate: int = 48000
    coefficient: float = 0.0
    """Signed Pearson coefficient at the peak (negative: polarity inverted)."""
    prominence: float = 0.0
    """The peak over the largest value more than 30 ms away (nan with ``method="seed"``)."""
    capture_started: float | None = None
    """Estimated ``time.monotonic()`` of the first captured sample."""
    history: tuple[Progress, ...] = field(default=())
    """Every interval's estimate, in order."""
    audio: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    """With ``keep_audio=True``: the (source, sample) arrays the answer came from."""


def _check_options(sample_rate: int, intervals: Sequence[float], min_confidence: float,
                   timeout: float | None, method: str = "phat") -> tuple[float, ...]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be an int from 8000 to 192000, got {sample_rate!r}")
    try:
        ivals = tuple(float(t) for t in intervals)
    except (TypeError, ValueError):
        raise ValueError(f"intervals must be a sequence of seconds, got {intervals!r}") from None
    if not ivals or any(not math.isfinite(t) or t <= 0 for t in ivals) or list(ivals) != sorted(set(ivals)):
        raise ValueError(f"intervals must be positive, finite and increasing, got {intervals!r}")
    if ivals[-1] > 600:
        raise ValueError(f"the longest interval is {ivals[-1]} s; at most 600 s is supported")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    if timeout is not None and not (timeout > 0):
        raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
    return ivals


class SyncJob:
    """A sync job that can be paused, resumed and aborted from other threads.

    One job runs at a time per object (a second :meth:`sync` while one runs
    raises :class:`JobBusyError`); independent objects run side by side.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._state = "idle"

    @property
    def status(self) -> str:
        """``"idle"``, ``"running"``, ``"paused"`` or ``"aborting"``."""
        return self._state

    def pause(self) -> bool:
        """Stop capturing until :meth:`resume`; the capture restarts from scratch then."""
        return self._transition("running", "paused")

    def resume(self) -> bool:
        """Resume a paused job."""
        return self._transition("paused", "running")

    def abort(self) -> bool:
        """Make a running or paused job return (not confident) within a second."""
        with self._cond:
            if self._state in ("running", "paused"):
                self._state = "aborting"
                self._cond.notify_all()
                return True
            return False

    def _transition(self, old: str, new: str) -> bool:
        with self._cond:
            if self._state != old:
                return False
            self._state = new
            self._cond.notify_all()
            return True

    def sync(self, url: str, *, capture: str | Sequence[str] | None = None, sample_rate: int = 48000,
             intervals: Sequence[float] = DEFAULT_INTERVALS, min_confidence: float = 0.95,
             timeout: float | None = None,
             on_progress: Callable[[Progress], None] | None = None,
             use_ytdlp: bool | None = None, keep_audio: bool = False,
             method: str = "phat") -> SyncResult:
        """Record the desktop while decoding ``url`` and return the lag between them.

        See :func:`audiosync.sync` for the parameters.
        """
        ivals = _check_options(sample_rate, intervals, min_confidence, timeout, method)
        with self._cond:
            if self._state != "idle":
                raise JobBusyError(f"this job is {self._state}: one sync at a time (use another SyncJob)")
            self._state = "running"
        try:
            return _Run(self, url, capture, sample_rate, ivals, float(min_confidence),
                        timeout, on_progress, use_ytdlp, keep_audio, method).execute()
        finally:
            with self._cond:
                self._state = "idle"
                self._cond.notify_all()


class _Run:
    """The state of one call of SyncJob.sync; everything it starts, it stops."""

    def __init__(self, job: SyncJob, url, capture, rate, intervals, min_confidence, timeout,
                 on_progress, use_ytdlp, keep_audio, method):
        self.job = job
        self.method = method
        self.keep_audio = keep_audio
        self.use_ytdlp = use_ytdlp
        self.cond = job._cond
        self.url = url
        self.capture_spec = capture
        self.rate = rate
        self.intervals = intervals
        self.min_confidence = min_confidence
        self.on_progress = on_progress
        self.t0 = time.monotonic()
        self.deadline = None if timeout is None else self.t0 + timeout
        self.download: Producer | None = None
        self.capture: Producer | None = None
        self.history: list[Progress] = []
        self.best: SyncResult | None = None
        # The download's transform, kept while the download stays the same
        # length (it usually is complete, or at capacity, after a few seconds).
        self.correlator: Correlator | None = None

    # -- producers ---------------------------------------------------------

    def _start_capture(self) -> None:
        self.capture = Producer("capture", self.capture_args, self.rate,
                                int(round(self.intervals[-1] * self.rate)), self.cond)

    def _stop_all(self) -> None:
        for p in (self.capture, self.download):
            if p is not None:
                p.stop()

    def execute(self) -> SyncResult:
        try:
            download_args = input_args(self.url, self.use_ytdlp)
            self.capture_args = capture_input_args(self.capture_spec)
            capacity = int(round(max(DEFAULT_DOWNLOAD_S, 2 * self.intervals[-1]) * self.rate))
            self.download = Producer("download", download_args, self.rate, capacity, self.cond)
            self._start_capture()
            return self._schedule()
        finally:
            self._stop_all()

    # -- the schedule ------------------------------------------------------

    def _wait(self, need_capture: int, need_download: int) -> str:
        """Wait until both buffers hold what the interval needs; say what happened."""
        with self.cond:
            while True:
                state = self.job._state
                if state == "aborting":
                    return "aborted"
                if state == "paused":
                    return "paused"
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    return "timeout"
                dl, cap = self.download, self.capture
                if dl.done and dl.count == 0:
                    raise InputError(f"cannot open or decode {self.url!r}: "
                                     f"{dl.error or 'no audio in it'}")
                if cap.done and cap.count == 0:
                    raise CaptureError(f"cannot record from {' '.join(self.capture_args)!r}: "
                                       f"{cap.error or 'the capture gave no audio'}")
                if (cap.count >= need_capture or cap.done) and (dl.count >= need_download or dl.done):
                    return "ready"
                self.cond.wait(_POLL_S)

    def _wait_while_paused(self) -> str:
        with self.cond:
            while self.job._state == "paused":
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    return "timeout"
                self.cond.wait(_POLL_S)
            return "aborted" if self.job._state == "aborting" else "running"

    def _schedule(self) -> SyncResult:
        k = 0
        while k < len(self.intervals):
            need_capture = int(round(self.intervals[k] * self.rate))
            need_download = min(2 * need_capture, len(self.download.buffer))
            event = self._wait(need_capture, need_download)
            if event == "paused":
                # The desktop stopped: what was captured no longer lines up with
                # what comes after.  Drop it and start the schedule again.
                log.info("paused: capture stopped")
                self.capture.stop()
                event = self._wait_while_paused()
                if event == "running":
                    log.info("resumed: capture restarted")
                    self._start_capture()
                    k = 0
                    continue
            if event in ("aborted", "timeout"):
                return self._finish(event)
            result = self._estimate(need_capture, time.perf_counter())
            if result.confident:
                return result
            if self.capture.done and self.capture.count <= need_capture:
                return self._finish("capture-ended" if k + 1 < len(self.intervals) else "exhausted")
            k += 1
        return self._finish("exhausted")

    def _correlator(self, n_src: int) -> Correlator:
        c = self.correlator
        if c is None or c.source.shape[0] != n_src:
            # Linear: a capture that starts before the song does not wrap onto
            # the download's tail.
            longest = min(n_src, int(round(self.intervals[-1] * self.rate)))
            c = self.correlator = make_correlator(self.download.buffer[:n_src], longest, self.method,
                                                  self.rate)
        return c

    def _estimate(self, need_capture: int, ready_at: float) -> SyncResult:
        with self.cond:
            n_cap = min(self.capture.count, need_capture)
            n_dl = self.download.count
            dl_done = self.download.done
            anchor = self.capture.anchor
        # A download that ended early is padded with zeros (the buffer is
        # zero beyond what ffmpeg wrote), as in the original.
        n_src = max(n_dl, 2 * n_cap) if dl_done else n_dl
        n_src = min(max(n_src, n_cap), len(self.download.buffer))
        sample = self.capture.buffer[:n_cap]
        try:
            est = estimate(self._correlator(n_src), sample, self.method, self.rate, "live",
                           n_cap / self.rate)
        except ValueError as exc:  # fewer than 2 samples captured
            log.debug("interval skipped: %s", exc)
            est = Estimate(0, 0.0, 0.0, 0.0, 0.0)
        lag, coefficient, confidence = est.lag, est.coefficient, est.confidence
        progress = Progress(
            interval_s=n_cap / self.rate, lag_ms=est.lag_ms(self.rate), confidence=confidence,
            confident=confidence >= self.min_confidence, downloaded_s=n_dl / self.rate,
            decision_ms=1000.0 * (time.perf_counter() - ready_at),
        )
        self.history.append(progress)
        log.info("interval %.1f s: lag %.1f ms, confidence %.3f", progress.interval_s,
                 progress.lag_ms, confidence)
        if self.on_progress is not None:
            self.on_progress(progress)
        result = SyncResult(
            lag_ms=progress.lag_ms, confidence=confidence, confident=progress.confident,
            interval_s=progress.interval_s, elapsed_s=time.monotonic() - self.t0,
            reason="confident", lag_samples=int(lag), sample_rate=self.rate,
            coefficient=float(coefficient), prominence=float(est.prominence), capture_started=anchor,
            history=tuple(self.history),
            audio=(self.download.buffer[:n_src], sample) if self.keep_audio else None,
        )
        if self.best is None or confidence >= self.best.confidence:
            self.best = result
        return result

    def _finish(self, reason: str) -> SyncResult:
        elapsed = time.monotonic() - self.t0
        base = self.best
        if base is None:
            return SyncResult(lag_ms=0.0, confidence=0.0, confident=False, interval_s=0.0,
                              elapsed_s=elapsed, reason=reason, sample_rate=self.rate,
                              history=tuple(self.history))
        return SyncResult(
            lag_ms=base.lag_ms, confidence=base.confidence, confident=False,
            interval_s=base.interval_s, elapsed_s=elapsed, reason=reason,
            lag_samples=base.lag_samples, sample_rate=self.rate, coefficient=base.coefficient,
            prominence=base.prominence,
            capture_started=base.capture_started, history=tuple(self.history), audio=base.audio,
        )


