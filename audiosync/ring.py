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


@dataclass
class Segment:
    """One unbroken run of capture: samples ``first`` to ``end`` (exclusive)."""

    first: int
    end: int
    anchor: float | None = None
    """``time.monotonic()`` of sample ``first``."""
    open: bool = True
    _rate: int = field(default=1, repr=False)
    _bounds: deque = field(default_factory=deque, repr=False)

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
        # than now - (its distance)/rate; the least bound over recent reads is the estimate.
        bound = now - (seg.end - seg.first) / self.rate
        bounds = seg._bounds
        while bounds and bounds[-1][1] >= bound:
            bounds.pop()
        bounds.append((now, bound))
        while bounds[0][0] < now - ANCHOR_MEMORY_S:
            bounds.popleft()
        seg.anchor = bounds[0][1]

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
