"""Always listening: one ffmpeg capture into a ring of the last minute, and syncs answered from it.

The audio stays in this process's memory; nothing is written anywhere.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from audiosync import ffmpeg
from audiosync._sizes import ANALYSIS_RATE
from audiosync.capture import capture_input_args
from audiosync.errors import CaptureError
from audiosync.options import SyncOptions
from audiosync.results import Progress, SyncResult
from audiosync.ring import Ring, Segment
from audiosync.session import SyncJob
from audiosync.tracker import Tracker

__all__ = ["Heard", "Listener", "ListenerStatus"]

log = logging.getLogger("audiosync")

MAX_SECONDS = 3600.0      # a ring longer than an hour is a mistake (230 MB at 16 kHz)
DEFAULT_SINCE_S = 1.0     # without `since`, a sync takes the audio heard from this long before the call
FIRST_BACKOFF_S = 0.5     # a capture that died is restarted after this, doubling up to MAX_BACKOFF_S
MAX_BACKOFF_S = 8.0
STEADY_S = 10.0           # a capture that ran this long resets the back-off
_READ_BYTES = 1 << 15     # ~0.5 s at 16 kHz: the pipe gives what it has, up to this
# The sound server hands ffmpeg 0.2 s at a time (48 kHz stereo s16) instead of ~40 ms: a
# fifth of the wake-ups, and a listener records for hours. Each sample's time is unchanged.
PULSE_FRAGMENT_BYTES = 38400
_STOP_GRACE_S = 0.3
_SINCE_SLACK_S = 0.05     # a `since` this close to now (or to the buffer's start) is taken as that
# Audio already held makes each further second cheap to wait for: look again after each one
# (a sync's default schedule jumps from 3 to 6 s).
LISTEN_INTERVALS = (3, 4, 5, 6, 8, 10, 15, 20, 30)


class Heard(NamedTuple):
    """Audio read from a listener's ring."""

    samples: np.ndarray
    index: int
    """The running sample count of ``samples[0]`` (positions within a segment are exact; times
    are re-estimated as the capture goes on)."""
    time: float | None
    """``time.monotonic()`` of ``samples[0]`` as now estimated (None: nothing held)."""
    segment: int
    """The first sample of the capture run it belongs to: it changes at every restart."""
    capturing: bool
    """That run is still recording."""


@dataclass(frozen=True)
class ListenerStatus:
    """What :meth:`Listener.status` reports."""

    running: bool
    """Started and not stopped (the capture may be between restarts)."""
    capturing: bool
    """ffmpeg is recording now."""
    buffered_s: float
    """Seconds of unbroken audio held, up to the ring's length."""
    restarts: int
    """How many times the capture died and was started again."""
    gaps: int
    """Breaks in the held audio (a restart leaves one; no answer spans it)."""
    last_error: str | None
    """Why the capture last died (ffmpeg's or the sound server's words)."""
    source: str
    """The ffmpeg input being recorded."""


def _seconds(name: str, value: object, limit: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 < value <= limit
    if not ok:
        raise ValueError(f"{name} must be a positive number of seconds up to {limit:g}, got {value!r}")
    return float(value)


class Listener:
    """Record the desktop continuously into a ring of the last ``seconds`` of audio.

    ``capture`` takes the same specs as :func:`audiosync.sync`. Use
    ``with Listener() as ls:`` or :meth:`start`/:meth:`stop`. A capture
    that dies is restarted with back-off; the gap stays in the timeline.
    """

    def __init__(self, capture: str | Sequence[str] | None = None, *, seconds: float = 60.0,
                 sample_rate: int = ANALYSIS_RATE):
        self.seconds = _seconds("seconds", seconds, MAX_SECONDS)
        SyncOptions(sample_rate=sample_rate)  # the same rule as a sync's
        self.rate = sample_rate
        self.capture = capture
        self._lock = threading.Lock()
        self._ring = Ring(int(round(self.seconds * sample_rate)), sample_rate)
        self._taps: set[_Tap] = set()
        self._trackers: set[Tracker] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._args: list[str] = []
        self._started_at: float | None = None
        self._restarts = 0
        self._error: str | None = None

    # -- running -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Listener":
        """Start capturing (checks the source first: CaptureError, ValueError). Idempotent."""
        if self.running:
            return self
        self._input_args()  # a bad source fails here, in the caller's thread
        ffmpeg.ffmpeg_path()
        self._stop.clear()
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._capture, name="audiosync-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the trackers and the capture; the buffered audio is dropped. Idempotent."""
        with self._lock:
            self._stop.set()  # under the lock: no track() starts a tracker after this
            trackers = list(self._trackers)
            proc = self._proc
        for tracker in trackers:
            tracker.stop()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:  # ffmpeg blocked on a silent source may not see SIGTERM
                proc.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._ring = Ring(self._ring.capacity, self.rate)
            taps = list(self._taps)
        for tap in taps:
            tap.feed()

    def __enter__(self) -> "Listener":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def status(self) -> ListenerStatus:
        with self._lock:
            seg = self._ring.current
            held = 0 if seg is None else seg.end - max(seg.first, self._ring.oldest)
            gaps = sum(1 for s in self._ring.segments if not s.open and s.end > self._ring.oldest)
            return ListenerStatus(
                running=self.running, capturing=self._proc is not None and seg is not None,
                buffered_s=held / self.rate, restarts=self._restarts, gaps=gaps,
                last_error=self._error, source=" ".join(self._args),
            )

    def _input_args(self) -> list[str]:
        args = capture_input_args(self.capture)
        if args[:2] == ["-f", "pulse"]:
            args = [*args[:2], "-fragment_size", str(PULSE_FRAGMENT_BYTES), *args[2:]]
        return args

    def _capture(self) -> None:
        backoff = FIRST_BACKOFF_S
        first = True
        try:
            while not self._stop.is_set():
                if not first:
                    self._restarts += 1
                    log.info("listener: capture restarts in %.1f s (%s)", backoff, self._error)
                    if self._stop.wait(backoff):
                        break
                    backoff = min(2 * backoff, MAX_BACKOFF_S)
                first = False
                began = time.monotonic()
                try:
                    self._args = self._input_args()
                    self._record_once()
                except Exception as exc:  # the sound server's client, a temporary file: restart
                    log.warning("listener: capture failed: %s: %s", type(exc).__name__, exc)
                    self._error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - began >= STEADY_S:
                    backoff = FIRST_BACKOFF_S
        finally:
            with self._lock:
                self._ring.end()
                taps = list(self._taps)
            for tap in taps:
                tap.feed()

    def _record_once(self) -> None:
        """One ffmpeg run, read into the ring as one segment."""
        stderr = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(ffmpeg.command(*self._args, *ffmpeg.pcm_output(self.rate)),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
        except OSError as exc:
            stderr.close()
            self._error = f"cannot start ffmpeg: {exc}"
            return
        with self._lock:
            self._proc = proc
            self._ring.begin()
        if self._stop.is_set():  # stop() came between the check and the Popen
            proc.terminate()
        chunk = bytearray(_READ_BYTES)
        view = memoryview(chunk)
        pending = b""
        try:
            while True:
                n = proc.stdout.readinto(view)
                if not n:
                    break
                now = time.monotonic()
                data = pending + bytes(view[:n])
                whole = len(data) - len(data) % 4
                pending = data[whole:]
                samples = np.frombuffer(data[:whole], dtype="<f4")
                with self._lock:
                    self._ring.write(samples, now)
                    taps = list(self._taps)
                for tap in taps:
                    tap.feed()
        except (OSError, ValueError):
            pass
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                rc = proc.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            proc.stdout.close()
            if not self._stop.is_set():
                stderr.seek(0)
                tail = stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:]
                self._error = " | ".join(tail) or f"ffmpeg ended (status {rc})"
            stderr.close()
            with self._lock:
                self._proc = None
                self._ring.end()
                taps = list(self._taps)
            for tap in taps:
                tap.feed()

    # -- reading -----------------------------------------------------------

    def _check_since(self, since: float | None, now: float) -> float:
        """``since`` checked against the buffer (ValueError naming it), or the default."""
        if since is None:
            return now - DEFAULT_SINCE_S
        ok = isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since)
        if not ok:
            raise ValueError(f"since must be a time.monotonic() value, got {since!r}")
        if since > now + _SINCE_SLACK_S:
            raise ValueError(f"since is {since - now:.3f} s in the future (since={since!r}, now={now!r})")
        with self._lock:
            ring = self._ring
            wrapped = ring.oldest > 0
            seg = ring.segment_of(ring.oldest)
            oldest_t = seg.time_of(ring.oldest) if wrapped and seg is not None and seg.anchor else None
        if (self._started_at is not None and since < self._started_at - _SINCE_SLACK_S) or \
                (oldest_t is not None and since < oldest_t - _SINCE_SLACK_S):
            start = oldest_t if oldest_t is not None else self._started_at
            raise ValueError(f"since is before the listener's buffer: {now - since:.1f} s ago, "
                             f"the buffer starts {now - start:.1f} s ago (since={since!r})")
        return since

    def audio(self, since: float | None = None) -> tuple[np.ndarray, float | None]:
        """A copy of the unbroken audio from ``since`` (default: all held) and its first sample's time."""
        heard = self.heard(since=since)
        return heard.samples, heard.time

    def heard(self, *, since: float | None = None, start: int | None = None,
              newest: float | None = None) -> Heard:
        """The unbroken audio of the latest segment: from time ``since``, or from sample ``start``
        (a running count), or its ``newest`` seconds; all held by default."""
        with self._lock:
            ring = self._ring
            seg = ring.current or (ring.segments[-1] if ring.segments else None)
            if seg is None or seg.anchor is None:
                return Heard(np.zeros(0, dtype=np.float32), ring.total, None, -1, False)
            first = max(seg.first, ring.oldest)
            if since is not None:
                first = max(first, ring.index_at(since, seg))
            if start is not None:
                first = min(max(first, start), seg.end)
            if newest is not None:
                first = max(first, seg.end - int(round(newest * self.rate)))
            return Heard(ring.read(first, seg.end), first, seg.time_of(first), seg.first, seg.open)

    def time_at(self, index: float, segment: int) -> float | None:
        """``time.monotonic()`` of sample ``index`` of the segment starting at ``segment`` (None: gone)."""
        with self._lock:
            for seg in self._ring.segments:
                if seg.first == segment and seg.anchor is not None:
                    return seg.time_of(index)
        return None

    def index_at(self, t: float, segment: int) -> float | None:
        """The (fractional) running sample count at ``time.monotonic()`` ``t`` in that segment."""
        with self._lock:
            for seg in self._ring.segments:
                if seg.first == segment and seg.anchor is not None:
                    return seg.first + (t - seg.anchor) * self.rate
        return None

    def _tap(self, since: float | None, capacity: int, cond: threading.Condition) -> "_Tap":
        tap = _Tap(self, since, capacity, cond)
        with self._lock:
            self._taps.add(tap)
        tap.feed()
        return tap

    def _untap(self, tap: "_Tap") -> None:
        with self._lock:
            self._taps.discard(tap)

    # -- answers -----------------------------------------------------------

    def sync(self, url: str, *, since: float | None = None, job: SyncJob | None = None,
             on_progress: Callable[[Progress], None] | None = None, **options) -> SyncResult:
        """The lag of the song ``url`` from the audio heard since ``since`` on.

        ``since`` is a ``time.monotonic()`` value (when the player reported
        the song change); None takes the audio from a second before the
        call. Audio already held is used at once and the capture after the
        call extends it. ``lag_ms`` is the song's position at the first
        sample used (``capture_started``). ``options`` are those of
        :func:`audiosync.sync` (``intervals`` defaults to LISTEN_INTERVALS);
        ``job`` runs it (default: a new one).
        """
        opts = self._options(options)
        if not self.running:
            raise CaptureError("the listener is not running: start() it first")
        since = self._check_since(since, time.monotonic())
        return (job or SyncJob()).run(url, _ListenerRecorder(self, since), opts, on_progress)

    def track(self, url: str, *, on_change: Callable[[SyncResult], None], every_s: float = 2.0,
              since: float | None = None, **options) -> Tracker:
        """Sync, then re-check the lag every ``every_s`` s; ``on_change(result)`` at every change.

        A change is a jump of the song's position (seek, pause, restart)
        or the lag becoming unknown (a skip to another song, silence). The
        first confident answer is reported too. Returns the running
        :class:`Tracker` (stopped with :meth:`Tracker.stop` or with the listener).
        """
        if not callable(on_change):
            raise ValueError(f"on_change must be callable, got {on_change!r}")
        every_s = _seconds("every_s", every_s, 3600.0)
        opts = self._options(options)
        if not self.running:
            raise CaptureError("the listener is not running: start() it first")
        since = self._check_since(since, time.monotonic())
        tracker = Tracker(self, url, on_change, every_s, since, opts, forget=self._forget)
        with self._lock:
            if self._stop.is_set():
                raise CaptureError("the listener is stopping")
            self._trackers.add(tracker)
        tracker.start()
        return tracker

    def _forget(self, tracker: Tracker) -> None:
        with self._lock:
            self._trackers.discard(tracker)

    def _options(self, options: dict) -> SyncOptions:
        opts = SyncOptions(**{"intervals": LISTEN_INTERVALS, "sample_rate": self.rate, **options})
        if opts.sample_rate != self.rate:
            raise ValueError(f"sample_rate must be the listener's ({self.rate}), got {opts.sample_rate}")
        return opts

    @property
    def trackers(self) -> tuple[Tracker, ...]:
        """The trackers running on this listener."""
        with self._lock:
            return tuple(self._trackers)


class _Tap:
    """A recording fed from the ring (what a Producer is for a new capture), for one sync."""

    def __init__(self, listener: Listener, since: float | None, capacity: int, cond: threading.Condition):
        self.listener = listener
        self.since = since
        self.cond = cond
        self.buffer = np.zeros(capacity, dtype=np.float32)
        self.count = 0
        self.done = False
        self.error: str | None = None
        self._seg: Segment | None = None
        self._first = 0
        self._feeding = threading.Lock()  # the capture thread and the job's both feed

    @property
    def anchor(self) -> float | None:
        seg = self._seg
        return None if seg is None or seg.anchor is None else seg.time_of(self._first)

    def feed(self) -> None:
        """Copy what the ring gained; done when the segment ended (no stitching over a gap)."""
        with self._feeding:
            self._feed()

    def _feed(self) -> None:
        listener = self.listener
        with listener._lock:
            ring = listener._ring
            if self._seg is None:
                seg = ring.current
                if seg is None or seg.anchor is None:
                    last = ring.segments[-1] if ring.segments else None
                    if not self.done and not listener.running:
                        self._finish("the listener stopped")
                    elif not self.done and last is not None and not last.open and last.end == last.first:
                        self._finish(listener._error or "the capture gave no audio")
                    return
                self._seg = seg
                self._first = max(seg.first, ring.oldest)
                if self.since is not None:
                    self._first = max(self._first, ring.index_at(self.since, seg))
            seg = self._seg
            stop = min(seg.end, self._first + len(self.buffer))
            start = self._first + self.count
            fresh = ring.read(start, stop) if stop > start and start >= ring.oldest else None
            ended = not seg.open or seg not in ring.segments
        with self.cond:
            if fresh is not None:
                self.buffer[self.count:self.count + len(fresh)] = fresh
                self.count += len(fresh)
            if ended and not self.done:
                self.done = True
                self.error = None if self.count else "the capture stopped before any audio"
            self.cond.notify_all()

    def _finish(self, why: str) -> None:
        with self.cond:
            self.done = True
            self.error = why
            self.cond.notify_all()

    def stop(self) -> None:
        self.listener._untap(self)


class _ListenerRecorder:
    """The Recorder of a listener's sync: the first recording from ``since``, later ones from now."""

    def __init__(self, listener: Listener, since: float):
        self.listener = listener
        self.since: float | None = since

    def prepare(self) -> None:
        pass

    def start(self, capacity: int, rate: int, cond: threading.Condition) -> _Tap:
        # The first recording from `since`; one after a resume from then on, never from before.
        since = self.since if self.since is not None else time.monotonic()
        self.since = None
        return self.listener._tap(since, capacity, cond)

    def describe(self) -> str:
        return f"the listener ({' '.join(self.listener._args)})"
