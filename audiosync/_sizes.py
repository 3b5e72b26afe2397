"""Transform sizes: the fact both the correlation wrapper and the planner need.

The kernel's transform size for a source, and the sizes the live path
uses (its schedule of capture intervals and the download it keeps), so
that :mod:`audiosync.wisdom` can measure exactly what a sync will plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

__all__ = ["DEFAULT_DOWNLOAD_S", "DEFAULT_INTERVALS", "live_sizes", "working_length"]

DEFAULT_INTERVALS = (3, 6, 10, 15, 20, 30)
# The download is decoded faster than real time; keep this much of it (or
# twice the longest interval, if more) so a capture that started late in the
# song can still be found.
DEFAULT_DOWNLOAD_S = 120.0


@lru_cache(maxsize=256)
def working_length(m: int) -> int:
    """The transform size for a source of ``m`` samples.

    The smallest size at or above ``m`` whose prime factors are 2, 3, 5 and
    7, which FFTW transforms fastest: an arbitrary length can be prime and
    many times slower.  The extra zeros only remove circular aliasing.
    """
    if m < 1:
        raise ValueError(f"length must be positive, got {m}")
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


def download_samples(intervals: Iterable[float], rate: int) -> int:
    """Samples of download the live path keeps for a schedule of capture intervals."""
    return int(round(max(DEFAULT_DOWNLOAD_S, 2 * max(intervals)) * rate))


def live_sizes(intervals: Iterable[float] = DEFAULT_INTERVALS, rate: int = 48000,
               download_s: float | None = None) -> list[int]:
    """The transform sizes a live sync plans: the full download (linear, against the longest capture)."""
    intervals = list(intervals)
    longest = int(round(max(intervals) * rate))
    download = download_samples(intervals, rate) if download_s is None else int(round(download_s * rate))
    return [working_length(download + longest - 1)]
