"""The ffmpeg program: where it is, the arguments every run shares, and whole-file decode and encode.

Producers stream through :func:`command` as well; every ffmpeg run of the
package is built here, with arguments as a list (never a shell line). Here
too, the decoders the command starts before it loads numpy
(:func:`start_early`), kept until a producer claims them: so no numpy at
import.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from typing import IO, TYPE_CHECKING

from audiosync.errors import FFmpegNotFoundError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["claim", "command", "decode", "decoder", "drop_early", "encode", "ffmpeg_path", "pcm_output", "start",
           "start_early"]

Running = tuple[subprocess.Popen, IO[bytes]]  # an ffmpeg and the file its stderr goes to


def ffmpeg_path() -> str:
    """Return the ffmpeg executable, or raise FFmpegNotFoundError with an install hint."""
    exe = shutil.which("ffmpeg")
    if not exe:
        raise FFmpegNotFoundError(
            "ffmpeg is not installed or not on PATH: install it "
            "(Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)"
        )
    return exe


def command(*args: str, loglevel: str = "error") -> list[str]:
    """``ffmpeg`` quiet (errors only, or ``loglevel``), never reading stdin, then ``args``."""
    return [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", loglevel, *args]


def pcm_output(rate: int, channels: int = 1, buffered: bool = False) -> list[str]:
    """Output arguments: the audio as raw float32 little-endian samples on stdout.

    ``buffered``: written in 32 KB blocks rather than a write per packet (30,000 writes of
    1.3 KB for a 10-minute Opus file): a quarter less time for a whole file decoded faster
    than real time, where nobody waits for each packet; never for a capture.
    """
    flush = ["-flush_packets", "0"] if buffered else []
    return ["-vn", "-ac", str(channels), "-ar", str(rate), *flush, "-f", "f32le", "pipe:1"]


def decoder(input_args: list[str], rate: int, buffered: bool = False, header: bool = False) -> list[str]:
    """The ffmpeg command of a decoder: ``input_args`` to mono f32le at ``rate`` on stdout
    (``buffered``: see :func:`pcm_output`), errors tagged with their level; ``header``: also the
    input's description (its duration and codec), without the progress lines."""
    return command(*(["-nostats"] if header else []), *input_args, *pcm_output(rate, buffered=buffered),
                   loglevel="level+info" if header else "level+error")


def start(argv: list[str]) -> Running:
    """Run ``argv`` with stdout piped (unbuffered) and stderr to a temporary file."""
    stderr = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
    except OSError:
        stderr.close()
        raise
    return proc, stderr


# ffmpeg started before their reader exists (start_early), by command line.
_early: dict[tuple[str, ...], list[Running]] = {}
_early_lock = threading.Lock()


def start_early(argv: list[str]) -> None:
    """Start ``argv`` now, for the reader that will :func:`claim` the same command line.

    The command starts its decoders before it imports numpy (about 0.1 s); whoever calls
    this calls :func:`drop_early` when done, which stops any that nobody claimed.
    """
    running = start(argv)
    try:
        with _early_lock:
            _early.setdefault(tuple(argv), []).append(running)
    except BaseException:  # a Ctrl-C before it was kept: nobody else would stop it
        _stop([running])
        raise


def claim(argv: list[str]) -> Running:
    """The ffmpeg started early with this command line, else one started now."""
    with _early_lock:
        waiting = _early.get(tuple(argv))
        if waiting:
            running = waiting.pop(0)
            if not waiting:
                del _early[tuple(argv)]
            return running
    return start(argv)


def drop_early() -> None:
    """Stop and reap every ffmpeg started early that no reader claimed."""
    with _early_lock:
        left = [running for waiting in _early.values() for running in waiting]
        _early.clear()
    _stop(left)


def _stop(left: list[Running]) -> None:
    for proc, stderr in left:
        proc.kill()  # its output is nobody's: no grace
        proc.wait()
        proc.stdout.close()
        stderr.close()


def decode(path: str, rate: int) -> np.ndarray:
    """A whole file decoded to mono float32 at ``rate``."""
    import numpy as np

    out = subprocess.run(command("-i", path, *pcm_output(rate)), check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=np.float32)


def encode(samples: np.ndarray, rate: int, path: str, *codec: str) -> str:
    """Write mono ``samples`` to ``path`` (its extension picks the container) with ``codec`` arguments."""
    import numpy as np

    pcm = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    # Not command(): -nostdin would stop ffmpeg reading the samples from stdin.
    subprocess.run([ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(rate),
                    "-ac", "1", "-i", "pipe:0", *codec, path], input=pcm, check=True, capture_output=True)
    return path
