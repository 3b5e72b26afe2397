"""Plain helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
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
