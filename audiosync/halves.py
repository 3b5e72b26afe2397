"""One long file decoded as two halves at once, spliced only where the halves are proven equal.

Decoding is the floor of an offline sync and of a live call's answer
(which waits for the whole song), and ffmpeg's audio decoders use one
core. A second ffmpeg that seeks to the middle (``-ss``) decodes the
second half on the other core while the first decodes from the start. A
seek lands on the stream's timestamps, which can be off by some samples
(Opus in WebM: 128 at 16 kHz), and some decoders (AAC, Vorbis) do not give
the same samples after a seek: so the splice is made only where a second
of the second half equals the first half's audio (to float rounding) at
one offset. Otherwise the first half simply goes on to the end, as one
ffmpeg would have: never a different answer, at worst no gain.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from audiosync.download import accepts_ranges
from audiosync.method import dot
from audiosync.producer import Producer

__all__ = ["SPLIT_MIN_S", "Halves", "Splitter", "split", "split_point", "splittable"]

# Shorter files decode in half a second: a second ffmpeg would cost what it saves.
SPLIT_MIN_S = 120.0
# Slow decoders (a 10-minute song takes a second or more) whose output after a seek was found
# equal to a whole decode's (ffmpeg 5.1). FLAC and PCM are exact too but decode too fast to gain.
_SPLIT_CODECS = ("opus", "mp3")
# Not worth waiting for the header: fast decoders, and AAC (not the same samples after a seek).
_WHOLE_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".w64", ".m4a", ".aac")
_HEADER_TIMEOUT_S = 5.0  # for the first ffmpeg to open the input and describe it
_RANGE_TIMEOUT_S = 2.0  # the one-byte request that tells whether a server seeks
_SKIP_S = 0.5    # past the second half's first samples (a decoder's warm-up, if any)
_CHECK_S = 1.0   # the audio compared sample for sample
_REACH_S = 0.25  # how far the seek may land from where it was asked
# Relative squared difference allowed: exactly equal decodes give 0, an AAC seek about 1e-3.
_EQUAL = 1e-9
# A shift whose squared difference, read from the transform, is this close is a candidate (the
# transform's rounding); the one candidate is then checked exactly against _EQUAL.
_CANDIDATE = 1e-7
_SILENT_RMS = 1e-4  # too quiet to prove anything: no splice
_GRID_S = 0.04


def splittable(args: list[str], first: Producer) -> float | None:
    """The seconds of the input ffmpeg reads with ``args`` (as
    :func:`audiosync.download.input_args` gives them) that are to be decoded
    in two halves, or None to decode it whole: a local file (``file:PATH``),
    or an http(s) stream whose server serves byte ranges (ffmpeg seeks with
    them; YouTube's do). ``first``: the ffmpeg already decoding it (made with
    ``header=True``), whose description of the input tells its length and codec."""
    url = args[-1] if args[-2:-1] == ["-i"] else ""
    if (os.cpu_count() or 1) < 2 or url.lower().split("?")[0].endswith(_WHOLE_SUFFIXES):
        return None
    if url.startswith("file:"):
        if not os.path.isfile(url[5:]):
            return None
    elif not accepts_ranges(args, _RANGE_TIMEOUT_S):
        return None
    info = first.header(_HEADER_TIMEOUT_S)
    if info is None:
        return None
    duration, codec = info
    span = min(duration, len(first.buffer) / first.rate)  # what is read: at most the buffer (max_seconds)
    if codec not in _SPLIT_CODECS or span < SPLIT_MIN_S:
        return None
    return span


def split(name: str, args: list[str], first: Producer, cond: threading.Condition) -> "Producer | Halves":
    """``first`` (already decoding ``args``) joined by a second ffmpeg from the middle when the
    input is worth it (:func:`splittable`), else ``first`` itself."""
    return _joined(name, args, splittable(args, first), first, cond)


def _joined(name: str, args: list[str], span: float | None, first: Producer,
            cond: threading.Condition) -> "Producer | Halves":
    if span is None or first.done:
        return first
    at = split_point(span, first.count / first.rate)
    if at >= span - SPLIT_MIN_S / 4:  # the first ffmpeg is nearly there alone
        return first
    return Halves(name, args, at, first, cond)


class Splitter:
    """:func:`split` with its question (a server's range request, the first ffmpeg's description
    of the input: up to seconds on a slow network) asked in a thread, so a live job's waits stay
    responsive to abort and pause.

    ``ready`` (read under ``cond``, which is notified): :meth:`apply` gives the answer at once.
    :meth:`stop` joins the thread (within the questions' timeouts).
    """

    def __init__(self, name: str, args: list[str], first: Producer, cond: threading.Condition):
        self.name, self.args, self.first, self.cond = name, args, first, cond
        self.ready = False
        self._span: float | None = None
        self._thread = threading.Thread(target=self._ask, name=f"audiosync-{name}-probe", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        span = None
        try:
            span = splittable(self.args, self.first)
        finally:
            with self.cond:
                self._span, self.ready = span, True
                self.cond.notify_all()

    def apply(self) -> "Producer | Halves":
        """The producer to read on: a :class:`Halves`, or ``first`` alone (outside the condition)."""
        self._thread.join()
        return _joined(self.name, self.args, self._span, self.first, self.cond)

    def stop(self) -> None:
        self._thread.join()


def split_point(span_s: float, done_s: float) -> float:
    """Where the second half starts, for ``span_s`` seconds to read of which the first ffmpeg has
    decoded ``done_s`` (while the question was asked): the halves left to decode are equal, so that both
    ffmpeg end together. On a 40 ms grid: a whole number of samples at 8, 11.025, 16, 22.05,
    24, 32, 44.1 and 48 kHz (the seek then lands on a sample, and the resampler on its grid)."""
    return round(round((span_s + done_s) / 2 / _GRID_S) * _GRID_S, 2)


class Halves:
    """A :class:`Producer` look-alike for one input (``args``, ending ``-i URL``): ``first``
    decodes from the start, ``second`` from ``at_s``; :meth:`check` splices them once they
    overlap, :meth:`finish` joins the audio.

    Read under the shared condition: ``done``, ``count``, ``error``, :meth:`wants_check`.
    """

    def __init__(self, name: str, args: list[str], at_s: float, first: Producer, cond: threading.Condition):
        self.name, self.rate, self.cond = name, first.rate, cond
        self.first = first
        self.at = int(round(at_s * self.rate))
        self._skip, self._check = int(_SKIP_S * self.rate), int(_CHECK_S * self.rate)
        self._reach = int(_REACH_S * self.rate)
        try:
            self.second: Producer | None = Producer(
                f"{name}-second", [*args[:-2], "-ss", f"{at_s:.2f}", *args[-2:]], self.rate,
                len(first.buffer) - self.at + self._reach, cond, buffered=True)
        except OSError:  # no second process today: the first reads on alone
            self.second = None
        self.offset: int | None = None  # where second's sample 0 lies in first, once proven
        self._finished = False

    @property
    def buffer(self) -> np.ndarray:
        return self.first.buffer

    @property
    def count(self) -> int:
        if self.offset is not None and self.second is not None:
            return self.offset + min(self.second.count, len(self.first.buffer) - self.offset)
        return self.first.count

    # After the splice the second half is the file's end, whatever the first (stopped there) says;
    # before it, the first half is the answer (whole, or failed).
    @property
    def error(self) -> str | None:
        return self.second.error if self.offset is not None else self.first.error

    @property
    def done(self) -> bool:
        return self.second.done if self.offset is not None else self.first.done

    def _need(self) -> tuple[int, int]:
        """The samples each half must hold for the comparison."""
        return self.at + self._reach + self._skip + self._check, self._skip + self._check

    def wants_check(self) -> bool:
        """Whether :meth:`check` has something to do (called under the condition)."""
        if self.offset is not None or self.second is None:
            return False
        first_need, second_need = self._need()
        second_short = self.second.done and (self.second.count < second_need or self.second.error)
        return (self.first.count >= first_need and self.second.count >= second_need) or self.first.done \
            or second_short

    def check(self) -> None:
        """Splice when both halves hold the comparison, else drop the second. Outside the condition."""
        with self.cond:
            if not self.wants_check():
                return
            second_ok = self.second.error is None and not self.first.done  # a whole first half: kept
        first_need, second_need = self._need()
        # Past wants_check, the halves' audio up to these counts is written and stays as it is.
        enough = self.first.count >= first_need and self.second.count >= second_need and second_ok
        offset = self._offset() if enough else None
        if offset is None:
            self.second.stop()  # reaped before it is let go (stop() can be called again)
            self.second = None
            return
        with self.cond:
            self.offset = offset
        self.first.stop()  # its audio up to the splice is kept; the second half reads the rest

    def _offset(self) -> int | None:
        """Where second's sample 0 lies in first, when a second of it equals first's audio there."""
        seg = np.asarray(self.second.buffer[self._skip:self._skip + self._check], np.float64)
        energy = dot(seg, seg)
        if energy <= (_SILENT_RMS ** 2) * len(seg):
            return None
        start = self.at - self._reach + self._skip
        around = np.asarray(self.first.buffer[start:start + self._check + 2 * self._reach], np.float64)
        size = 1 << (len(around) + len(seg)).bit_length()
        shifts = len(around) - len(seg) + 1
        corr = np.fft.irfft(np.fft.rfft(around, size) * np.conj(np.fft.rfft(seg, size)), size)[:shifts]
        # The squared difference at every shift: audio that repeats exactly within the reach
        # (a synthetic loop) would match at more than one, and proves no offset.
        sums = np.concatenate([[0.0], np.cumsum(around * around)])
        diffs = (sums[len(seg):] - sums[:shifts]) + energy - 2.0 * corr
        if np.count_nonzero(diffs <= _CANDIDATE * energy) != 1:
            return None
        shift = int(np.argmin(diffs))
        diff = around[shift:shift + len(seg)] - seg
        if dot(diff, diff) > _EQUAL * energy:  # the exact sum, not the transform's
            return None
        return start + shift - self._skip

    def finish(self) -> None:
        """Copy the second half after the first's audio (once both have stopped)."""
        if self._finished:
            return
        self._finished = True
        if self.offset is not None and self.second is not None:
            count = min(self.second.count, len(self.first.buffer) - self.offset)
            self.first.buffer[self.offset + self._skip:self.offset + count] = self.second.buffer[self._skip:count]
            self.second.buffer = np.zeros(0, np.float32)  # its memory back before the correlation

    def stop(self) -> None:
        """Stop both ffmpeg (idempotent) and join the audio."""
        try:
            self.first.stop()
        finally:
            if self.second is not None:
                self.second.stop()
        self.finish()
