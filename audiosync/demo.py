"""The built-in example: the real live pipeline on this machine, with a generated song.

It starts a private PulseAudio server when none is running (or adds a null
sink to the running one), generates a song, serves it over HTTP on
127.0.0.1, plays it into the sink from a random place, runs ``sync`` on the
sink's monitor, and compares the answer with the truth: a second, parallel
recording of the same sink located in the song. Without PulseAudio it runs
the same example through ``sync_files``. Everything it starts, it stops.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack

import numpy as np

from audiosync import ffmpeg
from audiosync.errors import AudiosyncError
from audiosync.fileserver import serving
from audiosync.producer import Producer
from audiosync.results import Progress
from audiosync.synth import make_song
from audiosync.xcorr import cross_correlation

RATE = 48_000
SONG_S = 60.0
SINK = "audiosync_demo"
TOLERANCE_MS = 50.0


def say(text: str) -> None:
    print(text, flush=True)


def _progress(p: Progress) -> None:
    say(f"  {p.describe()}")


def _serve(stack: ExitStack, folder: str) -> str:
    return stack.enter_context(serving(folder)) + "/song.ogg"


def _pulse_sink(stack: ExitStack) -> str | None:
    """Point PULSE_SERVER at a server with our null sink; None when there can be none."""
    import pulsectl

    try:
        with pulsectl.Pulse("audiosync-demo") as pulse:
            index = pulse.module_load("module-null-sink", f"sink_name={SINK} rate={RATE}")
        say(f"sound server: the running one, with a temporary null sink '{SINK}'")

        def unload():
            with pulsectl.Pulse("audiosync-demo") as pulse:
                pulse.module_unload(index)

        stack.callback(unload)
        return SINK
    except (pulsectl.PulseError, OSError):
        pass
    from audiosync.pulse_server import PrivatePulseServer

    try:
        server = PrivatePulseServer((SINK,), rate=RATE).start()
    except AudiosyncError as exc:
        say(f"sound server: none, and a private one could not start ({exc})")
        return None
    stack.callback(server.stop)
    old = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = server.server
    stack.callback(lambda: os.environ.pop("PULSE_SERVER") if old is None else os.environ.update(PULSE_SERVER=old))
    say(f"sound server: a private PulseAudio server with a null sink '{SINK}'")
    return SINK


def _live(stack: ExitStack, url: str, path: str, song: np.ndarray, sink: str, start_s: float) -> bool:
    from audiosync.control import sync

    say(f"playing the song into '{sink}' from {start_s:.2f} s (ffmpeg decodes, pacat plays)")
    _play(stack, path, sink, start_s)
    # The truth: a parallel recording of the same sink, located in the song.
    cond = threading.Condition()
    truth = Producer("truth", ["-f", "pulse", "-i", f"{sink}.monitor"], RATE, int(40 * RATE), cond)
    stack.callback(truth.stop)
    say(f"sync({url!r}, capture='{sink}.monitor'):")
    result = sync(url, capture=f"{sink}.monitor", on_progress=_progress)
    with cond:
        cond.wait_for(lambda: truth.count >= 8 * RATE or truth.done, timeout=15)
    truth.stop()
    recorded = truth.buffer[: truth.count]
    if len(recorded) < 8 * RATE or result.capture_started is None or truth.anchor is None:
        say("the parallel recording got too little audio to check the answer")
        return False
    where, coefficient = cross_correlation(song, recorded[2 * RATE : 8 * RATE])
    true_ms = 1000 * (where - 2 * RATE) / RATE + 1000 * (result.capture_started - truth.anchor)
    return _verdict(result, true_ms)


def _play(stack: ExitStack, path: str, sink: str, start_s: float) -> None:
    """Decode with ffmpeg and play with pacat, which the sink's clock paces, like a real player."""
    decoder = subprocess.Popen(
        ffmpeg.command("-ss", f"{start_s:.3f}", "-i", path, *ffmpeg.pcm_output(RATE, channels=2)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    player = subprocess.Popen(
        ["pacat", "--playback", "--raw", "--format=float32le", f"--rate={RATE}", "--channels=2",
         f"--device={sink}", "--client-name=audiosync-demo-player"],
        stdin=decoder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    decoder.stdout.close()  # pacat holds the pipe now

    def stop():
        for proc in (player, decoder):
            if proc.poll() is None:
                proc.terminate()
            proc.wait()

    stack.callback(stop)


def _offline(folder: str, url: str, song: np.ndarray, start_s: float) -> bool:
    from audiosync.offline import sync_files

    capture = song[int(start_s * RATE) : int((start_s + 20) * RATE)]
    noisy = capture + 0.01 * np.random.default_rng().standard_normal(len(capture)).astype(np.float32)
    wav = ffmpeg.encode(noisy, RATE, os.path.join(folder, "capture.wav"))
    say(f"sync_files({url!r}, 'capture.wav'), the capture cut at {start_s:.3f} s with noise:")
    result = sync_files(url, wav)
    return _verdict(result, 1000 * int(start_s * RATE) / RATE)


def _verdict(result, true_ms: float) -> bool:
    diff = result.lag_ms - true_ms
    good = result.confident and abs(diff) <= TOLERANCE_MS
    say(f"measured lag {result.lag_ms:.1f} ms (confidence {result.confidence:.3f}, "
        f"{'confident' if result.confident else 'not confident'}, after {result.interval_s:.0f} s of capture, "
        f"{result.elapsed_s:.1f} s in all)")
    say(f"true lag     {true_ms:.1f} ms -> difference {diff:+.1f} ms: {'OK' if good else 'FAILED'}")
    return good


def main(offline: bool = False) -> int:
    start_s = round(random.uniform(5.0, 25.0), 3)
    with ExitStack() as stack:
        folder = tempfile.mkdtemp(prefix="audiosync-demo-")
        stack.callback(shutil.rmtree, folder, True)
        say(f"generating {SONG_S:.0f} s of music (chords, bass, melody, drums) ...")
        song = make_song(SONG_S, RATE, seed=random.randrange(1 << 30))
        path = ffmpeg.encode(song, RATE, os.path.join(folder, "song.ogg"), "-c:a", "libvorbis", "-q:a", "6")
        url = _serve(stack, folder)
        song = ffmpeg.decode(path, RATE)  # the song as the download side decodes it: the truth is found in this
        sink = None
        if not offline:
            sink = _pulse_sink(stack)
            if sink is None:
                say("PulseAudio is not available: running the same example offline")
        if sink is None:
            ok = _offline(folder, url, song, start_s)
        else:
            ok = _live(stack, url, path, song, sink, start_s)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
