"""Shared fixtures: generated songs encoded by real ffmpeg, a local HTTP server,
a private PulseAudio server, and a leak check after every test."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
import pytest

from audiosync.synth import make_song

from helpers import RATE, SONG_SECONDS, ffmpeg, write_wav


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict:
    """A generated song as WAV, Vorbis, Opus, AAC and MP3, and its samples."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    d = tmp_path_factory.mktemp("media")
    song = make_song(SONG_SECONDS, RATE, seed=42)
    wav = write_wav(d / "song.wav", song)
    files = {"wav": wav}
    for ext, codec in (("ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
                       ("opus", ["-c:a", "libopus", "-b:a", "128k"]),
                       ("m4a", ["-c:a", "aac", "-b:a", "160k"]),
                       ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"])):
        files[ext] = d / f"song.{ext}"
        ffmpeg("-i", str(wav), *codec, str(files[ext]))
    (d / "page.html").write_text(
        '<html><head><title>Song</title></head><body><audio src="song.ogg" controls></audio></body></html>'
    )
    (d / "notaudio.ogg").write_text("this is not audio at all\n" * 100)
    return {"dir": d, "song": song, **files}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def http_base(media) -> str:
    """Serve the media folder on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(media["dir"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def pulse(monkeypatch):
    """A private PulseAudio server with null sinks 'testsink' (default) and 'realout'."""
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed")
    from audiosync.pulse_server import PrivatePulseServer

    server = PrivatePulseServer(("testsink", "realout"), rate=RATE).start()
    monkeypatch.setenv("PULSE_SERVER", server.server)
    try:
        yield server
    finally:
        server.stop()


class Player:
    """A file played into a sink from ``start_s``: ffmpeg decodes, pacat plays at the sink's pace."""

    def __init__(self, path, sink: str, start_s: float = 0.0, name: str = "TestPlayer"):
        self.decoder = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-ss", f"{start_s:.3f}",
             "-i", str(path), "-ac", "2", "-ar", str(RATE), "-f", "f32le", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.player = subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=float32le", f"--rate={RATE}", "--channels=2",
             f"--device={sink}", f"--property=application.name={name}"],
            stdin=self.decoder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.decoder.stdout.close()

    def stop(self):
        for proc in (self.player, self.decoder):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=5)


@pytest.fixture
def play():
    players = []

    def start(path, sink="testsink", start_s=0.0, name="TestPlayer"):
        p = Player(path, sink, start_s, name)
        players.append(p)
        return p

    start.players = players
    yield start
    for p in players:
        p.stop()


def _children(pid: int) -> list[tuple[int, str]]:
    out = []
    if not os.path.isdir("/proc"):  # macOS: nothing to walk
        return out
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            out.append((int(entry), comm))
    return out


@pytest.fixture(autouse=True)
def no_leftovers():
    """After every test: no ffmpeg child of ours and no audiosync thread remain."""
    yield
    deadline = time.monotonic() + 3.0
    while True:
        ffmpegs = [c for c in _children(os.getpid()) if c[1] == "ffmpeg"]
        threads = [t.name for t in threading.enumerate() if t.name.startswith("audiosync-")]
        if not ffmpegs and not threads:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"left behind: ffmpeg {ffmpegs}, threads {threads}")
        time.sleep(0.05)


# Real music for the tests that need it: Frozen Bubble's two-player theme from
# Debian's fb-music-high (1.4 MB; a tracker module, so its patterns repeat
# exactly, as loop-built music does). Fetched once with apt-get download, from
# the package registry only, into a cache folder; nothing is committed.
REAL_SONG_PACKAGE = "fb-music-high"
REAL_SONG_PATH = "usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.xm"


@pytest.fixture(scope="session")
def real_song() -> str:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "audiosync-tests")
    path = os.path.join(cache, REAL_SONG_PACKAGE, REAL_SONG_PATH)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        r = subprocess.run(["apt-get", "download", REAL_SONG_PACKAGE], cwd=cache, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:  # a test that needs real music fails, never silently skips
            pytest.fail(f"cannot fetch {REAL_SONG_PACKAGE} with apt-get download (run apt-get update?): "
                        f"{r.stderr.strip()[-300:]}")
        deb = next(f for f in sorted(os.listdir(cache)) if f.startswith(REAL_SONG_PACKAGE + "_") and f.endswith(".deb"))
        subprocess.run(["dpkg-deb", "-x", os.path.join(cache, deb), os.path.join(cache, REAL_SONG_PACKAGE)],
                       check=True, timeout=120)
    return path
