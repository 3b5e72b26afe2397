"""Offline alignment past one lag: clock drift and the lag map, breaks, every match, search
windows, an hour-long pair under a memory cap, and the CLI's JSON keys as the README lists them."""

from __future__ import annotations

import json
import math
import os
import re
import resource
import subprocess
import sys

import numpy as np
import pytest

from audiosync import WindowError, sync_files
from audiosync.synth import make_song
from helpers import RATE, decode, ffmpeg, needs_ffmpeg, write_wav

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _drifted(song_path, out, start_s: float, seconds: float, ppm: int, codec=("-c:a", "libopus", "-b:a", "96k")):
    """``seconds`` of the song from ``start_s``, played ``ppm`` parts per million fast: at 40 kHz the
    rate is relabelled by exactly ppm * 0.04 Hz, so out(t) = song(start_s + t (1 + ppm 1e-6))."""
    ffmpeg("-ss", str(start_s), "-t", str(seconds + 1), "-i", str(song_path),
           "-af", f"aresample=40000,asetrate={40000 + ppm * 40000 // 1_000_000},aresample=48000",
           "-t", str(seconds), *codec, str(out))
    return str(out)


@pytest.fixture(scope="module")
def real(real_song, tmp_path_factory):
    """The first 80 s of a real song as Vorbis (the reference)."""
    folder = tmp_path_factory.mktemp("drift")
    # Cut from a WAV: seeking in it is exact (in the tracker module it is not).
    wav = write_wav(folder / "song.wav", decode(real_song, RATE)[:90 * RATE])
    ref = folder / "ref.ogg"
    ffmpeg("-t", "80", "-i", str(wav), "-c:a", "libvorbis", "-q:a", "5", str(ref))
    return folder, str(ref), str(wav)


@needs_ffmpeg
@pytest.mark.parametrize("ppm", [300, -100])
def test_drift_recovered_from_a_resampled_real_recording(real, ppm):
    folder, ref, song = real
    other = _drifted(song, folder / f"d{ppm}.opus", 20.0, 35.0, ppm)
    r = sync_files(ref, other, drift=True)
    assert r.confident
    assert r.lag_ms == pytest.approx(20000.0, abs=1.0)  # at other's start, not its middle
    assert r.drift_ppm == pytest.approx(ppm, abs=10.0)
    assert 0 < r.drift_ppm_error < 10.0
    assert len(r.lag_map) >= 3 and all(p.confidence >= 0.95 for p in r.lag_map)
    times = [p.time_s for p in r.lag_map]
    assert times == sorted(times) and 0 < times[0] < times[-1] < 35.0
    # Each window's lag follows the drift: lag(t) = lag_ms + ppm 1e-6 * 1000 t.
    for p in r.lag_map:
        assert p.lag_ms == pytest.approx(r.lag_ms + r.drift_ppm * 1e-3 * p.time_s, abs=0.5)
    assert r.breaks == ()
    # Without drift=True the single lag is the whole's: nearer the middle of other.
    plain = sync_files(ref, other)
    assert plain.drift_ppm is None and plain.lag_map == ()
    assert abs(plain.lag_ms - 20000.0) > abs(ppm) * 1e-3 * 5


@needs_ffmpeg
def test_no_drift_is_zero_within_its_uncertainty(real):
    folder, ref, song = real
    other = _drifted(song, folder / "d0.opus", 30.0, 30.0, 0)
    r = sync_files(ref, other, drift=True)
    assert r.confident and r.lag_ms == pytest.approx(30000.0, abs=1.0)
    assert abs(r.drift_ppm) <= max(3 * r.drift_ppm_error, 2.0)


@needs_ffmpeg
@pytest.mark.parametrize("jump_ms", [20, 300])  # within the first look's reach, and beyond it
def test_a_dropped_stretch_is_a_break(tmp_path, jump_ms):
    song = make_song(60.0, RATE, seed=11)
    ref = write_wav(tmp_path / "ref.wav", song)
    # other: 10-25 s, then a jump (a lost buffer), then on to 45 s
    other = np.concatenate([song[10 * RATE:25 * RATE], song[int((25 + jump_ms / 1000) * RATE):45 * RATE]])
    oth = write_wav(tmp_path / "oth.wav", other)
    r = sync_files(ref, oth, drift=True)
    assert r.lag_ms == pytest.approx(10000.0, abs=1.0)  # the first stretch's
    assert r.drift_ppm == pytest.approx(0.0, abs=5.0)    # the jump does not tilt the line
    assert len(r.breaks) == 1
    b = r.breaks[0]
    assert 10.0 <= b.time_s <= 20.0
    assert b.lag_before_ms == pytest.approx(10000.0, abs=1.0)
    assert b.lag_after_ms == pytest.approx(10000.0 + jump_ms, abs=1.0)


def test_a_jump_in_a_long_overlap_is_a_break():
    # 100 windows: the first line comes from a spread few, every window is then looked for
    # narrowly, and the ones past a 300 ms jump again as far as the first look reached.
    from audiosync.lagmap import PROBE_WINDOWS, lag_map
    sr = 16000
    song = make_song(1100.0, sr, seed=5)
    other = np.concatenate([song[30 * sr:530 * sr], song[int(530.3 * sr):1030 * sr]])
    lm = lag_map(song, other, 30.0 * sr, sr)
    assert len(lm.points) >= 2 * PROBE_WINDOWS
    assert lm.drift_ppm == pytest.approx(0.0, abs=1.0)
    assert all(p.confidence >= 0.95 for p in lm.points)
    assert len(lm.breaks) == 1 and 490.0 <= lm.breaks[0].time_s <= 510.0
    assert lm.breaks[0].lag_before_ms == pytest.approx(30000.0, abs=0.5)
    assert lm.breaks[0].lag_after_ms == pytest.approx(30300.0, abs=0.5)


@needs_ffmpeg
def test_with_a_window_of_other_the_drifting_lag_is_still_at_others_zero(real):
    folder, ref, song = real
    other = _drifted(song, folder / "w300.opus", 20.0, 35.0, 300)
    r = sync_files(ref, other, drift=True, other_window=(12.0, 20.0))
    assert r.confident
    assert r.lag_ms == pytest.approx(20000.0, abs=1.0)  # other(t) ≈ ref(t (1 + d) + lag_ms): t from other's 0
    assert r.drift_ppm == pytest.approx(300.0, abs=10.0)
    assert all(12.0 < p.time_s < 32.0 for p in r.lag_map)
    for p in r.lag_map:
        assert p.lag_ms == pytest.approx(r.lag_ms + r.drift_ppm * 1e-3 * p.time_s, abs=0.5)


@needs_ffmpeg
def test_two_matches_found_and_no_confident_wrong_answer(tmp_path):
    bed = make_song(70.0, RATE, seed=3)
    clip = make_song(8.0, RATE, seed=5, bpm=97.0)
    ref = bed.copy()
    for at in (12.0, 47.5):
        i = int(at * RATE)
        ref[i:i + len(clip)] = clip
    ref_path = write_wav(tmp_path / "broadcast.wav", ref)
    clip_path = tmp_path / "jingle.mp3"
    write_wav(tmp_path / "jingle.wav", clip)
    ffmpeg("-i", str(tmp_path / "jingle.wav"), "-c:a", "libmp3lame", "-b:a", "128k", str(clip_path))
    r = sync_files(ref_path, clip_path, all_matches=True)
    assert [round(m.lag_ms / 1000, 1) for m in r.matches] == [12.0, 47.5]
    assert all(m.confidence >= 0.95 for m in r.matches)
    # The headline answer is one of the two, and not confident: two places match alike.
    assert not r.confident
    plain = sync_files(ref_path, clip_path)
    assert plain.matches is None and not plain.confident


@needs_ffmpeg
def test_windows_are_honoured_and_lags_stay_in_each_inputs_timeline(media, tmp_path):
    song = media["song"]
    other = write_wav(tmp_path / "other.wav", song[int(12.5 * RATE):int(32.5 * RATE)])
    whole = sync_files(media["ogg"], other)
    assert whole.lag_ms == pytest.approx(12500.0, abs=1.0)
    r = sync_files(media["ogg"], other, reference_window=(8.0, 20.0), other_window=(4.0, 8.0), drift=True)
    assert r.confident and r.lag_ms == pytest.approx(12500.0, abs=1.0)
    assert r.interval_s == pytest.approx(8.0, abs=0.05)  # only the window of other was read
    assert all(4.0 < p.time_s < 12.0 for p in r.lag_map)  # other's own timeline
    # A reference window that leaves out the true place: nothing confident there.
    miss = sync_files(media["ogg"], other, reference_window=(34.0, None))  # other ends at 32.5 s
    assert not miss.confident


@pytest.mark.parametrize("name", ["reference_window", "other_window"])
@pytest.mark.parametrize("window, match", [
    ((-1.0, 5.0), "start"), ((math.nan, 5.0), "start"), ((1.0, 0.0), "positive"), ((1.0, -2.0), "positive"),
    ((1.0, math.nan), "positive"), ((1.0,), r"\(start_s, duration_s\)"), ("1:5", r"\(start_s, duration_s\)"),
])
def test_hostile_windows_name_themselves(media, name, window, match):
    with pytest.raises(ValueError, match=name) as info:
        sync_files(media["wav"], media["wav"], **{name: window})
    assert re.search(match, str(info.value))


@needs_ffmpeg
@pytest.mark.parametrize("name", ["reference_window", "other_window"])
def test_a_window_past_the_end_is_a_window_error(media, name):
    with pytest.raises(WindowError, match=name) as info:
        sync_files(media["wav"], media["ogg"], **{name: (1000.0, 5.0)})
    assert isinstance(info.value, ValueError)


_HOUR_CODE = """
import sys, audiosync
r = audiosync.sync_files(sys.argv[1], sys.argv[2], drift=True)
peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmPeak")]
print(r.lag_ms, r.drift_ppm, r.confident, peak[0] if peak else "?")
"""


@needs_ffmpeg
def test_an_hour_long_pair_aligns_under_a_1_gib_address_space_cap(tmp_path):
    """Two one-hour recordings (pink noise; the second from 100 s, 125 ppm fast) under
    RLIMIT_AS = 1 GiB: one transform of both would need about 2 GB."""
    ref, oth = tmp_path / "ref.flac", tmp_path / "oth.flac"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=d=3600:c=pink:r=16000:s=7:a=0.3", "-c:a", "flac", str(ref))
    ffmpeg("-ss", "100", "-i", str(ref), "-af", "asetrate=16002,aresample=16000", "-c:a", "flac", str(oth))
    cap = 1 << 30

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    r = subprocess.run([sys.executable, "-c", _HOUR_CODE, str(ref), str(oth)], preexec_fn=limit, cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lag, ppm, confident, peak_kb = r.stdout.split()
    assert float(lag) == pytest.approx(100000.0, abs=1.0)
    assert float(ppm) == pytest.approx(125.0, abs=2.0)
    assert confident == "True"
    print(f"VmPeak {int(peak_kb) / 1024:.0f} MiB")


def _readme_json_keys() -> set[str]:
    """The keys listed after "`files --json` keys:" in the README."""
    text = open(README, encoding="utf-8").read()
    found = re.search(r"`files --json` keys:(.*?)\n\n", text, re.S)
    assert found, "the README lists the keys of files --json"
    return set(re.findall(r"`([a-z_]+)`", found.group(1)))


@needs_ffmpeg
def test_cli_json_keys_are_the_ones_the_readme_documents(media, tmp_path):
    other = write_wav(tmp_path / "other.wav", media["song"][5 * RATE:25 * RATE])
    r = subprocess.run([sys.executable, "-m", "audiosync", "files", str(media["ogg"]), str(other), "--json", "--all"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == _readme_json_keys()
    assert out["drift_ppm"] is not None and out["lag_map"] and out["matches"]
    assert set(out["lag_map"][0]) == {"time_s", "lag_ms", "confidence"}
    assert set(out["matches"][0]) == {"lag_ms", "confidence"}
    assert decode(other).size  # the capture was real audio


@needs_ffmpeg
def test_a_timeline_reports_each_inputs_drift_against_its_reference(real):
    folder, ref, song = real
    fast = _drifted(song, folder / "t_fast.opus", 10.0, 30.0, 200)
    slow = _drifted(song, folder / "t_slow.flac", 25.0, 30.0, -100, codec=("-c:a", "flac"))
    from audiosync import align

    t = align([ref, fast, slow], reference=ref)
    by = {f.path: f for f in t.files}
    assert by[ref].drift_ppm == 0.0 and by[ref].offset_ms == pytest.approx(0.0, abs=1.0)
    assert by[fast].offset_ms == pytest.approx(10000.0, abs=1.0)  # where it starts, not its middle
    assert by[slow].offset_ms == pytest.approx(25000.0, abs=1.0)
    assert by[fast].drift_ppm == pytest.approx(200.0, abs=10.0)
    assert by[slow].drift_ppm == pytest.approx(-100.0, abs=10.0)
    assert json.loads(t.to_json())["files"][1]["drift_ppm"] == pytest.approx(200.0, abs=10.0)
