"""A capture through a room: the waveform matches poorly where the phase transform is sure.

A microphone hears the music mostly as reflections (a reverberant room, the
direct sound weak), so the waveform's Pearson at the true lag is near 0 and
other places of the song can score higher. The phase transform still finds
the direct sound's lag, standing far over every other place: such a peak is
not asked the waveform's tests (``method.PROMINENCE_ALONE``), and nothing
else about the decision changes.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiosync import method as M
from audiosync.synth import make_song

RATE = 16000
AT_S = 40.0
CAPTURE_S = 12.0


def _through_a_room(x: np.ndarray, seed: int, rt60: float = 1.2, direct: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60 * RATE)) / RATE
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)  # 60 dB down at rt60
    ir /= np.sqrt(np.sum(ir ** 2))
    ir[0] += direct
    y = np.convolve(x, ir)[: len(x)]
    y += 0.1 * np.std(y) * rng.standard_normal(len(y))
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return make_song(90.0, RATE, seed=5).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 7])  # rooms where the waveform's tests refused it
def test_a_reverberant_capture_is_found_by_its_direct_sound(song, seed, monkeypatch):
    correlator = M.make_correlator(song, int(CAPTURE_S * RATE), "phat", RATE)
    capture = _through_a_room(song[int(AT_S * RATE): int((AT_S + CAPTURE_S) * RATE)], seed=seed)
    est = M.estimate(correlator, capture, "phat", RATE, "offline", beside=True)
    assert abs(est.lag_ms(RATE) - 1000.0 * AT_S) < 1.0, est
    assert est.prominence >= M.PROMINENCE_ALONE and est.confidence >= 0.95, est
    # Another place of the song matches the waveform better: its tests alone refuse the answer.
    with monkeypatch.context() as m:
        m.setattr(M, "PROMINENCE_ALONE", float("inf"))
        judged_by_waveform = M.estimate(correlator, capture, "phat", RATE, "offline", beside=True)
    assert judged_by_waveform.lag == est.lag and judged_by_waveform.confidence < 0.95, judged_by_waveform
    waveform = M.waveform_evidence(est.coefficient, *M._overlap(song, capture, est.lag))
    if waveform < M.EVIDENCE_95:  # seed 7: the waveform matches no better than by chance
        # A narrow look (under ALONE_SPAN_S of lags) has too few places to stand out from: the
        # waveform's tests are asked again, and its evidence falls short.
        at = est.lag
        narrow = M.estimate(correlator, capture, "phat", RATE, "offline", lags=(at - 2 * RATE, at + 2 * RATE))
        assert narrow.lag == est.lag and narrow.confidence < 0.95, narrow


def test_another_song_through_the_room_is_not_confident(song):
    other = make_song(20.0, RATE, seed=11).astype(np.float32)
    correlator = M.make_correlator(song, int(CAPTURE_S * RATE), "phat", RATE)
    for seed in range(4):
        capture = _through_a_room(other[int(4 * RATE): int((4 + CAPTURE_S) * RATE)], seed=seed)
        est = M.estimate(correlator, capture, "phat", RATE, "offline", beside=True)
        assert est.prominence < M.PROMINENCE_ALONE and est.confidence < 0.95, est


def test_a_capture_shorter_than_the_calibrated_lengths_is_judged_by_the_waveform_too(song, monkeypatch):
    correlator = M.make_correlator(song, int(CAPTURE_S * RATE), "phat", RATE)
    capture = _through_a_room(song[int(AT_S * RATE): int((AT_S + 1.5) * RATE)], seed=7)
    est = M.estimate(correlator, capture, "phat", RATE, "offline")
    assert est.prominence >= M.PROMINENCE_ALONE and est.confidence < 0.95, est  # 1.5 s stand out, unproven
    with monkeypatch.context() as m:
        m.setattr(M, "PROMINENCE_ALONE", float("inf"))
        assert M.estimate(correlator, capture, "phat", RATE, "offline") == est  # ALONE_MIN_S: no difference
