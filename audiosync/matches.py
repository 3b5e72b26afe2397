"""Every place where a clip occurs: a jingle in a broadcast, a chorus that repeats.

The best place of the whole search is only one of them, and a repeated
passage leaves it unsure (two places match alike). So the search is split
around every place with strong evidence, recursively, into ranges that
each hold one candidate; then each candidate is judged in the range
between its neighbours, with the chance counted over the whole search:
its own calibrated confidence, as if the others were not there. A place
whose waveform matches much less well than the best one's (MATCH_RATIO)
resembles the clip without being it, and is left out.
"""

from __future__ import annotations

from audiosync.method import EVIDENCE_95, MIN_OVERLAP_S, Estimate, estimate
from audiosync.xcorr import Correlator

__all__ = ["find_matches"]

MAX_CANDIDATES = 32  # places looked at, at most: each costs one search of the whole range
# A place is the clip occurring again when its waveform matches at least this share of the best
# place's Pearson coefficient: below it, it is a passage that resembles the clip (a varied
# chorus, the same riff under other parts). Set on the fit packages' songs: their resembling
# passages reached 0.88 of the best, and the corpus counts a repeat from 0.95.
MATCH_RATIO = 0.9


def find_matches(correlator: Correlator, sample, method: str, rate: int, min_confidence: float,
                 first: Estimate | None = None) -> list[Estimate]:
    """The confident places of ``sample`` in the correlator's source, ordered by lag.

    Two matches are at least half the sample's length apart (closer, they
    would be one clip overlapping itself). ``first``: the estimate over
    the whole range, when already made.
    """
    m, n = correlator.source.shape[0], len(sample)
    overlap = min(int(MIN_OVERLAP_S * rate), n, m)
    lo, hi = -(n - overlap), m - overlap
    searched = hi - lo + 1
    apart = max(1, n // 2)
    candidates: list[int] = []
    pending = [(lo, hi, first)]
    while pending and len(candidates) < MAX_CANDIDATES:
        a, b, est = pending.pop()
        if a > b:
            continue
        if est is None:
            est = estimate(correlator, sample, method, rate, "offline", lags=(a, b), searched=searched)
        if not (est.evidence >= EVIDENCE_95 or est.confidence >= min_confidence):
            continue
        candidates.append(est.lag)
        pending += [(a, est.lag - apart, None), (est.lag + apart, b, None)]
    candidates.sort()
    found = []
    for i, lag in enumerate(candidates):
        a = candidates[i - 1] + apart if i > 0 else lo
        b = candidates[i + 1] - apart if i + 1 < len(candidates) else hi
        est = estimate(correlator, sample, method, rate, "offline", lags=(a, b), searched=searched)
        if est.confidence >= min_confidence and abs(est.lag - lag) < apart:
            found.append(est)
    best = max((e.coefficient for e in found), default=0.0)
    return [e for e in found if e.coefficient >= MATCH_RATIO * best]
