"""FFTW wisdom in the user's cache folder: measured plans survive the process.

Loaded on import (a missing, corrupt or foreign file is ignored, with a
debug log); saved after plans are made with more than FFTW_ESTIMATE's
effort, for example by :func:`prepare`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable

from audiosync import _xcorr
from audiosync.xcorr import working_length

__all__ = ["load", "path", "prepare", "save", "set_effort"]

log = logging.getLogger("audiosync")


def _cache_dir() -> str:
    if os.environ.get("AUDIOSYNC_CACHE_DIR"):
        return os.environ["AUDIOSYNC_CACHE_DIR"]
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/audiosync")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "audiosync")


def _machine_key() -> str:
    # Wisdom is only good for the FFTW build and the CPU that measured it.
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    digest = hashlib.sha1(f"{_xcorr.fftw_version}|{platform.machine()}|{flags}".encode()).hexdigest()[:12]
    return f"{platform.machine()}-{digest}"


def path(single: bool) -> str:
    """The wisdom file of one precision for this machine and FFTW build."""
    return os.path.join(_cache_dir(), f"wisdom-{_machine_key()}-{'float' if single else 'double'}.txt")


def load() -> tuple[bool, bool]:
    """Import this machine's wisdom (double, single); False where there is none or it is unusable."""
    loaded = []
    for single in (False, True):
        p = path(single)
        ok = False
        if os.path.isfile(p):
            ok = _xcorr.import_wisdom(os.fsencode(p), single)
            if not ok:
                log.debug("ignoring FFTW wisdom that FFTW cannot read: %s", p)
        loaded.append(ok)
    return loaded[0], loaded[1]


def save() -> None:
    """Write the current wisdom of both precisions, atomically; failures are logged, not raised."""
    folder = _cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        for single in (False, True):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".wisdom-")
            os.close(fd)
            try:
                if _xcorr.export_wisdom(os.fsencode(tmp), single):
                    os.replace(tmp, path(single))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except OSError as exc:
        log.debug("could not save FFTW wisdom in %s: %s", folder, exc)


def set_effort(effort: str = "estimate", time_limit: float | None = None) -> None:
    """Planner effort for sizes the wisdom does not know: estimate (default), measure or patient."""
    if effort not in _xcorr.EFFORTS:
        raise ValueError(f"effort must be one of {sorted(_xcorr.EFFORTS)}, got {effort!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")
    _xcorr.set_effort(effort, time_limit)


def prepare(seconds: Iterable[float] = (3, 6, 10, 15, 20, 30), sample_rate: int = 48000, *,
            effort: str = "measure", time_limit: float | None = None,
            precisions: Iterable[str] = ("single",)) -> float:
    """Measure plans for the live schedule's sizes (2x each interval) and save them as wisdom.

    Returns the seconds spent planning. Run once per machine; later
    processes find the plans in the wisdom at no cost.
    """
    old = _xcorr.get_effort()
    set_effort(effort, time_limit)
    t0 = time.perf_counter()
    try:
        for s in seconds:
            n = working_length(int(round(2 * s * sample_rate)))
            for precision in precisions:
                _xcorr.plan(n, precision == "single")
    finally:
        _xcorr.set_effort(*old)
    save()
    return time.perf_counter() - t0
