"""The kernel workload that scripts/memcheck.sh runs under valgrind (issue 8).

Every path of audiosync._xcorr on small sizes: both precisions, linear and
circular transforms, a Correlator reused, lag ranges, near-ties settled exactly
and the fall-back to double precision, NaN/infinity and silence, read-only,
strided and reversed arrays, odd and prime sizes, the phase transform (fades,
band weights, whitening, guard zone, sub-sample peak), plan-cache eviction,
wisdom, and a few threads. It checks its answers too, and prints "workload: OK".

Run it alone (python scripts/memcheck_workload.py) to see that it passes without
valgrind; it is not a pytest module.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import threading

import numpy as np

from audiosync import Correlator, SilentInputError, _planner, _xcorr, cross_correlation


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"workload: wrong answer: {what}")


def expect_error(kind, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except kind:
        return
    raise SystemExit(f"workload: {fn.__name__}{args!r:.60} did not raise {kind.__name__}")


rng = np.random.default_rng(8)


def sizes_and_precisions() -> None:
    """Odd, prime and smooth sizes; both precisions; linear and circular; three dtypes."""
    for m in (2, 3, 5, 7, 11, 64, 97, 210, 1009, 4099, 12000):
        source = rng.standard_normal(m)
        for ns in sorted({2, max(2, m // 3), m}):
            start = (m - ns) // 2
            sample = source[start : start + ns].copy()
            for dtype in (np.float64, np.float32, np.int16):
                src = (source * 1000).astype(dtype) if dtype == np.int16 else source.astype(dtype)
                smp = (sample * 1000).astype(dtype) if dtype == np.int16 else sample.astype(dtype)
                for precision in ("single", "double"):
                    for linear in (False, True):
                        try:
                            lag, coefficient = cross_correlation(src, smp, precision=precision, linear=linear)
                        except SilentInputError:  # int16 rounding of 2 tiny samples, say
                            continue
                        expect(-1.0 <= coefficient <= 1.0, f"coefficient {coefficient}")
                        if ns >= 8 and dtype != np.int16:
                            expect(lag == start, f"m={m} ns={ns} {dtype} {precision} {linear}: {lag} != {start}")


def correlator_reuse_and_lag_ranges() -> None:
    source = rng.standard_normal(6000).astype(np.float32)
    for linear in (False, True):
        for precision in ("single", "double"):
            c = Correlator(source, max_sample_length=1500 if linear else None, linear=linear, precision=precision)
            for start in (0, 17, 2500, 4500):
                sample = source[start : start + 1500]
                expect(c(sample).lag == start, "reuse")
                expect(c(sample, lags=(start - 5, start + 5)).lag == start, "lag range")
                lo, hi = (start - 300, start - 100) if start >= 300 else (start + 100, start + 300)
                lag = c(sample, lags=(lo, hi)).lag
                expect(lo <= lag <= hi, "lag range kept")
            expect_error(ValueError, c, source[:100], lags=(10**6, 10**6 + 5))  # no allowed lag
            expect_error(ValueError, c, source[:100], lags=(5, 3))
            expect_error(ValueError, c, np.r_[source[:100], np.nan])
            expect_error(SilentInputError, c, np.zeros(100, np.float32))
            expect(c(source[10:1010]).lag == 10, "usable after errors")
    # an int16 source with a float sample converts the source once
    c = Correlator((source * 3000).astype(np.int16))
    expect(c(source[300:900] * 3000).lag == 300, "int16 source, float sample")
    expect(c((source[300:900] * 3000).astype(np.int16)).lag == 300, "int16 again")


def near_ties() -> None:
    pattern = rng.standard_normal(50)
    for precision in ("single", "double"):
        # 91 exact ties: more than 32 near-ties, so single precision falls back to double.
        lag, _ = cross_correlation(np.tile(pattern, 100), np.tile(pattern, 10), precision=precision)
        expect(lag % 50 == 0, f"tile lag {lag}")
        # a few ties: settled with the exact double-precision sums
        lag, _ = cross_correlation(np.tile(pattern, 6), np.tile(pattern, 4), precision=precision)
        expect(lag % 50 == 0, f"few ties lag {lag}")
    c = Correlator(np.tile(pattern, 100).astype(np.float32))
    for _ in range(3):
        expect(c(np.tile(pattern, 10).astype(np.float32)).lag % 50 == 0, "tie reuse")


def errors_and_odd_arrays() -> None:
    good = rng.standard_normal(500)
    for precision in ("single", "double"):
        for bad_source in (np.r_[good, np.nan], np.r_[np.inf, good], np.r_[good[:10], -np.inf, good]):
            expect_error(ValueError, cross_correlation, bad_source, good[:100], precision=precision)
        expect_error(ValueError, cross_correlation, good, np.r_[good[:50], np.nan], precision=precision)
        expect_error(SilentInputError, cross_correlation, good, np.zeros(60), precision=precision)
        expect_error(SilentInputError, cross_correlation, np.full(500, 3.0), good[:60], precision=precision)
        expect_error(ValueError, cross_correlation, good, good[:1], precision=precision)
        expect_error(ValueError, cross_correlation, good[:10], good, precision=precision)
    # read-only, strided and reversed views are read in place
    ro = good.copy()
    ro.setflags(write=False)
    want = cross_correlation(good, good[100:300].copy()).lag
    expect(cross_correlation(ro, ro[100:300]).lag == want, "read-only")
    wide = np.repeat(good, 3)
    expect(cross_correlation(wide[::3], wide[300:900:3]).lag == want, "strided")
    rev = good[::-1].copy()
    expect(cross_correlation(rev[::-1], rev[::-1][100:300]).lag == want, "reversed")
    expect(cross_correlation(good.astype(">f8"), good[100:300].astype(">f4")).lag == want, "big-endian")
    # the private kernel refuses what it cannot hold
    expect_error(ValueError, _xcorr.spectrum, good, 100, True, good)
    status, spec = _xcorr.spectrum(good, 512, True, good)
    expect(status == _xcorr.OK, "spectrum")
    expect_error(ValueError, _xcorr.correlate, spec, good[:400], good[:50], -49, 399, True)
    expect_error(ValueError, _xcorr.correlate, spec, good, good[:1], 0, 10, True)
    status, spec = _xcorr.spectrum(np.r_[good, np.nan], 1024, False, good)
    expect(status == _xcorr.SOURCE_NOT_FINITE and spec is None, "spectrum NaN")


def phase_transform() -> None:
    """The default method's path: fades, band weights, whitening (beta 1, 0.5 and others),
    the guard zone, the second peak and the sub-sample parabola, through method.estimate
    as sync and sync_files call it, and through Correlator.find directly."""
    from audiosync.method import estimate, make_correlator

    rate = 8000
    song = rng.standard_normal(5 * rate)
    for method in ("phat", "seed"):
        for mode in ("live", "offline"):
            c = make_correlator(song.astype(np.float32), 2 * rate, method, rate)
            for start in (0, 777, 3 * rate - 1):
                est = estimate(c, song[start : start + 2 * rate].astype(np.float32), method, rate, mode)
                expect(est.lag == start, f"{method} {mode} lag {est.lag} != {start}")
            est = estimate(c, np.zeros(rate, np.float32), method, rate, mode)
            expect(est.confidence == 0.0, "silence is not confident")
            estimate(c, song[:2].astype(np.float32), method, rate, mode)  # two samples
    source = song[: 3 * rate]
    for precision in ("single", "double"):
        for fade in (0, 1, 400, 10**5):
            c = Correlator(source, linear=True, max_sample_length=rate, precision=precision, fade=fade)
            nbins = c.n // 2 + 1
            for weights in (None, np.ones(nbins, np.float32), np.linspace(1, 0, nbins, dtype=np.float32)):
                for beta in (0.0, 0.5, 1.0, 2.0):
                    for guard in (0, 5, 240, 10**6):
                        found = c.find(source[1000 : 1000 + rate], weights=weights, beta=beta, guard=guard,
                                       lags=(-500, 2 * rate))
                        expect(-0.5 < found.fraction < 0.5, "fraction")
                        if beta <= 1.0:
                            expect(found.lag == 1000, f"find lag {found.lag} beta {beta} fade {fade}")
            expect_error(ValueError, c.find, source[:100], weights=np.ones(nbins - 1, np.float32))
            expect_error(ValueError, c.find, source[:100], weights=np.ones(2 * nbins, np.float32)[::2])
            expect_error(ValueError, c.find, source[:100], beta=-1.0)
            expect_error(ValueError, c.find, source[:100], guard=-1)


def plan_cache_and_wisdom() -> None:
    # More sizes than the cache holds: plans are destroyed on eviction.
    x = rng.standard_normal(400)
    for m in range(100, 100 + 45 * 7, 7):
        cross_correlation(x[:m] if m <= 400 else np.r_[x, x][:m], x[:50], precision="double" if m % 2 else "single")
    expect(len(_planner.cached_sizes()) <= 32, "cache bounded")
    with tempfile.TemporaryDirectory() as d:
        for single in (True, False):
            path = os.fsencode(os.path.join(d, f"w{int(single)}"))
            expect(_planner.export_wisdom(path, single), "export wisdom")
            expect(_planner.import_wisdom(path, single), "import wisdom")
        bad = os.path.join(d, "corrupt")
        with open(bad, "w") as f:
            f.write("(fftw-3.3.10 fftw_wisdom #x00000000 garbage")
        _planner.import_wisdom(os.fsencode(bad), True)
    _planner.forget_wisdom()
    _planner.clear_plans()


def threads() -> None:
    source = rng.standard_normal(8000)
    failures = []

    def work(k: int) -> None:
        for i in range(6):
            start = 500 * ((k + i) % 8)
            try:
                lag, _ = cross_correlation(source, source[start : start + 2000], linear=bool(i % 2),
                                           precision="single" if (k + i) % 3 else "double")
                if lag != start:
                    failures.append((k, i, lag))
                cross_correlation(source, np.zeros(100))
            except SilentInputError:
                pass
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    expect(not failures, f"threads: {failures}")


def main() -> int:
    for step in (sizes_and_precisions, correlator_reuse_and_lag_ranges, near_ties, errors_and_odd_arrays,
                 phase_transform, plan_cache_and_wisdom, threads):
        step()
        print(f"workload: {step.__name__} done", flush=True)
    _planner.clear_plans()
    gc.collect()
    print("workload: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
