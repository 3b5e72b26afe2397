"""A music-like test signal: chords, a bass line and percussion, made from a seed.

Used by the built-in demo and the tests so they need no audio files.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_song"]

# Chord roots (MIDI notes) of a four-chord progression, and their triads.
_PROGRESSION = [(57, (0, 3, 7)), (53, (0, 4, 7)), (48, (0, 4, 7)), (55, (0, 4, 7))]


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def make_song(seconds: float, rate: int = 48_000, seed: int = 0, bpm: float = 112.0) -> np.ndarray:
    """Synthesize ``seconds`` of music-like mono audio as float32 in [-1, 1].

    The melody and the drum pattern vary from bar to bar (drawn from
    ``seed``), so no two excerpts of a few seconds are identical.
    """
    if seconds <= 0 or rate <= 0:
        raise ValueError("seconds and rate must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    out = np.zeros(n)
    beat = 60.0 / bpm
    bar = 4 * beat
    # Chords: one per bar, soft sawtooth-like tones with a slow decay.
    for start in np.arange(0.0, seconds, bar):
        root, triad = _PROGRESSION[int(start / bar) % len(_PROGRESSION)]
        i0, i1 = int(start * rate), min(n, int((start + bar) * rate))
        tt = t[i0:i1] - start
        env = np.exp(-tt * 0.8)
        for step in triad:
            f = _midi_hz(root + step)
            for h in (1, 2, 3):
                out[i0:i1] += 0.06 / h * env * np.sin(2 * np.pi * f * h * tt + rng.uniform(0, 6.3))
        bass = _midi_hz(root - 12)
        out[i0:i1] += 0.15 * env * np.sin(2 * np.pi * bass * tt)
    # Melody and percussion on eighth notes, drawn at random.
    scale = np.array([0, 2, 3, 5, 7, 8, 10, 12])
    for k, start in enumerate(np.arange(0.0, seconds, beat / 2)):
        i0 = int(start * rate)
        length = min(n - i0, int(beat / 2 * rate))
        tt = t[i0 : i0 + length] - start
        if rng.random() < 0.7:
            f = _midi_hz(69 + scale[rng.integers(len(scale))])
            out[i0 : i0 + length] += 0.12 * np.exp(-tt * 6) * np.sin(2 * np.pi * f * tt)
        if k % 4 == 0 or rng.random() < 0.15:  # kick
            out[i0 : i0 + length] += 0.5 * np.exp(-tt * 25) * np.sin(2 * np.pi * (50 + 80 * np.exp(-tt * 30)) * tt)
        if k % 4 == 2 or rng.random() < 0.2:  # snare / hat: filtered noise bursts
            noise = rng.standard_normal(length)
            out[i0 : i0 + length] += 0.15 * np.exp(-tt * (18 if k % 4 == 2 else 60)) * noise
    peak = np.max(np.abs(out))
    return (0.9 * out / peak).astype(np.float32)
