"""A picture of a sync result: the correlation curve and the two aligned waveforms."""

from __future__ import annotations

import os

import numpy as np

from audiosync.errors import MissingExtraError
from audiosync.method import dot
from audiosync.results import SyncResult

__all__ = ["plot_result", "plot_timeline"]

_WINDOW_S = 0.25  # seconds of aligned waveform shown around the match
_MAX_POINTS = 4000  # points drawn of the correlation curve


def _correlation(source: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalized linear cross-correlation and its lags (samples), by numpy."""
    n = len(source) + len(sample) - 1
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(source, size) * np.conj(np.fft.rfft(sample, size)), size)
    lags = np.concatenate([np.arange(0, len(source)), np.arange(-(len(sample) - 1), 0)])
    values = np.concatenate([corr[: len(source)], corr[size - (len(sample) - 1):]])
    order = np.argsort(lags)
    norm = np.sqrt(dot(source, source) * dot(sample, sample)) or 1.0
    return lags[order], values[order] / norm


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("plots need matplotlib: pip install 'audiosync[plot]'") from None
    return plt


def plot_timeline(timeline, path: str | os.PathLike[str]) -> None:
    """Write a PNG of an :class:`audiosync.timeline.Timeline`: one bar per placed input at its
    offset, the unplaced ones listed in the title."""
    plt = _pyplot()
    placed = timeline.placed
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.5 * max(1, len(placed))), constrained_layout=True)
    for row, f in enumerate(placed):
        ax.barh(row, f.duration_s, left=f.offset_ms / 1000.0, height=0.6, color="#48a" if f.confidence >= 0.95
                else "#d93")
        ax.text(f.offset_ms / 1000.0, row, f"  {os.path.basename(f.path)}  ({f.offset_ms:.1f} ms)",
                va="center", fontsize=8)
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_xlabel("timeline (s)")
    missing = ", ".join(os.path.basename(f.path) for f in timeline.unplaced)
    ax.set_title(f"unplaced: {missing}" if missing else f"{len(placed)} inputs on one timeline")
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)


def plot_result(result: SyncResult, path: str | os.PathLike[str], title: str | None = None) -> None:
    """Write a PNG of ``result`` (which needs ``keep_audio=True``) to ``path``.

    Top: the correlation against the lag in ms with the chosen peak marked.
    Middle: the two signals around the match, aligned by the lag.
    Bottom (with ``drift=True``): the lag map, each window's lag minus
    the lag at the start, with the drift line and the breaks.
    Needs matplotlib: ``pip install 'audiosync[plot]'``.
    """
    plt = _pyplot()
    if result.audio is None:
        raise ValueError("the result holds no audio: run the sync with keep_audio=True")
    source = np.asarray(result.audio[0], dtype=np.float64)
    sample = np.asarray(result.audio[1], dtype=np.float64)
    rate = result.sample_rate
    lags, corr = _correlation(source, sample)
    step = max(1, len(lags) // _MAX_POINTS)
    # Keep each block's extreme so decimation never hides the peak.
    blocks = len(lags) // step
    idx = np.abs(corr[: blocks * step]).reshape(blocks, step).argmax(axis=1) + np.arange(blocks) * step

    rows = 3 if result.lag_map else 2
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3.25 * rows), constrained_layout=True)
    top, bottom = axes[0], axes[1]
    if result.lag_map:
        _lag_map(axes[2], result)
    top.plot(1000 * lags[idx] / rate, corr[idx], lw=0.7, color="#345")
    # The arrays of ``audio`` are the analysed windows: their lag is lag_ms less the windows' starts.
    lag = int(round((result.lag_ms - result.audio_shift_ms) * rate / 1000.0))
    peak = min(int(np.searchsorted(lags, lag)), len(corr) - 1)
    top.plot(1000.0 * lag / rate, corr[peak], "o", color="#d33", ms=7, label=f"peak: {result.lag_ms:.1f} ms")
    top.set_xlabel("lag (ms): other(t) ≈ reference(t + lag)")
    top.set_ylabel("normalized correlation")
    verdict = "confident" if result.confident else "not confident"
    top.set_title(title or f"lag {result.lag_ms:.1f} ms, confidence {result.confidence:.3f} ({verdict})")
    top.legend(loc="upper right")

    half = int(_WINDOW_S * rate / 2)
    # Middle of the overlap, in the sample's time.
    lo, hi = max(0, -lag), min(len(sample), len(source) - lag)
    centre = (lo + hi) // 2 if hi > lo else 0
    i0, i1 = max(0, centre - half), min(len(sample), centre + half)
    j0, j1 = i0 + lag, i1 + lag
    t = 1000 * np.arange(i0, i1) / rate
    scale = lambda x: x / (np.max(np.abs(x)) or 1.0)  # noqa: E731
    bottom.plot(t, scale(sample[i0:i1]), lw=0.8, label="other (capture)")
    if 0 <= j0 and j1 <= len(source):
        bottom.plot(t, scale(source[j0:j1]), lw=0.8, alpha=0.75, label="reference shifted by the lag")
    bottom.set_xlabel("time in the other recording (ms)")
    bottom.set_ylabel("amplitude (scaled)")
    bottom.legend(loc="upper right")
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)


def _lag_map(ax, result: SyncResult, min_confidence: float = 0.95) -> None:
    """Each window's lag relative to ``result.lag_ms``: confident ones filled, the drift line, the breaks."""
    t = np.array([p.time_s for p in result.lag_map])
    lag = np.array([p.lag_ms for p in result.lag_map]) - result.lag_ms
    sure = np.array([p.confidence for p in result.lag_map]) >= min_confidence
    ax.plot(t[sure], lag[sure], "o", color="#345", ms=4, label="window (confident)")
    ax.plot(t[~sure], lag[~sure], "o", mfc="none", color="#999", ms=4, label="window (not confident)")
    if result.drift_ppm is not None:  # lag_ms is the lag at other's 0: the line starts there
        span = np.array([0.0, t.max()])
        ax.plot(span, 1e-3 * result.drift_ppm * span, color="#d33", lw=1,
                label=f"drift {result.drift_ppm:+.1f} ± {result.drift_ppm_error or 0:.1f} ppm")
    for b in result.breaks:
        ax.axvline(b.time_s, color="#e90", lw=1, ls="--")
    ax.set_xlabel("time in the other recording (s)")
    ax.set_ylabel("lag - lag at start (ms)")
    ax.legend(loc="best")
