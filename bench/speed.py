"""The speed suite: the kernel against what a user would otherwise write, in one run.

Run: python bench/speed.py [--repeat R] [--json]   (needs the package's test extra)

Every ratio compares timings taken in this one run on the same data (best of
R): these machines are shared and noisy, so absolute times move between runs
and the ratios are what to read.

Plans: with --effort measure (the default) both the kernel and the pyFFTW
floor run FFTW_MEASURE plans. The kernel's come from audiosync's wisdom
(wisdom.prepare, measured once per machine and kept in the user's cache);
pyFFTW bundles another FFTW (3.3.5), so it measures its own, kept in
~/.cache/audiosync-bench. The first run spends minutes planning (reported
apart from every time above it); later runs find the plans.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

# Before numpy: OpenBLAS threads left spinning after a baseline's np.corrcoef
# would take the second core from the two-thread figure (the kernel's plans
# are prepared first, below).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pyfftw  # noqa: E402
import scipy  # noqa: E402
import scipy.fft  # noqa: E402
import scipy.signal  # noqa: E402

import audiosync  # noqa: E402
from audiosync import _planner, cross_correlation  # noqa: E402
from audiosync.xcorr import Correlator, working_length  # noqa: E402

RATE = 48_000


def pearson_at(source, sample, lag):
    if lag >= 0:
        x = sample[: min(len(sample), len(source) - lag)]
        y = source[lag : lag + len(x)]
    else:
        x = sample[-lag:]
        y = source[: len(x)]
    return float(np.corrcoef(x, y)[0, 1])


def numpy_sketch(source, sample):
    """The original's Python sketch: numpy FFTs over the source's length, argmax, Pearson."""
    m, n = len(source), len(sample)
    corr = np.fft.irfft(np.fft.rfft(source) * np.conj(np.fft.rfft(sample, m)), m)
    k = int(np.argmax(np.abs(corr)))
    lag = k - m if k > m - n else k
    return lag, pearson_at(source, sample, lag)


def scipy_correlate(source, sample):
    corr = scipy.signal.correlate(source, sample, mode="full", method="fft")
    lags = scipy.signal.correlation_lags(len(source), len(sample), mode="full")
    lag = int(lags[np.argmax(np.abs(corr))])
    return lag, pearson_at(source, sample, lag)


def scipy_fft_workers(source, sample):
    m, n = len(source), len(sample)
    f = scipy.fft.rfft(source, workers=2) * np.conj(scipy.fft.rfft(sample, m, workers=2))
    corr = scipy.fft.irfft(f, m, workers=2)
    k = int(np.argmax(np.abs(corr)))
    lag = k - m if k > m - n else k
    return lag, pearson_at(source, sample, lag)


class PyfftwFloor:
    """Three planned transforms and the conjugate product, nothing else (no peak, no Pearson)."""

    def __init__(self, m, dtype, flags):
        ctype = np.complex64 if dtype == np.float32 else np.complex128
        self.a = pyfftw.empty_aligned(m, dtype)
        self.b = pyfftw.empty_aligned(m, dtype)
        self.fa = pyfftw.empty_aligned(m // 2 + 1, ctype)
        self.fb = pyfftw.empty_aligned(m // 2 + 1, ctype)
        self.out = pyfftw.empty_aligned(m, dtype)
        kw = dict(flags=(flags,))
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


FLOOR_WISDOM = os.path.join(os.path.expanduser("~/.cache/audiosync-bench"), "pyfftw-wisdom.pickle")
SECONDS = (3, 10, 30)


def plan_ahead(effort):
    """Measure (or find in the wisdom) the kernel's plans of the table's sizes; load the floor's wisdom."""
    from audiosync import wisdom

    prepare_s = 0.0
    if effort == "measure":
        prepare_s = wisdom.prepare(seconds=SECONDS, sample_rate=RATE, precisions=("single", "double"),
                                   download_s=0)
        try:
            with open(FLOOR_WISDOM, "rb") as f:
                pyfftw.import_wisdom(pickle.load(f))
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
            pass
    return {"prepare_s": prepare_s}


def save_floor_wisdom():
    os.makedirs(os.path.dirname(FLOOR_WISDOM), exist_ok=True)
    with open(FLOOR_WISDOM, "wb") as f:
        pickle.dump(pyfftw.export_wisdom(), f)


def best_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def kernel_table(rng, repeat, flags):
    rows = []
    for seconds in SECONDS:
        n = seconds * RATE
        m = working_length(2 * n)  # the floor transforms the kernel's own size
        source = rng.standard_normal(m)
        lag = n // 3
        sample = source[lag : lag + n].copy()
        s32, x32 = source.astype(np.float32), sample.astype(np.float32)
        for precision in ("double", "single"):
            assert cross_correlation(source, sample, precision=precision).lag == lag  # plans, too
        t = time.perf_counter()
        floor64 = PyfftwFloor(m, np.float64, flags)
        floor32 = PyfftwFloor(m, np.float32, flags)
        floor_plan_s = time.perf_counter() - t
        reuse = Correlator(s32)
        reuse(x32)
        row = {
            "seconds": seconds, "N": n, "transform": m,
            "double_ms": best_ms(lambda: cross_correlation(source, sample, precision="double"), repeat),
            "single_ms": best_ms(lambda: cross_correlation(s32, x32), repeat),
            "reuse_ms": best_ms(lambda: reuse(x32), repeat),
            "numpy_ms": best_ms(lambda: numpy_sketch(source, sample), repeat),
            "scipy_ms": best_ms(lambda: scipy_correlate(source, sample), max(2, repeat // 2)),
            "scipy_fft2_ms": best_ms(lambda: scipy_fft_workers(source, sample), repeat),
            "floor64_ms": best_ms(lambda: floor64(source, sample), repeat),
            "floor32_ms": best_ms(lambda: floor32(s32, x32), repeat),
            "floor_plan_s": floor_plan_s,
        }
        assert numpy_sketch(source, sample)[0] == lag
        rows.append(row)
    return rows


def threads(rng, repeat):
    """Calls per second of the default path in one thread and in two, for 3 s and 10 s captures."""
    rows = []
    for seconds in (3, 10):
        n = seconds * RATE
        source = rng.standard_normal(2 * n).astype(np.float32)
        sample = source[1000 : 1000 + n].copy()
        calls = (80 if seconds == 3 else 8) * repeat

        def batch(count):
            for _ in range(count):
                cross_correlation(source, sample)

        batch(2)
        t = time.perf_counter()
        batch(calls)
        one = calls / (time.perf_counter() - t)
        workers = [threading.Thread(target=batch, args=(calls // 2,)) for _ in range(2)]
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        two = calls / (time.perf_counter() - t)
        rows.append({"seconds": seconds, "calls_per_s_1_thread": one, "calls_per_s_2_threads": two,
                     "ratio": two / one})
    return rows


def memory():
    """Peak extra resident memory of a 30 s call (plans already made), against its inputs."""
    code = textwrap.dedent("""
        import json, numpy as np, audiosync
        from audiosync import _xcorr
        from audiosync.xcorr import working_length
        def rss(field):
            with open('/proc/self/status') as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith(field))
        n = 30 * 48000
        for dtype, precision in ((np.float32, 'single'), (np.float64, 'double')):
            src = np.random.default_rng(0).standard_normal(2 * n).astype(dtype)
            smp = src[777:777 + n].copy()
            before = rss('VmRSS:')
            _planner.plan(working_length(len(src)), precision == 'single')  # plans stay cached
            plans = rss('VmRSS:') - before
            _xcorr.free_buffers()  # the call allocates its buffers anew
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset the peak to the current size
            base = rss('VmRSS:')
            audiosync.cross_correlation(src, smp, precision=precision)
            peak = rss('VmHWM:')
            pool = _xcorr.free_buffers()  # kept after the call for the next one
            print(json.dumps({'precision': precision, 'input_bytes': src.nbytes + smp.nbytes,
                              'extra_peak_bytes': peak - base, 'plan_bytes': plans, 'pool_bytes': pool}))
    """)
    # Large blocks mmap'd and unmapped on free, so the resident size is what is in use.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir(), env=env).stdout
    return [json.loads(line) for line in out.splitlines()]


def offline(rng, repeat):
    """A 5-minute reference against 30 s of capture: the kernel, and sync_files with decoding."""
    ref = rng.standard_normal(300 * RATE).astype(np.float32)
    cap = ref[200 * RATE : 230 * RATE].copy()
    kernel = best_ms(lambda: cross_correlation(ref, cap, linear=True), max(2, repeat // 2))
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, audio in (("ref.wav", ref), ("cap.wav", cap)):
            raw = os.path.join(d, name + ".f32")
            (0.3 * audio / np.abs(audio).max()).astype("<f4").tofile(raw)
            path = os.path.join(d, name)
            subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "1",
                            "-i", raw, path], check=True)
            paths.append(path)
        t = time.perf_counter()
        result = audiosync.sync_files(*paths)
        whole = time.perf_counter() - t
        assert abs(result.lag_ms - 200_000) < 1
    return {"kernel_ms": kernel, "sync_files_s": whole}


def live(rng):
    """Time from an interval's data to the decision, in the live path (capture from a file)."""
    song = (0.3 * rng.standard_normal(120 * RATE)).astype("<f4")
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "s.f32")
        song.tofile(raw)
        song_path = os.path.join(d, "song.wav")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "1", "-i", raw,
                        song_path], check=True)
        # A little noise keeps every interval below confidence 1, so all six run.
        noise = 0.01 * rng.standard_normal(30 * RATE)
        (song[40 * RATE : 70 * RATE] + noise).astype("<f4").tofile(raw)
        cap_path = os.path.join(d, "cap.wav")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "1", "-i", raw,
                        cap_path], check=True)
        result = audiosync.SyncJob().sync(song_path, capture=["-i", cap_path], min_confidence=1.0)
    return [{"interval_s": p.interval_s, "decision_ms": p.decision_ms} for p in result.history]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--effort", choices=("measure", "estimate"), default="measure",
                        help="FFTW planner effort of the kernel and the floor (measure: minutes, once)")
    args = parser.parse_args()
    flags = "FFTW_MEASURE" if args.effort == "measure" else "FFTW_ESTIMATE"
    planning = plan_ahead(args.effort)
    rng = np.random.default_rng(0)
    info = {
        "audiosync": audiosync.__version__, "fftw": audiosync.fftw_version, "numpy": np.__version__,
        "scipy": scipy.__version__, "pyfftw": pyfftw.__version__, "python": platform.python_version(),
        "cores": os.cpu_count(), "machine": platform.machine(), "planner": _planner.get_effort()[0],
        "floor_flags": flags,
    }
    kernel = kernel_table(rng, args.repeat, flags)
    planning["floor_s"] = sum(r["floor_plan_s"] for r in kernel)
    save_floor_wisdom()
    results = {"info": info, "kernel": kernel,
               "threads": threads(rng, args.repeat), "memory": memory(),
               "offline": offline(rng, args.repeat), "live": live(rng),
               "planning": {**planning, **_planner.planning_stats()}}
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(" ".join(f"{k} {v}" for k, v in info.items()))
    print(f"{'capture':>7} {'transform':>9} | {'double':>7} {'single':>7} {'reuse':>7} | {'numpy':>7} "
          f"{'scipy':>7} {'sp.fft2':>7} {'floor64':>7} {'floor32':>7} | {'dbl/fl64':>8} {'dbl/sgl':>7} "
          f"{'np/sgl':>6} {'sgl/fl32':>8}")
    for r in results["kernel"]:
        print(f"{r['seconds']:>6}s {r['transform']:>9} | {r['double_ms']:>7.2f} {r['single_ms']:>7.2f} "
              f"{r['reuse_ms']:>7.2f} | {r['numpy_ms']:>7.2f} {r['scipy_ms']:>7.2f} {r['scipy_fft2_ms']:>7.2f} "
              f"{r['floor64_ms']:>7.2f} {r['floor32_ms']:>7.2f} | {r['double_ms'] / r['floor64_ms']:>8.2f} "
              f"{r['double_ms'] / r['single_ms']:>7.2f} {r['numpy_ms'] / r['single_ms']:>6.2f} "
              f"{r['single_ms'] / r['floor32_ms']:>8.2f}")
    for t in results["threads"]:
        print(f"threads: {t['seconds']} s calls/s, 1 thread {t['calls_per_s_1_thread']:.1f}, 2 threads "
              f"{t['calls_per_s_2_threads']:.1f}, ratio {t['ratio']:.2f}")
    for mem in results["memory"]:
        print(f"memory: 30 s call, {mem['precision']}: peak extra {mem['extra_peak_bytes'] / 2**20:.1f} MiB "
              f"for {mem['input_bytes'] / 2**20:.1f} MiB of input = {mem['extra_peak_bytes'] / mem['input_bytes']:.2f}x "
              f"(kept across calls: plans {mem['plan_bytes'] / 2**20:.1f} MiB, "
              f"buffers {mem['pool_bytes'] / 2**20:.1f} MiB)")
    o = results["offline"]
    print(f"offline: 5 min reference vs 30 s capture: kernel {o['kernel_ms']:.0f} ms, "
          f"sync_files with decoding {o['sync_files_s']:.2f} s")
    print("live: interval's data to decision: " + ", ".join(
        f"{p['interval_s']:.0f} s: {p['decision_ms']:.0f} ms" for p in results["live"]))
    p = results["planning"]
    print(f"planning (separate from the times above): kernel, measuring its wisdom {p['prepare_s']:.1f} s "
          f"(0 when this machine's wisdom had it); in the run {p['plans']} plans, {p['seconds']:.2f} s, "
          f"{p['from_wisdom']} from wisdom; pyFFTW floor {p['floor_s']:.1f} s")


if __name__ == "__main__":
    main()
