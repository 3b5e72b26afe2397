"""Hostile arrays (issue 8): every kind of bad array through the kernel and the methods,
by hand, with hypothesis, and from many threads."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from audiosync import (
    Correlation, Correlator, SilentInputError, cross_correlation,
)
from audiosync._sizes import working_length


# --- arrays through the kernel ------------------------------------------------------------

_rng = np.random.default_rng(5)
SRC = _rng.standard_normal(1000)
SMP = SRC[300:500] + 0.05 * _rng.standard_normal(200)
EXPECTED = cross_correlation(SRC, SMP)


def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def _strided(a):
    return np.repeat(np.asarray(a), 3)[1::3]


VALID_VARIANTS = {
    "list": lambda a: list(a),
    "tuple": lambda a: tuple(a),
    "float32": lambda a: np.asarray(a, np.float32),
    "read-only": _readonly,
    "read-only float32": lambda a: _readonly(np.asarray(a, np.float32)),
    "strided": _strided,
    "strided float32": lambda a: _strided(np.asarray(a, np.float32)),
    "reversed twice": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "column of 2-D": lambda a: np.stack([a, a * 0], axis=1)[:, 0],
    "big-endian f8": lambda a: np.asarray(a, ">f8"),
    "big-endian f4": lambda a: np.asarray(a, ">f4"),
    "object numbers": lambda a: np.asarray(list(a), dtype=object),
    "float16": lambda a: np.asarray(a, np.float16),
    "longdouble": lambda a: np.asarray(a, np.longdouble),
    "memoryview": lambda a: memoryview(np.asarray(a, np.float64)),
}


@pytest.mark.parametrize("variant", sorted(VALID_VARIANTS))
@pytest.mark.parametrize("precision", ["single", "double"])
def test_array_variants_give_the_contiguous_answer(variant, precision):
    make = VALID_VARIANTS[variant]
    src, smp = make(SRC), make(SMP)
    want = cross_correlation(np.ascontiguousarray(np.asarray(src, np.float64)),
                             np.ascontiguousarray(np.asarray(smp, np.float64)), precision=precision)
    assert want.lag == EXPECTED.lag
    got = cross_correlation(src, smp, precision=precision)
    assert got.lag == want.lag and got.coefficient == pytest.approx(want.coefficient, abs=1e-6)
    got = Correlator(src, precision=precision)(smp)
    assert got.lag == want.lag and got.coefficient == pytest.approx(want.coefficient, abs=1e-6)
    if isinstance(src, np.ndarray):
        assert np.array_equal(np.asarray(src, np.float64), np.asarray(make(SRC), np.float64))  # not written to


@pytest.mark.parametrize("dtype", [">i2", "<i2", ">i4", "int8", "uint8", "int64", "uint64"])
def test_integer_dtypes_of_either_byte_order(dtype):
    info = np.iinfo(np.dtype(dtype))
    top = min(info.max, 30000)
    scale, offset = (top / 12.0, top / 2.0) if info.min == 0 else (top / 6.0, 0.0)
    src = np.clip(np.round(SRC * scale + offset), info.min, top).astype(dtype)
    smp = np.clip(np.round(SMP * scale + offset), info.min, top).astype(dtype)
    want = cross_correlation(src.astype(np.float64), smp.astype(np.float64))
    got = cross_correlation(src, smp)
    assert got.lag == want.lag == EXPECTED.lag
    assert got.coefficient == pytest.approx(want.coefficient, abs=1e-9)


def test_bool_arrays():
    bits = np.random.default_rng(2).random(500) > 0.5
    got = cross_correlation(bits, bits[100:200])
    assert got == Correlation(100, 1.0)
    assert cross_correlation(bits, bits[100:200].astype(np.float32)).lag == 100


def test_correlator_reuse_across_dtypes_and_errors():
    c = Correlator((SRC * 1000).astype(np.int16))
    for sample in ((SMP * 1000).astype(np.int16), (SMP * 1000).astype(np.float32), (SMP * 1000), list(SMP * 1000)):
        assert c(sample).lag == EXPECTED.lag
    with pytest.raises(ValueError, match="NaN"):
        c(np.full(10, np.nan))
    with pytest.raises(SilentInputError):
        c(np.zeros(50))
    assert c(SMP * 1000).lag == EXPECTED.lag  # still usable after errors
    with pytest.raises(ValueError, match="NaN"):
        Correlator(np.r_[SRC, np.inf])(SMP)


_HUGE = np.broadcast_to(np.float32(0), (2**30 + 1,))  # 4 GB of zeros that cost no memory

INVALID = {
    "nan in source": (np.r_[SRC, np.nan], SMP),
    "nan in sample": (SRC, np.r_[SMP, np.nan]),
    "inf in source": (np.r_[SRC, np.inf], SMP),
    "-inf in sample": (SRC, np.r_[-np.inf, SMP]),
    "nan float32": (SRC.astype(np.float32), np.r_[SMP, np.nan].astype(np.float32)),
    "empty source": ([], SMP),
    "empty sample": (SRC, []),
    "one element": (SRC, [1.0]),
    "one element source": ([1.0], [1.0]),
    "scalar": (SRC, 3.0),
    "2-D sample": (SRC, np.stack([SMP, SMP])),
    "2-D column": (SRC, SMP[:, None]),
    "3-D": (SRC[:1000].reshape(10, 10, 10), SMP),
    "complex": (SRC + 1j, SMP),
    "object strings": (SRC, np.array(["a", "b", "c"], dtype=object)),
    "unicode strings": (SRC, np.array(["x", "y", "z"])),
    "object None": (SRC, np.array([None, 1.0, 2.0], dtype=object)),
    "object complex": (SRC, np.array([1j, 2, 3], dtype=object)),
    "ragged": (SRC, [[1, 2], [3]]),
    "dict": (SRC, {"a": 1}),
    "None": (SRC, None),
    "sample longer": (SMP, SRC),
    "silent sample": (SRC, np.zeros(100)),
    "constant source": (np.full(1000, 0.5), SMP),
    "huge source": (_HUGE, SMP),
    "huge sample": (SRC, _HUGE),
    "huge both": (_HUGE, _HUGE),
}


@pytest.mark.parametrize("case", sorted(INVALID))
@pytest.mark.parametrize("linear", [False, True])
def test_invalid_arrays_are_value_errors(case, linear):
    source, sample = INVALID[case]
    with pytest.raises((ValueError, MemoryError)) as info:
        cross_correlation(source, sample, linear=linear)
    assert not isinstance(info.value, MemoryError) or case.startswith("huge")
    with pytest.raises((ValueError, MemoryError)):
        Correlator(source, linear=linear)(sample)


@pytest.mark.timeout(60)
def test_a_transform_too_long_for_fftw_is_a_memory_error():
    """2**30 samples with linear=True need a transform of 2**31, more than FFTW's int: refused, no crash."""
    source = np.broadcast_to(np.float32(0), (2**30,))
    c = Correlator(source, linear=True)
    assert c.n > 2**31 - 1
    with pytest.raises((MemoryError, ValueError)):
        c(np.ones(16, np.float32))
    with pytest.raises((ValueError, MemoryError)):
        Correlator(source, linear=True, max_sample_length=2**30 + 1)
    with pytest.raises(ValueError):
        Correlator(SRC, max_sample_length=1)


@pytest.mark.parametrize("case", ["object int", "list int", "wide lags"])
def test_huge_python_ints_are_value_errors_or_work(case):
    """(Issue 8 found OverflowError for all three; fixed in fab7ed5.)"""
    if case == "object int":
        with pytest.raises(ValueError):
            cross_correlation(SRC, np.array([10**400, 1, 2], dtype=object))
    elif case == "list int":
        with pytest.raises(ValueError):
            cross_correlation([1, 2, 3, 10**400], [1, 2])
    else:  # a range wider than any signal just means "every lag", as (-2**63, 2**63 - 1) does
        assert cross_correlation(SRC, SMP, lags=(-(2**63), 2**63 - 1)) == EXPECTED
        assert cross_correlation(SRC, SMP, lags=(-(2**70), 2**70)) == EXPECTED


@pytest.mark.parametrize("scale", [10**-24.5, 10**16.5, 1e17, 1e18, 2.0**64, 1e30, 2.0**-100, 1e100])
def test_the_lag_does_not_depend_on_the_scale(scale):
    """Pearson is scale-invariant and the README says single precision gives double's lag.
    (Issue 8 found single precision over- and underflowing: a wrong lag or SilentInputError
    at these scales; fixed in fab7ed5 by a power-of-two scaling in the transform buffers.)"""
    rng = np.random.default_rng(11)
    for _ in range(3):
        src = rng.standard_normal(3000)
        lag = int(rng.integers(0, 1500))
        smp = src[lag : lag + 1000] + 0.3 * rng.standard_normal(1000)
        for precision in ("single", "double"):
            got = cross_correlation(src * scale, smp * scale, precision=precision)
            assert got.lag == lag, (precision, got)
            assert got.coefficient == pytest.approx(cross_correlation(src, smp).coefficient, abs=1e-6)


# --- property-based fuzzing of the kernel's Python API ------------------------------------

SPECIAL = [0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, 1.2e-38,
           1e-40, 65504.0, 32767.0, -32768.0, 1e20, 1e-20]
SPECIAL_64 = SPECIAL + [1e308, -1e308, 5e-324, 1e-310, 2.2250738585072014e-308, 1e154, 1e-154, 1.7976931348623157e308]


def _floats(width=64):
    return st.one_of(
        st.floats(-1e3, 1e3, width=width),
        st.floats(width=width),  # anything, NaN and infinities included
        st.sampled_from(SPECIAL_64 if width == 64 else SPECIAL),
    )


def _array(dtype: str, size: int):
    if dtype in ("float64", "float32"):
        return npst.arrays(dtype, size, elements=_floats(64 if dtype == "float64" else 32))
    if dtype in ("int16", "int64"):
        info = np.iinfo(dtype)
        return npst.arrays(dtype, size, elements=st.one_of(st.integers(-100, 100),
                                                           st.integers(int(info.min), int(info.max))))
    if dtype == "bool":
        return npst.arrays(bool, size)
    if dtype == "complex":
        return npst.arrays(np.complex128, size)
    # object: Python floats, bools and ints, some beyond float's range
    items = st.one_of(_floats(), st.integers(-10**300, 10**300), st.integers(-10**400, 10**400), st.booleans())
    return st.lists(items, min_size=size, max_size=size).map(lambda v: np.array(v + [0.0], dtype=object)[:-1])


DTYPES = ["float64", "float32", "int16", "int64", "bool", "complex", "object"]


@st.composite
def kernel_calls(draw):
    m = draw(st.integers(0, 300))
    ns = draw(st.integers(0, 300))
    source = draw(_array(draw(st.sampled_from(DTYPES)), m))
    if ns <= m and m > 0 and draw(st.booleans()):  # often a piece of the source, so that peaks are real
        start = draw(st.integers(0, m - ns))
        sample = source[start : start + ns].copy()
    else:
        sample = draw(_array(draw(st.sampled_from(DTYPES)), ns))
    # lags: None, a range inside or around the valid one, inverted ones, int64's extremes and beyond
    bound = st.one_of(st.integers(-400, 400), st.sampled_from([-(2**63), 2**63 - 1, 0, -1, 1, -(2**70), 2**70]))
    lags = draw(st.one_of(st.none(), st.tuples(bound, bound)))
    return source, sample, draw(st.sampled_from(["single", "double"])), draw(st.booleans()), lags


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(kernel_calls())
def test_property_kernel_returns_a_valid_correlation_or_a_value_error(call):
    source, sample, precision, linear, lags = call
    try:
        result = cross_correlation(source, sample, precision=precision, linear=linear, lags=lags)
    except (ValueError, MemoryError):  # SilentInputError is a ValueError
        return
    assert type(result) is Correlation
    assert type(result.lag) is int and type(result.coefficient) is float
    assert math.isfinite(result.coefficient) and -1.0 <= result.coefficient <= 1.0
    assert -(len(sample) - 1) <= result.lag <= len(source) - 1
    if lags is not None:
        assert lags[0] <= result.lag <= lags[1]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # see the note below
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(kernel_calls(), st.integers(1, 3))
def test_property_correlator_reuse_agrees_with_cross_correlation(call, repeats):
    source, sample, precision, linear, lags = call
    try:
        want = cross_correlation(source, sample, precision=precision, linear=linear, lags=lags)
    except (ValueError, MemoryError) as exc:
        want = type(exc)
    try:
        c = Correlator(source, linear=linear, precision=precision,
                       max_sample_length=max(2, len(sample)) if linear and len(sample) <= len(source) else None)
        got = [c(sample, lags=lags) for _ in range(repeats)]
    except (ValueError, MemoryError) as exc:
        got = [type(exc)]
    assert all(g == got[0] for g in got)  # the same answer every time
    for g in got:
        if not isinstance(g, type):
            assert math.isfinite(g.coefficient) and -1.0 <= g.coefficient <= 1.0
    # (With different dtypes a Correlator casts the sample to the source's dtype, where
    # cross_correlation casts both to float64, so only equal dtypes must agree exactly.)
    if np.asarray(source).dtype == np.asarray(sample).dtype:
        assert isinstance(want, type) == isinstance(got[0], type), (want, got)
        if not isinstance(want, type):
            assert got[0].lag == want.lag and got[0].coefficient == pytest.approx(want.coefficient, abs=1e-9)


# --- the phase-transform path: Correlator.find with weights, whitening, guard and fades ---


@st.composite
def find_calls(draw):
    source, sample, precision, linear, lags = draw(kernel_calls())
    n_bins = None
    try:
        src = np.asarray(source)
        m = src.shape[0] if src.ndim == 1 else 0
        longest = max(2, min(len(sample), m)) if linear else None
        n_bins = working_length(m + longest - 1 if linear else m) // 2 + 1 if m >= 2 else 2
    except (TypeError, ValueError):
        n_bins = 2
    weight = st.one_of(st.floats(0, 1, width=32), st.sampled_from([0.0, 1.0, -1.0, math.nan, math.inf, 1e-45, 3.4e38]))
    weights = draw(st.one_of(st.none(), npst.arrays(np.float32, n_bins, elements=weight)))
    beta = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, math.inf]), st.floats(0, 4)))
    guard = draw(st.one_of(st.integers(0, 400), st.sampled_from([0, 1, 10**6, 2**62])))
    fade = draw(st.one_of(st.integers(0, 200), st.sampled_from([0, 1, 10**6])))
    return source, sample, precision, linear, lags, weights, beta, guard, fade


class _Unraisable:
    """Collect exceptions that C code could only print (sys.unraisablehook) while active."""

    def __enter__(self):
        self.seen = []
        self._old = sys.unraisablehook
        sys.unraisablehook = lambda u: self.seen.append(f"{type(u.exc_value).__name__}: {u.exc_value}")
        return self

    def __exit__(self, *exc):
        sys.unraisablehook = self._old


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(find_calls())
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_property_find_with_weights_whitening_and_fades(call):
    """The phase transform's kernel path (method="phat") on hostile input: a valid answer
    or ValueError / MemoryError; never a crash, a NaN lag, a coefficient out of [-1, 1], or
    an exception the kernel could only print."""
    source, sample, precision, linear, lags, weights, beta, guard, fade = call
    if beta not in (0.0, 0.5, 1.0) and weights is not None:
        # Non-finite weights with any other exponent: test_find_nan_through_pow's known bug.
        weights = np.nan_to_num(weights, nan=0.0, posinf=1.0, neginf=-1.0)
    try:
        with _Unraisable() as unraisable:
            c = Correlator(source, linear=linear, precision=precision, fade=fade,
                           max_sample_length=max(2, len(sample)) if linear and 2 <= len(sample) <= len(source)
                           else None)
            try:
                found = c.find(sample, lags=lags, weights=weights, beta=beta if math.isfinite(beta) else 2.0,
                               guard=guard)
            finally:
                assert not unraisable.seen, unraisable.seen
    except (ValueError, MemoryError):
        return
    assert type(found.lag) is int
    assert -(len(sample) - 1) <= found.lag <= len(source) - 1
    if lags is not None:
        assert lags[0] <= found.lag <= lags[1]
    assert math.isfinite(found.coefficient) and -1.0 <= found.coefficient <= 1.0
    assert -0.5 < found.fraction < 0.5
    assert not (found.second > found.value)  # the second peak is never above the first


@pytest.mark.parametrize("method", ["phat", "seed"])
def test_methods_on_hostile_arrays(method):
    """method.estimate, as sync and sync_files call it, on silence, noise, clipping and DC."""
    from audiosync.method import estimate, make_correlator

    rate = 8000
    rng = np.random.default_rng(4)
    song = rng.standard_normal(6 * rate)
    cases = {
        "found": (song, song[rate : 3 * rate]),
        "silent capture": (song, np.zeros(2 * rate)),
        "silent download": (np.zeros(6 * rate), song[:2 * rate]),
        "dc": (song + 1e6, song[rate : 3 * rate] + 1e6),
        "clipped": (np.clip(song * 50, -1, 1), np.clip(song[rate : 3 * rate] * 50, -1, 1)),
        "tiny": (song * 1e-30, song[rate : 3 * rate] * 1e-30),
        "two samples": (song, song[100:102]),
        "denormal": (song * 1e-310, song[rate : 3 * rate] * 1e-310),
    }
    for name, (src, smp) in cases.items():
        est = estimate(make_correlator(src, len(smp), method, rate), smp, method, rate, "offline")
        assert 0.0 <= est.confidence <= 1.0 and math.isfinite(est.coefficient), (name, est)
        assert -0.5 < est.fraction < 0.5 or est.fraction == 0.0
        if name in ("found", "clipped", "tiny"):
            assert est.lag == rate and est.confidence >= 0.95, (name, est)
        if name.startswith("silent"):
            assert est.confidence == 0.0, (name, est)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("beta", [0.7, 2.0])
def test_find_nan_through_pow(bad, beta):
    c = Correlator(SRC)
    weights = np.full(c.n // 2 + 1, bad, np.float32)
    with _Unraisable() as unraisable:
        try:
            found = c.find(SMP, beta=beta, weights=weights)
        except ValueError:  # SilentInputError: nothing but NaN to choose from
            found = None
    assert not unraisable.seen, unraisable.seen
    assert found is None or found.value > 0, found  # not an "OK" made of nothing


@pytest.mark.parametrize("case", ["guard", "fade", "negative fade", "beta nan"])
def test_find_arguments_out_of_range(case):
    c = Correlator(SRC, linear=True, max_sample_length=len(SMP), fade=-(2**70) if case == "negative fade"
                   else (2**70 if case == "fade" else 0))
    if case == "guard":
        found = c.find(SMP, guard=2**70)  # wider than anything: no second peak
        assert found.lag == EXPECTED.lag and found.second == 0.0
    elif case in ("fade", "negative fade"):
        assert c.find(SMP).lag == EXPECTED.lag
    else:
        with pytest.raises(ValueError):
            c.find(SMP, beta=math.nan)


# --- many threads on hostile input --------------------------------------------------------


@pytest.mark.timeout(60)
def test_threads_mixing_good_and_bad_input():
    """Errors in some threads do not disturb the answers of others (each call owns its buffers)."""
    bad = [(SRC, np.r_[SMP, np.nan]), (SRC, np.zeros(100)), (SRC, "junk"), (_HUGE, SMP)]
    failures = []

    def worker(i):
        try:
            for k in range(40):
                if (i + k) % 2:
                    s, x = bad[(i + k) % len(bad)]
                    try:
                        cross_correlation(s, x, precision="single" if k % 3 else "double")
                    except (ValueError, MemoryError):
                        pass
                    else:
                        failures.append(("no error", i, k))
                else:
                    got = cross_correlation(SRC, SMP, precision="single" if k % 3 else "double")
                    if got.lag != EXPECTED.lag:
                        failures.append((got, i, k))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), name=f"test-kernel-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures[:5]
