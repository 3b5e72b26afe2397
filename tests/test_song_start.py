"""A capture of a song's quiet fade-in is not confidently a louder passage further on.

The phase transform can prefer a louder passage of like phases further on,
and the plain correlation favours loud places, so the true place was no
rival and a 3 s capture of a fade-in was confidently wrong (a held-out song
of the corpus, Wesnoth's "Casualties of War": 4.98 s off). The window's best
place by Pearson (``method.window_place``) is now a rival. Here a synthetic
song holds a quiet 3 s opening and, 5 s on, a loud near-copy of it.
"""

from __future__ import annotations

import numpy as np
import pytest

import audiosync
from audiosync import method as M

from helpers import write_wav

RATE = 16000


def _noise(rng, seconds):
    x = rng.standard_normal(int(seconds * RATE))
    return (x / np.std(x)).astype(np.float32)


def _fade_in_song(seed=7):
    """A quiet 3 s opening (-50 dBFS), 2 s of other sound, then the opening again, loud and
    blended (Pearson 0.96 with it), then a minute of other sound."""
    rng = np.random.default_rng(seed)
    opening = _noise(rng, 3)
    song = np.concatenate([0.003 * opening, 0.3 * _noise(rng, 2), 0.3 * (opening + 0.3 * _noise(rng, 3)),
                           0.3 * _noise(rng, 60)]).astype(np.float32)
    return song, rng


def test_a_quiet_opening_is_not_confidently_its_loud_copy():
    song, rng = _fade_in_song()
    capture = (song[:3 * RATE] + 1e-5 * _noise(rng, 3)).astype(np.float32)
    correlator = M.make_correlator(song, 30 * RATE, "phat", RATE)
    est = M.estimate(correlator, capture, "phat", RATE, "live", 3, window=(-3 * RATE, 3 * RATE), beside=True)
    # The phase transform's place is the loud copy, standing alone; the window's exact place
    # matches the waveform better, so that answer is not confident.
    assert abs(est.lag_ms(RATE) - 5000) < 1 and est.prominence > M.PROMINENCE_ALONE
    assert est.confidence < 0.95, est
    # Without a window nothing says where the opening is: the rule as before (the test's premise).
    assert M.estimate(correlator, capture, "phat", RATE, "live", 3, beside=True).confidence >= 0.95
    # A player's position vouched for, its window holding both places: still not confident.
    vouched = M.estimate(correlator, capture, "phat", RATE, "live", 3, window=(-RATE // 2, 11 * RATE // 2),
                         trusted=True, beside=True)
    assert vouched.confidence < 0.95, vouched


@pytest.mark.timeout(120)
def test_a_live_sync_of_a_quiet_opening_waits_for_the_music(tmp_path):
    song, rng = _fade_in_song(8)
    download = write_wav(tmp_path / "song.wav", song, RATE)
    capture = write_wav(tmp_path / "capture.wav", (song[:12 * RATE] + 1e-5 * _noise(rng, 12)).astype(np.float32),
                        RATE)
    seen = []
    result = audiosync.sync(str(download), capture=["-i", str(capture)], on_progress=seen.append)
    assert all(not p.confident or abs(p.lag_ms) <= 1.0 for p in seen), seen
    assert result.confident and abs(result.lag_ms) <= 1.0, (result, seen)
    assert seen[0].interval_s == pytest.approx(3.0, abs=0.01) and not seen[0].confident, seen


def test_window_place_is_the_best_pearson_in_the_window():
    rng = np.random.default_rng(3)
    source = np.cumsum(rng.standard_normal(4000)).astype(np.float32)  # loud and quiet stretches alike
    source[1000:1400] *= 0.001
    sample = (source[1100:1300] + 1e-4 * rng.standard_normal(200)).astype(np.float32)
    for lags, exclude in (((900, 1500), None), ((-150, 300), None), ((3700, 3900), None), ((1150, 1150), None),
                          ((900, 1500), (1090, 1110)), ((900, 1500), (800, 1000))):
        best, best_r = None, -2.0
        for lag in range(lags[0], lags[1] + 1):  # the oracle: Pearson lag by lag, zeros beyond the ends
            if exclude and exclude[0] <= lag <= exclude[1]:
                continue
            y = np.zeros(len(sample))
            a, b = max(0, lag), min(len(source), lag + len(sample))
            if a < b:
                y[a - lag:b - lag] = source[a:b]
            if np.std(y) > 0:
                r = np.corrcoef(sample, y)[0, 1]
                if r > best_r:
                    best, best_r = lag, r
        assert M.window_place(source, sample, lags, exclude=exclude) == best, (lags, exclude)
    assert M.window_place(source, sample, (10, 5)) is None
    assert M.window_place(source, np.zeros(200, np.float32), (0, 100)) is None
    assert M.window_place(source, sample, (5000, 6000)) is None  # beyond the source
