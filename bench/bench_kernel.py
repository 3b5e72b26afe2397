"""Time the kernel against the numpy sketch and a pyFFTW three-transform floor.

Run: python bench/bench_kernel.py [--repeat R]
Prints milliseconds per call and ratios, all measured in this one run on the
same data, plus the throughput of two threads against one.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import pyfftw

import audiosync
from audiosync import cross_correlation

RATE = 48_000
PLAN_SECONDS = 5.0  # per-plan FFTW_MEASURE time limit for the pyFFTW floor


def numpy_sketch(source, sample):
    """The original's Python sketch: numpy FFTs, argmax, Pearson at the peak."""
    m, n = len(source), len(sample)
    padded = np.zeros(m)
    padded[:n] = sample
    corr = np.fft.irfft(np.fft.rfft(source) * np.conj(np.fft.rfft(padded)), m)
    k = int(np.argmax(np.abs(corr)))
    lag = k - m if k > m - n else k
    if lag >= 0:
        x = sample[: min(n, m - lag)]
        y = source[lag : lag + len(x)]
    else:
        x = sample[-lag:]
        y = source[: len(x)]
    return lag, float(np.corrcoef(x, y)[0, 1])


class PyfftwFloor:
    """Three planned transforms and the conjugate product, nothing else."""

    def __init__(self, m, flags):
        self.a = pyfftw.empty_aligned(m, "float64")
        self.b = pyfftw.empty_aligned(m, "float64")
        self.fa = pyfftw.empty_aligned(m // 2 + 1, "complex128")
        self.fb = pyfftw.empty_aligned(m // 2 + 1, "complex128")
        self.out = pyfftw.empty_aligned(m, "float64")
        kw = dict(flags=(flags,), planning_timelimit=PLAN_SECONDS)
        self.fwd_a = pyfftw.FFTW(self.a, self.fa, **kw)
        self.fwd_b = pyfftw.FFTW(self.b, self.fb, **kw)
        self.inv = pyfftw.FFTW(self.fa, self.out, direction="FFTW_BACKWARD", **kw)

    def __call__(self, source, sample):
        self.a[:] = source
        self.b[: len(sample)] = sample
        self.b[len(sample) :] = 0.0
        self.fwd_a()
        self.fwd_b()
        np.multiply(self.fa, np.conj(self.fb), out=self.fa)
        self.inv()
        return self.out


def best_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"audiosync {audiosync.__version__}, {audiosync.fftw_version}, numpy {np.__version__}, "
          f"pyFFTW {pyfftw.__version__}, {os.cpu_count()} cores")
    print(f"{'capture':>8} {'N':>9} {'kernel ms':>10} {'numpy ms':>9} {'pyFFTW ms':>10} "
          f"{'numpy/kernel':>13} {'kernel/pyFFTW':>14}")
    for seconds in (3, 10, 30):
        n = seconds * RATE
        source = rng.standard_normal(2 * n)
        sample = source[n // 3 : n // 3 + n].copy()
        assert cross_correlation(source, sample).lag == n // 3  # also plans
        k = best_ms(lambda: cross_correlation(source, sample), args.repeat)
        s = best_ms(lambda: numpy_sketch(source, sample), args.repeat)
        # The floor is the faster of an estimated and a (time-limited) measured plan.
        f = min(best_ms(lambda: floor(source, sample), args.repeat)
                for floor in (PyfftwFloor(2 * n, fl) for fl in ("FFTW_ESTIMATE", "FFTW_MEASURE")))
        print(f"{seconds:>7}s {n:>9} {k:>10.2f} {s:>9.2f} {f:>10.2f} {s / k:>13.2f} {k / f:>14.2f}")

    # Throughput: the same batch of 10 s calls in one thread, then in two.
    n = 10 * RATE
    source = rng.standard_normal(2 * n)
    sample = source[1000 : 1000 + n].copy()
    calls = 4 * args.repeat

    def batch(count):
        for _ in range(count):
            cross_correlation(source, sample)

    t = time.perf_counter()
    batch(calls)
    one = calls / (time.perf_counter() - t)
    threads = [threading.Thread(target=batch, args=(calls // 2,)) for _ in range(2)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    two = calls / (time.perf_counter() - t)
    print(f"10 s calls per second: 1 thread {one:.1f}, 2 threads {two:.1f}, ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
