"""Producer threads: one ffmpeg process each, decoding to raw mono PCM in a buffer.

A producer owns its process and its thread.  It reads ffmpeg's stdout
straight into a preallocated float32 buffer (the only copy between the pipe
and the kernel is the kernel's own copy into FFTW's buffers) and wakes the
waiting consumer through a shared condition variable.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
import time

import numpy as np

from audiosync import ffmpeg

__all__ = ["Producer", "complaints"]

log = logging.getLogger("audiosync")

_BYTES_PER_SAMPLE = 4  # f32le
_CHUNK_BYTES = 1 << 16
# ffmpeg blocked on a silent capture source may not see SIGTERM for long;
# it writes only to our pipe, so killing it after a short grace loses nothing.
_STOP_GRACE_S = 0.3
_STDERR_TAIL = 600
# Each line ffmpeg prints carries its level ("[ctx @ 0x..] [error] text"): its complaints are told
# from the input's description, which a producer made with ``header=True`` has printed ("info").
# A context may carry its parent's ("[Parsed_aresample_0 @ 0x..] [SWR @ 0x..] [error] ...").
_LINE = re.compile(r"^((?:\[[^\]]* @ [^\]]*\] )*)\[([a-z]+)\] ?(.*)$")
_COMPLAINTS = ("error", "fatal", "panic")
_HEADER_BYTES = _TAIL_BYTES = 1 << 16
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_AUDIO = re.compile(r"^\s*Stream #\d+:\d+\S*: Audio: (\w+)")


class Producer:
    """Run ``ffmpeg <input_args> -> mono f32le at rate`` into a buffer of ``capacity`` samples.

    Attributes read by the consumer under ``cond``: ``count`` (samples
    ready), ``done`` (no more will come), ``error`` (ffmpeg's complaint when
    it failed), ``anchor`` (estimated ``time.monotonic()`` of sample 0).
    ``buffered``: see :func:`audiosync.ffmpeg.pcm_output` (a download, never a capture).
    ``header``: ffmpeg also describes its input, for :meth:`header` (a file's length and codec
    without an ffprobe of its own: one process and one HTTP request fewer).
    """

    def __init__(self, name: str, input_args: list[str], rate: int, capacity: int,
                 cond: threading.Condition, buffered: bool = False, header: bool = False):
        self.name = name
        self.rate = rate
        self.cond = cond
        self.buffer = np.zeros(capacity, dtype=np.float32)
        self.count = 0
        self.done = False
        self.full = False
        self.error: str | None = None
        self.anchor: float | None = None
        self._stopping = False
        self._argv = ffmpeg.decoder(input_args, rate, buffered=buffered, header=header)
        self._proc, self._stderr = ffmpeg.claim(self._argv)  # started early by the command, or now
        self._thread = threading.Thread(target=self._read, name=f"audiosync-{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        view = memoryview(self.buffer).cast("B")
        total = len(view)
        pos = 0
        stdout = self._proc.stdout
        try:
            while pos < total:
                n = stdout.readinto(view[pos:min(pos + _CHUNK_BYTES, total)])
                if not n:
                    break
                pos += n
                now = time.monotonic()
                samples = pos // _BYTES_PER_SAMPLE
                # The newest sample arrived no earlier than it was played, so
                # now - samples/rate bounds sample 0's time; the smallest bound
                # over all reads is the best estimate.
                start = now - samples / self.rate
                with self.cond:
                    self.count = samples
                    if self.anchor is None or start < self.anchor:
                        self.anchor = start
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass  # the pipe was closed by stop()
        finally:
            full = pos >= total
            if full:
                self._terminate()
                # ffmpeg may be blocked writing into the full pipe, where SIGTERM
                # does not stop it (the write is restarted): closing our end
                # makes that write fail, and a kill settles the rest.
                stdout.close()
                try:
                    self._proc.wait(timeout=_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
            rc = self._proc.wait()
            error = None
            if rc != 0 and not full and not self._stopping:
                error = self.stderr_tail() or f"ffmpeg exited with status {rc}"
            with self.cond:
                self.full = full
                self.error = error
                self.done = True
                self.cond.notify_all()
            if error:
                log.debug("%s: ffmpeg failed after %d samples: %s", self.name, self.count, error)

    def stderr_tail(self) -> str:
        """The last complaints ffmpeg printed on stderr (its errors, without their level)."""
        try:
            size = os.fstat(self._stderr.fileno()).st_size
            # pread: ffmpeg's stderr shares this file's offset while it runs.
            start = max(0, size - _TAIL_BYTES)
            text = os.pread(self._stderr.fileno(), _TAIL_BYTES, start).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        if start:  # begun mid-line: from the next whole one
            text = text.partition("\n")[2]
        return " | ".join(complaints(text))[-_STDERR_TAIL:]

    def header(self, timeout: float) -> tuple[float, str] | None:
        """(duration_s, codec) of the input's first audio stream as ffmpeg described it (made with
        ``header=True``), read once it decodes or has ended; None when it did not say within
        ``timeout`` seconds, or gave no duration (a live stream)."""
        with self.cond:  # stop() closes the file under it: no read of a reused descriptor
            self.cond.wait_for(lambda: self.count > 0 or self.done, timeout)
            try:
                text = os.pread(self._stderr.fileno(), _HEADER_BYTES, 0).decode("utf-8", "replace")
            except (OSError, ValueError):
                return None
        duration = codec = None
        for line in text.splitlines():
            m = _LINE.match(line)
            body = m.group(3) if m else line
            if body.startswith(("Stream mapping", "Output #")):
                break  # past the input's description
            d, a = _DURATION.match(body), _AUDIO.match(body)
            if d and duration is None:
                duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))
            elif a and codec is None:
                codec = a.group(1)
        return None if duration is None or codec is None else (duration, codec)

    def _terminate(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.terminate()
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Terminate ffmpeg, reap it, join the thread and close the files. Idempotent."""
        self._stopping = True
        self._terminate()
        try:
            self._proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._thread.join()
        if self._proc.stdout:
            self._proc.stdout.close()
        with self.cond:
            self._stderr.close()


def complaints(text: str) -> list[str]:
    """ffmpeg's error, fatal and panic lines in ``text`` (printed with ``-loglevel level+...``),
    each without its level tag; a line without a tag continues the one before it. Text with no
    tag at all (an ffmpeg older than 4.1 refusing the option) is kept whole."""
    kept, complaining, tagged = [], False, False
    lines = text.splitlines()
    for line in lines:
        m = _LINE.match(line)
        if m:
            tagged = True
            complaining = m.group(2) in _COMPLAINTS
            line = m.group(1) + m.group(3)
        if complaining and line.strip():
            kept.append(line.strip())
    return kept if tagged else [line.strip() for line in lines if line.strip()]
