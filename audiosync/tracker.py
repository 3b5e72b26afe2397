"""Following the player: a lag kept up to date from a listener's audio.

A :class:`Tracker` decodes the song once, finds the lag in the audio heard
since ``since`` (the search a sync makes, but from 2 s of audio on: see
EARLY_S), then every ``every_s`` seconds looks for the newest audio only
near where the lag says it should be: a search a few hundred milliseconds
wide, which costs a few milliseconds. When that look fails, the stretch
where the audio stopped following the line is found, the lag is unknown
(reported once), and the whole song is searched again from that point on,
likewise.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from audiosync.download import input_args
from audiosync.errors import AudiosyncError
from audiosync._sizes import smooth_length
from audiosync.method import MIN_CONFIDENT_S, Estimate, estimate, make_correlator
from audiosync.options import SyncOptions
from audiosync.producer import Producer
from audiosync.results import SyncResult
from audiosync.session import JobState

__all__ = ["Tracker"]

log = logging.getLogger("audiosync")

CHECK_S = 3.0          # the newest audio a re-check looks at
BLOCK_S = 0.25         # the re-check's blocks, each judged on its own to place a change
FOLLOWS = 0.5          # a block whose Pearson on the line reaches this follows the line
FOLLOW_SHARE = 0.5     # the share of loud blocks that must follow it
JUMP_MS = 10.0         # a new line this far from the old one is a jump; a re-check looks this far
SEARCH_EVERY_S = 0.25  # while searching, how often the growing audio is looked at
NEAR_S = 3.0           # after a change, first looked for this close to where the song was left
NEAR_MIN_S = 2.0       # with at least this much audio (the lag map's shortest window)
NEAR_EVERY_S = 0.5     # and again after each further half second
SILENT_RMS = 1e-4      # blocks quieter than this (a pause) hold nothing to search for
SILENCE_S = 0.5        # a silence this long in the audio searched is a pause: the search starts after it
MIN_DRIFT_SPAN_S = 30.0  # the re-checks must span this long before a drift is reported
# A tracker's whole-song search is also made at these lengths, before the schedule's, and is
# confident from SEARCH_MIN_S on (a sync's floor is 3 s: MIN_CONFIDENT_S). The rule at 2 and
# 2.5 s on the corpus (`bench/calibrate.py --schedule 2 2.5 3 --floor 2`, README "Always
# listening: figures"): no wrong answer on 192 matched pairs and no unrelated audio confident
# on 78 pairs, fit and held-out packages alike; a seek is then often found from 2 s of audio.
EARLY_S = (2.0, 2.5)
SEARCH_MIN_S = 2.0


class Source(Protocol):
    """What a tracker reads: a :class:`audiosync.Listener` (its ``heard`` is a ``Heard``)."""

    rate: int

    def heard(self, *, since: float | None = None, start: int | None = None, newest: float | None = None): ...

    def time_at(self, index: float, segment: int) -> float | None: ...

    def index_at(self, t: float, segment: int) -> float | None: ...


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
        """Re-checks that found the audio on the line."""
        self.check_ms: deque[float] = deque(maxlen=1000)
        """CPU milliseconds (thread time) of each recent re-check, for the cost figures."""
        self._forget = forget
        self._cond = threading.Condition()
        self._state = JobState.IDLE
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Where the current search starts: a time (`since`, a resume) until a sample is known.
        self._since: float | None = since
        self._origin: int | None = None
        # The line (segment, sample, song ms at that sample) and the re-checks on it: kept in
        # samples of the capture, which are exact, not in times, which are re-estimated.
        self._line: tuple[int, int, float] | None = None
        self._points: list[tuple[int, float]] = []
        self._known = False
        self._fresh = False
        self._searched: tuple[float, int, float] | None = None  # (origin, interval, when) of the last search
        self._left: float | None = None  # the song's position (ms) where the audio last left the line
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
        return self._transition(JobState.RUNNING, JobState.PAUSED)

    def resume(self) -> bool:
        return self._transition(JobState.PAUSED, JobState.RUNNING)

    def _transition(self, old: JobState, new: JobState) -> bool:
        with self._cond:
            if self._state != old or not self.running:
                return False
            self._state = new
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
        """How much faster the song plays than the capture's clock (its samples at their nominal
        rate), in ppm, once the re-checks on one line span MIN_DRIFT_SPAN_S; None before."""
        pts = self._points
        if len(pts) < 3 or (pts[-1][0] - pts[0][0]) / self.rate < MIN_DRIFT_SPAN_S:
            return None
        i = np.array([p[0] - pts[0][0] for p in pts], dtype=np.float64) / self.rate
        ms = np.array([p[1] for p in pts])
        slope = np.polyfit(i, ms, 1)[0] / 1000.0
        return float((slope - 1.0) * 1e6)

    def _position(self, index: float, line: tuple[int, int, float] | None = None) -> float:
        """The song's position (ms) at capture sample ``index`` on ``line`` (default: the current)."""
        segment, at, ms = line or self._line
        return ms + (index - at) * 1000.0 / self.rate * (1.0 + (self.drift_ppm or 0.0) * 1e-6)

    def lag_at(self, t: float) -> float | None:
        """The song's position (ms) at ``time.monotonic()`` instant ``t``, or None while unknown."""
        line = self._line
        if line is None or not self._known:
            return None
        index = self.source.index_at(t, line[0])
        return None if index is None else self._position(index, line)

    # -- the thread --------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until stopped (False), waiting out a pause."""
        deadline = time.monotonic() + seconds
        resumed = False
        with self._cond:
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if self._state == JobState.PAUSED:
                    self._cond.wait(0.1)
                    resumed = self._state == JobState.RUNNING
                    if resumed:
                        break
                    continue
                if left <= 0:
                    break
                self._cond.wait(left)
        if resumed:  # search afresh (on_change is called outside the lock)
            self._since, self._origin = time.monotonic(), None
            self._lost()
        return not self._stop.is_set()

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
                    if self._fresh:  # just locked: the first re-check after every_s
                        self._fresh, next_check = False, time.monotonic() + self.every_s
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
                                self._cond, buffered=True)
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
        """Look for the audio since the origin in the whole song; lock on a confident answer.

        With a probable place (where the song was left: a resume, a nudge), from NEAR_MIN_S of
        audio on, every NEAR_EVERY_S: found there, its chance is that of those few lags, so less
        audio is enough (its lead over repeats elsewhere is still required). Otherwise at
        EARLY_S and then the interval schedule's points, as a sync looks (from 2 s, not 3).
        """
        heard = self.source.heard(since=self._since) if self._origin is None else \
            self.source.heard(start=self._origin)
        if heard.time is None:
            return
        audio, first = heard.samples, heard.index
        if self._origin is None or first != self._origin:  # the first look, or past a restart
            self._since, self._origin = None, first
            self._searched = None
        # A pause leaves silence: the search starts where sound resumed.
        loud = _after_silence(audio, int(BLOCK_S * self.rate))
        if loud:
            audio, first = audio[loud:], first + loud
            self._origin = first
        intervals = self.options.intervals
        window = self._window()
        trusted = window is not None and self._left is None
        # A vouched-for hint was measured from 3 s only (bench/hints.py): a sync's floor there.
        floor = MIN_CONFIDENT_S if trusted else SEARCH_MIN_S
        longest = int(round(intervals[-1] * self.rate))
        if len(audio) > longest:  # the newest: the origin slides on, looked at every every_s
            audio, first = audio[-longest:], first + len(audio) - longest
            self._origin = first
            if self._searched is not None and time.monotonic() - self._searched[2] < self.every_s:
                return
            step: tuple = ("sliding",)
        else:
            near = self._left is not None
            if near:
                step = (first, int(len(audio) / (NEAR_EVERY_S * self.rate)))
                if len(audio) < NEAR_MIN_S * self.rate:
                    return
            else:
                steps = (*(t for t in EARLY_S if floor <= t < intervals[0]), *intervals)
                due = [k for k, t in enumerate(steps) if t * self.rate <= len(audio)]
                if not due:
                    return
                step = (first, due[-1])
            if self._searched is not None and self._searched[:2] == step[:2]:
                return
        self._searched = (*step[:2], time.monotonic()) if len(step) == 2 else (None, None, time.monotonic())
        try:
            # "offline": the floor (SEARCH_MIN_S) is applied below, except inside a near window.
            # The caller's hint_ms is vouched for (see SyncOptions.hint_ms); the near window is not.
            est = estimate(self._whole, audio, self.options.method, self.rate, "offline", window=window,
                           trusted=trusted, beside=True)
        except ValueError as exc:
            log.debug("tracker: search skipped: %s", exc)
            return
        inside = window is not None and self._left is not None and window[0] <= est.lag <= window[1]
        enough = len(audio) >= floor * self.rate - 1 or inside
        log.debug("tracker: searched %.1f s: lag %.1f ms, confidence %.3f%s", len(audio) / self.rate,
                  est.lag_ms(self.rate), est.confidence, " (near)" if inside else "")
        if est.confidence >= self.options.min_confidence and enough:
            self._lock(est, heard.segment, first, len(audio))

    def _window(self) -> tuple[int, int] | None:
        """Where the audio probably is: NEAR_S around where the song was left, else the hint."""
        if self._left is not None:
            at = int(round(self._left * self.rate / 1000.0))
            reach = int(round(NEAR_S * self.rate))
            return at - reach, at + reach
        return self._hint()

    def _hint(self) -> tuple[int, int] | None:
        if self.options.hint_ms is None or self._result is not None:
            return None
        hint = self.options.hint_ms * self.rate / 1000.0
        half = self.options.hint_window_ms * self.rate / 1000.0
        return int(math.floor(hint - half)), int(math.ceil(hint + half))

    def _lock(self, est: Estimate, segment: int, first: int, n: int) -> None:
        lag_ms = est.lag_ms(self.rate)
        old = self._line
        moved = old is None or old[0] != segment or abs(self._position(first) - lag_ms) > JUMP_MS
        self._line = (segment, first, lag_ms)
        self._points = [(first, lag_ms)]
        was_known, self._known = self._known, True
        self._fresh = True
        if moved or not was_known:
            self._report(confident=True, reason="confident", est=est,
                         first_t=self.source.time_at(first, segment), n=n)

    def _lost(self) -> None:
        if self._known:
            self._known = False
            self._report(confident=False, reason="lost")

    def _recheck(self) -> None:
        """The newest audio on the line, within JUMP_MS of it: still there, or the lag changed.

        One plain correlation over those few lags (three small transforms) places the audio, and
        the blocks judge it: most loud blocks, and one of the newest second's, must match the
        song there (a window half before a seek would still match as a whole). Audio that is
        something else, or a pause, leaves almost no block at Pearson 0.5.
        """
        cpu = time.thread_time()
        heard = self.source.heard(newest=CHECK_S)
        try:
            if heard.segment != self._line[0]:  # the capture restarted: the line's samples are gone
                self._since, self._origin = None, None
                self._lost()
                return
            if len(heard.samples) < CHECK_S * self.rate / 2:
                return
            audio, first = heard.samples, heard.index
            expected = self._position(first)
            span = int(round(JUMP_MS * self.rate / 1000.0))
            start = int(round(expected * self.rate / 1000.0)) - span
            song = self._song
            if start < 0 or start + len(audio) + 2 * span > len(song):
                self._changed(first)  # the song ended, or the line left it
                return
            k, fraction = _best_lag(audio, song[start:start + len(audio) + 2 * span])
            block = int(BLOCK_S * self.rate)
            follows, loud = _following(audio, song, start + k, block)
            newest = int(round(1.0 / BLOCK_S))
            if loud.any() and follows[loud].mean() >= FOLLOW_SHARE and follows[-newest:].any():
                self.checks += 1
                lag_ms = (start + k + fraction) * 1000.0 / self.rate
                self._line = (heard.segment, first, lag_ms)  # the line follows the clocks' drift
                self._points.append((first, lag_ms))
                return
            log.debug("tracker: off the line at %.1f s (follows %s, loud %s)", expected / 1000.0,
                      "".join("+" if f else "-" for f in follows), "".join("+" if q else "-" for q in loud))
            self._changed(first, follows)
        finally:
            self.check_ms.append(1000.0 * (time.thread_time() - cpu))

    def _changed(self, first: int, follows: np.ndarray | None = None) -> None:
        """The audio left the line: the search starts after the last block that followed it."""
        keep = 0
        if follows is not None and follows.any():
            keep = (int(np.flatnonzero(follows)[-1]) + 1) * int(BLOCK_S * self.rate)
        self._since, self._origin = None, first + keep
        # Where the song was when the audio left it: a resume after a pause starts there.
        self._left = self._position(self._origin)
        self._searched = None
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


def _after_silence(audio: np.ndarray, block: int) -> int:
    """Where the sound starts after the last silence (blocks quieter than SILENT_RMS) of at least
    SILENCE_S, or at the start; past the end when the audio ends silent."""
    n = len(audio) // block
    if n == 0:
        return 0
    rms = np.sqrt(np.mean(np.square(audio[:n * block].reshape(n, block), dtype=np.float64), axis=1))
    quiet = rms <= SILENT_RMS
    need = max(1, int(round(SILENCE_S / BLOCK_S)))
    run = 0
    last_end = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if q and (run >= need or run == i + 1):  # a long silence, or silence from the start
            last_end = i + 1
    return last_end * block


def _best_lag(audio: np.ndarray, segment: np.ndarray) -> tuple[int, float]:
    """Where in ``segment`` (a lag from 0 to its excess over ``audio``) the plain correlation peaks,
    and the peak's sub-sample offset (a parabola through it and its neighbours)."""
    span = len(segment) - len(audio)
    n = smooth_length(len(segment))  # numpy's transform; no wrap for lags 0..span
    c = np.fft.irfft(np.conj(np.fft.rfft(audio, n)) * np.fft.rfft(segment, n), n)[:span + 1]
    k = int(np.argmax(c))
    fraction = 0.0
    if 0 < k < span:
        a, b, d = c[k - 1], c[k], c[k + 1]
        den = a - 2 * b + d
        if den < 0:
            fraction = float(np.clip(0.5 * (a - d) / den, -0.5, 0.5))
    return k, fraction


def _following(audio: np.ndarray, song: np.ndarray, at: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block of ``audio``: whether it matches ``song`` from ``at`` on (Pearson >= FOLLOWS), and
    whether it is loud (above SILENT_RMS)."""
    n = len(audio) // block
    if n == 0 or at < 0 or at + n * block > len(song):
        return np.zeros(max(n, 1), dtype=bool), np.zeros(max(n, 1), dtype=bool)
    x = audio[:n * block].reshape(n, block).astype(np.float64)
    y = song[at:at + n * block].reshape(n, block).astype(np.float64)
    loud = np.sqrt(np.mean(x * x, axis=1)) > SILENT_RMS
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (x * y).sum(axis=1) / den, 0.0)
    return r >= FOLLOWS, loud
