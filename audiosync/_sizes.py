"""Transform sizes: the fact both the correlation wrapper and the planner need.

The kernel's transform size for a source, and the sizes the live path
uses (its schedule of capture intervals and the download it keeps), so
that :mod:`audiosync.wisdom` can measure exactly what a sync will plan.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from functools import lru_cache

from audiosync._fast_sizes import TIMES as _FAST_TIMES

__all__ = ["ANALYSIS_RATE", "DEFAULT_INTERVALS", "MAX_DOWNLOAD_S", "TYPICAL_SONG_S", "live_sizes",
           "smooth_length", "working_length"]

# The method reads 0-8 kHz: 16 kHz samples hold it, at a third of 48 kHz's memory and time.
ANALYSIS_RATE = 16000
DEFAULT_INTERVALS = (3, 6, 10, 15, 20, 30)
# The whole song is searched: a capture can start anywhere in it.
MAX_DOWNLOAD_S = 1200.0
# The song length `audiosync prepare` measures the live transform for.
TYPICAL_SONG_S = 240.0


# From this size on, the transform size is a multiple of 16: a real transform of an odd or
# barely even size is up to twice as slow under FFTW's estimated plans (3720087 = 3^12 * 7:
# 66 ms, against 33 ms for 3732480 = 2^10 * 3^6 * 5), and a multiple of 16 is at most a
# few per mille longer there.
EVEN_FROM = 1 << 16
_EVEN = 16
# From EVEN_FROM on, a transform may be up to SLACK longer than the smallest size when a longer
# one ran at least MIN_GAIN faster: FFTW's estimated plans of neighbouring sizes differ up to 3.4x
# in time (16515072 against 16588800), with no rule of the factors that tells which. A smaller
# gain shows little and unreliably in a sync's search (two transforms at once, and the rest of
# the search: on bench/long.py's nine pairs, in two runs, sizes timed 1.21-1.34x faster gave
# 0.89-1.27x, 1.35-2.13x gave 1.16-1.43x), and a size moved for nothing still moves the answer's
# last digits (the phase transform whitens bins that move with the size).
SLACK = 0.06
MIN_GAIN = 0.30
_FAST = sorted(_FAST_TIMES)


@lru_cache(maxsize=256)
def working_length(m: int) -> int:
    """The kernel's transform size for a source of ``m`` samples.

    Up to EVEN_FROM, :func:`smooth_length`. From there, of the sizes timed
    in :mod:`audiosync._fast_sizes` (written by bench/sizes.py) from ``m``
    up to ``m * (1 + SLACK)``, the fastest, when it ran at least MIN_GAIN
    faster than :func:`smooth_length`'s; else that one. Every size at or
    above ``m`` gives the same correlation: the extra zeros only remove
    circular aliasing.
    """
    n = smooth_length(m)
    plain = _FAST_TIMES.get(n)
    if m < EVEN_FROM or plain is None:  # (past the timed sizes: the plain rule)
        return n
    best, fastest = n, plain
    for size in _FAST[bisect_left(_FAST, m):]:
        if size > m * (1 + SLACK):
            break
        if _FAST_TIMES[size] < fastest:
            best, fastest = size, _FAST_TIMES[size]
    return best if fastest * (1 + MIN_GAIN) <= plain else n


@lru_cache(maxsize=256)
def smooth_length(m: int) -> int:
    """The smallest size at or above ``m`` whose prime factors are 2, 3, 5 and 7, which FFTs
    transform fastest (numpy's, and FFTW's as a rule): an arbitrary length can be prime and many
    times slower. From EVEN_FROM on, the smallest such multiple of 16."""
    if m < 1:
        raise ValueError(f"length must be positive, got {m}")
    return _EVEN * _smooth(-(-m // _EVEN)) if m >= EVEN_FROM else _smooth(m)


def _smooth(m: int) -> int:
    """The smallest number at or above ``m`` whose prime factors are 2, 3, 5 and 7."""
    best = 1 << max(0, (m - 1).bit_length())
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                p2 = p3
                while p2 < m:
                    p2 *= 2
                best = min(best, p2)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


def live_sizes(intervals: Iterable[float] = DEFAULT_INTERVALS, rate: int = ANALYSIS_RATE,
               download_s: float = TYPICAL_SONG_S) -> list[int]:
    """The transform size a live sync plans for a download of ``download_s`` (linear, against the
    longest capture)."""
    longest = int(round(max(intervals) * rate))
    return [working_length(int(round(download_s * rate)) + longest - 1)]
