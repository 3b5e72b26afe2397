"""Following the player: a lag kept up to date from a listener's audio.

A :class:`Tracker` decodes the song once, finds the lag in the audio heard
since ``since`` (the search a sync makes), then every ``every_s`` seconds
looks for the newest audio only near where the lag says it should be: a
search a few hundred milliseconds wide, which costs a few milliseconds.
When that look fails, the stretch where the audio stopped following the
line is found, the lag is unknown (reported once), and the whole song is
searched again from that point on, as a new sync would.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np

from audiosync.download import input_args
from audiosync.errors import AudiosyncError
from audiosync.method import Estimate, estimate, make_correlator, nearby
from audiosync.options import SyncOptions
from audiosync.producer import Producer
from audiosync.results import SyncResult
from audiosync.session import JobState

__all__ = ["Tracker"]

log = logging.getLogger("audiosync")

CHECK_S = 3.0          # the newest audio a re-check looks at
REACH_S = 0.25         # how far from the line a re-check looks (a seek moves the song further)
BLOCK_S = 0.25         # the re-check's blocks, each judged on its own to place a change
FOLLOWS = 0.5          # a block whose Pearson on the line reaches this follows the line
JUMP_MS = 10.0         # a new line this far from the old one is a jump
SEARCH_EVERY_S = 0.25  # while searching, how often the growing audio is looked at
SILENT_RMS = 1e-4      # blocks quieter than this (a pause) hold nothing to search for
MIN_DRIFT_SPAN_S = 30.0  # the re-checks must span this long before a drift is reported


class Source(Protocol):
    """What a tracker reads: a :class:`audiosync.Listener`."""

    rate: int

    def audio(self, since: float | None = None) -> tuple[np.ndarray, float | None]: ...

    def window(self, seconds: float) -> tuple[np.ndarray, float | None, bool]: ...


class Tracker:
    """The song's position over time, re-checked every ``every_s`` seconds (see ``Listener.track``)."""

    def __init__(self, source: Source, url: str, on_change: Callable[[SyncResult], None], every_s: float,
                 since: float, options: SyncOptions, forget: Callable[["Tracker"], None] | None = None):
        self.source = source
        self.url = url
        self.on_change = on_change
        self.every_s = every_s
        self.options = options
        self.rate = source.rate
        self.error: str | None = None
        """Why the tracker ended early (the song could not be read), else None."""
        self.checks = 0
        """Re-checks made near the line."""
        self.check_cpu_s = 0.0
        """CPU seconds those re-checks took (thread time), for the cost figures."""
        self._forget = forget
        self._cond = threading.Condition()
        self._state = JobState.IDLE
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin = since          # where the current search starts (monotonic)
        self._line: tuple[float, float] | None = None  # (t, song ms at t) of the last lock
        self._points: list[tuple[float, float]] = []     # re-checks on the current line
        self._known = False
        self._searched: tuple[float, int, float] | None = None  # (origin, interval, when) of the last search
        self._result: SyncResult | None = None
        self._t0 = time.monotonic()

    # -- control -----------------------------------------------------------

    def start(self) -> "Tracker":
        self._state = JobState.RUNNING
        self._thread = threading.Thread(target=self._run, name="audiosync-tracker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop tracking (its download included) and wait for the thread. Idempotent."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> str:
        """``"running"``, ``"paused"``, ``"aborting"`` or ``"idle"`` (stopped), as a job's."""
        return self._state.value if self.running else JobState.IDLE.value

    def pause(self) -> bool:
        """Stop re-checking until :meth:`resume` (the lag is searched for afresh then)."""
        with self._cond:
            if self._state != JobState.RUNNING or not self.running:
                return False
            self._state = JobState.PAUSED
            self._cond.notify_all()
            return True

    def resume(self) -> bool:
        with self._cond:
            if self._state != JobState.PAUSED or not self.running:
                return False
            self._state = JobState.RUNNING
            self._cond.notify_all()
            return True

    def abort(self) -> bool:
        """Stop tracking, from any thread, without waiting; True when it was running."""
        with self._cond:
            if not self.running or self._state == JobState.ABORTING:
                return False
            self._state = JobState.ABORTING
            self._stop.set()
            self._cond.notify_all()
            return True

    # -- what it knows -----------------------------------------------------

    @property
    def result(self) -> SyncResult | None:
        """The last answer reported to ``on_change`` (None before the first)."""
        return self._result

    @property
    def drift_ppm(self) -> float | None:
        """How much faster the song plays than ``time.monotonic()`` runs, in ppm, once the
        re-checks on one line span MIN_DRIFT_SPAN_S; None before."""
        pts = self._points
        if len(pts) < 3 or pts[-1][0] - pts[0][0] < MIN_DRIFT_SPAN_S:
            return None
        t = np.array([p[0] for p in pts])
        ms = np.array([p[1] for p in pts])
        slope = np.polyfit(t - t[0], ms, 1)[0] / 1000.0
        return float((slope - 1.0) * 1e6)

    def lag_at(self, t: float) -> float | None:
        """The song's position (ms) at ``time.monotonic()`` instant ``t``, or None while unknown."""
        line = self._line
        if line is None or not self._known:
            return None
        drift = self.drift_ppm or 0.0
        return line[1] + (t - line[0]) * 1000.0 * (1.0 + drift * 1e-6)

    # -- the thread --------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until stopped (False), waiting out a pause."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if self._state == JobState.PAUSED:
                    self._cond.wait(0.1)
                    if self._state == JobState.RUNNING:  # resumed: search afresh
                        self._origin = time.monotonic()
                        self._lost()
                    continue
                if left <= 0:
                    return True
                self._cond.wait(left)
        return False

    def _run(self) -> None:
        try:
            song = self._download()
            if song is None:
                return
            self._song = song
            longest = min(len(song), int(round(self.options.intervals[-1] * self.rate)))
            self._whole = make_correlator(song, longest, self.options.method, self.rate)
            next_check = time.monotonic()
            while not self._stop.is_set():
                if self._known:
                    if time.monotonic() >= next_check:
                        next_check = time.monotonic() + self.every_s
                        self._recheck()
                    pause = max(0.0, next_check - time.monotonic()) if self._known else 0.0
                else:
                    self._search()
                    pause = SEARCH_EVERY_S
                if pause and not self._wait(pause):
                    break
        except Exception as exc:  # the thread's end must be seen, not lost
            log.exception("tracker failed")
            self.error = f"{type(exc).__name__}: {exc}"
            self._report(confident=False, reason="failed")
        finally:
            self._state = JobState.IDLE
            if self._forget is not None:
                self._forget(self)

    def _download(self) -> np.ndarray | None:
        capacity = int(round(self.options.max_download_s * self.rate))
        try:
            producer = Producer("download", input_args(self.url, self.options.use_ytdlp), self.rate, capacity,
                                self._cond)
        except (AudiosyncError, OSError, ValueError) as exc:
            self.error = str(exc)
            self._report(confident=False, reason="failed")
            return None
        try:
            with self._cond:
                while not (producer.done or producer.count >= capacity or self._stop.is_set()):
                    self._cond.wait(0.1)
            if self._stop.is_set():
                return None
            if producer.count == 0:
                self.error = f"cannot open or decode {self.url!r}: {producer.error or 'no audio in it'}"
                self._report(confident=False, reason="failed")
                return None
            return producer.buffer[:producer.count].copy()
        finally:
            producer.stop()

    def _search(self) -> None:
        """Look for the audio since the origin in the whole song, at the interval schedule's
        points (as a sync does); lock on a confident answer."""
        audio, first_t = self.source.audio(self._origin)
        if first_t is None:
            return
        # A pause leaves silence: the search starts where sound does.
        loud = _first_loud(audio, int(BLOCK_S * self.rate))
        if loud:
            audio, first_t = audio[loud:], first_t + loud / self.rate
            self._origin = first_t
        intervals = self.options.intervals
        due = [k for k, s in enumerate(intervals) if s * self.rate <= len(audio)]
        if not due:
            return
        k = due[-1]
        if k == len(intervals) - 1:  # the longest: it slides on with the newest audio
            cut = len(audio) - int(round(intervals[k] * self.rate))
            audio, first_t = audio[cut:], first_t + cut / self.rate
            self._origin = first_t
            if self._searched is not None and time.monotonic() - self._searched[2] < self.every_s:
                return
        elif self._searched is not None and self._searched[:2] == (self._origin, k):
            return
        self._searched = (self._origin, k, time.monotonic())
        try:
            est = estimate(self._whole, audio, self.options.method, self.rate, "live", len(audio) / self.rate,
                           window=self._hint())
        except ValueError as exc:
            log.debug("tracker: search skipped: %s", exc)
            return
        log.debug("tracker: searched %.1f s: lag %.1f ms, confidence %.3f", len(audio) / self.rate,
                  est.lag_ms(self.rate), est.confidence)
        if est.confidence >= self.options.min_confidence:
            self._lock(est, first_t, len(audio))

    def _hint(self) -> tuple[int, int] | None:
        if self.options.hint_ms is None or self._result is not None:
            return None
        hint = self.options.hint_ms * self.rate / 1000.0
        half = self.options.hint_window_ms * self.rate / 1000.0
        return int(math.floor(hint - half)), int(math.ceil(hint + half))

    def _lock(self, est: Estimate, first_t: float, n: int) -> None:
        lag_ms = est.lag_ms(self.rate)
        old = self._line
        moved = old is None or abs(old[1] + (first_t - old[0]) * 1000.0 - lag_ms) > JUMP_MS
        self._line = (first_t, lag_ms)
        self._points = [(first_t, lag_ms)]
        was_known, self._known = self._known, True
        if moved or not was_known:
            self._report(confident=True, reason="confident", est=est, first_t=first_t, n=n)

    def _lost(self) -> None:
        if self._known:
            self._known = False
            self._report(confident=False, reason="lost")

    def _recheck(self) -> None:
        """The newest audio near the line: still on it, moved a little, or lost."""
        cpu = time.thread_time()
        audio, first_t, capturing = self.source.window(CHECK_S)
        try:
            if first_t is None or len(audio) < CHECK_S * self.rate / 2:
                if not capturing:
                    self._origin = time.monotonic()
                    self._lost()
                return
            expected = self._line[1] + (first_t - self._line[0]) * 1000.0
            reach = int(round(REACH_S * self.rate))
            start = int(round(expected * self.rate / 1000.0)) - reach
            song = self._song
            if start < 0 or start + len(audio) + 2 * reach > len(song):
                self._changed(audio, first_t, expected)  # the song ended, or the line left it
                return
            near = make_correlator(song[start:start + len(audio) + 2 * reach], len(audio), self.options.method,
                                   self.rate)
            est = nearby(near, audio, self.rate, (0, 2 * reach))
            est = replace(est, lag=start + est.lag)
            lag_ms = est.lag_ms(self.rate)
            follows = _following(audio, song, est.lag, int(BLOCK_S * self.rate))
            # On the line only: a confident peak elsewhere within the reach, on a window that a
            # seek or a pause cut, is no answer (the whole song is searched for that). And the
            # newest second must still follow the line, which a window half before a seek hides.
            on_line = abs(lag_ms - expected) <= JUMP_MS and follows[-int(round(1.0 / BLOCK_S)):].any()
            if est.confidence >= self.options.min_confidence and on_line:
                self.checks += 1
                self._points.append((first_t, lag_ms))
                return
            self._changed(audio, first_t, expected, follows)
        finally:
            self.check_cpu_s += time.thread_time() - cpu

    def _changed(self, audio: np.ndarray, first_t: float, expected: float,
                 follows: np.ndarray | None = None) -> None:
        """The audio left the line: the search starts after the last block that followed it."""
        block = int(BLOCK_S * self.rate)
        keep = 0
        if follows is not None and follows.any():
            keep = (int(np.flatnonzero(follows)[-1]) + 1) * block
        self._origin = first_t + keep / self.rate
        self._lost()

    def _report(self, confident: bool, reason: str, est: Estimate | None = None, first_t: float | None = None,
                n: int = 0) -> None:
        if est is None:
            result = SyncResult(lag_ms=0.0, confidence=0.0, confident=False, interval_s=0.0,
                                elapsed_s=time.monotonic() - self._t0, reason=reason, sample_rate=self.rate)
        else:
            result = SyncResult(
                lag_ms=est.lag_ms(self.rate), confidence=est.confidence, confident=confident,
                interval_s=n / self.rate, elapsed_s=time.monotonic() - self._t0, reason=reason,
                lag_samples=int(est.lag), sample_rate=self.rate, coefficient=float(est.coefficient),
                prominence=float(est.prominence), evidence=float(est.evidence), capture_started=first_t,
            )
        self._result = result
        try:
            self.on_change(result)
        except Exception:  # the caller's bug must not end the tracking
            log.exception("on_change raised")


def _first_loud(audio: np.ndarray, block: int) -> int:
    """The start of the first block louder than SILENT_RMS (0 when the first is)."""
    n = len(audio) // block
    if n == 0:
        return 0
    rms = np.sqrt(np.mean(np.square(audio[:n * block].reshape(n, block), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms > SILENT_RMS)
    return int(loud[0]) * block if len(loud) else n * block


def _following(audio: np.ndarray, song: np.ndarray, at: int, block: int) -> np.ndarray:
    """For each block of ``audio``, whether it matches ``song`` from ``at`` on (Pearson >= FOLLOWS)."""
    n = len(audio) // block
    if n == 0 or at < 0 or at + n * block > len(song):
        return np.zeros(max(n, 1), dtype=bool)
    x = audio[:n * block].reshape(n, block).astype(np.float64)
    y = song[at:at + n * block].reshape(n, block).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (x * y).sum(axis=1) / den, 0.0)
    return r >= FOLLOWS
