"""Live decisions on real music that repeats itself: never confidently wrong.

The song is Frozen Bubble's two-player theme (Debian's fb-music-high, a
tracker module: its patterns repeat exactly, as loop-built music does),
fetched by the ``real_song`` fixture. The download is served on 127.0.0.1
at six times real time, as a slow network delivers it; the capture is a
file read at once, so it runs ahead of the download. The passages captured
stand earlier in the song too. The method before this one answered both
confidently wrong, with the earlier repeat (at 3 s and at 10 s of capture),
because it decided on the part of the download decoded so far; this one
makes no estimate before the whole download is decoded.
"""

from __future__ import annotations

import numpy as np
import pytest

import audiosync
from audiosync import ffmpeg

from helpers import throttled_server, write_wav

RATE = 16000
CUT_S = (30.0, 180.0)  # the download: the song's first 30 s, then from 180 s to its end (3:27)


@pytest.fixture(scope="module")
def repeating_song(real_song, tmp_path_factory):
    song = ffmpeg.decode(real_song, RATE)
    download = np.concatenate([song[: int(CUT_S[0] * RATE)], song[int(CUT_S[1] * RATE):]])
    folder = tmp_path_factory.mktemp("repeats")
    return song, write_wav(folder / "download.wav", download, RATE), folder


@pytest.mark.timeout(120)
@pytest.mark.parametrize("capture_at_s", [185.5, 190.5])
def test_a_capture_ahead_of_the_download_is_never_confidently_an_earlier_repeat(repeating_song, capture_at_s):
    song, download, folder = repeating_song
    truth_ms = 1000 * (CUT_S[0] + capture_at_s - CUT_S[1])
    capture = write_wav(folder / f"capture-{capture_at_s}.wav",
                        song[int(capture_at_s * RATE): int((capture_at_s + 12) * RATE)], RATE)
    url, stop = throttled_server(download, 6 * 2 * RATE)  # 16-bit mono at six times real time
    seen = []
    try:
        result = audiosync.sync(url, capture=["-i", str(capture)], on_progress=seen.append)
    finally:
        stop()
    # No estimate on part of the song: all waited for the whole download.
    assert seen and all(p.downloaded_s == pytest.approx(CUT_S[0] + len(song) / RATE - CUT_S[1], abs=0.1)
                        for p in seen), seen
    for p in seen:
        assert not p.confident or abs(p.lag_ms - truth_ms) <= 10.0, (p, truth_ms)
    assert not result.confident or abs(result.lag_ms - truth_ms) <= 10.0, (result, truth_ms)


def _download_with(song: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """The song's first 60 s, then ``copy`` (20 s): its 20-40 s again, exactly or blended."""
    return np.concatenate([song[: 60 * RATE], copy]).astype(np.float32)


@pytest.fixture(scope="module")
def copies(real_song, tmp_path_factory):
    """A capture of the song's 25.5-37.5 s, and two downloads that hold its passage twice: at
    25.5 s, and at 65.5 s exactly ("exact") or 0.9 of it over 0.3 of another part ("near")."""
    song = ffmpeg.decode(real_song, RATE)
    folder = tmp_path_factory.mktemp("copies")
    passage, other = song[20 * RATE: 40 * RATE], song[100 * RATE: 120 * RATE]
    downloads = {"exact": _download_with(song, passage), "near": _download_with(song, 0.9 * passage + 0.3 * other)}
    return {"capture": write_wav(folder / "capture.wav", song[int(25.5 * RATE): int(37.5 * RATE)], RATE),
            "audio": downloads, **{k: write_wav(folder / f"{k}.wav", v, RATE) for k, v in downloads.items()}}


TRUTH, COPY = int(25.5 * RATE), int(65.5 * RATE)


def _around(lag: int) -> tuple[int, int]:
    return lag - 2 * RATE, lag + 4 * RATE


def test_the_players_position_decides_when_a_near_copy_holds_the_answer_back(copies):
    """A near copy of the passage elsewhere (Pearson 0.98 of the exact place's) keeps the answer's
    prominence low: alone it is not confident. Vouched for, the position makes it confident;
    a position on the near copy changes nothing; as a mere hint the position only narrows the
    chance, which was not what held the answer back."""
    from audiosync.method import estimate, make_correlator

    sample = ffmpeg.decode(str(copies["capture"]), RATE)[: 3 * RATE]
    c = make_correlator(copies["audio"]["near"], len(sample), "phat", RATE)
    alone = estimate(c, sample, "phat", RATE, "live")
    assert alone.lag == TRUTH and alone.confidence < 0.95, alone
    vouched = estimate(c, sample, "phat", RATE, "live", window=_around(TRUTH), trusted=True)
    assert vouched.lag == TRUTH and vouched.confidence >= 0.95, vouched
    assert estimate(c, sample, "phat", RATE, "live", window=_around(TRUTH)).confidence < 0.95
    assert estimate(c, sample, "phat", RATE, "live", window=_around(COPY), trusted=True) == alone


def test_the_players_position_never_decides_between_exact_copies(copies):
    """Where two places match alike, a wrong position would be confidently wrong: not confident."""
    from audiosync.method import estimate, make_correlator

    sample = ffmpeg.decode(str(copies["capture"]), RATE)[: 3 * RATE]
    c = make_correlator(copies["audio"]["exact"], len(sample), "phat", RATE)
    alone = estimate(c, sample, "phat", RATE, "live")
    assert alone.lag in (TRUTH, COPY) and alone.confidence < 0.95, alone
    for lag in (TRUTH, COPY):
        vouched = estimate(c, sample, "phat", RATE, "live", window=_around(lag), trusted=True)
        assert vouched.confidence < 0.95, vouched


@pytest.mark.timeout(120)
def test_sync_with_the_players_position_is_confident_at_the_first_interval(copies):
    capture, near = ["-i", str(copies["capture"])], str(copies["near"])
    alone = audiosync.sync(near, capture=capture, intervals=(3,))
    assert not alone.confident and abs(alone.lag_ms - 25_500) <= 1.0, alone
    result = audiosync.sync(near, capture=capture, intervals=(3,), hint_ms=25_500 + 1200)
    assert result.confident and abs(result.lag_ms - 25_500) <= 1.0, result
    misled = audiosync.sync(near, capture=capture, intervals=(3,), hint_ms=65_500)
    assert not misled.confident and misled.lag_ms == alone.lag_ms, misled


@pytest.mark.timeout(120)
def test_a_tracker_started_with_the_players_position_is_confident_at_once(copies):
    """listener.track(hint_ms=...): the first report comes from the first 3 s searched."""
    import threading

    reports, first = [], threading.Event()

    def on_change(result):
        reports.append(result)
        first.set()

    with audiosync.Listener(["-re", "-i", str(copies["capture"])]) as ls:
        tracker = ls.track(str(copies["near"]), on_change=on_change, hint_ms=25_500 + 800)
        try:
            assert first.wait(30), "no report"
        finally:
            tracker.stop()
    head = reports[0]
    # The song's position at the first sample heard: 25.5 s, plus the little of the capture the
    # listener heard before the audio the tracker took (a second before its call).
    assert head.confident and 25_500 - 1.0 <= head.lag_ms <= 25_500 + 1500.0, head
    assert head.interval_s < 4.0, head
