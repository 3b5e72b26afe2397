"""The options of a sync, validated once, in one place, and passed whole.

:class:`SyncOptions` for :meth:`audiosync.SyncJob.sync` (and
:func:`audiosync.sync`, :func:`audiosync.get_lag`); :class:`FileOptions`
for :func:`audiosync.sync_files`. Both share the fields of
:class:`_CommonOptions`. A bad value raises ``ValueError`` naming it; an
unknown option raises ``TypeError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audiosync._sizes import ANALYSIS_RATE, DEFAULT_INTERVALS, MAX_DOWNLOAD_S
from audiosync.method import METHODS

__all__ = ["FileOptions", "SyncOptions", "parse_window"]

# The longest capture interval a job accepts (its buffer is allocated up front).
MAX_INTERVAL_S = 600.0


def _number(name: str, value: object, *, unit: str = "seconds", optional: bool = True,
            positive: bool = True, finite: bool = True) -> float | None:
    """``value`` as a float, or a ValueError naming the option (None passes when ``optional``)."""
    if value is None and optional:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value) \
        and (value > 0 or not positive) and (math.isfinite(value) or not finite)
    if not ok:
        wanted = " ".join(w for w in ("positive" if positive else "", "finite" if finite else "", unit) if w)
        raise ValueError(f"{name} must be {wanted}{' or None' if optional else ''}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class _CommonOptions:
    sample_rate: int = ANALYSIS_RATE
    """Rate both sides are decoded and analysed at, 8000 to 192000 (16 kHz holds the 0-8 kHz band
    the method uses; lags are placed between samples)."""
    min_confidence: float = 0.95
    """An answer with at least this confidence is confident."""
    timeout: float | None = None
    """Give up after this many seconds with the best answer so far (not confident)."""
    method: str = "phat"
    """``"phat"`` (phase transform, confidence against chance: see audiosync.method) or
    ``"seed"`` (the original raw correlation with |Pearson|)."""
    keep_audio: bool = False
    """Keep the two arrays the answer came from in ``SyncResult.audio`` (for plots)."""

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) \
                or not 8000 <= self.sample_rate <= 192000:
            raise ValueError(f"sample_rate must be an int from 8000 to 192000, got {self.sample_rate!r}")
        try:
            confidence = float(self.min_confidence)
        except (TypeError, ValueError):
            confidence = math.nan
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        object.__setattr__(self, "min_confidence", confidence)
        object.__setattr__(self, "timeout", _number("timeout", self.timeout, finite=False))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        object.__setattr__(self, "keep_audio", bool(self.keep_audio))


@dataclass(frozen=True)
class SyncOptions(_CommonOptions):
    """How a live sync runs (the keyword options of :meth:`audiosync.SyncJob.sync`)."""

    intervals: tuple[float, ...] = DEFAULT_INTERVALS
    """Seconds of capture after which to estimate; the job returns at the first confident one."""
    use_ytdlp: bool | None = None
    """Resolve the URL with yt-dlp: None for YouTube pages and ``ytsearch`` queries, True for
    any http(s) page yt-dlp knows, False never."""
    max_download_s: float = MAX_DOWNLOAD_S
    """Keep (and search) at most this many seconds of the download: the whole song, up to 20 minutes."""
    hint_ms: float | None = None
    """Where the capture starts in the song (the player's reported position), in ms, vouched
    for within ``hint_window_ms``: the whole song is still searched and its best place is the
    answer; when that place lies in the window it is judged among the window's lags alone, if its
    waveform matches better than every likely place outside (a near-copy elsewhere then holds it
    back no longer; an exact repeat still does)."""
    hint_window_ms: float = 3000.0
    """How far from ``hint_ms`` the capture's start may be, in ms."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "max_download_s", _number("max_download_s", self.max_download_s, optional=False))
        object.__setattr__(self, "hint_ms", _number("hint_ms", self.hint_ms, unit="milliseconds", positive=False))
        object.__setattr__(self, "hint_window_ms",
                           _number("hint_window_ms", self.hint_window_ms, unit="milliseconds", optional=False))
        try:
            ivals = tuple(float(t) for t in self.intervals)
        except (TypeError, ValueError):
            raise ValueError(f"intervals must be a sequence of seconds, got {self.intervals!r}") from None
        if not ivals or any(not math.isfinite(t) or t <= 0 for t in ivals) or list(ivals) != sorted(set(ivals)):
            raise ValueError(f"intervals must be positive, finite and increasing, got {self.intervals!r}")
        if ivals[-1] > MAX_INTERVAL_S:
            raise ValueError(f"the longest interval is {ivals[-1]} s; at most {MAX_INTERVAL_S:.0f} s is supported")
        object.__setattr__(self, "intervals", ivals)


@dataclass(frozen=True)
class FileOptions(_CommonOptions):
    """How two inputs are synced whole (the keyword options of :func:`audiosync.sync_files`)."""

    max_seconds: float | None = None
    """Read at most this many seconds of each input (None: up to an hour)."""
    drift: bool = False
    """Measure the lag over time: ``lag_map``, ``drift_ppm`` and ``breaks``, and give ``lag_ms``
    at the start of ``other`` (drift-corrected) instead of the whole's single best lag."""
    all_matches: bool = False
    """List every confident place where ``other`` occurs in ``reference`` in ``matches``."""
    reference_window: tuple[float, float | None] | None = None
    """Read only ``(start_s, duration_s)`` of the reference (duration None: to the end); lags stay
    in each input's own timeline."""
    other_window: tuple[float, float | None] | None = None
    """Likewise for ``other``."""
    split_decode: bool = True
    """Decode a long Opus or MP3 file (local, or served with byte ranges) as two halves at once,
    on two cores (joined only where they are proven equal). A batch running pairs side by side
    turns it off: its cores are busy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "max_seconds", _number("max_seconds", self.max_seconds))
        object.__setattr__(self, "split_decode", bool(self.split_decode))
        object.__setattr__(self, "drift", bool(self.drift))
        object.__setattr__(self, "all_matches", bool(self.all_matches))
        for name in ("reference_window", "other_window"):
            object.__setattr__(self, name, _window(name, getattr(self, name)))


def _window(name: str, value: object) -> tuple[float, float | None] | None:
    """``(start_s, duration_s)`` checked: a start of at least 0, a positive duration or None."""
    if value is None:
        return None
    try:
        start, duration = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (start_s, duration_s), got {value!r}") from None
    ok_start = isinstance(start, (int, float)) and not isinstance(start, bool) and math.isfinite(start) \
        and start >= 0
    if not ok_start:
        raise ValueError(f"{name} must start at a finite time of at least 0 s, got {start!r}")
    if duration is not None:
        ok = isinstance(duration, (int, float)) and not isinstance(duration, bool) \
            and not math.isnan(duration) and duration > 0
        if not ok:
            raise ValueError(f"{name} must last a positive number of seconds (or None: to the end), "
                             f"got {duration!r}")
        if math.isinf(duration):
            duration = None
    return float(start), None if duration is None else float(duration)


def parse_window(text: str) -> tuple[float, float | None]:
    """``"START:DUR"`` in seconds (DUR empty: to the end) as ``(start_s, duration_s)``; the CLI's
    ``--ref-window``/``--other-window`` and a manifest's window columns. Checked by FileOptions."""
    start, sep, duration = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        return float(start), float(duration) if duration.strip() else None
    except ValueError:
        raise ValueError(f"a window is START:DUR in seconds (DUR empty: to the end), got {text!r}") from None
