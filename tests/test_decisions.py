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


@pytest.fixture(scope="module")
def twice(real_song, tmp_path_factory):
    """The song's first 60 s, then its 20-40 s again: a passage that stands twice, exactly."""
    song = ffmpeg.decode(real_song, RATE)
    download = np.concatenate([song[: 60 * RATE], song[20 * RATE: 40 * RATE]])
    folder = tmp_path_factory.mktemp("twice")
    capture = write_wav(folder / "capture.wav", song[int(25.5 * RATE): int(37.5 * RATE)], RATE)
    return download, write_wav(folder / "download.wav", download, RATE), capture


def test_a_vouched_hint_tells_two_copies_of_a_passage_apart(twice):
    """The capture is in the download twice: alone it is never confident; with the player's
    position it is, at the copy the position names; a window on neither changes nothing."""
    from audiosync.method import estimate, make_correlator

    download, _, capture = twice
    sample = ffmpeg.decode(str(capture), RATE)[: 3 * RATE]
    c = make_correlator(download, len(sample), "phat", RATE)
    copies = (int(25.5 * RATE), int(65.5 * RATE))
    alone = estimate(c, sample, "phat", RATE, "live")
    assert alone.lag in copies and alone.confidence < 0.95, alone
    for copy in copies:
        window = (copy - 2 * RATE, copy + 4 * RATE)
        vouched = estimate(c, sample, "phat", RATE, "live", window=window, trusted=True)
        assert vouched.lag == copy and vouched.confidence >= 0.95, (copy, vouched)
        # Only a window the caller vouches for decides: as a mere hint it narrows the chance.
        hinted = estimate(c, sample, "phat", RATE, "live", window=window)
        assert hinted.confidence < 0.95, hinted
    elsewhere = estimate(c, sample, "phat", RATE, "live", window=(45 * RATE, 51 * RATE), trusted=True)
    assert elsewhere == alone


@pytest.mark.timeout(120)
def test_sync_with_the_players_position_decides_between_copies(twice):
    _, download, capture = twice
    alone = audiosync.sync(str(download), capture=["-i", str(capture)], intervals=(3, 6))
    assert not alone.confident and alone.reason == "exhausted", alone
    for truth_ms in (25_500, 65_500):
        result = audiosync.sync(str(download), capture=["-i", str(capture)], hint_ms=truth_ms + 1200)
        assert result.confident and result.interval_s == 3.0, result
        assert abs(result.lag_ms - truth_ms) <= 1.0, result


@pytest.mark.timeout(120)
def test_a_tracker_started_with_the_players_position_locks_on_its_copy(twice):
    """listener.track(hint_ms=...): the first report is the copy the position names."""
    import threading

    _, download, capture = twice
    reports, first = [], threading.Event()

    def on_change(result):
        reports.append(result)
        first.set()

    with audiosync.Listener(["-re", "-i", str(capture)]) as ls:
        tracker = ls.track(str(download), on_change=on_change, since=None, hint_ms=65_500 + 800)
        try:
            assert first.wait(30), "no report"
        finally:
            tracker.stop()
    head = reports[0]
    # The song's position at the first sample heard: the copy at 65.5 s, plus the little of the
    # capture the listener heard before the audio the tracker took (a second before its call).
    assert head.confident and 65_500 - 1.0 <= head.lag_ms <= 65_500 + 1500.0, head
