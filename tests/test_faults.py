"""Fault injection (issue 8): ffmpeg and the sound server killed mid-job, hostile HTTP
servers, the control API hammered from several threads, many offline syncs at once.

Every test is bounded in time, stops what it starts (servers, threads, processes),
and checks that the package left no ffmpeg child, no audiosync thread and no file
descriptor behind.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import socket
import struct
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import audiosync
from audiosync import AudiosyncError, CaptureError, InputError, JobBusyError, SyncJob, SyncResult

from helpers import RATE, ffmpeg, needs_ffmpeg, needs_pulse, write_wav

# Children, threads and file descriptors are counted through Linux's /proc.
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
pytestmark = [needs_ffmpeg, needs_proc]

SEED = 20250808
DEADLINE_S = 14.0  # every faulted call must end within this: before the 15 s network timeout


# --- our children, threads and file descriptors ---------------------------------------


def _our_ffmpegs(ignore: frozenset[int] = frozenset()) -> dict[int, list[str]]:
    """ffmpeg processes whose parent is this process (but for the pids ``ignore``): pid -> command line."""
    me = os.getpid()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ignore:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid != me or comm != "ffmpeg":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
        except (OSError, ValueError):
            continue
        found[int(entry)] = argv
    return found


def _kill_ffmpeg_with(text: str) -> int | None:
    """SIGKILL our ffmpeg child whose command line holds ``text``; its pid, or None."""
    for pid, argv in _our_ffmpegs().items():
        if any(text in a for a in argv):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return None
            return pid
    return None


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _audiosync_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("audiosync-")]


def _assert_clean(fds_before: int, settle_s: float = 3.0, ignore: frozenset[int] = frozenset()) -> None:
    """No ffmpeg child (but the test's own, ``ignore``), no audiosync thread, no file descriptor more than before."""
    deadline = time.monotonic() + settle_s
    while True:
        ffmpegs, threads, fds = _our_ffmpegs(ignore), _audiosync_threads(), _fd_count()
        if not ffmpegs and not threads and fds <= fds_before:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"left behind: ffmpeg {ffmpegs}, threads {threads}, fds {fds} > {fds_before}: "
                        f"{sorted(os.listdir('/proc/self/fd'), key=int)}")
        time.sleep(0.02)


def _call_with_deadline(fn, *args, deadline_s: float = DEADLINE_S, on_overrun=None, **kwargs):
    """Run fn in a thread; return ("result", value) or ("error", exc) and the seconds it took."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - judged by the caller
            box["error"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=target, name="test-call")
    thread.start()
    thread.join(deadline_s)
    took = time.monotonic() - t0
    if thread.is_alive():
        if on_overrun is not None:
            on_overrun()
        thread.join(5)
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {deadline_s} s")
    return (("error", box["error"]) if "error" in box else ("result", box["result"])), took


def _rss_kb(field: str = "VmHWM") -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --- a small HTTP server whose behaviour the test chooses ------------------------------


def _wav_header(data_bytes: int, rate: int = RATE) -> bytes:
    return (b"RIFF" + struct.pack("<I", min(0xFFFFFFFF, 36 + data_bytes)) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
            + b"data" + struct.pack("<I", min(0xFFFFFFFF, data_bytes)))


class HostileServer:
    """HTTP on 127.0.0.1: a thread accepts, one thread per connection runs ``behaviour``.

    Every loop is bounded in time and watches ``stop``, so :meth:`close` ends all
    threads whether or not the client hung up. ``hangups`` records when each
    connection's client went away (monotonic time).
    """

    MAX_CONNECTION_S = 60.0

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.hangups: list[float] = []
        self.sent = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept, name="test-hostile-accept", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name="test-hostile-conn", daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            t0 = time.monotonic()
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    if len(request) > 1 << 20 or time.monotonic() - t0 > 5 or self.stop.is_set():
                        return
                    try:
                        chunk = conn.recv(65536)
                    except socket.timeout:
                        continue
                    if not chunk:
                        return
                    request += chunk
                self.requests.append(request)
                self.behaviour(self, conn, t0)
            except OSError:  # the client hung up (EPIPE, ECONNRESET)
                self.hangups.append(time.monotonic())

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def live(self, t0: float) -> bool:
        return not self.stop.is_set() and time.monotonic() - t0 < self.MAX_CONNECTION_S

    def wait_for_hangup(self, conn: socket.socket, t0: float) -> None:
        """Send nothing more; return when the client closes, the server stops, or time is up."""
        while self.live(t0):
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable and not conn.recv(65536):
                self.hangups.append(time.monotonic())
                return

    def close(self) -> None:
        self.stop.set()
        self._acceptor.join(5)
        self.sock.close()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(5)
        alive = [t for t in threads if t.is_alive()] + ([self._acceptor] if self._acceptor.is_alive() else [])
        assert not alive, f"server threads still running: {alive}"


@pytest.fixture
def serve():
    servers = []

    def start(behaviour) -> HostileServer:
        s = HostileServer(behaviour)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def paced(data: bytes, bytes_per_s: float, content_length: int | None = None):
    """Send ``data`` with its Content-Length at a steady pace, then close."""

    def behaviour(server: HostileServer, conn: socket.socket, t0: float) -> None:
        length = len(data) if content_length is None else content_length
        server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % length)
        chunk = 8192
        for pos in range(0, len(data), chunk):
            if not server.live(t0):
                return
            server.send(conn, data[pos : pos + chunk])
            wait = t0 + (pos + chunk) / bytes_per_s - time.monotonic()
            if wait > 0:
                server.stop.wait(wait)

    return behaviour


def _wav_bytes(audio: np.ndarray) -> bytes:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return _wav_header(len(pcm)) + pcm


# --- shared media ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_media(media, tmp_path_factory):
    """A short capture of the song (with a little noise, so never a perfect 1.0) and the song as WAV bytes."""
    d = tmp_path_factory.mktemp("faults")
    song = media["song"]
    noise = 0.01 * np.random.default_rng(1).standard_normal(len(song)).astype(np.float32)
    capture = write_wav(d / "capture-5s.wav", (song + noise)[5 * RATE : int(6.5 * RATE)])
    long_capture = write_wav(d / "capture-long.wav", (song + noise)[5 * RATE : 25 * RATE])
    return {"dir": d, "capture": capture, "long_capture": long_capture, "song_wav": _wav_bytes(song)}


# --- 1. ffmpeg killed at random moments -----------------------------------------------

KILL_RUNS = 26  # per target: 52 runs in all


# A guard against a hang, not a time target: each of the 26 runs waits for the whole paced download
# (45 s of song at 8x: 5.6 s), so a run of the capture target takes about 147 s on a slow machine.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", ["download", "capture"])
def test_ffmpeg_killed_at_random_moments(target, fault_media, serve):
    """SIGKILL the download's or the capture's ffmpeg at a random moment of a short live sync."""
    rng = random.Random(f"{SEED}-{target}")
    # The download comes over HTTP at 8x real time, so it is still running when killed.
    server = serve(paced(fault_media["song_wav"], 8 * 2 * RATE))
    url = f"{server.base}/song.wav"
    capture = str(fault_media["capture"])
    marker = server.base if target == "download" else capture
    outcomes = Counter()
    for run in range(KILL_RUNS):
        fds = _fd_count()
        delay = rng.uniform(0.0, 1.2)
        job = SyncJob()
        killed: list[int | None] = []
        start = threading.Event()

        def killer():
            start.wait(5)
            time.sleep(delay)
            killed.append(_kill_ffmpeg_with(marker))

        k = threading.Thread(target=killer, name="test-killer")
        k.start()
        start.set()
        (kind, value), took = _call_with_deadline(
            job.sync, url, capture=["-re", "-i", capture], intervals=(0.3, 0.6, 1.0),
            min_confidence=1.0, on_overrun=job.abort)
        k.join(5)
        hit = bool(killed and killed[0])
        where = f"run {run}: kill {target} at {delay:.3f} s ({'hit' if hit else 'missed'})"
        assert took < DEADLINE_S, where
        if kind == "error":
            assert isinstance(value, AudiosyncError), f"{where}: {value!r}"
            # A named error only when the kill came before any audio of that side.
            assert isinstance(value, InputError if target == "download" else CaptureError), f"{where}: {value!r}"
            assert hit, f"{where}: an error although nothing was killed: {value!r}"
            outcomes[type(value).__name__] += 1
        else:
            assert isinstance(value, SyncResult), where
            assert not value.confident or value.confidence >= 1.0
            assert -1.0 <= value.coefficient <= 1.0 and 0.0 <= value.confidence <= 1.0
            if hit and target == "capture":
                assert value.reason in ("capture-ended", "exhausted"), f"{where}: {value}"
            outcomes[f"{'hit' if hit else 'missed'}:{value.reason}"] += 1
        assert job.status == "idle"
        _assert_clean(fds)
    print(target, dict(outcomes))
    hits = sum(v for k, v in outcomes.items() if not k.startswith("missed"))
    assert hits >= KILL_RUNS // 2, f"too few kills landed: {dict(outcomes)}"


@pytest.mark.timeout(60)
def test_sync_files_with_a_decoder_killed(fault_media, serve):
    """One of sync_files' two decoders killed mid-way: a result from what was decoded, or InputError."""
    rng = random.Random(f"{SEED}-files")
    server = serve(paced(fault_media["song_wav"], 10 * 2 * RATE))
    url = f"{server.base}/song.wav"
    seen = Counter()
    for run in range(6):
        fds = _fd_count()
        delay = rng.uniform(0.05, 1.0)
        reference_is_slow = run % 2 == 0
        args = (url, str(fault_media["capture"])) if reference_is_slow else (str(fault_media["capture"]), url)
        timer = threading.Timer(delay, lambda: _kill_ffmpeg_with(server.base))
        timer.start()
        (kind, value), took = _call_with_deadline(audiosync.sync_files, *args, max_seconds=60)
        timer.join()
        assert took < DEADLINE_S
        if kind == "error":
            assert isinstance(value, InputError), repr(value)
            seen[f"{type(value).__name__} at {delay:.2f} s: {value}"[:90]] += 1
        else:
            assert isinstance(value, SyncResult) and value.reason == "complete"
            assert 0.0 <= value.confidence <= 1.0
            seen[f"result at {delay:.2f} s: {value.history[0].downloaded_s:.1f} s decoded"] += 1
        _assert_clean(fds)
    print("\n".join(seen))


# --- 2. the sound server dies, the capture source goes away ---------------------------


@needs_pulse
@pytest.mark.timeout(60)
def test_pulseaudio_killed_during_capture(media, pulse, play):
    player = play(media["ogg"], "testsink", 5.0)
    mine = frozenset({player.decoder.pid})
    fds = _fd_count()
    job = SyncJob()

    def kill_server_when_recording():
        deadline = time.monotonic() + 10
        while not _our_ffmpegs(mine) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(2.0)  # ffmpeg's pulse input needs about 1.5 s to deliver audio
        pulse.proc.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_server_when_recording, name="test-killer")
    killer.start()
    (kind, value), took = _call_with_deadline(
        job.sync, str(media["ogg"]), capture="testsink.monitor", intervals=(3, 6, 10),
        min_confidence=1.0, on_overrun=job.abort)
    killer.join()
    assert pulse.proc.wait(5) == -signal.SIGKILL
    if kind == "error":
        assert isinstance(value, CaptureError), repr(value)
    else:
        assert not value.confident and value.reason == "capture-ended", value
    assert took < DEADLINE_S
    _assert_clean(fds, ignore=mine)


@needs_pulse
@pytest.mark.timeout(60)
@pytest.mark.parametrize("which", ["recorded-sink", "every-sink"])
def test_capture_source_removed_while_recording(media, pulse, play, which):
    """Unload the recorded sink's module (PulseAudio moves the recording to the other sink's
    monitor), or every sink (the recording is killed): the job ends in time either way."""
    import pulsectl

    player = play(media["ogg"], "testsink", 5.0)
    mine = frozenset({player.decoder.pid})
    fds = _fd_count()
    job = SyncJob()

    def unload_when_recording():
        deadline = time.monotonic() + 10
        while not _our_ffmpegs(mine) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(2.0)
        with pulsectl.Pulse("audiosync-test") as p:
            for sink in p.sink_list():
                if which == "every-sink" or sink.name == "testsink":
                    p.module_unload(sink.owner_module)

    unloader = threading.Thread(target=unload_when_recording, name="test-unloader")
    unloader.start()
    (kind, value), took = _call_with_deadline(
        job.sync, str(media["ogg"]), capture="testsink.monitor", intervals=(1, 2, 4),
        min_confidence=1.0, on_overrun=job.abort)
    unloader.join()
    assert took < DEADLINE_S
    if kind == "error":
        assert isinstance(value, CaptureError), repr(value)
    else:
        assert isinstance(value, SyncResult) and not value.confident
        if which == "every-sink":
            assert value.reason == "capture-ended", value
    _assert_clean(fds, ignore=mine)


# --- 3. hostile HTTP servers -----------------------------------------------------------


def _stall_after_headers(server, conn, t0):
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: audio/ogg\r\nContent-Length: 10000000\r\n\r\n")
    server.wait_for_hangup(conn, t0)


@pytest.mark.timeout(60)
def test_server_stalls_after_headers_network_timeout(fault_media, serve, monkeypatch):
    """ffmpeg's -rw_timeout ends the stalled download: InputError, soon after NETWORK_TIMEOUT_S."""
    monkeypatch.setattr("audiosync.download.NETWORK_TIMEOUT_S", 2.0)
    server = serve(_stall_after_headers)
    fds = _fd_count()
    (kind, value), took = _call_with_deadline(
        audiosync.SyncJob().sync, f"{server.base}/song.ogg",
        capture=["-re", "-i", str(fault_media["capture"])], intervals=(0.3, 0.6, 1.0))
    assert kind == "error" and isinstance(value, InputError), value
    assert "cannot open or decode" in str(value)
    assert 2.0 <= took < 6.0, took
    _assert_clean(fds)
    deadline = time.monotonic() + 3
    while not server.hangups and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.hangups, "ffmpeg never hung up on the stalled server"


@pytest.mark.timeout(60)
def test_server_stalls_after_headers_sync_timeout(fault_media, serve):
    """With the default 15 s network timeout, sync(timeout=3) still returns in about 3 s."""
    server = serve(_stall_after_headers)
    fds = _fd_count()
    (kind, value), took = _call_with_deadline(
        audiosync.SyncJob().sync, f"{server.base}/song.ogg",
        capture=["-re", "-i", str(fault_media["long_capture"])], intervals=(3, 6), timeout=3)
    assert kind == "result", value
    assert value.reason == "timeout" and not value.confident and value.confidence == 0.0
    assert 3.0 <= took < 3.0 + 3.0, took  # the timeout, then SIGTERM (and SIGKILL after 0.3 s) of each ffmpeg
    _assert_clean(fds)


@pytest.mark.timeout(60)
def test_server_stalls_after_headers_sync_files_timeout(fault_media, serve):
    server = serve(_stall_after_headers)
    fds = _fd_count()
    (kind, value), took = _call_with_deadline(
        audiosync.sync_files, f"{server.base}/song.ogg", str(fault_media["capture"]), timeout=2)
    assert kind == "error" and isinstance(value, InputError) and "timeout" in str(value), value
    assert took < 2.0 + 3.0, took
    _assert_clean(fds)


def _truncated(data: bytes, fraction: float):
    def behaviour(server, conn, t0):
        server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data))
        server.send(conn, data[: int(len(data) * fraction)])
        # and close, with bytes still owed

    return behaviour


@pytest.mark.timeout(60)
def test_truncated_download(fault_media, serve, media):
    """Content-Length promises 45 s, the server sends 27 s and closes: a capture in the part
    that came is found exactly; one beyond it is not found confidently."""
    server = serve(_truncated(fault_media["song_wav"], 0.6))
    fds = _fd_count()
    inside = write_wav(fault_media["dir"] / "inside.wav", media["song"][10 * RATE : 14 * RATE])
    beyond = write_wav(fault_media["dir"] / "beyond.wav", media["song"][33 * RATE : 37 * RATE])
    result = audiosync.SyncJob().sync(f"{server.base}/song.wav", capture=["-i", str(inside)], intervals=(1, 2, 4))
    assert result.confident and result.lag_ms == pytest.approx(10000.0, abs=1.0), result
    result = audiosync.SyncJob().sync(f"{server.base}/song.wav", capture=["-i", str(beyond)], intervals=(1, 2, 4))
    assert not result.confident and result.reason in ("exhausted", "capture-ended"), result
    offline = audiosync.sync_files(f"{server.base}/song.wav", str(inside))
    assert offline.confident and offline.lag_ms == pytest.approx(10000.0, abs=1.0)
    assert offline.history[0].downloaded_s == pytest.approx(27.0, abs=0.1)  # what came, all of it
    _assert_clean(fds)


def _not_audio(server, conn, t0):
    junk = np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: audio/ogg\r\nContent-Length: %d\r\n\r\n" % len(junk))
    server.send(conn, junk)


@pytest.mark.timeout(60)
def test_bytes_that_are_not_audio(fault_media, serve):
    server = serve(_not_audio)
    fds = _fd_count()
    with pytest.raises(InputError, match="cannot open or decode"):
        audiosync.SyncJob().sync(f"{server.base}/song.ogg", capture=["-i", str(fault_media["capture"])])
    with pytest.raises(InputError, match="cannot open or decode"):
        audiosync.sync_files(f"{server.base}/song.ogg", str(fault_media["capture"]))
    _assert_clean(fds)


def _endless(song: np.ndarray, bytes_per_s: float | None = None):
    """A WAV whose header promises 4 GB: the song, then noise for ever, until the client leaves.

    (Not the song over and over: every repetition would be an equally good answer,
    and the phase-transform method rightly calls that not confident.)
    """
    pcm = (np.clip(song, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    noise = (np.random.default_rng(9).standard_normal(4 * RATE) * 3000).astype("<i2").tobytes()

    def behaviour(server, conn, t0):
        server.send(conn, b"HTTP/1.0 200 OK\r\nContent-Type: audio/wav\r\n\r\n" + _wav_header(0xFFFFFFFF))
        chunk, sent = 1 << 16, 0
        while server.live(t0):
            if sent < len(pcm):
                data = pcm[sent : sent + chunk]
            else:
                pos = (sent - len(pcm)) % len(noise)
                data = noise[pos : pos + chunk]
            server.send(conn, data)
            sent += len(data)
            if bytes_per_s is not None:
                wait = t0 + sent / bytes_per_s - time.monotonic()
                if wait > 0:
                    server.stop.wait(wait)

    return behaviour


# What a live sync may hold, whatever the download sends: the download buffer
# (max_download_s, here 360 s of float32 at 16 kHz, 23 MB), the capture buffer,
# and the kernel's transforms of at most that (a linear transform of 363 s:
# three arrays of 23 MB, plus plans), so about 100 MB; an unbounded download
# would pass that in under a second on this stream (it is decoded at several
# hundred times real time).
LIVE_MAX_DOWNLOAD_S = 360.0
LIVE_RSS_BOUND_MB = 200


@pytest.mark.timeout(60)
def test_endless_stream_live_sync_stays_bounded(fault_media, serve, media):
    server = serve(_endless(media["song"]))
    fds = _fd_count()
    peak_ok = _reset_peak_rss()
    before = _rss_kb("VmRSS")
    capture = write_wav(fault_media["dir"] / "endless-cap.wav", media["song"][6 * RATE : 16 * RATE])
    result = audiosync.SyncJob().sync(f"{server.base}/endless.wav", capture=["-re", "-i", str(capture)],
                                      intervals=(0.5, 1.0, 3.0), max_download_s=LIVE_MAX_DOWNLOAD_S)
    grew_mb = ((_rss_kb("VmHWM") if peak_ok else _rss_kb("VmRSS")) - before) / 1024
    # Confident only once the download stopped at max_download_s: the rest could have held a better place.
    assert result.confident and result.lag_ms == pytest.approx(6000.0, abs=1.0), result
    assert all(p.downloaded_s <= LIVE_MAX_DOWNLOAD_S for p in result.history)
    assert result.history[-1].downloaded_s == LIVE_MAX_DOWNLOAD_S
    assert grew_mb < LIVE_RSS_BOUND_MB, f"RSS grew by {grew_mb:.0f} MB"
    _assert_clean(fds)
    deadline = time.monotonic() + 3
    while not server.hangups and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.hangups, "the download never hung up on the endless stream"


@pytest.mark.timeout(60)
def test_endless_stream_live_sync_timeout(fault_media, serve, media):
    server = serve(_endless(media["song"]))
    fds = _fd_count()
    noise = write_wav(fault_media["dir"] / "noise.wav",
                      0.3 * np.random.default_rng(3).standard_normal(20 * RATE).astype(np.float32))
    (kind, value), took = _call_with_deadline(
        audiosync.SyncJob().sync, f"{server.base}/endless.wav", capture=["-re", "-i", str(noise)],
        intervals=(5, 10), timeout=2.0)
    assert kind == "result" and value.reason == "timeout" and not value.confident, value
    assert 2.0 <= took < 2.0 + 3.0, took
    _assert_clean(fds)


# sync_files with max_seconds=30: two buffers of 30 s (5.8 MB each) and one linear
# transform of 40 s (two arrays of 7.7 MB, plus plans): well under 100 MB.
FILES_RSS_BOUND_MB = 100


@pytest.mark.timeout(60)
def test_endless_stream_sync_files_is_bounded_by_max_seconds(fault_media, serve, media):
    server = serve(_endless(media["song"]))
    fds = _fd_count()
    peak_ok = _reset_peak_rss()
    before = _rss_kb("VmRSS")
    capture = write_wav(fault_media["dir"] / "endless-cap.wav", media["song"][6 * RATE : 16 * RATE])
    (kind, value), took = _call_with_deadline(
        audiosync.sync_files, f"{server.base}/endless.wav", str(capture), max_seconds=30)
    grew_mb = ((_rss_kb("VmHWM") if peak_ok else _rss_kb("VmRSS")) - before) / 1024
    assert kind == "result", value
    assert value.reason == "complete" and value.confident and value.lag_ms == pytest.approx(6000.0, abs=1.0)
    assert value.history[0].downloaded_s == pytest.approx(30.0)
    assert grew_mb < FILES_RSS_BOUND_MB, f"RSS grew by {grew_mb:.0f} MB"
    _assert_clean(fds)


@pytest.mark.timeout(90)
def test_endless_stream_sync_files_stops_decoding_at_the_timeout(fault_media, serve, media, monkeypatch):
    """timeout=2 on an endless stream (paced at 200x real time, so the one-hour buffer would
    take 18 s to fill): decoding must have stopped when the kernel starts on what was decoded.
    (Issue 8 found it decoding on while the kernel ran; fixed in fab7ed5.)"""
    from audiosync.xcorr import Correlator

    server = serve(_endless(media["song"], bytes_per_s=200 * 2 * RATE))
    fds = _fd_count()
    capture = write_wav(fault_media["dir"] / "endless-cap.wav", media["song"][6 * RATE : 16 * RATE])
    decoding_during_kernel = []
    find = Correlator.find

    def spy(self, *args, **kwargs):
        decoding_during_kernel.append(
            [pid for pid, argv in _our_ffmpegs().items() if any(server.base in a for a in argv)])
        return find(self, *args, **kwargs)

    monkeypatch.setattr(Correlator, "find", spy)
    (kind, value), took = _call_with_deadline(
        audiosync.sync_files, f"{server.base}/endless.wav", str(capture), timeout=2.0, deadline_s=60)
    assert kind == "result" and value.reason == "timeout" and not value.confident, value
    _assert_clean(fds)
    # (The method may call the kernel twice: the phase transform, then the plain correlation.)
    assert decoding_during_kernel and all(d == [] for d in decoding_during_kernel), \
        f"ffmpeg still decoding while the kernel ran: {decoding_during_kernel}"


# --- 4. the control API from several threads -------------------------------------------


@pytest.mark.timeout(90)
def test_control_api_from_many_threads(fault_media, media):
    """abort/pause/resume/status (360 calls) in random order from 4 threads while jobs start and finish."""
    fds = _fd_count()
    stop = threading.Event()
    finished = Counter()
    failures: list[BaseException] = []

    def runner():
        while not stop.is_set():
            try:
                result = audiosync.sync(str(media["wav"]), capture=["-re", "-i", str(fault_media["capture"])],
                                        intervals=(0.2, 0.4), min_confidence=1.0)
                finished[result.reason] += 1
            except JobBusyError:
                finished["busy"] += 1
                time.sleep(0.01)
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)
                return

    calls = Counter()
    states = {"idle", "running", "paused", "aborting"}
    t0 = time.monotonic()

    def chaos(seed):
        rng = random.Random(seed)
        for _ in range(90):
            # Storms of every call (0.3 s) alternate with calm (0.9 s of status and resume
            # only), so that some jobs also get to finish on their own.
            storm = (time.monotonic() - t0) % 1.2 < 0.3
            name = rng.choices(["status", "pause", "resume", "abort"], weights=[4, 2, 3, 1])[0] \
                if storm else rng.choice(["status", "status", "resume"])
            value = getattr(audiosync, name)()
            if name == "status":
                assert value in states, value
            else:
                assert isinstance(value, bool), (name, value)
            calls[f"{name}:{value}"] += 1
            time.sleep(rng.uniform(0.0, 0.06))

    run_thread = threading.Thread(target=runner, name="test-runner")
    run_thread.start()
    chaos_threads = [threading.Thread(target=chaos, args=(f"{SEED}-{i}",), name=f"test-chaos-{i}")
                     for i in range(4)]
    for t in chaos_threads:
        t.start()
    for t in chaos_threads:
        t.join(30)
    assert not any(t.is_alive() for t in chaos_threads), "a control call deadlocked"
    stop.set()
    deadline = time.monotonic() + 10
    while run_thread.is_alive() and time.monotonic() < deadline:
        audiosync.abort()
        run_thread.join(0.1)
    assert not run_thread.is_alive(), f"the job did not end; status {audiosync.status()!r}"
    print(dict(finished), dict(calls))
    assert not failures, failures
    assert sum(calls.values()) == 360
    assert sum(v for k, v in finished.items() if k != "busy") >= 3, dict(finished)
    assert finished["aborted"] >= 1 and calls["pause:True"] >= 1 and calls["resume:True"] >= 1, dict(calls)
    assert audiosync.status() == "idle"
    _assert_clean(fds)


# --- 5. eight offline syncs at once ----------------------------------------------------


@pytest.mark.timeout(120)
def test_eight_sync_files_at_once_match_one_after_another(media, tmp_path):
    song = media["song"]
    offsets = [1.5, 4.0, 7.25, 10.0, 13.3, 17.0, 21.1, 25.0]
    formats = ["wav", "mp3", "ogg", "wav", "opus", "m4a", "wav", "mp3"]
    references = ["wav", "ogg", "wav", "mp3", "wav", "opus", "m4a", "ogg"]
    pairs = []
    for i, (offset, fmt, ref) in enumerate(zip(offsets, formats, references)):
        wav = write_wav(tmp_path / f"cap{i}.wav", song[int(offset * RATE) : int((offset + 6) * RATE)])
        other = wav
        if fmt != "wav":
            other = tmp_path / f"cap{i}.{fmt}"
            ffmpeg("-i", str(wav), str(other))
        pairs.append((str(media[ref]), str(other), offset))
    fds = _fd_count()

    def one(pair):
        r = audiosync.sync_files(pair[0], pair[1], max_seconds=60)
        return r.lag_samples / r.sample_rate, r.coefficient, r.confident

    sequential = [one(p) for p in pairs]
    barrier = threading.Barrier(len(pairs))

    def together(pair):
        barrier.wait(10)
        return one(pair)

    with ThreadPoolExecutor(len(pairs), thread_name_prefix="test-pool") as pool:
        concurrent = list(pool.map(together, pairs, timeout=90))
    assert concurrent == sequential
    for (lag, coefficient, confident), (_, _, offset) in zip(sequential, pairs):
        assert confident and abs(lag - offset) < 0.002, (lag, offset)
    _assert_clean(fds)


@pytest.mark.timeout(60)
def test_a_full_buffer_ends_ffmpeg_blocked_in_its_write(monkeypatch):
    """An endless fast source fills a small buffer: ffmpeg is then blocked writing
    into the full pipe, where SIGTERM alone does not stop it (the write restarts;
    seen as a hung sync_files on an endless stream). The producer must still end,
    and reap ffmpeg, by itself. The signal is held back until ffmpeg is surely
    blocked."""
    from audiosync.producer import Producer

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    terminate = Producer._terminate

    def late_terminate(self):
        time.sleep(0.5)
        terminate(self)

    monkeypatch.setattr(Producer, "_terminate", late_terminate)
    cond = threading.Condition()
    producer = Producer("full", ["-f", "lavfi", "-i", "anoisesrc=r=48000:a=0.3"], RATE, RATE // 2, cond)
    try:
        with cond:
            assert cond.wait_for(lambda: producer.done, timeout=10), "the producer never ended"
        assert producer.full and producer.error is None and producer.count == RATE // 2
        assert producer._proc.poll() is not None  # reaped before done was set
    finally:
        producer.stop()
