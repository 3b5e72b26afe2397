"""One sync job: two producers, a condition variable, the interval schedule, and its status."""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol
from dataclasses import replace

from audiosync._sizes import DEFAULT_INTERVALS
from audiosync.capture import capture_input_args
from audiosync.download import input_args
from audiosync.errors import CaptureError, InputError, JobBusyError
from audiosync.halves import Halves, Splitter
from audiosync.method import NOTHING, estimate, make_correlator
from audiosync.options import SyncOptions
from audiosync.producer import Producer
from audiosync.results import Progress, SyncResult
from audiosync.xcorr import Correlator

__all__ = ["DEFAULT_INTERVALS", "JobState", "Recorder", "SyncJob"]

log = logging.getLogger("audiosync")

_POLL_S = 0.05  # how often a waiting job looks at abort, pause and the deadline


class JobState(str, enum.Enum):
    """Where a :class:`SyncJob` is; the value is what :attr:`SyncJob.status` says."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    ABORTING = "aborting"


class Wake(enum.Enum):
    """Why :meth:`SyncJob.wait_until` returned."""

    READY = "ready"
    PAUSED = "paused"
    RESUMED = "resumed"
    ABORTED = "aborted"
    TIMEOUT = "timeout"


class SyncJob:
    """A sync job that can be paused, resumed and aborted from other threads.

    One job runs at a time per object (a second :meth:`sync` while one runs
    raises :class:`JobBusyError`); independent objects run side by side.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._state = JobState.IDLE

    @property
    def status(self) -> str:
        """``"idle"``, ``"running"``, ``"paused"`` or ``"aborting"``."""
        return self._state.value

    @property
    def condition(self) -> threading.Condition:
        """The condition the job's producers notify when they have new audio."""
        return self._cond

    def pause(self) -> bool:
        """Stop capturing until :meth:`resume`; the capture restarts from scratch then."""
        return self._transition(JobState.RUNNING, JobState.PAUSED)

    def resume(self) -> bool:
        """Resume a paused job."""
        return self._transition(JobState.PAUSED, JobState.RUNNING)

    def abort(self) -> bool:
        """Make a running or paused job return (not confident) within a second."""
        with self._cond:
            if self._state in (JobState.RUNNING, JobState.PAUSED):
                self._state = JobState.ABORTING
                self._cond.notify_all()
                return True
            return False

    def _transition(self, old: JobState, new: JobState) -> bool:
        with self._cond:
            if self._state != old:
                return False
            self._state = new
            self._cond.notify_all()
            return True

    def wait_until(self, ready: Callable[[], bool], deadline: float | None) -> Wake:
        """Wait until ``ready()`` (called under the condition), a pause, an abort or ``deadline``."""
        with self._cond:
            while True:
                if self._state == JobState.ABORTING:
                    return Wake.ABORTED
                if self._state == JobState.PAUSED:
                    return Wake.PAUSED
                if deadline is not None and time.monotonic() >= deadline:
                    return Wake.TIMEOUT
                if ready():
                    return Wake.READY
                self._cond.wait(_POLL_S)

    def wait_while_paused(self, deadline: float | None) -> Wake:
        """Wait out a pause: RESUMED, ABORTED or TIMEOUT."""
        with self._cond:
            while self._state == JobState.PAUSED:
                if deadline is not None and time.monotonic() >= deadline:
                    return Wake.TIMEOUT
                self._cond.wait(_POLL_S)
            return Wake.ABORTED if self._state == JobState.ABORTING else Wake.RESUMED

    def sync(self, url: str, *, capture: str | Sequence[str] | None = None,
             on_progress: Callable[[Progress], None] | None = None, **options) -> SyncResult:
        """Record the desktop while decoding ``url`` and return the lag between them.

        ``options`` are the fields of :class:`audiosync.SyncOptions`; see
        :func:`audiosync.sync` for everything.
        """
        return self.run(url, _CaptureRecorder(capture), SyncOptions(**options), on_progress)

    def run(self, url: str, recorder: "Recorder", options: SyncOptions,
            on_progress: Callable[[Progress], None] | None = None) -> SyncResult:
        """:meth:`sync` with the capture side given as a :class:`Recorder` (a listener's buffer)."""
        with self._cond:
            if self._state != JobState.IDLE:
                raise JobBusyError(f"this job is {self.status}: one sync at a time (use another SyncJob)")
            self._state = JobState.RUNNING
        try:
            return _Run(self, url, recorder, options, on_progress).execute()
        finally:
            with self._cond:
                self._state = JobState.IDLE
                self._cond.notify_all()


class Recorder(Protocol):
    """The capture side of a sync: it starts recordings that fill a buffer, as a Producer does.

    A recording has ``buffer``, ``count``, ``done``, ``error``, ``anchor``
    (read under ``cond``) and ``stop()``.
    """

    def prepare(self) -> None:
        """Check the source (before anything starts); raise CaptureError or ValueError."""

    def start(self, capacity: int, rate: int, cond: threading.Condition) -> Producer:
        """A recording of at most ``capacity`` samples that notifies ``cond``."""

    def describe(self) -> str:
        """The source, for error messages."""


class _CaptureRecorder:
    """Recordings by a new ffmpeg capture each (what :meth:`SyncJob.sync` does)."""

    def __init__(self, capture: str | Sequence[str] | None):
        self.capture = capture
        self.args: list[str] = []

    def prepare(self) -> None:
        self.args = capture_input_args(self.capture)

    def start(self, capacity: int, rate: int, cond: threading.Condition) -> Producer:
        return Producer("capture", self.args, rate, capacity, cond)

    def describe(self) -> str:
        return " ".join(self.args)


class _Run:
    """The state of one call of SyncJob.sync; everything it starts, it stops."""

    def __init__(self, job: SyncJob, url: str, recorder: Recorder,
                 options: SyncOptions, on_progress: Callable[[Progress], None] | None):
        self.job = job
        self.url = url
        self.recorder = recorder
        self.options = options
        self.rate = options.sample_rate
        self.on_progress = on_progress
        self.t0 = time.monotonic()
        self.deadline = None if options.timeout is None else self.t0 + options.timeout
        self.download: Producer | Halves | None = None
        self.splitter: Splitter | None = None
        self.recording: Producer | None = None
        self.history: list[Progress] = []
        self.best: SyncResult | None = None
        # The download's transform, kept while the download stays the same
        # length (it usually is complete, or at capacity, after a few seconds).
        self.correlator: Correlator | None = None

    # -- producers ---------------------------------------------------------

    def _start_recording(self) -> None:
        self.recording = self.recorder.start(int(round(self.options.intervals[-1] * self.rate)), self.rate,
                                             self.job.condition)

    def _stop_all(self) -> None:
        for p in (self.recording, self.download, self.splitter):
            if p is not None:
                p.stop()

    def execute(self) -> SyncResult:
        try:
            download_args = input_args(self.url, self.options.use_ytdlp)
            self.recorder.prepare()
            # The whole song: the buffer's pages are only touched as ffmpeg fills them.
            self.download = Producer("download", download_args, self.rate,
                                     int(round(self.options.max_download_s * self.rate)), self.job.condition,
                                     buffered=True, header=True)
            self._start_recording()
            # A long song also decoded from its middle (the answer waits for all of it), once a
            # thread has asked whether it is worth it.
            self.splitter = Splitter("download", download_args, self.download, self.job.condition)
            return self._schedule()
        finally:
            self._stop_all()

    # -- the schedule ------------------------------------------------------

    def _has(self, need_capture: int, need_download: int) -> bool:
        """Both buffers hold what the interval needs (or will get no more); raises when a side failed."""
        dl, rec = self.download, self.recording
        if dl.done and dl.count == 0:
            raise InputError(f"cannot open or decode {self.url!r}: {dl.error or 'no audio in it'}")
        if rec.done and rec.count == 0:
            raise CaptureError(f"cannot record from {self.recorder.describe()!r}: "
                               f"{rec.error or 'the capture gave no audio'}")
        return (rec.count >= need_capture or rec.done) and (dl.count >= need_download or dl.done)

    def _schedule(self) -> SyncResult:
        intervals = self.options.intervals
        k = 0
        with self.job.condition:
            held = min(self.recording.count, int(round(intervals[-1] * self.rate)))
        # Audio already recorded (a listener's buffer) is used at once, all of it.
        while k + 1 < len(intervals) and intervals[k + 1] * self.rate <= held:
            k += 1
        while k < len(intervals):
            need_capture = max(int(round(intervals[k] * self.rate)), held)
            # The whole download (or max_download_s of it): a place not yet decoded could be the
            # better one, so an estimate on part of the song could only mislead, and a capture
            # read faster than the download would use up the schedule on it.
            need_download = len(self.download.buffer)
            wake = self._wait(need_capture, need_download)
            if wake is Wake.PAUSED:
                # The desktop stopped: what was captured no longer lines up with
                # what comes after.  Drop it and start the schedule again.
                log.info("paused: capture stopped")
                self.recording.stop()
                wake = self.job.wait_while_paused(self.deadline)
                if wake is Wake.RESUMED:
                    log.info("resumed: capture restarted")
                    self._start_recording()
                    k = held = 0
                    continue
            if wake in (Wake.ABORTED, Wake.TIMEOUT):
                return self._finish(wake.value)
            result = self._estimate(need_capture, time.perf_counter())
            if result.confident:
                return result
            if self.recording.done and self.recording.count <= need_capture:
                return self._finish("capture-ended" if k + 1 < len(intervals) else "exhausted")
            k += 1
        return self._finish("exhausted")

    def _wait(self, need_capture: int, need_download: int) -> Wake:
        """:meth:`SyncJob.wait_until` both buffers hold what the interval needs; meanwhile a download
        found worth decoding as two halves gets its second ffmpeg, and the halves are spliced as
        soon as they overlap."""
        while True:
            step = None

            def ready() -> bool:
                nonlocal step
                if self.splitter is not None and self.splitter.ready:
                    step = "split"
                elif isinstance(self.download, Halves) and self.download.wants_check():
                    step = "splice"
                else:
                    step = None
                return step is not None or self._has(need_capture, need_download)

            wake = self.job.wait_until(ready, self.deadline)
            if wake is not Wake.READY or step is None:
                return wake
            if step == "split":  # outside the condition: it may start an ffmpeg
                self.download, self.splitter = self.splitter.apply(), None
            else:
                self.download.check()  # outside the condition: it may stop an ffmpeg

    def _window(self) -> tuple[int, int]:
        """The lags (samples) where the capture probably starts: around the hint, or the song's start."""
        hint = (self.options.hint_ms or 0.0) * self.rate / 1000.0
        half = self.options.hint_window_ms * self.rate / 1000.0
        return int(math.floor(hint - half)), int(math.ceil(hint + half))

    def _correlator(self, n_src: int) -> Correlator:
        c = self.correlator
        if c is None or c.source.shape[0] != n_src:
            # Linear: a capture that starts before the song does not wrap onto
            # the download's tail.
            longest = min(n_src, int(round(self.options.intervals[-1] * self.rate)))
            c = self.correlator = make_correlator(self.download.buffer[:n_src], longest, self.options.method,
                                                  self.rate)
        return c

    def _estimate(self, need_capture: int, ready_at: float) -> SyncResult:
        with self.job.condition:
            n_cap = min(self.recording.count, need_capture)
            n_dl = self.download.count
            # Full at max_download_s counts as complete even before its reader marks it done.
            dl_done = self.download.done or self.download.count >= len(self.download.buffer)
            anchor = self.recording.anchor
        if dl_done and isinstance(self.download, Halves):
            self.download.stop()  # both ffmpeg have ended (or filled the buffer): join the halves' audio
        # A download that ended early is padded with zeros (the buffer is
        # zero beyond what ffmpeg wrote), as in the original.
        n_src = max(n_dl, 2 * n_cap) if dl_done else n_dl
        n_src = min(max(n_src, n_cap), len(self.download.buffer))
        sample = self.recording.buffer[:n_cap]
        try:
            est = estimate(self._correlator(n_src), sample, self.options.method, self.rate, "live",
                           n_cap / self.rate, window=self._window(), trusted=self.options.hint_ms is not None,
                           beside=True)
        except ValueError as exc:  # fewer than 2 samples captured
            log.debug("interval skipped: %s", exc)
            est = NOTHING
        # Never confident on part of the song (only a download cut at max_download_s is partial
        # here): a place not yet decoded could be the better one.
        sure = est.confidence >= self.options.min_confidence and dl_done
        progress = Progress(
            interval_s=n_cap / self.rate, lag_ms=est.lag_ms(self.rate), confidence=est.confidence,
            confident=sure, downloaded_s=n_dl / self.rate,
            decision_ms=1000.0 * (time.perf_counter() - ready_at), evidence=est.evidence,
            prominence=est.prominence, elapsed_s=time.monotonic() - self.t0,
        )
        self.history.append(progress)
        log.info("interval %.1f s: lag %.1f ms, confidence %.3f", progress.interval_s,
                 progress.lag_ms, est.confidence)
        if self.on_progress is not None:
            self.on_progress(progress)
        result = SyncResult(
            lag_ms=progress.lag_ms, confidence=est.confidence, confident=progress.confident,
            interval_s=progress.interval_s, elapsed_s=time.monotonic() - self.t0,
            reason="confident", lag_samples=int(est.lag), sample_rate=self.rate,
            coefficient=float(est.coefficient), prominence=float(est.prominence), evidence=float(est.evidence),
            capture_started=anchor,
            history=tuple(self.history),
            audio=(self.download.buffer[:n_src], sample) if self.options.keep_audio else None,
        )
        if self.best is None or est.confidence >= self.best.confidence:
            self.best = result
        return result

    def _finish(self, reason: str) -> SyncResult:
        """The best answer so far, not confident, for a run that stops without a confident one."""
        elapsed = time.monotonic() - self.t0
        if self.best is None:
            return SyncResult(lag_ms=0.0, confidence=0.0, confident=False, interval_s=0.0,
                              elapsed_s=elapsed, reason=reason, sample_rate=self.rate,
                              history=tuple(self.history))
        return replace(self.best, confident=False, elapsed_s=elapsed, reason=reason, history=tuple(self.history))
