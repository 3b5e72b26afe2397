"""The always-on listener: its ring, answers from audio already heard, a tracker that follows
the player, restarts that leave a gap, and the control API around the default listener.

Real ffmpeg and (where marked) a real private PulseAudio server with a null sink, played by pacat.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time

import numpy as np
import pytest

import audiosync
from audiosync import control
from audiosync.ring import Ring
from audiosync.synth import make_song
from audiosync.xcorr import cross_correlation

from helpers import RATE, decode, needs_ffmpeg, needs_pulse, write_wav

LISTEN_RATE = 16000


def _wait(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def _truth_ms(song16: np.ndarray, audio: np.ndarray) -> float:
    """Where ``audio`` starts in the song, by a plain correlation of a middle stretch (the oracle)."""
    a, b = LISTEN_RATE, min(len(audio), 5 * LISTEN_RATE)
    where, coefficient = cross_correlation(song16, audio[a:b])
    assert coefficient > 0.9, coefficient
    return 1000.0 * (where - a) / LISTEN_RATE


# -- the ring -------------------------------------------------------------------------------


def test_ring_keeps_the_newest_samples_and_its_segments():
    ring = Ring(10, 10)
    ring.begin()
    ring.write(np.arange(6, dtype=np.float32), now=100.6)
    ring.write(np.arange(6, 14, dtype=np.float32), now=101.4)
    assert ring.total == 14 and ring.oldest == 4
    assert ring.read(4, 14).tolist() == list(range(4, 14))
    with pytest.raises(IndexError, match="not held"):
        ring.read(3, 5)
    seg = ring.current
    assert seg.anchor == pytest.approx(100.0)  # the least bound: 100.6 - 6/10 and 101.4 - 14/10
    assert ring.index_at(100.55, seg) == 6
    ring.end()
    assert ring.current is None
    second = ring.begin()
    ring.write(np.full(3, 7, dtype=np.float32), now=200.3)
    assert second.first == 14 and ring.segment_of(15) is second and ring.segment_of(13) is not second
    assert ring.read(14, 17).tolist() == [7, 7, 7]


def test_ring_dates_samples_by_the_level_a_sink_plays_at():
    """An idle monitor hands samples over early (its sink renders ahead); playing, on time. The
    playing level holds once its reads show it for a while (a stream's uneven first second does
    not set it), through a pause, also after a long play, and over a least bound a few reads set
    early; late reads do not move it."""
    ring = Ring(100000, 10)
    seg = ring.begin()
    t = 100.0

    def reads(seconds: float, lead: float = 0.0, late: float = 0.0) -> None:
        nonlocal t
        for _ in range(int(round(seconds / 0.2))):
            t += 0.2
            ring.write(np.zeros(2, np.float32), now=t - lead + late)

    reads(4.0, lead=0.2)            # idle: every read 0.2 s early
    idle = seg.anchor
    reads(1.0, late=0.06)           # a stream starts: its first second comes late, unevenly
    reads(0.4)
    assert seg.anchor == pytest.approx(idle)  # not yet
    reads(4.0)
    assert seg.anchor == pytest.approx(idle + 0.2)
    reads(6.0, lead=0.2)            # a pause: the sink idles again, the song keeps its level
    assert seg.anchor == pytest.approx(idle + 0.2)
    reads(40.0)                     # a long play (the idle reads age out), then a pause
    reads(3.0, lead=0.2)
    assert seg.anchor == pytest.approx(idle + 0.2)
    reads(0.6, lead=0.03)           # a stream's first reads a little early, then a long play:
    reads(35.0)                     # the least bound is theirs, the level is the song's
    assert seg.anchor == pytest.approx(idle + 0.2)
    reads(2.4, late=0.04)           # reads all late for 2.4 s (a busy machine): no move
    reads(2.0)
    assert seg.anchor == pytest.approx(idle + 0.2)
    reads(35.0, lead=0.2)           # silence for longer than the memory: the idle level again
    assert seg.anchor == pytest.approx(idle, abs=1e-6)

    fast = Ring(100000, 10)         # a file read at twice its pace: no level, the least bound
    seg3 = fast.begin()
    for k in range(1, 200):
        fast.write(np.zeros(4, np.float32), now=100.0 + 0.2 * k)
        assert seg3.anchor == pytest.approx(100.0 - 0.2 * k)
    quick = Ring(100000, 1000)      # a little faster than its pace: never dated in the future
    seg4 = quick.begin()
    for k in range(1, 400):
        quick.write(np.zeros(215, np.float32), now=100.0 + 0.2 * k)
        newest = seg4.time_of(seg4.end)
        assert newest <= 100.0 + 0.2 * k + 0.25 + 1e-9

    ring2 = Ring(100000, 10)
    seg2 = ring2.begin()
    for k in range(1, 60):          # steady reads, one in five 50 ms late, all of 1.4 s 80 ms late
        late = 0.08 if 20 <= k < 27 else 0.05 if k % 5 == 0 else 0.0
        ring2.write(np.zeros(2, np.float32), now=100.0 + 0.2 * k + late)
        assert seg2.anchor == pytest.approx(100.0)


def test_ring_write_longer_than_the_ring():
    ring = Ring(4, 10)
    ring.begin()
    ring.write(np.arange(9, dtype=np.float32), now=1.0)
    assert ring.total == 9 and ring.read(5, 9).tolist() == [5, 6, 7, 8]


# -- a file read at its own pace stands in for a sound card ---------------------------------


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    """A song (WAV) and a 20 s capture cut from it at 12.5 s."""
    d = tmp_path_factory.mktemp("listen")
    song = make_song(45.0, RATE, seed=42)
    song_path = write_wav(d / "song.wav", song)
    capture = write_wav(d / "capture.wav", song[int(12.5 * RATE):int(32.5 * RATE)])
    return {"song": song_path, "capture": capture, "song16": decode(song_path, LISTEN_RATE),
            "other": write_wav(d / "other.wav", make_song(45.0, RATE, seed=7))}


@needs_ffmpeg
def test_sync_answers_from_audio_already_buffered(paced):
    with audiosync.Listener(["-re", "-i", str(paced["capture"])]) as ls:
        assert ls.running
        assert _wait(lambda: ls.status().buffered_s >= 4.5, 15)
        held, first_t = ls.audio()
        called = time.monotonic()
        result = ls.sync(str(paced["song"]), since=first_t)
        waited = time.monotonic() - called
    assert not ls.running
    assert result.confident, result
    # The answer used what was there at the call (more than the first interval) ...
    assert result.interval_s >= 4.0
    print(f"answered {waited:.2f} s after the call from {result.interval_s:.1f} s of audio")
    # ... and is the song's position at `since`: 12.5 s, the capture's first sample.
    assert result.capture_started == pytest.approx(first_t, abs=1e-3)
    assert abs(result.lag_ms - 12500.0) <= 1.0


@needs_ffmpeg
def test_bad_arguments_name_themselves(paced):
    for seconds in (0, -1, math.nan, math.inf, 1e9, True):
        with pytest.raises(ValueError, match="seconds"):
            audiosync.Listener(["-i", str(paced["capture"])], seconds=seconds)
    with audiosync.Listener(["-re", "-i", str(paced["capture"])]) as ls:
        url = str(paced["song"])
        with pytest.raises(ValueError, match="since.*future"):
            ls.sync(url, since=time.monotonic() + 5)
        with pytest.raises(ValueError, match="since is before the listener's buffer"):
            ls.sync(url, since=time.monotonic() - 120)
        with pytest.raises(ValueError, match="since must be"):
            ls.sync(url, since="now")
        with pytest.raises(ValueError, match="on_change must be callable"):
            ls.track(url, on_change=None)
        for every in (0, -2.0, math.nan):
            with pytest.raises(ValueError, match="every_s"):
                ls.track(url, on_change=print, every_s=every)
        with pytest.raises(ValueError, match="sample_rate must be the listener's"):
            ls.sync(url, sample_rate=48000)
    with pytest.raises(audiosync.CaptureError, match="not running"):
        ls.sync(url)


@needs_ffmpeg
def test_a_killed_capture_restarts_and_no_answer_crosses_the_gap(paced):
    with audiosync.Listener(["-re", "-i", str(paced["capture"])]) as ls:
        assert _wait(lambda: ls.status().buffered_s >= 2.0, 15)
        before = time.monotonic()
        os.kill(ls._proc.pid, signal.SIGKILL)
        status = _wait(lambda: (s := ls.status()).restarts >= 1 and s.buffered_s >= 3.5 and s, 20)
        assert status and status.gaps == 1 and status.last_error, ls.status()
        audio, first_t = ls.audio(since=before - 1.0)
        # Only the audio after the restart: it replays the file from its start.
        assert first_t > before
        result = ls.sync(str(paced["song"]), since=before - 1.0)
    assert result.confident and result.capture_started > before
    assert abs(result.lag_ms - (12500.0 + 1000.0 * (result.capture_started - first_t))) <= 1.0


@needs_ffmpeg
def test_stop_during_a_sync_returns_it(paced):
    with audiosync.Listener(["-re", "-i", str(paced["capture"])]) as ls:
        got = []
        t = threading.Thread(target=lambda: got.append(ls.sync(str(paced["other"]), min_confidence=0.999999)))
        t.start()
        time.sleep(1.5)
        ls.stop()
        t.join(10)
    assert not t.is_alive() and got and not got[0].confident


# -- a real sound server --------------------------------------------------------------------


@needs_pulse
def test_tracker_follows_a_seek_and_reports_a_skip(paced, pulse, play):
    changes: list[tuple[float, audiosync.SyncResult]] = []
    with audiosync.Listener("testsink.monitor") as ls:
        started = time.monotonic()
        player = play(paced["song"], "testsink", 2.0)
        time.sleep(3.5)
        tracker = ls.track(str(paced["song"]), on_change=lambda r: changes.append((time.monotonic(), r)),
                           every_s=1.0, since=started)
        assert _wait(lambda: tracker.lag_at(time.monotonic()) is not None, 20)
        time.sleep(3.5)  # re-checks on the line
        assert tracker.checks >= 2 and len(tracker.check_ms) >= 2 and max(tracker.check_ms) < 1000
        now = time.monotonic()
        audio, first_t = ls.audio(since=now - 6)
        truth = _truth_ms(paced["song16"], audio) + 1000.0 * (now - first_t)
        assert abs(tracker.lag_at(now) - truth) <= 10.0, (tracker.lag_at(now), truth)

        # A seek: the player starts again at 25 s.
        player.stop()
        seek = time.monotonic()
        play(paced["song"], "testsink", 25.0)
        found = _wait(lambda: [r for t, r in changes if t > seek and r.confident], 15)
        assert found, changes
        print(f"seek reported after {min(t for t, r in changes if t > seek and r.confident) - seek:.1f} s")
        time.sleep(max(0.0, seek + 6.0 - time.monotonic()))  # the oracle's 5 s all after the seek
        now = time.monotonic()
        audio, first_t = ls.audio(since=now - 5)
        truth = _truth_ms(paced["song16"], audio) + 1000.0 * (now - first_t)
        assert abs(tracker.lag_at(now) - truth) <= 10.0, (tracker.lag_at(now), truth)
        assert not [r for t, r in changes if r.confident and t > seek and abs(r.lag_ms - 25000) > 3000]

        # A skip to another song: the lag becomes unknown, and nothing confident is said.
        skip = time.monotonic()
        _stop_players(play)
        play(paced["other"], "testsink", 0.0)
        lost = _wait(lambda: [r for t, r in changes if t > skip and not r.confident], 12)
        assert lost and tracker.lag_at(time.monotonic()) is None
        time.sleep(4)
        assert not [r for t, r in changes if t > skip and r.confident]
        tracker.stop()
    assert not tracker.running


def _stop_players(play) -> None:
    for player in play.players:
        player.stop()


@needs_pulse
def test_a_song_after_silence_is_dated_as_it_plays(paced, pulse, play):
    """The monitor of an idle sink hands its samples over early; a song's must be dated by when
    they play: its place at the player's start, as the answer says, is never ahead of where the
    player was told to start (it was ~130 ms ahead while the idle level dated them)."""
    with audiosync.Listener("testsink.monitor") as ls:
        time.sleep(3.0)  # the sink idles, listened to
        started = time.monotonic()
        play(paced["song"], "testsink", 10.0)
        time.sleep(6.0)  # the playing level is taken 3-4.5 s after the sound starts
        result = ls.sync(str(paced["song"]), since=started)
        assert result.confident, result
        at_start = result.lag_ms + 1000.0 * (started - result.capture_started)
    print(f"the song at the player's start: {at_start - 10000.0:+.1f} ms from where it was told to start")
    # The player's own start-up (ffmpeg, pacat) puts the sound behind, never ahead.
    assert -2000.0 <= at_start - 10000.0 <= 15.0, at_start


@needs_pulse
def test_control_listen_twice_is_one_listener_and_get_lag_uses_it(paced, pulse, play):
    try:
        assert control.listen("testsink.monitor")
        first = control.default_listener()
        assert control.listen("testsink.monitor") and control.default_listener() is first
        started = time.monotonic()
        play(paced["song"], "testsink", 5.0)
        time.sleep(4.0)
        result = audiosync.sync(str(paced["song"]), since=started)
        # The answer starts at `since` (the listener had just started: at its first sample, which
        # the pulse input may deliver seconds late on a loaded machine).
        assert result.confident and result.capture_started >= started - 0.05
        now = time.monotonic()
        audio, first_t = first.audio(since=now - 4)
        truth = _truth_ms(paced["song16"], audio) + 1000.0 * (result.capture_started - first_t)
        assert abs(result.lag_ms - truth) <= 10.0, (result.lag_ms, truth)
        assert 2500 < result.lag_ms < 5000 + 1000.0 * (now - started)
    finally:
        assert control.stop_listening()
    assert not control.stop_listening() and control.default_listener() is None
    with pytest.raises(ValueError, match="since needs the default listener"):
        audiosync.sync(str(paced["song"]), since=time.monotonic())


@needs_pulse
def test_random_control_calls_while_a_tracker_runs(paced, pulse, play):
    play(paced["song"], "testsink", 0.0)
    assert control.listen("testsink.monitor")
    try:
        control.default_listener().track(str(paced["song"]), on_change=lambda r: None, every_s=0.5)
        calls = [control.pause, control.resume, control.abort, control.status,
                 lambda: control.listen("testsink.monitor"),
                 lambda: control.default_listener() and control.default_listener().status(),
                 lambda: control.default_listener() and control.default_listener().track(
                     str(paced["song"]), on_change=lambda r: None, every_s=0.5)]
        errors = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(50):
                try:
                    rng.choice(calls)()
                except Exception as exc:  # noqa: BLE001 - every failure is one
                    errors.append(exc)
                time.sleep(rng.uniform(0, 0.02))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "deadlock"
        assert not errors, errors
    finally:
        control.stop_listening()
    assert control.status() == "idle"


@needs_pulse
def test_player_sync_example_seeks_the_video_to_the_song(paced, pulse, play):
    """examples/player_sync.py (no mpv here: it prints its seeks) follows a song played into a null sink."""
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "player_sync.py"
    player = play(paced["song"], "testsink", 10.0)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(example), str(paced["song"]), "--capture", "testsink.monitor",
                             "--seconds", "9"], stdout=subprocess.PIPE, text=True, env=pulse.env)
    seeks = []
    for line in proc.stdout:
        if line.startswith("seek video to "):
            seeks.append((time.monotonic(), float(line.split()[3])))
    assert proc.wait(timeout=30) == 0
    player.stop()
    assert seeks, "the example made no seek"
    for at, position in seeks:
        # Where the player is when the line is printed: 10 s in, plus the time played (pacat's
        # start-up, seconds on a loaded machine, makes the truth less: the bound is loose, a
        # wrong place is not).
        assert 10.0 + (at - started) - 2.5 < position <= 10.0 + (at - started) + 0.1, (position, at - started)


@needs_ffmpeg
def test_cli_listen_prints_the_lag(paced, capsys):
    from audiosync.cli import main

    assert main(["listen", str(paced["song"]), "--capture", str(paced["capture"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # The listener starts with the command: its first sample is the capture's first, 12.5 s in.
    assert out["confident"] and abs(out["lag_ms"] - 12500.0) <= 1.0
    assert main(["listen", str(paced["song"]), "--capture", str(paced["capture"]), "--follow", "--every", "0"]) == 2


@needs_pulse
def test_a_killed_pulse_capture_restarts_with_a_gap(paced, pulse, play):
    """The same on a real sound server: the listener's ffmpeg SIGKILLed while a song plays."""
    with audiosync.Listener("testsink.monitor") as ls:
        play(paced["song"], "testsink", 5.0)
        assert _wait(lambda: ls.status().buffered_s >= 2.0, 15)
        killed = time.monotonic()
        os.kill(ls._proc.pid, signal.SIGKILL)
        assert _wait(lambda: (s := ls.status()).restarts >= 1 and s.buffered_s >= 4.0, 20), ls.status()
        assert ls.status().gaps == 1
        result = ls.sync(str(paced["song"]), since=killed - 1.5)
        heard, first_t = ls.audio(since=result.capture_started)
        truth = _truth_ms(paced["song16"], heard)
    # Nothing from before the gap: the answer starts after the kill, and is right there.
    assert result.confident and result.capture_started > killed
    assert abs(result.lag_ms - (truth - 1000.0 * (first_t - result.capture_started))) <= 10.0
