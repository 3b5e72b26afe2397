"""The audiosync command through its real entry point, in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import RATE, needs_ffmpeg, needs_pulse, write_wav

pytestmark = [needs_ffmpeg, pytest.mark.timeout(180)]

EXE = shutil.which("audiosync", path=str(Path(sys.executable).parent)) or shutil.which("audiosync")


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    assert EXE, "the audiosync command is not installed"
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ.copy(), cwd="/")


@pytest.fixture(scope="module")
def capture_wav(media, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    song = media["song"]
    return write_wav(d / "capture.wav", song[int(12.5 * RATE) : int(32.5 * RATE)])


def test_files_human_output(media, capture_wav):
    r = cli("files", str(media["opus"]), str(capture_wav))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "lag 12500.0 ms, confidence " + r.stdout.split("confidence ")[1].strip()
    assert "confident" in r.stdout and "NOT" not in r.stdout


def test_files_json_and_calibration(media, capture_wav):
    r = cli("files", str(media["ogg"]), str(capture_wav), "--json", "--calibration", "-40")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # exactly one JSON object on stdout
    assert {"lag_ms", "confident", "confidence", "interval_s", "elapsed_s"} <= data.keys()
    assert data["lag_ms"] == pytest.approx(12460.0, abs=1.0)
    assert data["confident"] is True and data["interval_s"] == pytest.approx(20.0, abs=0.05)


def test_files_other_longer_than_reference(media, tmp_path):
    short = write_wav(tmp_path / "short.wav", media["song"][int(3 * RATE) : int(13 * RATE)])
    r = cli("files", str(short), str(media["wav"]), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["lag_ms"] == pytest.approx(-3000.0, abs=1.0)


def test_files_plot_is_a_png(media, capture_wav, tmp_path):
    png = tmp_path / "plot.png"
    r = cli("files", str(media["ogg"]), str(capture_wav), "--plot", str(png), "--max-seconds", "40")
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    import matplotlib.image

    # three panels: the correlation, the aligned signals, the lag map (the CLI always measures drift)
    assert matplotlib.image.imread(str(png)).shape[:2] == (975, 1000)


def test_files_not_confident_exits_1(media, tmp_path):
    noise = write_wav(tmp_path / "noise.wav", 0.3 * np.random.default_rng(1).standard_normal(4 * RATE))
    r = cli("files", str(media["ogg"]), str(noise), "--json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["confident"] is False


@pytest.mark.parametrize("which", ["missing", "unreadable"])
def test_files_bad_input_exits_3_with_one_line(media, tmp_path, which):
    path = tmp_path / "nope.ogg" if which == "missing" else media["dir"] / "notaudio.ogg"
    r = cli("files", str(media["ogg"]), str(path))
    assert r.returncode == 3
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiosync: error:") and "Traceback" not in r.stderr
    debug = cli("files", str(media["ogg"]), str(path), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_bad_usage_exits_2():
    assert cli().returncode == 2
    assert cli("files", "only-one").returncode == 2
    assert cli("live").returncode == 2
    assert cli("live", "x.ogg", "--title", "t").returncode == 2
    assert cli("files", "a", "b", "--sample-rate", "lots").returncode == 2
    # An option value the library refuses is bad usage too, not a failed job.
    assert cli("files", "a", "b", "--sample-rate", "7").returncode == 2


def test_live_with_a_capture_file(media, capture_wav):
    r = cli("live", str(media["ogg"]), "--capture", str(capture_wav), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["lag_ms"] == pytest.approx(12500.0, abs=1.0)
    assert "captured: lag" in r.stderr  # progress goes to stderr


def test_live_with_a_hint(media, capture_wav):
    r = cli("live", str(media["ogg"]), "--capture", str(capture_wav), "--json", "--hint", "12000",
            "--hint-window", "1500")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["lag_ms"] == pytest.approx(12500.0, abs=1.0) and data["evidence"] > 0
    for bad in (["--hint", "nan"], ["--hint-window", "0"], ["--hint-window", "-1"], ["--hint", "soon"]):
        r = cli("live", str(media["ogg"]), "--capture", str(capture_wav), *bad)
        assert r.returncode == 2 and r.stdout == "" and r.stderr.strip().splitlines()[-1].startswith(
            ("audiosync: error:", "audiosync live: error:")), (bad, r.stderr)


def test_python_m_audiosync(media, capture_wav):
    r = subprocess.run([sys.executable, "-m", "audiosync", "files", str(media["ogg"]), str(capture_wav), "--json"],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0 and json.loads(r.stdout)["confident"]


@needs_pulse
def test_live_from_the_desktop(media, pulse, play, tmp_path):
    play(media["ogg"], "testsink", 6.0)
    png = tmp_path / "live.png"
    r = cli("live", str(media["ogg"]), "--capture", "testsink.monitor", "--plot", str(png), env=pulse.env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("lag ") and png.read_bytes()[:4] == b"\x89PNG"


@needs_pulse
def test_setup_without_the_player_exits_1(pulse):
    r = cli("setup", "NoSuchPlayer", env=pulse.env)
    assert r.returncode == 1 and "could not set up" in r.stderr


@needs_pulse
def test_demo_finds_the_true_lag():
    env = os.environ.copy()
    env.pop("PULSE_SERVER", None)
    r = cli("demo", env=env, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "difference" in r.stdout and ": OK" in r.stdout
    assert "private PulseAudio" in r.stdout or "running one" in r.stdout


def test_demo_offline():
    r = cli("demo", "--offline", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sync_files" in r.stdout and ": OK" in r.stdout



def _ffmpeg_children() -> list[int]:
    """This process's ffmpeg children, running or not yet reaped."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                comm, _, rest = f.read().partition("(")[2].rpartition(")")
        except OSError:
            continue
        if comm == "ffmpeg" and int(rest.split()[1]) == os.getpid():
            pids.append(int(entry))
    return pids


def test_files_refused_option_leaves_no_decoder_running(media, capture_wav):
    # The command starts its decoders before the options are judged: refused, they are stopped
    # and reaped (in this process, so that nothing else reaps them).
    from audiosync.cli import main
    assert _ffmpeg_children() == []
    assert main(["files", str(media["ogg"]), str(capture_wav), "--min-confidence", "2"]) == 2
    assert _ffmpeg_children() == []
    assert main(["files", str(media["ogg"]), str(capture_wav)]) == 0
    assert _ffmpeg_children() == []
