"""Producer threads: one ffmpeg process each, decoding to raw mono PCM in a buffer.

A producer owns its process and its thread.  It reads ffmpeg's stdout
straight into a preallocated float32 buffer (the only copy between the pipe
and the kernel is the kernel's own copy into FFTW's buffers) and wakes the
waiting consumer through a shared condition variable.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time

import numpy as np

from audiosync import ffmpeg

__all__ = ["Producer"]

log = logging.getLogger("audiosync")

_BYTES_PER_SAMPLE = 4  # f32le
_CHUNK_BYTES = 1 << 16
# ffmpeg blocked on a silent capture source may not see SIGTERM for long;
# it writes only to our pipe, so killing it after a short grace loses nothing.
_STOP_GRACE_S = 0.3
_STDERR_TAIL = 600


class Producer:
    """Run ``ffmpeg <input_args> -> mono f32le at rate`` into a buffer of ``capacity`` samples.

    Attributes read by the consumer under ``cond``: ``count`` (samples
    ready), ``done`` (no more will come), ``error`` (ffmpeg's complaint when
    it failed), ``anchor`` (estimated ``time.monotonic()`` of sample 0).
    ``buffered``: see :func:`audiosync.ffmpeg.pcm_output` (a download, never a capture).
    """

    def __init__(self, name: str, input_args: list[str], rate: int, capacity: int,
                 cond: threading.Condition, buffered: bool = False):
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
        self._argv = ffmpeg.command(*input_args, *ffmpeg.pcm_output(rate, buffered=buffered))
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                self._argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=self._stderr, bufsize=0,
            )
        except OSError:
            self._stderr.close()
            raise
        self._started = time.monotonic()
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
        """The last lines ffmpeg printed on stderr."""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - _STDERR_TAIL))
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

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
        self._stderr.close()
