"""Live sync end to end with real ffmpeg, a local HTTP server and a private PulseAudio server."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import audiosync
from audiosync import (
    CaptureError, FFmpegNotFoundError, InputError, JobBusyError, SyncJob, cross_correlation,
)
from audiosync.download import input_args, resolve_with_ytdlp
from audiosync.producer import Producer

from helpers import RATE, decode, needs_ffmpeg, needs_pulse, throttled_server, write_wav

pytestmark = [needs_ffmpeg, pytest.mark.timeout(120)]


def cut(song: np.ndarray, start_s: float, seconds: float, lead_silence_s: float = 0.0) -> np.ndarray:
    start = int(round(start_s * RATE))
    body = song[start : start + int(round(seconds * RATE))]
    return np.concatenate([np.zeros(int(round(lead_silence_s * RATE)), np.float32), body])


# --- deterministic: capture from a file, following the interval schedule ----


@pytest.mark.parametrize("fmt", ["ogg", "opus", "m4a", "mp3", "wav"])
def test_file_capture_gives_the_exact_lag(media, tmp_path, fmt):
    offset_s = 7.25
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], offset_s, 20))
    seen = []
    result = audiosync.sync(str(media[fmt]), capture=["-i", str(capture)], on_progress=seen.append)
    assert result.confident, result
    # Encoders delay the start by a fixed, known amount at most (AAC and MP3 priming is trimmed by ffmpeg).
    assert abs(result.lag_ms - 1000 * offset_s) <= 1.0, (fmt, result.lag_ms)
    assert seen and seen[-1].lag_ms == result.lag_ms and result.interval_s in (3.0, 6.0, 10.0)
    assert result.elapsed_s > 0 and 0.95 <= result.confidence <= 1.0


def test_capture_starting_before_the_song_gives_a_negative_lag(media, tmp_path):
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 0, 12, lead_silence_s=1.5))
    result = audiosync.sync(str(media["wav"]), capture=["-i", str(capture)])
    assert result.confident
    assert result.lag_ms == pytest.approx(-1500.0, abs=1.0)


def test_get_lag_returns_whole_ms_and_zero_when_unsure(media, tmp_path):
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 4.0, 10))
    assert audiosync.get_lag(str(media["ogg"]), capture=["-i", str(capture)]) == 4000
    noise = write_wav(tmp_path / "noise.wav", 0.3 * np.random.default_rng(0).standard_normal(5 * RATE))
    assert audiosync.get_lag(str(media["ogg"]), capture=["-i", str(noise)]) == 0


def test_silence_all_along_is_not_confident(media, tmp_path):
    capture = write_wav(tmp_path / "silence.wav", np.zeros(4 * RATE, np.float32))
    result = audiosync.sync(str(media["ogg"]), capture=["-i", str(capture)], intervals=(1, 2, 3))
    assert not result.confident
    assert result.confidence == 0.0
    assert result.reason in ("capture-ended", "exhausted")


def test_download_shorter_than_the_interval_is_padded(media, tmp_path):
    short = write_wav(tmp_path / "short.wav", cut(media["song"], 0, 5))
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 1.0, 3.5))
    result = audiosync.sync(str(short), capture=["-i", str(capture)], intervals=(3,))
    assert result.confident and result.lag_ms == pytest.approx(1000.0, abs=1.0)


def test_lag_beyond_twice_the_interval_is_found_with_a_longer_download(media, tmp_path):
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 30.0, 10))
    result = audiosync.sync(str(media["wav"]), capture=["-i", str(capture)], intervals=(3, 6, 10))
    assert result.confident and result.lag_ms == pytest.approx(30000.0, abs=1.0)


# --- over HTTP, and yt-dlp on local URLs -------------------------------------


def test_http_download(media, http_base, tmp_path):
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 2.5, 10))
    result = audiosync.sync(f"{http_base}/song.opus", capture=["-i", str(capture)])
    assert result.confident and result.lag_ms == pytest.approx(2500.0, abs=1.0)


def test_ytdlp_resolves_local_urls(http_base):
    media_url, _ = resolve_with_ytdlp(f"{http_base}/song.ogg")
    assert media_url == f"{http_base}/song.ogg"
    page_url, _ = resolve_with_ytdlp(f"{http_base}/page.html")
    assert page_url.endswith("/song.ogg")


def test_youtube_urls_go_through_ytdlp(monkeypatch):
    calls = []

    def fake(url):
        calls.append(url)
        return "http://127.0.0.1:9/audio", {"User-Agent": "x"}

    monkeypatch.setattr("audiosync.download.resolve_with_ytdlp", fake)
    args = input_args("https://www.youtube.com/watch?v=abc")
    assert calls == ["https://www.youtube.com/watch?v=abc"]
    assert args[-2:] == ["-i", "http://127.0.0.1:9/audio"] and "-headers" in args and "-rw_timeout" in args


def test_missing_ytdlp_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "yt_dlp", None)
    with pytest.raises(audiosync.MissingExtraError, match=r"audiosync\[youtube\]"):
        resolve_with_ytdlp("https://youtu.be/abc")


# --- errors --------------------------------------------------------------------


def test_missing_file(tmp_path, media):
    with pytest.raises(FileNotFoundError):
        audiosync.sync(str(tmp_path / "nope.ogg"), capture=["-i", str(tmp_path / "nope.wav")])
    # One except clause catches it as the package's error and as the builtin.
    for call in (lambda: audiosync.sync_files(str(media["ogg"]), str(tmp_path / "nope.wav")),
                 lambda: audiosync.sync_files(str(tmp_path), str(media["ogg"])),
                 lambda: audiosync.sync(str(tmp_path / "nope.ogg"), capture=["-i", str(media["wav"])])):
        with pytest.raises(audiosync.AudiosyncError) as caught:
            call()
        assert isinstance(caught.value, (audiosync.InputNotFoundError, FileNotFoundError))
        assert isinstance(caught.value, audiosync.InputError) and isinstance(caught.value, FileNotFoundError)


def test_url_starting_with_dash_is_never_an_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        audiosync.sync("-version", capture=["-i", "x.wav"])
    assert input_args(str(tmp_path / "x"))[1].startswith("file:/") if (tmp_path / "x").touch() is None else True


def test_undecodable_file_names_ffmpegs_complaint(media, tmp_path):
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 0, 4))
    with pytest.raises(InputError, match="cannot open or decode.*notaudio"):
        audiosync.sync(str(media["notaudio.ogg"] if "notaudio.ogg" in media else media["dir"] / "notaudio.ogg"),
                       capture=["-i", str(capture)])


def test_http_404_is_an_input_error(http_base, media, tmp_path):
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 0, 4))
    with pytest.raises(InputError, match="404"):
        audiosync.sync(f"{http_base}/missing.ogg", capture=["-i", str(capture)])


def test_unsupported_scheme_and_bad_options(media):
    with pytest.raises(ValueError, match="scheme"):
        audiosync.sync("ftp://example.invalid/song.ogg", capture=["-i", "x"])
    with pytest.raises(ValueError, match="intervals"):
        audiosync.sync(str(media["ogg"]), intervals=(6, 3))
    with pytest.raises(ValueError, match="sample_rate"):
        audiosync.sync(str(media["ogg"]), sample_rate=10)
    with pytest.raises(ValueError, match="-i INPUT"):
        audiosync.sync(str(media["ogg"]), capture=["-f", "alsa"])


def test_ffmpeg_missing_has_an_install_hint(media, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FFmpegNotFoundError, match="apt-get install ffmpeg"):
        audiosync.sync(str(media["ogg"]), capture=["-i", str(media["wav"])])


def test_unreadable_capture_file_is_a_capture_error(media, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF junk")
    with pytest.raises(CaptureError, match="cannot record"):
        audiosync.sync(str(media["ogg"]), capture=["-i", str(bad)])


# --- desktop capture through a private PulseAudio server -------------------------


def _sync_with_a_parallel_recording(media, http_base, play, start_s: float, **options):
    """Play the song into testsink from start_s, sync against its monitor, and say where a
    parallel recording of the same monitor puts the capture's start: (result, expected_ms)."""
    song = decode(media["ogg"])
    play(media["ogg"], "testsink", start_s)
    cond = threading.Condition()
    truth = Producer("truth", ["-f", "pulse", "-i", "testsink.monitor"], RATE, 40 * RATE, cond)
    try:
        result = audiosync.sync(f"{http_base}/song.ogg", capture="testsink.monitor", **options)
        with cond:
            cond.wait_for(lambda: truth.count >= 8 * RATE or truth.done, timeout=20)
    finally:
        truth.stop()
    recorded = truth.buffer[: truth.count]
    # Where the parallel recording starts in the song (measured on a middle
    # stretch, clear of the player's start), then move by the time between
    # the two recordings' first samples.
    where, coefficient = cross_correlation(song, recorded[2 * RATE : 8 * RATE])
    assert coefficient > 0.99
    expected_ms = 1000 * (where - 2 * RATE) / RATE + 1000 * (result.capture_started - truth.anchor)
    print(f"sync lag {result.lag_ms:.1f} ms, parallel recording says {expected_ms:.1f} ms, "
          f"player started at {1000 * start_s:.0f} ms")
    return result, expected_ms


@needs_pulse
def test_desktop_capture_end_to_end(media, http_base, pulse, play):
    """Play the song into a sink, sync against its monitor, compare to a parallel recording."""
    result, expected_ms = _sync_with_a_parallel_recording(media, http_base, play, 9.0)
    assert result.confident, result
    assert abs(result.lag_ms - expected_ms) <= 50.0


@needs_pulse
def test_default_capture_records_the_default_output(media, pulse, play):
    play(media["ogg"], "testsink", 3.0)
    result = audiosync.sync(str(media["ogg"]), intervals=(3, 6))
    assert result.confident and result.lag_ms > 500  # the player seeks only roughly, and may sound late


@needs_pulse
def test_missing_capture_source_lists_the_others(media, pulse):
    with pytest.raises(CaptureError, match=r"'nosuch\.monitor' does not exist.*testsink\.monitor"):
        audiosync.sync(str(media["ogg"]), capture="nosuch.monitor")


def test_no_sound_server(media, monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/no-such-socket")
    with pytest.raises(CaptureError, match="no PulseAudio"):
        audiosync.sync(str(media["ogg"]))


@needs_pulse
def test_timeout_is_not_an_error(media, pulse):
    t = time.monotonic()
    result = audiosync.sync(str(media["ogg"]), capture="testsink.monitor", timeout=2.0)
    assert time.monotonic() - t < 2.0 + 3.0  # the timeout, then each ffmpeg stopped (a busy machine)
    assert not result.confident and result.reason == "timeout"


# --- the control API -------------------------------------------------------------


def _run_in_thread(fn, *args, **kwargs):
    box = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, name="test-runner")
    thread.start()
    return thread, box


def _wait_status(want, job=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    status = (job.status if job else audiosync.status())
    while status != want:
        assert time.monotonic() < deadline, f"status stayed {status!r}, wanted {want!r}"
        time.sleep(0.02)
        status = job.status if job else audiosync.status()


@needs_pulse
def test_pause_resume_abort_and_status(media, pulse, play):
    assert audiosync.status() == "idle"
    assert not audiosync.pause() and not audiosync.resume() and not audiosync.abort()
    # Nothing plays: the job waits on a silent monitor until aborted.
    thread, box = _run_in_thread(audiosync.sync, str(media["ogg"]), capture="testsink.monitor")
    _wait_status("running")
    assert audiosync.pause() and audiosync.status() == "paused"
    assert not audiosync.pause()
    assert audiosync.resume() and audiosync.status() == "running"
    time.sleep(0.3)
    t = time.monotonic()
    assert audiosync.abort()
    thread.join(5)
    assert time.monotonic() - t < 3.0
    assert not thread.is_alive() and "error" not in box, box
    assert box["result"].reason == "aborted" and not box["result"].confident
    assert audiosync.status() == "idle"


@needs_pulse
def test_resume_restarts_the_capture_and_still_finds_the_lag(media, pulse, play):
    play(media["ogg"], "testsink", 5.0)
    thread, box = _run_in_thread(audiosync.sync, str(media["ogg"]), capture="testsink.monitor")
    _wait_status("running")
    time.sleep(0.5)
    audiosync.pause()
    time.sleep(0.5)
    audiosync.resume()
    thread.join(60)
    assert "error" not in box, box
    assert box["result"].confident and box["result"].lag_ms > 2500


@needs_pulse
def test_abort_while_paused(media, pulse):
    thread, box = _run_in_thread(audiosync.sync, str(media["ogg"]), capture="testsink.monitor")
    _wait_status("running")
    audiosync.pause()
    t = time.monotonic()
    audiosync.abort()
    thread.join(5)
    assert time.monotonic() - t < 3.0 and box["result"].reason == "aborted"


@needs_pulse
def test_second_job_on_the_default_is_refused(media, pulse, monkeypatch, caplog):
    thread, box = _run_in_thread(audiosync.sync, str(media["ogg"]), capture="testsink.monitor")
    _wait_status("running")
    try:
        with pytest.raises(JobBusyError):
            audiosync.sync(str(media["ogg"]), capture="testsink.monitor")
        monkeypatch.setattr("audiosync.control.search_url", lambda title: str(media["ogg"]))
        with caplog.at_level(logging.WARNING, logger="audiosync"):
            assert audiosync.run("Some Song") == (0, False)
        assert "JobBusyError" in caplog.text
        # Independent jobs run side by side.
        other = SyncJob().sync(str(media["ogg"]), capture=["-i", str(media["wav"])])
        assert other.confident and other.lag_ms == pytest.approx(0.0, abs=0.01)
    finally:
        audiosync.abort()
        thread.join(5)


@needs_pulse
def test_run_by_title_through_ytdlp_on_a_local_url(media, http_base, pulse, play, monkeypatch):
    monkeypatch.setattr("audiosync.control.search_url", lambda title: f"{http_base}/page.html")
    play(media["ogg"], "testsink", 4.0)
    lag, ok = audiosync.run("Artist - Song")
    assert ok and lag > 1500


def test_run_never_raises(monkeypatch, caplog):
    monkeypatch.setattr("audiosync.control.search_url", lambda title: "/no/such/file.ogg")
    assert audiosync.run("x") == (0, False)
    assert audiosync.run("") == (0, False)
    assert audiosync.run(None) == (0, False)  # type: ignore[arg-type]


@needs_pulse
def test_setup_twice_does_not_stack_sinks_or_loopbacks(media, pulse):
    import pulsectl

    player = subprocess.Popen(
        ["paplay", "--device=realout", "--property=application.name=TestPlayer", str(media["wav"])],
        env=pulse.env,
    )
    try:
        with pulsectl.Pulse("test") as p:
            deadline = time.monotonic() + 5
            while not p.sink_input_list():
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert audiosync.setup("TestPlayer")
        assert audiosync.setup("testplayer")
        assert not audiosync.setup("NoSuchPlayer")
        with pulsectl.Pulse("test") as p:
            sinks = [s.name for s in p.sink_list()]
            loopbacks = [m for m in p.module_list() if m.name == "module-loopback"]
            ours = next(s for s in p.sink_list() if s.name == "audiosync")
            moved = [i for i in p.sink_input_list() if i.proplist.get("application.name") == "TestPlayer"]
        assert sinks.count("audiosync") == 1 and len(loopbacks) == 1
        assert moved and all(i.sink == ours.index for i in moved)
        # With the dedicated sink in place, the default capture records it.
        from audiosync.capture import capture_input_args
        assert capture_input_args(None)[-1] == "audiosync.monitor"
    finally:
        player.terminate()
        player.wait()


def test_setup_without_a_server_returns_false(monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/none")
    assert audiosync.setup("TestPlayer") is False


def test_debug_switch():
    try:
        audiosync.set_debug(True)
        assert audiosync.get_debug()
        assert logging.getLogger("audiosync").isEnabledFor(logging.DEBUG)
    finally:
        audiosync.set_debug(False)
    assert not audiosync.get_debug()


def test_ctrl_c_leaves_no_ffmpeg(media, tmp_path):
    """SIGINT to a process in the middle of a sync: it exits and its ffmpeg children go."""
    marker = tmp_path / "slow-capture.wav"
    write_wav(marker, cut(media["song"], 0, 30))
    script = (
        "import audiosync, signal\n"
        # A shell that started us in the background may have ignored SIGINT.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"audiosync.sync({str(media['ogg'])!r}, capture=['-re', '-i', {str(marker)!r}])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 20
    while not _processes_with(str(marker)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert b"KeyboardInterrupt" in err
    time.sleep(0.2)
    assert _processes_with(str(marker)) == []


def _processes_with(text: str) -> list[int]:
    """ffmpeg processes whose command line holds ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            if comm == "ffmpeg" and text in cmd:
                found.append(int(entry))
    return found


# --- position hints ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"hint_ms": math.nan}, {"hint_ms": math.inf}, {"hint_ms": -math.inf}, {"hint_ms": "1000"},
    {"hint_ms": True}, {"hint_ms": [1000]}, {"hint_window_ms": 0}, {"hint_window_ms": -5},
    {"hint_window_ms": math.nan}, {"hint_window_ms": math.inf}, {"hint_window_ms": None},
    {"hint_window_ms": "3000"}, {"max_download_s": 0}, {"max_download_s": math.nan}, {"max_download_s": None},
])
def test_hostile_hints_are_value_errors(media, bad):
    name = next(iter(bad))
    for call in (audiosync.sync, audiosync.get_lag, audiosync.SyncJob().sync):
        with pytest.raises(ValueError, match=name):
            call(str(media["ogg"]), capture=["-i", str(media["wav"])], **bad)
    assert audiosync.status() == "idle"


def test_a_wrong_hint_changes_no_answer(media, tmp_path):
    """A hint far from the truth: the whole song is still searched, the answer is the truth."""
    capture = write_wav(tmp_path / "capture.wav", cut(media["song"], 21.5, 12))
    right = audiosync.sync(str(media["ogg"]), capture=["-i", str(capture)], hint_ms=21_000)
    wrong = audiosync.sync(str(media["ogg"]), capture=["-i", str(capture)], hint_ms=3_000, hint_window_ms=500)
    for result in (right, wrong):
        assert result.confident and abs(result.lag_ms - 21_500) <= 1.0, result
    # At the method: the narrower search of a right hint is worth more evidence, a wrong one none.
    from audiosync.method import estimate, make_correlator

    rate = 16000
    song, sample = decode(media["ogg"], rate), decode(capture, rate)[: 3 * rate]
    c = make_correlator(song, len(sample), "phat", rate)
    plain = estimate(c, sample, "phat", rate, "live", 3.0)
    hinted = estimate(c, sample, "phat", rate, "live", 3.0, window=(21_000 * 16, 22_000 * 16))
    misled = estimate(c, sample, "phat", rate, "live", 3.0, window=(0, 1000 * 16))
    assert plain.lag == hinted.lag == misled.lag == 21_500 * 16
    assert hinted.evidence >= plain.evidence == misled.evidence


@pytest.mark.timeout(120)
def test_a_capture_ahead_of_the_download_waits_for_the_rest(media, tmp_path):
    """The capture is read at once; the download arrives at twice real time, so for seconds its
    decoded part does not reach the capture's place, and the song repeats itself (the capture's
    passage also stands earlier). No estimate before the rest is there."""
    song = media["song"]
    repeat = np.concatenate([song[: 30 * RATE], song[10 * RATE : 25 * RATE]])  # 30-45 s repeats 10-25 s
    wav = write_wav(tmp_path / "song.wav", repeat)
    capture = write_wav(tmp_path / "capture.wav", cut(song, 14.0, 10))  # the passage at 14 s (and 34 s)
    url, stop = throttled_server(wav, 2 * 2 * RATE)  # 16-bit mono: 2 bytes a sample, at twice real time
    seen = []
    try:
        result = audiosync.sync(url, capture=["-i", str(capture)], on_progress=seen.append)
    finally:
        stop()
    # An exact repeat: the place cannot be told, so nothing is confident; and no estimate is
    # made on part of the song (the capture was whole long before the download).
    assert seen and all(p.downloaded_s == pytest.approx(45.0, abs=0.1) for p in seen), seen
    assert not result.confident or abs(result.lag_ms - 14_000) <= 1.0, result


@needs_pulse
def test_desktop_capture_with_a_hint(media, http_base, pulse, play):
    """Through a real PulseAudio null sink: the player's position as the hint."""
    # The capture's first sample comes 1.5 s or more after the player's start (the pulse input's
    # start-up): a window wide enough for a loaded machine's.
    result, expected_ms = _sync_with_a_parallel_recording(media, http_base, play, 17.0,
                                                          hint_ms=18_500, hint_window_ms=3000)
    assert result.confident and result.interval_s == 3.0, (result, expected_ms)
    assert abs(result.lag_ms - expected_ms) <= 50.0
