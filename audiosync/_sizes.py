"""Transform sizes: the fact both the correlation wrapper and the planner need.

The kernel's transform size for a source, and the sizes the live path
uses (its schedule of capture intervals and the download it keeps), so
that :mod:`audiosync.wisdom` can measure exactly what a sync will plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

__all__ = ["ANALYSIS_RATE", "DEFAULT_INTERVALS", "MAX_DOWNLOAD_S", "TYPICAL_SONG_S", "live_sizes",
           "working_length"]

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


@lru_cache(maxsize=256)
def working_length(m: int) -> int:
    """The transform size for a source of ``m`` samples.

    The smallest size at or above ``m`` whose prime factors are 2, 3, 5 and
    7, which FFTW transforms fastest: an arbitrary length can be prime and
    many times slower (from EVEN_FROM on, the smallest such multiple of 16).
    The extra zeros only remove circular aliasing.
    """
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
