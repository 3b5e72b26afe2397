"""FFTW wisdom in the user's cache folder: plans measured once, by request, serve every later process.

Planning is explicit. ``audiosync prepare`` (or :func:`prepare`) measures
the transform sizes a live sync and ``cross_correlation`` of the live
capture lengths use, with a progress line, and saves them as wisdom; a
desktop app calls it once at set-up. The first correlation of a process
loads that wisdom (:func:`load_once`); a size it does not hold is planned by
FFTW_ESTIMATE at once (``bench/planning.py`` measures why not a short
FFTW_MEASURE). Nothing here starts a process or a thread.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable

from audiosync import _planner
from audiosync._sizes import ANALYSIS_RATE, DEFAULT_INTERVALS, TYPICAL_SONG_S, live_sizes, working_length

__all__ = ["load", "load_once", "path", "prepare", "prepare_sizes", "save", "set_effort"]

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
    digest = hashlib.sha1(f"{_planner.fftw_version}|{platform.machine()}|{flags}".encode()).hexdigest()[:12]
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
            ok = _planner.import_wisdom(os.fsencode(p), single)
            if not ok:
                log.debug("ignoring FFTW wisdom that FFTW cannot read: %s", p)
        loaded.append(ok)
    return loaded[0], loaded[1]


_load_lock = threading.Lock()
_loaded = False


def load_once() -> None:
    """Load the wisdom before the first plan of this process (not at import: importing reads no file)."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            load()
            _loaded = True


def save() -> None:
    """Write the current wisdom of both precisions, atomically; failures are logged, not raised."""
    folder = _cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        for single in (False, True):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".wisdom-")
            os.close(fd)
            try:
                if _planner.export_wisdom(os.fsencode(tmp), single):
                    os.replace(tmp, path(single))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except OSError as exc:
        log.debug("could not save FFTW wisdom in %s: %s", folder, exc)


def set_effort(effort: str = "estimate", time_limit: float | None = None) -> None:
    """Planner effort for sizes the wisdom does not know: estimate (default), measure or patient."""
    if effort not in _planner.EFFORTS:
        raise ValueError(f"effort must be one of {sorted(_planner.EFFORTS)}, got {effort!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")
    _planner.set_effort(effort, time_limit)


def prepare_sizes(seconds: Iterable[float] = DEFAULT_INTERVALS, sample_rate: int = ANALYSIS_RATE,
                  download_s: float = TYPICAL_SONG_S) -> list[int]:
    """The transform sizes :func:`prepare` measures, smallest first.

    ``cross_correlation`` of each capture length in ``seconds`` against twice
    as much source, and the live path's correlation of a download of
    ``download_s`` (a typical song; 0 for none) against the longest capture.
    """
    seconds = list(seconds)
    sizes = {working_length(int(round(2 * s * sample_rate))) for s in seconds}
    if seconds and download_s > 0:
        sizes.update(live_sizes(seconds, sample_rate, download_s))
    return sorted(sizes)


def _cost(n: int) -> float:
    return n * math.log2(max(n, 2))


def prepare(seconds: Iterable[float] = DEFAULT_INTERVALS, sample_rate: int = ANALYSIS_RATE, *,
            effort: str = "measure", time_limit: float | None = None,
            precisions: Iterable[str] = ("single",), download_s: float = TYPICAL_SONG_S,
            on_progress: Callable[[int, int, int, float | None], None] | None = None) -> float:
    """Measure plans for the sizes audiosync uses and save them as wisdom; return the seconds spent.

    Run once per machine (``audiosync prepare``); later processes find the
    plans in the wisdom at no cost. The wisdom is saved after each size, so
    a run stopped half-way keeps what it measured. ``on_progress(done,
    total, n, seconds_left)`` is called before each size, ``seconds_left``
    estimated from the sizes measured so far (None before the first).
    """
    if effort not in _planner.EFFORTS:
        raise ValueError(f"effort must be one of {sorted(_planner.EFFORTS)}, got {effort!r}")
    precisions = list(precisions)
    if any(p not in ("single", "double") for p in precisions):
        raise ValueError(f"precisions must be 'single' and/or 'double', got {precisions!r}")
    work = [(n, p == "single") for n in prepare_sizes(seconds, sample_rate, download_s) for p in precisions]
    load_once()
    old = _planner.get_effort()
    set_effort(effort, time_limit)
    t0 = time.perf_counter()
    done_cost = 0.0
    try:
        for i, (n, single) in enumerate(work):
            if on_progress is not None:
                spent = time.perf_counter() - t0
                left = None if done_cost == 0 else spent / done_cost * sum(_cost(m) for m, _ in work[i:])
                on_progress(i, len(work), n, left)
            _planner.plan(n, single)  # measured, or found in the wisdom at once
            save()
            done_cost += _cost(n)
        if on_progress is not None:
            on_progress(len(work), len(work), 0, 0.0)
    finally:
        _planner.set_effort(*old)
    return time.perf_counter() - t0


def progress_bar(done: int, total: int, n: int, seconds_left: float | None) -> None:
    """A one-line progress bar on stderr for :func:`prepare`."""
    width = 24
    filled = width * done // max(total, 1)
    eta = "" if seconds_left is None else f", about {seconds_left:.0f} s left"
    what = f"measuring a transform of {n} points" if done < total else "done"
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}{eta}\033[K",
          end="" if done < total else "\n", file=sys.stderr, flush=True)
