"""A copy of a loop whose sample grid falls better than the true place's is not confidently the answer.

A capture's samples fall anywhere between the song's. On a bright song half a
sample costs the true place much of its Pearson coefficient, and an exact copy
of the passage elsewhere (a loop), at another fraction of a sample, can match
at its integer lag better than the true place: a tracker following
nx-brainsukker (a held-out song of the corpus) through a sound server reported
a copy 14.2 s from the true place, confidently (0.987 against 0.92). The lead
over the near places is now read at their best sub-sample shifts
(``method.refined_pearson``).
"""

from __future__ import annotations

import numpy as np
import pytest

from audiosync import method as M

RATE = 16000


def _bright(rng, seconds, top=0.3):
    """Noise with its energy up to ``top`` cycles a sample (4.8 kHz at 16 kHz), unit spread."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.arange(len(spectrum)) / n > top] = 0
    x = np.fft.irfft(spectrum, n)
    return x / np.std(x)


def _shifted(x, d):
    """``x`` delayed by ``d`` samples (a fraction), by its spectrum."""
    n = len(x)
    return np.fft.irfft(np.fft.rfft(x) * np.exp(-2j * np.pi * np.arange(n // 2 + 1) / n * d), n)


def _loop_song(seed=3):
    """60 s; the 8 s loop at 10 s comes again at 40 s, half a sample later on the grid."""
    rng = np.random.default_rng(seed)
    loop = _bright(rng, 8)
    song = 0.3 * _bright(rng, 60)
    song[10 * RATE:18 * RATE] = 0.3 * loop
    song[40 * RATE:48 * RATE] = 0.3 * _shifted(loop, 0.5)
    return song.astype(np.float32), loop


@pytest.mark.parametrize("seconds", [3.0, 6.0])
def test_a_copy_on_a_better_grid_is_not_confidently_the_answer(seconds):
    song, loop = _loop_song()
    # Recorded from the loop at 10 s with the capture's grid half a sample off the song's:
    # sample for sample the copy at 40 s.
    capture = (0.3 * _shifted(loop, 0.5))[RATE:RATE + int(seconds * RATE)].astype(np.float32)
    c = M.make_correlator(song, len(capture), "phat", RATE)
    found = M.estimate(c, capture, "phat", RATE, "offline")
    places = {11 * RATE, 41 * RATE}
    assert found.lag in places, found
    # The integer lags alone: the copy at 40 s leads (this is what was confidently wrong).
    y, x = M._overlap(song, capture, 11 * RATE)
    v, u = M._overlap(song, capture, 41 * RATE)
    assert M.pearson(u, v) - M.pearson(x, y) > 0.1
    # Read at their best shifts the two places are the same audio: nothing confident.
    assert M.refined_pearson(song, capture, 11 * RATE) == pytest.approx(
        M.refined_pearson(song, capture, 41 * RATE), abs=0.005)
    assert found.confidence <= 0.5, found
    # Nor when the caller vouches for a window around either place (a tracker's hint).
    for place in places:
        vouched = M.estimate(c, capture, "phat", RATE, "offline", window=(place - 2 * RATE, place + 2 * RATE),
                             trusted=True)
        assert vouched.confidence <= 0.5, (place, vouched)


def test_refined_pearson_finds_a_fractional_shift():
    rng = np.random.default_rng(5)
    song = _bright(rng, 20, top=0.45)
    for d in (0.0, 0.25, 0.5, -0.375):
        capture = _shifted(song, d)[5 * RATE:9 * RATE].astype(np.float32)
        y, x = M._overlap(song, capture, 5 * RATE)
        plain = M.pearson(x, y)
        refined = M.refined_pearson(song, capture, 5 * RATE)
        assert refined == pytest.approx(1.0, abs=2e-3), (d, refined)
        assert refined >= plain - 1e-9
        if abs(d) >= 0.25:
            assert plain < 0.95
    # Unrelated audio stays unrelated at every shift.
    other = _bright(rng, 4, top=0.45).astype(np.float32)
    assert abs(M.refined_pearson(song, other, 5 * RATE)) < 0.1


def _refined_by_the_first_loop(source, sample, lag):
    """refined_pearson as first written: each shift's phases turned on from -1/2 sample."""
    y, x = M._overlap(source, sample, lag)
    x = np.asarray(x, np.float64) - np.mean(x)
    y = np.asarray(y, np.float64) - np.mean(y)
    den = np.sqrt(np.sum(x * x) * np.sum(y * y))
    size = M.smooth_length(len(x) + 2)
    cross = np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size))
    cross[1:] *= 2.0
    if size % 2 == 0:
        cross[-1] *= 0.5
    angle = 2.0 * np.pi * np.arange(len(cross)) / size
    turn, step = np.exp(-0.5j * angle), np.exp(1j * angle / M.SHIFT_STEPS)
    best = -np.inf
    for _ in range(M.SHIFT_STEPS + 1):
        best = max(best, np.sum(cross.real * turn.real) - np.sum(cross.imag * turn.imag))
        turn *= step
    return min(1.0, best / size / den)


def test_readings_that_share_their_memo_read_as_alone():
    """The sample's transform and the shifts' phases kept between readings, and the shifts read in
    pairs (s and -s), change no reading: places of full and of partial overlap, against the first
    loop's reading of each alone."""
    rng = np.random.default_rng(8)
    song = _bright(rng, 12).astype(np.float32)
    capture = song[3 * RATE + 5:6 * RATE + 5].copy()
    memo: dict = {}
    for lag in (3 * RATE + 5, 3 * RATE + 4, 7 * RATE, -RATE, len(song) - 2 * RATE, 3 * RATE + 5):
        assert M.refined_pearson(song, capture, lag, memo) == pytest.approx(
            _refined_by_the_first_loop(song, capture, lag), abs=1e-12), lag
    assert len(memo) == 2  # the whole sample's transform and its size's phases


def test_a_long_sample_is_judged_at_the_integer_lags(monkeypatch):
    """Past REFINE_MAX the reading's cost (it grows with the overlap) is not paid: the integer lead."""
    peak = type("Peak", (), {"lag": 1000, "coefficient": 0.9})()
    short, long = np.zeros(10, np.float32), np.zeros(M.REFINE_MAX + 1, np.float32)
    read = []
    monkeypatch.setattr(M, "refined_pearson", lambda source, sample, lag, memo=None: read.append(lag) or 0.5)
    assert M._fair_margin(long, long, peak, {5000: 0.8}) == pytest.approx(0.1)
    assert not read
    # Shorter: read between the samples, each place once however often asked.
    cache: dict = {}
    assert M._fair_margin(short, short, peak, {5000: 0.8}, cache) == pytest.approx(0.0)
    assert M._fair_margin(short, short, peak, {5000: 0.8}, cache) == pytest.approx(0.0)
    assert sorted(read) == [1000, 5000]
    # A place far below the peak is not read again.
    assert M._fair_margin(short, short, peak, {7000: 0.5}) == pytest.approx(0.4) and len(read) == 2
