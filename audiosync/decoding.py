"""How an offline sync decodes its inputs: each input's ffmpeg arguments, and their early start.

:func:`audiosync.offline.decode_inputs` reads with these arguments; the
``audiosync files`` command starts the same ffmpeg (:func:`start_early`)
before it imports numpy and the rest, so that ffmpeg's own start-up and its
first seconds of decoding overlap Python's. No numpy here.
"""

from __future__ import annotations

import math
import os

from audiosync import ffmpeg
from audiosync.download import input_args

__all__ = ["commands", "describes", "start_early", "windowed"]


def windowed(args: list[str], window: tuple[float, float | None] | None) -> list[str]:
    """ffmpeg arguments that read only ``window`` (start_s, duration_s) of the input.

    The samples are counted from the first one decoded (``asetpts=N/SR/TB``)
    and the window cut by that count (``atrim``), so its first sample is the
    one a whole decode puts at ``start_s``. A seek (``-ss``) goes by the
    stream's timestamps instead: on a stream that starts before 0 (Opus in
    WebM, -7 ms) it lands that much off, and past the end some formats (Ogg)
    still give their last second. The part before the window is decoded.
    """
    if window is None:
        return args
    start, duration = window
    if duration is not None and not math.isfinite(duration):  # "to the end", as FileOptions reads it
        duration = None
    trim = f"atrim=start={start:.6f}" + ("" if duration is None else f":duration={duration:.6f}")
    return [*args, "-af", f"asetpts=N/SR/TB,{trim}"]  # after "-i URL": output options


def describes(split_decode: bool, timeout: float | None) -> bool:
    """Whether the decoders also describe their inputs: for a split decode, which is made only
    when the decoding has no time limit (a timeout answers from what was decoded by then)."""
    return split_decode and timeout is None


def commands(inputs, windows, describe: bool) -> list[tuple[list[str], bool]]:
    """Per input: its ffmpeg input arguments (the window applied) and whether its ffmpeg also
    describes the input (``describe``, see :func:`describes`; only a whole input is split)."""
    return [(windowed(input_args(url), w), describe and w is None) for url, w in zip(inputs, windows)]


def start_early(inputs, rate: int, windows, split_decode: bool = True, timeout: float | None = None) -> None:
    """Start now the decoders :func:`audiosync.offline.decode_inputs` will read with these
    arguments, for the inputs that are local files; the caller calls
    :func:`audiosync.ffmpeg.drop_early` when done, whatever happens. Best effort: anything wrong
    is left for the sync itself to find and name."""
    try:
        local = [(url, w) for url, w in zip(inputs, windows) if os.path.isfile(url)]
        describe = describes(split_decode, timeout)
        for args, header in commands([url for url, _ in local], [w for _, w in local], describe):
            ffmpeg.start_early(ffmpeg.decoder(args, rate, buffered=True, header=header))
    except Exception:  # ffmpeg missing, a bad path or window, a yt-dlp name that is also a file
        return
