"""The kernel against the original's vectors and independent oracles."""

import threading

import numpy as np
import pyfftw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from audiosync import Correlation, SilentInputError, cross_correlation
from audiosync.xcorr import Correlator
from audiosync import _planner, _xcorr
from audiosync import _sizes
from audiosync._sizes import smooth_length, working_length
from audiosync.offline import FULL_LIMIT

# --- the original module's test vectors, as written -------------------------

VECTORS = [
    ([1.1, 2.2, 3.3, 4.4, 5.5, 0, 0, 0, 0, 0], [1.1, 2.2, 3.3, 4.4, 5.5], 0),
    ([0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0], [1, 2, 3, 4, 5, 6], 3),
    ([1, 2, 3, 0.4, 1.1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 2, 3], -3),
    ([1, 2, 3, 4, -1, 0, 0, 4, 3, 2, 1, 0, 0, 0], [0, 0, 0, 1, 2, 3, 4], -3),
    ([0, 0, 0, 0, 0, 1, 2, 3, 4, -1, -3, -5, 0, 0], [1, 2, 3, 4, -1, -3, -5], 5),
    (np.sin(np.arange(2000)), np.sin(np.arange(1000)), 0),
]


@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("source, sample, lag", VECTORS)
def test_original_vectors(source, sample, lag, precision):
    result = cross_correlation(source, sample, precision=precision)
    assert isinstance(result, Correlation)
    assert result.lag == lag
    assert result.coefficient > 0.95


def test_identical_prefix_is_exact():
    lag, coefficient = cross_correlation(
        [1.1, 2.2, 3.3, 4.4, 5.5, 0, 0, 0, 0, 0], [1.1, 2.2, 3.3, 4.4, 5.5]
    )
    assert lag == 0
    assert abs(coefficient - 1.0) < 1e-12


def test_phase_inverted_sine_gives_negative_coefficient():
    i = np.arange(1000)
    source = np.concatenate([np.sin(i + 180), np.zeros(1000)])
    lag, coefficient = cross_correlation(source, np.sin(i))
    assert lag == -1
    assert coefficient < -0.95


def test_silent_sample_raises():
    with pytest.raises(SilentInputError):
        cross_correlation(np.arange(1, 15), np.zeros(7))
    # It is also a ValueError, for callers that catch bad input broadly.
    with pytest.raises(ValueError):
        cross_correlation(np.arange(1, 15), np.full(7, 0.1))


# --- oracles ----------------------------------------------------------------


def numpy_formula(source, sample):
    """The original's Python sketch: the same formula in numpy."""
    m = working_length(len(source))
    return np.fft.irfft(np.fft.rfft(source, m) * np.conj(np.fft.rfft(sample, m)), m)


def pyfftw_formula(source, sample):
    m = working_length(len(source))
    fa = pyfftw.interfaces.numpy_fft.rfft(np.asarray(source, float), m)
    fb = pyfftw.interfaces.numpy_fft.rfft(np.asarray(sample, float), m)
    return pyfftw.interfaces.numpy_fft.irfft(fa * np.conj(fb), m)


def lag_of(corr, n_sample, m=None):
    """The peak's lag, among lags whose overlap has at least 2 samples."""
    n = len(corr)
    m = n if m is None else m
    lags = np.array([k - n if k > n - n_sample else k for k in range(n)])
    valid = np.array([overlap(m, n_sample, lag) >= 2 for lag in lags])
    k = int(np.argmax(np.where(valid, np.abs(corr), -1.0)))
    return int(lags[k])


def overlap(m, n, lag):
    return min(n, m - lag) if lag >= 0 else min(n + lag, m)


def pearson(source, sample, lag):
    if lag >= 0:
        x = sample[: min(len(sample), len(source) - lag)]
        y = source[lag : lag + len(x)]
    else:
        x = sample[-lag:][: len(source)]
        y = source[: len(x)]
    return float(np.corrcoef(x, y)[0, 1])


def shifted_pair(rng, n, lag, source_len=None):
    """A source of white noise and a sample with sample[i] = source[i + lag]."""
    m = source_len or 2 * n
    source = rng.standard_normal(m)
    if lag >= 0:
        sample = source[lag : lag + n].copy()
    else:
        sample = np.concatenate([rng.standard_normal(-lag), source[: n + lag]])
    return source, sample


LENGTHS = [2, 3, 4, 7, 16, 97, 100, 101, 1000, 1009, 4096, 4099, 6000]


@pytest.mark.parametrize("n", LENGTHS)
def test_matches_numpy_and_pyfftw_on_random_signals(n):
    rng = np.random.default_rng(n)
    for lag in sorted({0, 1, -1, n - 1, -(n - 1), int(rng.integers(-(n - 1), n))}):
        source, sample = shifted_pair(rng, n, lag)
        expected = {lag_of(oracle(source, sample), n, len(source)) for oracle in (numpy_formula, pyfftw_formula)}
        assert len(expected) == 1
        (expected_lag,) = expected
        for precision in ("single", "double"):
            got = cross_correlation(source, sample, precision=precision)
            assert got.lag == expected_lag, precision
            assert got.coefficient == pytest.approx(pearson(source, sample, got.lag), abs=1e-9)
        if n >= 16 and abs(lag) < n // 2:
            assert got.lag == lag
            assert got.coefficient == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("n", [50, 101, 1000, 1024, 7919])
def test_matches_scipy_correlate(n):
    """scipy's linear correlation agrees wherever the circular one has no alias."""
    rng = np.random.default_rng(7 + n)
    for lag in (0, 1, -1, n // 3, -(n // 3), n - 2):
        source, sample = shifted_pair(rng, n, lag)
        # Silence the source tail so the circular negative-lag region has no alias.
        source[2 * n - n :] = 0.0 if lag < 0 else source[2 * n - n :]
        corr = signal.correlate(source, sample, mode="full", method="fft")
        lags = signal.correlation_lags(len(source), len(sample), mode="full")
        expected = int(lags[np.argmax(np.abs(corr))])
        assert cross_correlation(source, sample).lag == expected == lag


def test_longer_source_finds_large_positive_lags():
    rng = np.random.default_rng(3)
    source = rng.standard_normal(10_000)
    sample = source[7_000:8_000].copy()
    assert cross_correlation(source, sample) == (7_000, pytest.approx(1.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.int32, np.uint8])
def test_dtypes(dtype):
    rng = np.random.default_rng(11)
    source = (rng.standard_normal(4000) * 100).astype(dtype)
    sample = source[123:2123].copy()
    assert cross_correlation(source, sample).lag == 123


def test_mixed_dtypes_read_only_and_strided():
    rng = np.random.default_rng(12)
    base = rng.standard_normal(8000)
    source = base[::2]  # non-contiguous view
    sample = source[55:2055].astype(np.float32)
    source.flags.writeable = False
    assert cross_correlation(source, sample).lag == 55
    big_endian = source.astype(">f8")
    assert cross_correlation(big_endian, sample).lag == 55


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize(
    "source, sample, message",
    [
        ([], [1, 2], "source must have at least 2"),
        ([1, 2, 3], [1], "sample must have at least 2"),
        ([1, 2], [1, 2, 3], "must not be longer than source"),
        (np.ones((4, 2)), [1, 2], "source must be 1-D"),
        ([1, 2, 3], np.ones((2, 1)), "sample must be 1-D"),
        ([1, np.nan, 3, 4], [1, 2], "source contains NaN"),
        ([1, 2, 3, 4], [np.inf, 2], "sample contains NaN or infinity"),
        ([1, 2, 3, 4], [1 + 1j, 2], "must be real"),
        (["a", "b", "c"], [1, 2], "source must hold real numbers"),
        (5.0, [1, 2], "source must be 1-D"),
    ],
)
def test_bad_input_is_a_clear_value_error(source, sample, message):
    with pytest.raises(ValueError, match=message):
        cross_correlation(source, sample)


# --- properties -------------------------------------------------------------


@st.composite
def lagged(draw):
    n = draw(st.integers(64, 400))
    lag = draw(st.integers(-(n // 4), n // 4))
    seed = draw(st.integers(0, 2**32 - 1))
    source, sample = shifted_pair(np.random.default_rng(seed), n, lag)
    return source, sample, lag


@settings(max_examples=60, deadline=None)
@given(lagged(), st.floats(1e-3, 1e3))
def test_property_lag_recovered_and_gain_invariant(case, gain):
    source, sample, lag = case
    plain = cross_correlation(source, sample)
    assert plain.lag == lag
    scaled = cross_correlation(source, sample * gain)
    assert scaled.lag == plain.lag
    assert scaled.coefficient == pytest.approx(plain.coefficient, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(lagged())
def test_property_negating_sample_negates_coefficient(case):
    source, sample, _ = case
    plain = cross_correlation(source, sample)
    negated = cross_correlation(source, -sample)
    assert negated.lag == plain.lag
    assert negated.coefficient == pytest.approx(-plain.coefficient, abs=1e-9)


# --- threads and plans ------------------------------------------------------


def test_two_threads_match_one():
    rng = np.random.default_rng(5)
    cases = [shifted_pair(rng, n, int(rng.integers(-n // 2, n // 2))) for n in (4096, 5000, 8192, 10007) * 4]
    expected = [cross_correlation(s, x) for s, x in cases]
    _planner.clear_plans()  # make both threads race to plan too
    results = [None] * len(cases)

    def work(indices):
        for i in indices:
            results[i] = cross_correlation(*cases[i])

    threads = [threading.Thread(target=work, args=(range(k, len(cases), 2),)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


@pytest.mark.parametrize("m, n", [(1, 1), (2, 2), (11, 12), (97, 98), (1001, 1008), (2880000, 2880000), (2880001, 2881200)])
def test_smooth_length_is_the_next_7_smooth_size(m, n):
    assert smooth_length(m) == n


def _smooth(k):
    for p in (2, 3, 5, 7):
        while k % p == 0:
            k //= p
    return k == 1


def test_smooth_length_matches_brute_force():
    for m in range(1, 3000):
        assert smooth_length(m) == next(k for k in range(m, 2 * m + 2) if _smooth(k))
    # Large sizes: the smallest 7-smooth multiple of 16 (odd sizes transform slowly).
    for m in [65536, 65537, 1_000_003, 3_720_087, 10_224_129, *range(200_000, 200_400)]:
        n = smooth_length(m)
        assert n >= m and n % 16 == 0 and _smooth(n), m
        assert not any(_smooth(k) for k in range(-(-m // 16) * 16, n, 16)), m


def test_working_length_takes_a_clearly_faster_measured_size_within_the_slack():
    table = _sizes._FAST_TIMES
    assert all(n >= _sizes.EVEN_FROM and n % 16 == 0 and _smooth(n) for n in table)
    # Every size the kernel may use is timed, up to the largest transform made.
    assert max(table) == FULL_LIMIT and working_length(FULL_LIMIT) == FULL_LIMIT
    assert all(smooth_length(m) in table for m in (_sizes.EVEN_FROM, 1_000_003, FULL_LIMIT - 5))
    rng = np.random.default_rng(5)
    lengths = [*range(1, 3000, 7), 65535, 65536, 65537, 9_364_109, FULL_LIMIT, *rng.integers(65536, FULL_LIMIT, 400)]
    for m in map(int, lengths):
        n, plain = working_length(m), smooth_length(m)
        assert n >= m and _smooth(n), m
        if m < _sizes.EVEN_FROM:
            assert n == plain
            continue
        assert n % 16 == 0 and plain <= n <= max(plain, m * (1 + _sizes.SLACK)) <= FULL_LIMIT * 1.06, m
        # The rule, read off the whole table: the fastest of the window, if clearly faster.
        window = [k for k in table if m <= k <= m * (1 + _sizes.SLACK)]
        best = min(window, key=lambda k: (table[k], k))
        expected = best if table[best] * (1 + _sizes.MIN_GAIN) <= table[plain] else plain
        assert table[n] == table[expected], m
    # The cases in the README: a 10-minute song against 30 s live (10,080,000 points, 1.8x slower
    # than 10,240,000 when timed again), and the 20-minute one offline.
    assert working_length(10_079_999) != 10_080_000 and working_length(19_759_999) != 19_840_464


def test_kernel_refuses_a_transform_smaller_than_the_source():
    with pytest.raises(ValueError):
        _xcorr.spectrum(np.ones(10), 8, False, None)


def test_linear_mode_sees_every_lag_without_wrap():
    rng = np.random.default_rng(21)
    source = rng.standard_normal(3000)
    # The sample starts 900 samples before the source; the source's tail is
    # loud noise that a circular correlation would wrap onto.
    sample = np.concatenate([rng.standard_normal(900), source[:1100]])
    assert cross_correlation(source, sample, linear=True).lag == -900
    corr = signal.correlate(source, sample, mode="full", method="fft")
    lags = signal.correlation_lags(len(source), len(sample), mode="full")
    assert int(lags[np.argmax(np.abs(corr))]) == -900
    # A positive lag that a circular transform of the source's length would
    # read as negative: the sample hangs past the source's end.
    tail = np.concatenate([source[2500:], rng.standard_normal(1500)])
    assert cross_correlation(source, tail, linear=True).lag == 2500


def test_single_precision_settles_near_ties_exactly():
    # Lags 0 and 710 of these sines differ by 1e-9 relative: below single
    # precision's rounding, settled by the exact sums.
    i = np.arange(2000)
    assert cross_correlation(np.sin(i), np.sin(i[:1000]), precision="single").lag == 0


def test_many_exact_ties_fall_back_to_double():
    pattern = np.random.default_rng(4).standard_normal(7)
    source, sample = np.tile(pattern, 100), np.tile(pattern, 10)
    single = cross_correlation(source, sample, precision="single")
    double = cross_correlation(source, sample, precision="double")
    assert single == double and single.lag % 7 == 0


def test_correlator_reuses_the_source_transform():
    rng = np.random.default_rng(8)
    source = rng.standard_normal(20_000).astype(np.float32)
    correlator = Correlator(source, max_sample_length=5000, linear=True)
    for lag in (0, 123, 9000, 14_999, -2000):
        sample = (source[lag : lag + 5000] if lag >= 0
                  else np.concatenate([rng.standard_normal(-lag), source[: 5000 + lag]]).astype(np.float32))
        assert correlator(sample).lag == lag
        assert correlator(sample) == cross_correlation(source, sample, linear=True)
    with pytest.raises(ValueError, match="max_sample_length"):
        correlator(source[:6000])


def test_lag_range_limits_the_search():
    rng = np.random.default_rng(9)
    source = rng.standard_normal(10_000)
    sample = source[3000:4000].copy()
    assert cross_correlation(source, sample).lag == 3000
    other = cross_correlation(source, sample, lags=(-500, 2000))
    assert -500 <= other.lag <= 2000 and abs(other.coefficient) < 0.2
    assert cross_correlation(source, sample, lags=(2999, 3001)).lag == 3000
    with pytest.raises(ValueError, match="lo <= hi"):
        cross_correlation(source, sample, lags=(5, 1))


def _find_oracle(source, sample, n, lo, hi, guard):
    """find()'s peak, second peak and RMS from numpy's circular correlation, lag by lag."""
    m, ns = len(source), len(sample)
    corr = np.fft.irfft(np.fft.rfft(source, n) * np.conj(np.fft.rfft(sample, n)), n)
    lags = np.arange(max(lo, -(ns - 2)), min(hi, m - 2, n - ns) + 1)
    values = np.abs(corr[lags % n])
    peak = int(np.argmax(values))
    far = np.abs(lags - lags[peak]) > guard
    second_lag = int(lags[far][np.argmax(values[far])]) if far.any() else int(lags[peak])
    return {"lag": int(lags[peak]), "value": values[peak], "second": values[far].max(initial=0.0),
            "second_lag": second_lag, "rms": np.sqrt(np.mean(values**2))}


@pytest.mark.parametrize("seed", range(6))
def test_find_matches_an_oracle_lag_by_lag(seed):
    # The peak search reads r in blocks of lags; windows, guards and peaks
    # that cut blocks and straddle lag 0 must give what a plain scan gives.
    rng = np.random.default_rng(seed)
    m = int(rng.integers(700, 3000))
    ns = int(rng.integers(100, m))
    source = rng.standard_normal(m)
    lag = int(rng.integers(-(ns // 2), m - ns // 2))
    sample = rng.standard_normal(ns)
    overlap = sample[max(0, -lag):][: max(0, min(ns, m - lag) - max(0, -lag))]
    sample[max(0, -lag): max(0, -lag) + len(overlap)] += 3 * source[max(0, lag): max(0, lag) + len(overlap)]
    correlator = Correlator(source, linear=True, precision="double")
    corr = np.fft.irfft(np.fft.rfft(source, correlator.n) * np.conj(np.fft.rfft(sample, correlator.n)), correlator.n)

    def values_at(lag):
        return abs(corr[lag % correlator.n])

    for _ in range(12):
        lo = int(rng.integers(-ns - 10, m))
        hi = int(rng.integers(lo, m + 10))
        guard = int(rng.choice([0, 1, 5, 255, 256, 257, int(rng.integers(0, 2 * m))]))
        want = _find_oracle(source, sample, correlator.n, lo, hi, guard)
        got = correlator.find(sample, lags=(lo, hi), guard=guard)
        assert got.lag == want["lag"], (lo, hi, guard)
        if want["second"] > 0:  # (a tie for second place may name either)
            assert values_at(got.second_lag) == pytest.approx(want["second"], rel=1e-6), (lo, hi, guard)
            assert abs(got.second_lag - got.lag) > guard
        for key in ("value", "second", "rms"):
            assert getattr(got, key) == pytest.approx(want[key], rel=1e-9, abs=1e-9 * want["value"]), (key, lo, hi, guard)


def test_each_kernel_status_has_its_own_error():
    rng = np.random.default_rng(40)
    source = rng.standard_normal(3000)
    correlator = Correlator(source, linear=True)
    peak = correlator.find(source[500:1500], guard=30)
    assert (peak.lag, peak.coefficient) == (500, pytest.approx(1.0))
    assert peak.prominence == peak.value / peak.second > 1
    with pytest.raises(SilentInputError, match="silent"):
        correlator.find(np.zeros(1000))
    with pytest.raises(ValueError, match="no lag in the range") as caught:
        correlator.find(source[:1000], lags=(10**6, 10**6 + 5))
    assert not isinstance(caught.value, SilentInputError)
    nan_weights = np.full(correlator.n // 2 + 1, np.nan, np.float32)
    with pytest.raises(ValueError, match="no finite value") as caught:
        correlator.find(source[:1000], weights=nan_weights, beta=1.0)
    assert not isinstance(caught.value, SilentInputError)
    with pytest.raises(ValueError, match="sample contains NaN"):
        correlator.find(np.r_[source[:10], np.nan])


@pytest.mark.parametrize("precision", ["single", "double"])
def test_a_sample_transformed_once_finds_what_each_find_does(precision):
    # estimate() transforms the sample once for the phase transform and the plain search:
    # the kernel's answer with the given transform is the one it makes itself, to the bit.
    rng = np.random.default_rng(11)
    dtype = np.float32 if precision == "single" else np.float64
    source = rng.standard_normal(30_000).astype(dtype)
    sample = (source[7000:12_000] + 0.5 * rng.standard_normal(5000)).astype(dtype)
    correlator = Correlator(source, max_sample_length=5000, linear=True, precision=precision, fade=64)
    spectrum = correlator.sample_spectrum(sample)
    weights = np.linspace(1.0, 0.0, correlator.n // 2 + 1).astype(np.float32)
    for kwargs in ({}, {"weights": weights, "beta": 1.0, "guard": 300}, {"lags": (6000, 20_000), "beta": 0.5}):
        assert correlator.find(sample, spectrum=spectrum, **kwargs) == correlator.find(sample, **kwargs)
    assert correlator.find(sample, spectrum=spectrum).lag == 7000
    other = Correlator(source[:20_000], max_sample_length=5000, linear=True, precision=precision, fade=64)
    with pytest.raises(ValueError, match="not the sample's"):
        other.find(sample, spectrum=spectrum)  # a transform of another size
    with pytest.raises(ValueError, match="not the sample's"):
        correlator.find(sample[:4000], spectrum=spectrum)  # of another sample
    bad = sample.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="sample contains NaN"):
        correlator.sample_spectrum(bad)
