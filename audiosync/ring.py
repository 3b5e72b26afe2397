"""The last minute of audio, and when each sample was heard.

Samples are numbered by a running count (never reset), so a position stays
valid while the ring turns over. A capture that stops and starts again
opens a new :class:`Segment`: the timeline knows the gap, and no read
crosses it. Not thread-safe: :class:`audiosync.listener.Listener` holds its
lock around every call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Ring", "Segment"]

# The time of sample 0 is the least of (arrival time - samples before it), taken over this
# window of reads: a sound card's clock drifts from time.monotonic(), so old reads go stale.
ANCHOR_MEMORY_S = 30.0
# A late read (the reader was busy) only moves that bound later, so the least is the estimate;
# but a sound server's monitor hands over what its sink renders, and a sink renders up to its
# latency ahead of playing: an idle null sink hands our 0.2 s fragments over 0.2 s early, one
# playing a stream hands them over as it plays. That lead is a level that holds, not a late
# read. The least bound of LEVEL_S of regular reads (reads all along, at the sound's pace) is a
# level, read every LEVEL_EVERY_S; the middle of SMOOTH_S of levels is the level held, which a
# stream's uneven first second (bounds 0.1 s late, then 20-30 ms early) does not move; a level
# held within STEP_S for PERSIST_S has held (a restarted stream holds a late one for a moment;
# reads all late for about 3 s or more do hold, for 30 s). The highest level that held within
# ANCHOR_MEMORY_S is the anchor when it is more than STEP_S above the least bound (after
# silence, and through a pause: the song on both sides keeps the playing level), never more
# than MAX_LEAD_S above it (no sink here leads by more; a capture read a little faster than
# the sound would otherwise date its samples in the future).
LEVEL_S = 1.5
SMOOTH_S = 2.5
STEP_S = 0.015
MAX_LEAD_S = 0.25
PERSIST_S = 1.0
LEVEL_EVERY_S = 0.19  # under the 0.2 s of a pulse fragment: one level a read
_LEVEL_GAP_S = 0.5  # reads further apart than this are not regular (a stall, then a burst):
                    # a capture read less often than that keeps the least bound
_LEVEL_PACE_S = 0.15  # bounds of LEVEL_S apart further than this: not at the sound's pace
_SMOOTH_MIN = 5     # levels a held level is the middle of, at least


@dataclass
class Segment:
    """One unbroken run of capture: samples ``first`` to ``end`` (exclusive)."""

    first: int
    end: int
    anchor: float | None = None
    """``time.monotonic()`` of sample ``first``."""
    open: bool = True
    _rate: int = field(default=1, repr=False)
    _bounds: deque = field(default_factory=deque, repr=False)  # (arrival, bound), bounds rising
    _recent: deque = field(default_factory=deque, repr=False)  # (arrival, bound) of LEVEL_S
    _levels: deque = field(default_factory=deque, repr=False)  # (arrival, level) of SMOOTH_S
    _steady: deque = field(default_factory=deque, repr=False)  # (arrival, held level) of PERSIST_S
    _held: deque = field(default_factory=deque, repr=False)    # (arrival, level that held), falling

    def _observe(self, now: float, bound: float) -> None:
        """One read's bound on the time of sample ``first``: the anchor from it and those before."""
        memory = now - ANCHOR_MEMORY_S
        bounds = self._bounds
        while bounds and bounds[-1][1] >= bound:
            bounds.pop()
        bounds.append((now, bound))
        while bounds[0][0] < memory:
            bounds.popleft()
        floor = bounds[0][1]
        recent, levels, steady, held = self._recent, self._levels, self._steady, self._held
        recent.append((now, bound))
        while recent[0][0] < now - LEVEL_S:
            recent.popleft()
        regular = now - recent[0][0] >= 0.75 * LEVEL_S and abs(bound - recent[0][1]) <= _LEVEL_PACE_S and all(
            b[0] - a[0] <= _LEVEL_GAP_S for a, b in zip(recent, list(recent)[1:]))
        if regular and (not levels or now - levels[-1][0] >= LEVEL_EVERY_S):
            levels.append((now, min(b for _, b in recent)))
            while levels[0][0] < now - SMOOTH_S:
                levels.popleft()
            if len(levels) >= _SMOOTH_MIN:
                values = sorted(v for _, v in levels)
                steady.append((now, values[len(values) // 2]))
                while steady[0][0] < now - PERSIST_S:
                    steady.popleft()
                values = sorted(v for _, v in steady)
                # Held for PERSIST_S: a stream's restart holds a late level for a moment.
                if now - steady[0][0] >= 0.75 * PERSIST_S and values[-1] - values[0] <= STEP_S:
                    level = values[len(values) // 2]
                    while held and held[-1][1] <= level:
                        held.pop()
                    held.append((now, level))
        while held and held[0][0] < memory:
            held.popleft()
        top = held[0][1] if held else floor
        self.anchor = min(top, floor + MAX_LEAD_S) if top > floor + STEP_S else floor

    def time_of(self, index: float) -> float:
        assert self.anchor is not None
        return self.anchor + (index - self.first) / self._rate


class Ring:
    """``capacity`` float32 samples at ``rate``; :meth:`write` appends, :meth:`read` copies out."""

    def __init__(self, capacity: int, rate: int):
        if capacity < 1:
            raise ValueError(f"a ring holds at least one sample, got {capacity}")
        self.capacity = capacity
        self.rate = rate
        self.data = np.zeros(capacity, dtype=np.float32)
        self.total = 0
        self.segments: list[Segment] = []

    @property
    def oldest(self) -> int:
        """The first sample still held."""
        return max(0, self.total - self.capacity)

    @property
    def current(self) -> Segment | None:
        """The segment being written, or None between captures."""
        if self.segments and self.segments[-1].open:
            return self.segments[-1]
        return None

    def begin(self) -> Segment:
        """Open a new segment (a capture started)."""
        self.end()
        seg = Segment(first=self.total, end=self.total, _rate=self.rate)
        self.segments.append(seg)
        # Segments wholly overwritten are forgotten.
        while len(self.segments) > 1 and self.segments[0].end <= self.oldest:
            self.segments.pop(0)
        return seg

    def end(self) -> None:
        """Close the current segment (the capture stopped): what follows is after a gap."""
        if self.current is not None:
            self.segments[-1].open = False

    def write(self, samples: np.ndarray, now: float) -> None:
        """Append ``samples`` that arrived at ``now`` to the current segment."""
        seg = self.current
        if seg is None:
            raise RuntimeError("write outside a segment")
        n = len(samples)
        if n >= self.capacity:
            samples = samples[-self.capacity:]
            self.total += n - self.capacity
            n = self.capacity
        start = self.total % self.capacity
        head = min(n, self.capacity - start)
        self.data[start:start + head] = samples[:head]
        self.data[:n - head] = samples[head:]
        self.total += n
        seg.end = self.total
        # The newest sample was heard no later than now, so sample `first` was heard no later
        # than now - (its distance)/rate.
        seg._observe(now, now - (seg.end - seg.first) / self.rate)

    def segment_of(self, index: int) -> Segment | None:
        """The segment holding sample ``index`` (None: not held, or in a gap)."""
        for seg in reversed(self.segments):
            if seg.first <= index < seg.end or (seg.open and index == seg.end == seg.first):
                return seg
        return None

    def index_at(self, t: float, seg: Segment) -> int:
        """The first sample of ``seg`` heard at or after ``t`` (``seg.end`` when none yet)."""
        if seg.anchor is None:
            return seg.first
        i = seg.first + int(np.ceil((t - seg.anchor) * self.rate - 1e-9))
        return min(max(i, seg.first), seg.end)

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of samples ``start`` to ``stop`` (all still held)."""
        if not self.oldest <= start <= stop <= self.total:
            raise IndexError(f"samples {start}..{stop} are not held (held: {self.oldest}..{self.total})")
        a, b = start % self.capacity, stop % self.capacity
        if stop - start == 0:
            return np.zeros(0, dtype=np.float32)
        if a < b:
            return self.data[a:b].copy()
        return np.concatenate([self.data[a:], self.data[:b]])
