"""The module-level API the desktop app speaks: one default job and thin functions over it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from audiosync import capture as _capture
from audiosync.download import search_url
from audiosync.results import Progress, SyncResult
from audiosync.session import SyncJob

__all__ = [
    "abort", "default_job", "get_debug", "get_lag", "pause", "resume", "run", "set_debug",
    "setup", "status", "sync",
]

log = logging.getLogger("audiosync")

_default = SyncJob()
_debug_handler: logging.Handler | None = None


def default_job() -> SyncJob:
    """The job behind :func:`run`, :func:`sync`, :func:`pause`, :func:`abort` and friends."""
    return _default


def sync(url: str, *, capture: str | Sequence[str] | None = None,
         on_progress: Callable[[Progress], None] | None = None, **options) -> SyncResult:
    """Record the desktop while decoding ``url``; return how far apart they are.

    Parameters
    ----------
    url : str or path
        A direct media URL (what ``yt-dlp -g -f bestaudio`` prints), a local
        file, or a YouTube page URL (needs ``audiosync[youtube]``).
    capture : str, sequence of str or None
        ``None``: the monitor of the default output (the ``audiosync`` sink
        once :func:`setup` made it). A string: a PulseAudio source name such
        as ``"mysink.monitor"``. A sequence: ffmpeg input arguments, e.g.
        ``["-f", "alsa", "-i", "hw:0"]`` or ``["-i", "capture.wav"]``.
    on_progress : callable or None
        Called with a :class:`Progress` after every interval.
    **options
        The fields of :class:`audiosync.SyncOptions`, validated there:
        ``sample_rate`` (16000), ``intervals`` (seconds of capture after
        which to estimate; the job returns at the first confident one),
        ``min_confidence`` (0.95), ``timeout`` (give up after this many
        seconds with the best answer so far, not confident), ``use_ytdlp``
        (None: for YouTube pages and ``ytsearch`` queries; True: any http(s)
        page yt-dlp knows; False: never), ``keep_audio`` (keep the two
        arrays the answer came from in ``SyncResult.audio``, for plots),
        ``method`` (``"phat"``, or ``"seed"``: the original raw correlation
        with |Pearson|), ``max_download_s`` (1200: the song is searched
        whole, up to this long), ``hint_ms`` (None: where the player
        probably is in the song, e.g. its MPRIS position; searched first)
        and ``hint_window_ms`` (3000).

    Returns
    -------
    SyncResult
        ``capture(t) ≈ download(t + lag_ms)``: positive when the capture
        started ``lag_ms`` into the song.

    Raises
    ------
    FFmpegNotFoundError, InputError, CaptureError, MissingExtraError,
    FileNotFoundError, ValueError, JobBusyError
        See the README's Errors section. A timeout, an abort or silence is
        not an error: the result is simply not confident.
    """
    return _default.sync(url, capture=capture, on_progress=on_progress, **options)


def get_lag(url: str, **options) -> int:
    """The lag in whole milliseconds, or 0 when no confident answer was found.

    The original module's contract; ``options`` are those of :func:`sync`.
    """
    result = sync(url, **options)
    return int(round(result.lag_ms)) if result.confident else 0


def run(title: str) -> tuple[int, bool]:
    """Search YouTube for ``title``, sync against its audio, return ``(lag_ms, success)``.

    Never raises: on any failure (no network, yt-dlp missing, nothing found,
    an unreadable stream, a busy default job, an abort) it logs why and
    returns ``(0, False)``.
    """
    try:
        if not isinstance(title, str) or not title.strip():
            log.warning("run: no title given")
            return 0, False
        result = sync(search_url(title.strip()), use_ytdlp=True)
    except Exception as exc:  # the caller's thread does not catch exceptions
        log.warning("run(%r) failed: %s: %s", title, type(exc).__name__, exc)
        log.debug("run failure details", exc_info=True)
        return 0, False
    if not result.confident:
        log.info("run(%r): no confident answer (%s, confidence %.3f)", title, result.reason, result.confidence)
        return 0, False
    return int(round(result.lag_ms)), True


def pause() -> bool:
    """Pause the default job; True when it was running."""
    return _default.pause()


def resume() -> bool:
    """Resume the default job; True when it was paused."""
    return _default.resume()


def abort() -> bool:
    """Abort the default job (it returns within a second); True when one was running."""
    return _default.abort()


def status() -> str:
    """``"idle"``, ``"running"``, ``"paused"`` or ``"aborting"``."""
    return _default.status


def setup(stream_name: str) -> bool:
    """Route the player ``stream_name`` into the dedicated ``audiosync`` sink (see :func:`audiosync.capture.setup`)."""
    try:
        return _capture.setup(stream_name)
    except Exception as exc:  # the desktop app calls this without a try
        log.warning("setup(%r) failed: %s", stream_name, exc)
        return False


def get_debug() -> bool:
    """Whether the ``audiosync`` logger shows debug messages."""
    return log.getEffectiveLevel() <= logging.DEBUG


def set_debug(enabled: bool) -> None:
    """Turn debug logging of the ``audiosync`` logger on or off.

    When the application has configured no logging, a stderr handler is
    added while debug is on, so the messages are seen.
    """
    global _debug_handler
    log.setLevel(logging.DEBUG if enabled else logging.NOTSET)
    if enabled and _debug_handler is None and not logging.getLogger().handlers:
        _debug_handler = logging.StreamHandler(sys.stderr)
        _debug_handler.setFormatter(logging.Formatter("audiosync %(levelname)s: %(message)s"))
        log.addHandler(_debug_handler)
    elif not enabled and _debug_handler is not None:
        log.removeHandler(_debug_handler)
        _debug_handler = None
