"""FFTW wisdom in the user's cache folder: measured plans survive the process.

Loaded on import (a missing, corrupt or foreign file is ignored, with a
debug log); saved after plans are made with more than FFTW_ESTIMATE's
effort, by :func:`prepare` or by the background planner.

A call never waits for FFTW_MEASURE (a minute or more for a 30 s capture
here): a size the wisdom does not know is planned by FFTW_ESTIMATE at once
and noted in a queue; once a size is asked for twice, a background process
(``python -m audiosync.wisdom --background``, at the lowest CPU priority,
one per user and machine) measures it and saves the wisdom. Processes
started later plan it from the wisdom; a running one picks it up within a
second of the save (:func:`refresh`). Set ``AUDIOSYNC_BACKGROUND_PLANNING=0``
to turn the background planner off.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable

from audiosync import _xcorr
from audiosync.xcorr import working_length

__all__ = ["background_enabled", "load", "path", "prepare", "refresh", "save", "set_effort"]

BACKGROUND_ENV = "AUDIOSYNC_BACKGROUND_PLANNING"
# Below this size an estimated transform takes well under a millisecond:
# not worth a background process.
MEASURE_MIN = 1 << 16
# How often a running process looks for wisdom saved by the background planner.
REFRESH_S = 1.0
# Sizes asked for once, kept in the queue for a second request.
QUEUE_KEEP = 200

log = logging.getLogger("audiosync")


def _cache_dir() -> str:
    if os.environ.get("AUDIOSYNC_CACHE_DIR"):
        return os.environ["AUDIOSYNC_CACHE_DIR"]
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/audiosync")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "audiosync")


@functools.lru_cache(maxsize=1)  # read on every wisdom path; the CPU does not change
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


_loaded_stamp: tuple = ()
_checked_at = 0.0
_refresh_lock = threading.Lock()


def _stamp() -> tuple:
    stamp = []
    for single in (False, True):
        try:
            st = os.stat(path(single))
            stamp.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def load() -> tuple[bool, bool]:
    """Import this machine's wisdom (double, single); False where there is none or it is unusable."""
    global _loaded_stamp
    _loaded_stamp = _stamp()
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


def background_enabled() -> bool:
    return os.environ.get(BACKGROUND_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def _queue_path() -> str:
    return os.path.join(_cache_dir(), f"queue-{_machine_key()}.txt")


def _lock_path() -> str:
    return os.path.join(_cache_dir(), f"planner-{_machine_key()}.lock")


def refresh() -> None:
    """Queue the sizes just planned by estimate for the background planner, and
    take up wisdom it has saved since (checked at most once a second).

    Called by :class:`audiosync.Correlator` whenever it plans; cheap.
    """
    global _checked_at
    estimated = [(n, single) for n, single in _xcorr.take_estimated() if n >= _measure_min()]
    if estimated and background_enabled():
        _queue(estimated)
    now = time.monotonic()
    if now - _checked_at < REFRESH_S or not _refresh_lock.acquire(blocking=False):
        return
    try:
        _checked_at = now
        if _stamp() != _loaded_stamp:
            load()
            _xcorr.drop_estimated_plans()  # the next call plans these sizes from the new wisdom
    finally:
        _refresh_lock.release()


def _measure_min() -> int:
    try:
        return int(os.environ.get("AUDIOSYNC_MEASURE_MIN", MEASURE_MIN))
    except ValueError:
        return MEASURE_MIN


def _queue_lines(sizes: Iterable[tuple[int, bool]]) -> str:
    return "".join(f"{n} {'single' if single else 'double'}\n" for n, single in sizes)


def _queue(sizes: list[tuple[int, bool]]) -> None:
    """Note sizes in the planner's queue; start the planner for those noted before.

    A size is measured once a second process (or a second planning in this
    one) asks for it: one-off sizes, such as sync_files of files of any
    length, would keep a planner busy for minutes each and never pay back.
    """
    try:
        os.makedirs(_cache_dir(), exist_ok=True)
        with open(_queue_path(), "a") as f:
            f.write(_queue_lines(sizes))
        counts = _read_queue()
        if not any(counts.get(size, 0) >= 2 for size in sizes):
            return
        proc = subprocess.Popen(
            [sys.executable, "-m", "audiosync.wisdom", "--background"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # not stopped by the caller's Ctrl-C; outlives it
            cwd=_cache_dir(),  # -m looks in the working folder first: not a source tree there
            env={**os.environ, "AUDIOSYNC_CACHE_DIR": _cache_dir(), BACKGROUND_ENV: "0"},
        )
    except OSError as exc:
        log.debug("could not start the background planner: %s", exc)
        return
    # Reaped when it ends, so it never lingers as a zombie while we run.
    threading.Thread(target=proc.wait, name="audiosync-planner-reaper", daemon=True).start()
    log.debug("background planner %d started for %s", proc.pid, sizes)


def _read_queue() -> dict[tuple[int, bool], int]:
    """How often each (size, single) was noted in the queue."""
    counts: dict[tuple[int, bool], int] = {}
    try:
        with open(_queue_path()) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit() and parts[1] in ("single", "double"):
                    n = int(parts[0])
                    if 2 <= n <= 2**30:
                        key = (n, parts[1] == "single")
                        counts[key] = counts.get(key, 0) + 1
    except OSError:
        pass
    return counts


def _background() -> int:
    """The background planner: measure every size noted twice, saving the wisdom after each."""
    import fcntl

    try:
        os.nice(19)
    except OSError:
        pass
    os.makedirs(_cache_dir(), exist_ok=True)
    with open(_lock_path(), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another planner runs; it reads the queue again before it ends
        set_effort("measure")
        done: set[tuple[int, bool]] = set()
        while True:
            counts = _read_queue()
            wanted = sorted(size for size, count in counts.items() if count >= 2 and size not in done)
            if not wanted:
                break
            for n, single in wanted:
                _xcorr.plan(n, single)  # measured, or found in the wisdom at once
                save()
                done.add((n, single))
        # Keep the sizes noted once (the most recent QUEUE_KEEP), for a second request.
        once = [size for size, count in counts.items() if count < 2][-QUEUE_KEEP:]
        fd, tmp = tempfile.mkstemp(dir=_cache_dir(), prefix=".queue-")
        with os.fdopen(fd, "w") as f:
            f.write(_queue_lines(once))
        os.replace(tmp, _queue_path())
    return 0


def set_effort(effort: str = "estimate", time_limit: float | None = None) -> None:
    """Planner effort for sizes the wisdom does not know: estimate (default), measure or patient."""
    if effort not in _xcorr.EFFORTS:
        raise ValueError(f"effort must be one of {sorted(_xcorr.EFFORTS)}, got {effort!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")
    _xcorr.set_effort(effort, time_limit)


def prepare(seconds: Iterable[float] = (3, 6, 10, 15, 20, 30), sample_rate: int = 48000, *,
            effort: str = "measure", time_limit: float | None = None,
            precisions: Iterable[str] = ("single",), download_s: float = 120.0) -> float:
    """Measure plans for the sizes audiosync uses and save them as wisdom.

    The sizes: ``cross_correlation`` of each capture length in ``seconds``
    against twice as much source, and (when ``download_s`` > 0) the live
    path's linear correlation of a ``download_s`` download against the
    longest capture. Returns the seconds spent planning. Run once per
    machine; later processes find the plans in the wisdom at no cost.
    """
    seconds = list(seconds)
    precisions = list(precisions)
    sizes = [working_length(int(round(2 * s * sample_rate))) for s in seconds]
    if download_s > 0 and seconds:
        sizes.append(working_length(int(round(download_s * sample_rate)) + int(round(max(seconds) * sample_rate)) - 1))
    old = _xcorr.get_effort()
    set_effort(effort, time_limit)
    t0 = time.perf_counter()
    try:
        for n in sizes:
            for precision in precisions:
                _xcorr.plan(n, precision == "single")
                save()  # after each: a long run stopped half-way keeps what it measured
    finally:
        _xcorr.set_effort(*old)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiosync.wisdom",
                                     description="Measure FFTW plans and save them as wisdom.")
    parser.add_argument("--background", action="store_true",
                        help="measure the queued sizes (what audiosync starts by itself)")
    args = parser.parse_args(argv)
    if args.background:
        return _background()
    seconds = prepare()
    print(f"measured plans in {seconds:.1f} s; wisdom in {_cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
