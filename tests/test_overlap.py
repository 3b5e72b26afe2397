"""The best overlap of two partly overlapping recordings, judged per overlap (audiosync.overlap)."""

from __future__ import annotations

import numpy as np
import pytest

from audiosync.overlap import best_overlap


def test_the_true_short_overlap_beats_a_long_resemblance():
    # x = P (10 s) then T (3 s); y = T then Q (10 s), Q = P / 2 + noise. The true lag lays T over
    # T (3 s at r = 1); lag -3 s lays Q over P (10 s at r = 0.5), whose plain sum is larger.
    rng = np.random.default_rng(3)
    rate = 1000
    p, t = rng.normal(size=10 * rate), rng.normal(size=3 * rate)
    q = 0.5 * p + rng.normal(0, np.sqrt(0.75), 10 * rate)
    x, y = np.concatenate([p, t]), np.concatenate([t, q])
    plain = np.correlate(x, y, "full")  # plain[k] is the sum at lag k - (len(y) - 1)
    plain_lag = int(np.argmax(plain)) - (len(y) - 1)
    assert plain_lag == -3 * rate
    found = best_overlap(x, y, min_overlap=3 * rate, at=float(plain_lag))
    assert found is not None
    assert found.lag == pytest.approx(10 * rate, abs=0.5)
    assert found.coefficient > 0.99 and 0.4 < found.at < 0.6


def test_sub_sample_lag_and_the_coefficient_asked_about():
    rng = np.random.default_rng(4)
    x = np.convolve(rng.normal(size=20000), np.hanning(9), "same")
    y = x[5000:15000]
    found = best_overlap(x, y, min_overlap=2000, at=5000.0)
    assert found.lag == pytest.approx(5000.0, abs=0.05)
    assert found.at == pytest.approx(found.coefficient)
    assert best_overlap(x, y, min_overlap=2000, at=-9000.0).at == 0.0  # overlaps too little


def test_a_peak_between_two_samples_is_judged_by_its_top():
    # Noise up to about half the band, half a sample apart: the samples beside the peak are
    # well below its top.
    rng = np.random.default_rng(6)
    fine = np.convolve(rng.normal(size=2 * 40000), np.hanning(5), "same")
    x, y = fine[0::2], fine[1::2][1000:15000]  # y[i] = x[i + 1000.5]
    found = best_overlap(x, y, min_overlap=5000, at=1000.0, reach=1)
    assert found.lag == pytest.approx(1000.5, abs=0.1)
    assert found.coefficient == pytest.approx(found.at)


def test_digital_silence_does_not_match_itself():
    # 5 s of zeros in each, at the ends that a wrong lag would lay over each other.
    rng = np.random.default_rng(7)
    song = np.convolve(rng.normal(size=20000), np.hanning(9), "same")
    x = np.concatenate([song[:15000], np.zeros(5000)])
    y = np.concatenate([np.zeros(5000), song[:15000]])[5000:]  # y = song[:15000]: lag 0
    y = np.concatenate([np.zeros(5000), y])                  # now y[i] = x[i - 5000]
    found = best_overlap(x, y, min_overlap=3000)
    assert found.lag == pytest.approx(-5000.0, abs=0.5)


@pytest.mark.parametrize("x, y, min_overlap", [
    (np.zeros(1000), np.zeros(1000), 100),      # silent
    (np.ones(50), np.ones(50), 100),            # shorter than the overlap asked for
])
def test_nothing_to_tell_is_none(x, y, min_overlap):
    assert best_overlap(x, y, min_overlap) is None
