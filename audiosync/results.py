"""What a sync answers: one :class:`Progress` per interval and the final :class:`SyncResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from audiosync.lagmap import Break, MapPoint

__all__ = ["Match", "Progress", "SyncResult"]


class Match(NamedTuple):
    """One place where ``other`` occurs in the reference (``SyncResult.matches``)."""

    lag_ms: float
    confidence: float


@dataclass(frozen=True)
class Progress:
    """What one interval found; passed to ``on_progress``."""

    interval_s: float
    """Seconds of capture this estimate used."""
    lag_ms: float
    confidence: float
    confident: bool
    downloaded_s: float
    """Seconds of the download decoded when the estimate was made."""
    decision_ms: float = 0.0
    """Milliseconds from the interval's data being there to this estimate."""
    evidence: float = 0.0
    """``-log10`` of the chance that this answer is a coincidence (see ``SyncResult.evidence``)."""
    prominence: float = 0.0
    """The peak over the best place more than 30 ms away."""
    elapsed_s: float = 0.0
    """Seconds from the call to this estimate."""

    def describe(self) -> str:
        """One line for a person: the capture used, the lag and the confidence."""
        mark = "confident" if self.confident else "not yet"
        return (f"{self.interval_s:5.1f} s captured: lag {self.lag_ms:9.1f} ms, "
                f"confidence {self.confidence:.3f} ({mark})")


@dataclass(frozen=True)
class SyncResult:
    """The answer of a sync: ``capture(t) ≈ download(t + lag_ms)``."""

    lag_ms: float
    """Milliseconds into the download at which the capture started (negative: before it)."""
    confidence: float
    """In [0, 1]: the evidence mapped so that 0.95 is the calibrated level at which no unrelated
    audio was ever confident (|Pearson| at the peak with ``method="seed"``)."""
    confident: bool
    """``confidence >= min_confidence``."""
    interval_s: float
    """Seconds of capture the answer used."""
    elapsed_s: float
    """Wall-clock seconds from the call to the answer."""
    reason: str = "confident"
    """Why it stopped: confident, exhausted (every interval tried), capture-ended, timeout,
    aborted; complete for :func:`audiosync.sync_files`."""
    lag_samples: int = 0
    sample_rate: int = 48000
    coefficient: float = 0.0
    """Signed Pearson coefficient at the peak (negative: polarity inverted)."""
    prominence: float = 0.0
    """The peak over the largest value more than 30 ms away (nan with ``method="seed"``)."""
    evidence: float = 0.0
    """``-log10`` of the chance that the answer is a coincidence, for this search: the least of
    the peak's height over the chance level of this many lags, its lead over the second-best
    place, and the waveforms' agreement; the peak's alone when it stands ``PROMINENCE_ALONE``
    times over every other place (see the README; nan with ``method="seed"``)."""
    capture_started: float | None = None
    """Estimated ``time.monotonic()`` of the first captured sample."""
    history: tuple[Progress, ...] = field(default=())
    """Every interval's estimate, in order."""
    audio: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    """With ``keep_audio=True``: the (source, sample) arrays the answer came from."""
    drift_ppm: float | None = None
    """With ``drift=True``: how much faster ``other`` plays the reference, in parts per million
    (``other(t) ≈ reference(t (1 + drift_ppm 1e-6) + lag_ms / 1000)``); None when not asked or
    when fewer than 3 windows were found."""
    drift_ppm_error: float | None = None
    """The standard error of ``drift_ppm``."""
    lag_map: tuple[MapPoint, ...] = field(default=(), repr=False)
    """With ``drift=True``: ``(time_s, lag_ms, confidence)`` per window of ``other``."""
    breaks: tuple[Break, ...] = ()
    """With ``drift=True``: ``(time_s, lag_before_ms, lag_after_ms)`` where the lag jumps."""
    matches: tuple[Match, ...] | None = None
    """With ``all_matches=True``: every confident place of ``other`` in the reference, by lag."""
    audio_shift_ms: float = 0.0
    """``lag_ms`` minus the lag between the two arrays of ``audio`` (the windows' starts, and with
    drift the line followed back to other's 0): what a plot of ``audio`` takes off."""

    def to_dict(self) -> dict:
        """The answer as JSON-ready values (the keys of ``audiosync files --json``)."""
        return {
            "lag_ms": round(self.lag_ms, 3), "confident": self.confident,
            "confidence": round(self.confidence, 6),
            "evidence": round(self.evidence, 3) if math.isfinite(self.evidence) else None,
            "interval_s": round(self.interval_s, 3), "elapsed_s": round(self.elapsed_s, 3),
            "reason": self.reason, "lag_samples": self.lag_samples, "sample_rate": self.sample_rate,
            "drift_ppm": _rounded(self.drift_ppm, 3), "drift_ppm_error": _rounded(self.drift_ppm_error, 3),
            "lag_map": [{"time_s": round(p.time_s, 3), "lag_ms": round(p.lag_ms, 3),
                         "confidence": round(p.confidence, 6)} for p in self.lag_map],
            "breaks": [{"time_s": b.time_s, "lag_before_ms": round(b.lag_before_ms, 3),
                        "lag_after_ms": round(b.lag_after_ms, 3)} for b in self.breaks],
            **({} if self.matches is None else {"matches": [
                {"lag_ms": round(m.lag_ms, 3), "confidence": round(m.confidence, 6)} for m in self.matches]}),
        }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)
