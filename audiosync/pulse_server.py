"""A private PulseAudio server with null sinks, for the demo and the tests.

It runs as our child in the foreground (not daemonized), with its own
runtime and home folders, so it never touches the user's sound server and
stopping it leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from audiosync.errors import CaptureError

__all__ = ["PrivatePulseServer"]

_START_TIMEOUT_S = 10.0


class PrivatePulseServer:
    """Start ``pulseaudio`` with null sinks named ``sinks`` (the first is the default).

    Use as a context manager; ``server`` is the string for ``PULSE_SERVER``
    and ``env`` a copy of the environment with it set.
    """

    def __init__(self, sinks: tuple[str, ...] = ("audiosync_demo",), rate: int = 48000):
        if not sinks:
            raise ValueError("at least one sink is needed")
        self.sinks = sinks
        self.rate = rate
        self.dir: str | None = None
        self.proc: subprocess.Popen | None = None
        self.server = ""

    def start(self) -> "PrivatePulseServer":
        exe = shutil.which("pulseaudio")
        if exe is None:
            raise CaptureError("pulseaudio is not installed (Debian/Ubuntu: sudo apt-get install pulseaudio)")
        self.dir = tempfile.mkdtemp(prefix="audiosync-pulse-")
        sock = os.path.join(self.dir, "native")
        self.server = f"unix:{sock}"
        env = dict(os.environ, HOME=self.dir, XDG_RUNTIME_DIR=self.dir,
                   XDG_CONFIG_HOME=self.dir, PULSE_RUNTIME_PATH=self.dir, PULSE_STATE_PATH=self.dir)
        env.pop("PULSE_SERVER", None)
        argv = [exe, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
                "--log-target=stderr", "--log-level=error",
                f"--load=module-native-protocol-unix socket={sock} auth-anonymous=1"]
        for name in self.sinks:
            argv.append(f"--load=module-null-sink sink_name={name} rate={self.rate} "
                        f"sink_properties=device.description={name}")
        self._log = tempfile.TemporaryFile(dir=self.dir)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, env=env)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._log.seek(0)
                message = self._log.read().decode("utf-8", "replace").strip()[-400:]
                self.stop()
                raise CaptureError(f"could not start a private PulseAudio server: {message or 'timed out'}")
            time.sleep(0.02)
        return self

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, PULSE_SERVER=self.server)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
            self._log.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "PrivatePulseServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
