"""Plain helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

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
    """Decode a file to mono float32 at ``rate`` with ffmpeg (the oracle's view of it)."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar",
         str(rate), "-f", "f32le", "pipe:1"], check=True, capture_output=True,
    ).stdout
    return np.frombuffer(out, dtype=np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    raw = path.with_suffix(".f32")
    np.asarray(audio, dtype="<f4").tofile(raw)
    ffmpeg("-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", str(raw), "-c:a", "pcm_s16le", str(path))
    raw.unlink()
    return path
