"""Plain helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audiosync import ffmpeg as audiosync_ffmpeg

RATE = 48_000
SONG_SECONDS = 45.0

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
needs_pulse = pytest.mark.skipif(
    shutil.which("pulseaudio") is None or shutil.which("ffmpeg") is None,
    reason="pulseaudio and ffmpeg are needed for desktop capture",
)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def decode(path: str | os.PathLike, rate: int = RATE) -> np.ndarray:
    """Decode a whole file to mono float32 at ``rate`` with ffmpeg (the oracle's view of it)."""
    return audiosync_ffmpeg.decode(str(path), rate)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    audiosync_ffmpeg.encode(audio, rate, str(path), "-c:a", "pcm_s16le")
    return path


def throttled_server(path, bytes_per_s: float):
    """Serve one file on 127.0.0.1 at ``bytes_per_s``, as a slow network does; returns (url, stop)."""
    data = open(path, "rb").read()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            chunk = int(bytes_per_s / 20)
            try:
                for i in range(0, len(data), chunk):
                    self.wfile.write(data[i : i + chunk])
                    time.sleep(0.05)
            except OSError:  # the client went away
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-slow-http", daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://127.0.0.1:{server.server_address[1]}/song.wav", stop
