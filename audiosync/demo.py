"""Built-in example: find a generated capture in a generated song with the kernel."""

from __future__ import annotations

import time

import numpy as np

from audiosync.synth import make_song
from audiosync.xcorr import cross_correlation

RATE = 48_000


def main() -> int:
    rng = np.random.default_rng()
    song = make_song(40.0, RATE, seed=int(rng.integers(1 << 30)))
    capture_s = 3
    offset = int(rng.integers(0, len(song) - 2 * capture_s * RATE))
    source = song[: 2 * capture_s * RATE + offset]
    sample = song[offset : offset + capture_s * RATE] + 0.05 * rng.standard_normal(capture_s * RATE).astype(np.float32)
    print(f"song: 40 s of generated music at {RATE} Hz; capture: {capture_s} s starting at {1000 * offset / RATE:.1f} ms, with noise")
    t = time.perf_counter()
    lag, coefficient = cross_correlation(source, sample)
    ms = 1000 * (time.perf_counter() - t)
    print(f"found lag {1000 * lag / RATE:.1f} ms (true {1000 * offset / RATE:.1f} ms), "
          f"Pearson {coefficient:.3f}, kernel {ms:.1f} ms")
    return 0 if lag == offset else 1


if __name__ == "__main__":
    raise SystemExit(main())
