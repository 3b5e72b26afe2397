"""What a sync answers: one :class:`Progress` per interval and the final :class:`SyncResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Progress", "SyncResult"]


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
    place, and the waveforms' agreement (nan with ``method="seed"``)."""
    capture_started: float | None = None
    """Estimated ``time.monotonic()`` of the first captured sample."""
    history: tuple[Progress, ...] = field(default=())
    """Every interval's estimate, in order."""
    audio: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    """With ``keep_audio=True``: the (source, sample) arrays the answer came from."""

    def to_dict(self) -> dict:
        """The answer as JSON-ready values (the keys of ``audiosync files --json``)."""
        return {
            "lag_ms": round(self.lag_ms, 3), "confident": self.confident,
            "confidence": round(self.confidence, 6),
            "evidence": round(self.evidence, 3) if math.isfinite(self.evidence) else None,
            "interval_s": round(self.interval_s, 3), "elapsed_s": round(self.elapsed_s, 3),
            "reason": self.reason, "lag_samples": self.lag_samples, "sample_rate": self.sample_rate,
        }
