"""The best overlap of two partly overlapping recordings, judged per overlap (audiosync.overlap)."""

from __future__ import annotations

import numpy as np
import pytest

from audiosync.overlap import best_overlap


def test_the_true_short_overlap_beats_a_long_resemblance():
    rng = np.random.default_rng(3)
    rate = 1000
    theme = rng.normal(size=8 * rate)
    # x: the theme, then 12 s that resemble it weakly; y: the theme's last 4 s, then 12 s of that
    # resemblance. At lag 4000 y's first 4 s meet the theme exactly (r = 1 over 4 s, then the rest
    # runs past x's end); at lag 8000 y's 12 s of resemblance meet x's (r about 0.45 over 8 s).
    echo = 0.45 * theme[:4 * rate]
    x = np.concatenate([theme, np.tile(echo, 3) + rng.normal(size=12 * rate)])
    y = np.concatenate([theme[4 * rate:], x[8 * rate:]])[:12 * rate] + rng.normal(0, 0.01, 12 * rate)
    plain = np.correlate(x, y, "full")  # the plain sum over each lag's overlap
    found = best_overlap(x, y, min_overlap=3 * rate, apart=50, at=float(np.argmax(plain) - (len(y) - 1)))
    assert found is not None
    assert found.lag == pytest.approx(4 * rate, abs=0.5)
    assert found.coefficient > 0.99 and found.second < found.coefficient


def test_sub_sample_lag_and_the_coefficient_asked_about():
    rng = np.random.default_rng(4)
    x = np.convolve(rng.normal(size=20000), np.hanning(9), "same")
    y = x[5000:15000]
    found = best_overlap(x, y, min_overlap=2000, apart=50, at=5000.0)
    assert found.lag == pytest.approx(5000.0, abs=0.05)
    assert found.at == pytest.approx(found.coefficient)
    assert best_overlap(x, y, min_overlap=2000, apart=50, at=-9000.0).at == 0.0  # overlaps too little


@pytest.mark.parametrize("x, y, min_overlap", [
    (np.zeros(1000), np.zeros(1000), 100),      # silent
    (np.ones(50), np.ones(50), 100),            # shorter than the overlap asked for
])
def test_nothing_to_tell_is_none(x, y, min_overlap):
    assert best_overlap(x, y, min_overlap, 10) is None
