"""The module-level API the desktop app speaks: one default job and thin functions over it."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence

from audiosync import capture as _capture
from audiosync.download import search_url
from audiosync.listener import Listener
from audiosync.results import Progress, SyncResult
from audiosync.session import JobState, SyncJob

__all__ = [
    "abort", "default_job", "default_listener", "get_debug", "get_lag", "listen", "pause", "resume", "run",
    "set_debug", "setup", "status", "stop_listening", "sync",
]

log = logging.getLogger("audiosync")

_default = SyncJob()
_debug_handler: logging.Handler | None = None
_listener: Listener | None = None
_listener_lock = threading.Lock()


def default_job() -> SyncJob:
    """The job behind :func:`run`, :func:`sync`, :func:`pause`, :func:`abort` and friends."""
    return _default


def default_listener() -> Listener | None:
    """The listener :func:`listen` started, while it runs; else None."""
    listener = _listener
    return listener if listener is not None and listener.running else None


def listen(capture: str | Sequence[str] | None = None) -> bool:
    """Start the default :class:`Listener` (once: a second call keeps the first); True when it runs.

    While it runs, :func:`run`, :func:`get_lag` and :func:`sync` (without
    ``capture``) answer from the audio it heard since a second before the
    call, or since ``since=``. Never raises: a failure is logged.
    """
    global _listener
    with _listener_lock:
        if default_listener() is not None:
            return True
        if _listener is not None:  # its capture thread died: its trackers go with it
            _listener.stop()
        try:
            _listener = Listener(capture).start()
        except Exception as exc:  # the desktop app calls this without a try
            log.warning("listen(%r) failed: %s: %s", capture, type(exc).__name__, exc)
            _listener = None
            return False
        return True


def stop_listening() -> bool:
    """Stop the default listener and its trackers; True when one was running."""
    global _listener
    with _listener_lock:
        listener, _listener = _listener, None
    if listener is None:
        return False
    was = listener.running
    listener.stop()
    return was


def _trackers():
    listener = default_listener()
    return listener.trackers if listener is not None else ()


def sync(url: str, *, capture: str | Sequence[str] | None = None,
         on_progress: Callable[[Progress], None] | None = None, since: float | None = None,
         **options) -> SyncResult:
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
    since : float or None
        Only with the default listener running (:func:`listen`) and no
        ``capture``: the ``time.monotonic()`` from which its audio is used
        (default: a second before the call).
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
        is in the song, e.g. its MPRIS position, vouched for within
        ``hint_window_ms``, 3000; see :attr:`SyncOptions.hint_ms`).

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
    listener = default_listener()
    if capture is None and listener is not None:
        return listener.sync(url, since=since, job=_default, on_progress=on_progress, **options)
    if since is not None:
        raise ValueError("since needs the default listener running (audiosync.listen()) and no capture")
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
    """Pause the default job and the default listener's trackers; True when one was running."""
    return any([_default.pause(), *(t.pause() for t in _trackers())])


def resume() -> bool:
    """Resume the default job and trackers; True when one was paused."""
    return any([_default.resume(), *(t.resume() for t in _trackers())])


def abort() -> bool:
    """Abort the default job (it returns within a second) and stop the trackers; True when one ran."""
    return any([_default.abort(), *(t.abort() for t in _trackers())])


def status() -> str:
    """``"idle"``, ``"running"``, ``"paused"`` or ``"aborting"``: the default job's, else a tracker's."""
    if _default.status != JobState.IDLE.value:
        return _default.status
    states = [t.status for t in _trackers()]
    for state in (JobState.RUNNING, JobState.PAUSED, JobState.ABORTING):
        if state.value in states:
            return state.value
    return JobState.IDLE.value


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
