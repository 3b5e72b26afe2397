"""Keep a video in step with the song the desktop is playing.

    python examples/player_sync.py SONG [VIDEO] [--capture SOURCE] [--seconds S]

SONG is the song's audio (a URL or a file). The desktop is recorded through
PulseAudio (or PipeWire's pulse server) into memory only; a tracker follows
the song, and at every change (the song found, a seek, a pause, a skip) the
video is moved to the song's position. With mpv installed, VIDEO plays in
mpv and is driven through its JSON IPC socket; otherwise the seeks are
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import audiosync


class Mpv:
    """mpv playing ``video``, driven through its JSON IPC socket."""

    def __init__(self, video: str):
        self.dir = tempfile.mkdtemp(prefix="player-sync-")
        path = os.path.join(self.dir, "mpv.sock")
        self.proc = subprocess.Popen(["mpv", "--really-quiet", "--no-audio", "--pause",
                                      f"--input-ipc-server={path}", video])
        while not os.path.exists(path):
            if self.proc.poll() is not None:
                raise SystemExit("mpv ended before it listened")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)

    def command(self, *args) -> None:
        self.sock.sendall(json.dumps({"command": list(args)}).encode() + b"\n")

    def seek(self, seconds: float) -> None:
        self.command("set_property", "time-pos", seconds)
        self.command("set_property", "pause", False)

    def hold(self) -> None:
        self.command("set_property", "pause", True)

    def close(self) -> None:
        self.sock.close()
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Printer:
    """What the video would do, printed."""

    def seek(self, seconds: float) -> None:
        print(f"seek video to {seconds:.3f} s", flush=True)

    def hold(self) -> None:
        print("pause video: the song is not known", flush=True)

    def close(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("song")
    ap.add_argument("video", nargs="?")
    ap.add_argument("--capture", help="PulseAudio source (default: the default output's monitor)")
    ap.add_argument("--seconds", type=float, help="stop after S seconds (default: at Ctrl-C)")
    args = ap.parse_args()
    video = Mpv(args.video) if args.video and shutil.which("mpv") else Printer()
    following: list[audiosync.Tracker] = []

    def on_change(result: audiosync.SyncResult) -> None:
        if not result.confident:
            video.hold()
            return
        # The song's position now, not at the audio's first sample: the search took time.
        now = time.monotonic()
        position_ms = following[0].lag_at(now) if following else None
        if position_ms is None:
            position_ms = result.lag_ms + 1000.0 * (now - result.capture_started)
        video.seek(position_ms / 1000.0)

    try:
        with audiosync.Listener(args.capture) as listener:
            tracker = listener.track(args.song, on_change=on_change, since=time.monotonic())
            following.append(tracker)
            deadline = None if args.seconds is None else time.monotonic() + args.seconds
            while tracker.running and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.2)
            if tracker.error:
                print(f"cannot follow the song: {tracker.error}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        video.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
