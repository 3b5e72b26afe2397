"""Desktop capture sources: ffmpeg input arguments and the PulseAudio side.

Works with PulseAudio and with PipeWire's pulse server, through pulsectl
(a maintained client library) for listing sources and setting up the
dedicated sink; ffmpeg's ``pulse`` input does the recording.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from audiosync.errors import CaptureError

__all__ = ["DEFAULT_MONITOR", "SINK_NAME", "capture_input_args", "list_sources", "setup"]

log = logging.getLogger("audiosync")

DEFAULT_MONITOR = "@DEFAULT_MONITOR@"
SINK_NAME = "audiosync"
_CLIENT_NAME = "audiosync"
_CONNECT_TIMEOUT_S = 2.0


def _pulse():
    """A connected pulsectl.Pulse, or CaptureError when there is no server."""
    try:
        import pulsectl
    except (ImportError, OSError) as exc:  # OSError: libpulse itself is missing
        raise CaptureError(f"cannot load the PulseAudio client library (libpulse): {exc}") from None
    try:
        return pulsectl.Pulse(_CLIENT_NAME, connect=True, threading_lock=False)
    except pulsectl.PulseError as exc:
        raise CaptureError(f"no PulseAudio/PipeWire sound server answers: {exc}") from None


def list_sources() -> list[str]:
    """Names of the sound server's sources (monitors included)."""
    with _pulse() as pulse:
        return [s.name for s in pulse.source_list()]


def _check_pulse_source(name: str) -> str:
    """Return the source to record, or raise CaptureError naming the source and the others."""
    with _pulse() as pulse:
        sources = [s.name for s in pulse.source_list()]
        if name == DEFAULT_MONITOR:
            sinks = {s.name for s in pulse.sink_list()}
            if SINK_NAME in sinks:
                # setup() routed the player into our sink: record only that.
                return f"{SINK_NAME}.monitor"
            default = pulse.server_info().default_sink_name
            if not default or f"{default}.monitor" not in sources:
                raise CaptureError(
                    f"the sound server has no default output to record (sources: {', '.join(sources) or 'none'})"
                )
            return name
    if name not in sources:
        raise CaptureError(
            f"capture source {name!r} does not exist; sources: {', '.join(sources) or 'none'}"
        )
    return name


def capture_input_args(capture: str | Sequence[str] | None) -> list[str]:
    """ffmpeg input arguments for a capture spec.

    ``None`` records the monitor of the default output (or the dedicated
    ``audiosync`` sink once :func:`setup` made it); a string names a
    PulseAudio source; a sequence is passed to ffmpeg as its input arguments.
    """
    if capture is None:
        capture = DEFAULT_MONITOR
    if isinstance(capture, str):
        if not capture or capture.startswith("-"):
            raise ValueError(f"capture source name {capture!r} is not valid")
        return ["-f", "pulse", "-i", _check_pulse_source(capture)]
    args = [str(a) for a in capture]
    if "-i" not in args[:-1]:
        raise ValueError(f"capture arguments must contain '-i INPUT', got {args!r}")
    return args


def setup(stream_name: str) -> bool:
    """Route the player ``stream_name`` into a dedicated ``audiosync`` sink.

    Creates (once) a null sink named ``audiosync``, loops its monitor back to
    the real output so the user still hears the music, and moves the
    player's playback streams (matched on ``application.name``, ignoring
    case) into it. Running it again, for this or another player, reuses the
    sink and the loopback. Returns False, with the reason logged, when there
    is no sound server or no such stream.
    """
    if not isinstance(stream_name, str) or not stream_name.strip():
        log.warning("setup: no player name given")
        return False
    try:
        pulse = _pulse()
    except CaptureError as exc:
        log.warning("setup: %s", exc)
        return False
    with pulse:
        import pulsectl

        try:
            wanted = stream_name.strip().casefold()
            streams = [
                s for s in pulse.sink_input_list()
                if s.proplist.get("application.name", "").casefold() == wanted
            ]
            if not streams:
                names = sorted({s.proplist.get("application.name", "?") for s in pulse.sink_input_list()})
                log.warning("setup: no playback stream of %r; playing: %s", stream_name, ", ".join(names) or "nothing")
                return False
            sink = _ensure_sink(pulse)
            _ensure_loopback(pulse, sink)
            for s in streams:
                if s.sink != sink.index:
                    pulse.sink_input_move(s.index, sink.index)
            log.info("setup: %d stream(s) of %r now play through the %r sink", len(streams), stream_name, SINK_NAME)
            return True
        except pulsectl.PulseError as exc:
            log.warning("setup: the sound server refused: %s", exc)
            return False


def _ensure_sink(pulse):
    for sink in pulse.sink_list():
        if sink.name == SINK_NAME:
            return sink
    pulse.module_load(
        "module-null-sink",
        f"sink_name={SINK_NAME} sink_properties=device.description=audiosync",
    )
    return next(s for s in pulse.sink_list() if s.name == SINK_NAME)


def _ensure_loopback(pulse, sink) -> None:
    monitor = f"{SINK_NAME}.monitor"
    for module in pulse.module_list():
        if module.name == "module-loopback" and f"source={monitor}" in (module.argument or ""):
            return
    default = pulse.server_info().default_sink_name
    outputs = [s.name for s in pulse.sink_list() if s.name != SINK_NAME]
    if not outputs:
        log.warning("setup: no real output to loop the music back to")
        return
    target = default if default in outputs else outputs[0]
    pulse.module_load("module-loopback", f"source={monitor} sink={target} source_dont_move=true")
