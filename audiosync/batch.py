"""Many pairs: a CSV manifest in, one JSON line per pair out, on local processes or a Dask cluster.

:func:`batch` runs pairs and yields one result per pair as it finishes
(``jobs`` local processes, or the workers of a Dask scheduler: each task is
one pair). A pair that fails yields an error line and the batch goes on.
:func:`run_manifest` is the command's loop: it skips the pairs that the
output file already holds (a killed batch resumes), and writes each line
whole, flushed under a lock.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from audiosync.errors import ClusterError, ManifestError, MissingExtraError
from audiosync.offline import sync_files
from audiosync.options import parse_window

__all__ = ["Pair", "batch", "read_manifest", "run_manifest", "run_pair"]

REQUIRED = ("reference", "other")
# Per-pair options a manifest may give, and how a cell is read.
OPTION_COLUMNS = {"max_seconds": float, "sample_rate": int, "min_confidence": float, "timeout": float,
                  "method": str, "reference_window": parse_window, "other_window": parse_window}
# Pairs in flight per worker: enough to keep each busy, few enough that a huge manifest is not
# all submitted at once.
_IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class Pair:
    """One row of a manifest: sync ``other`` against ``reference`` with ``options``."""

    reference: str
    other: str
    options: dict = field(default_factory=dict)
    """Keyword options of :func:`audiosync.sync_files`, as given (strings are read by run_pair)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.reference, self.other)


def read_manifest(path: str | os.PathLike[str]) -> list[Pair]:
    """The pairs of a CSV manifest with the columns ``reference,other`` and optional
    per-pair options (``max_seconds``, ``sample_rate``, ``min_confidence``, ``timeout``,
    ``method``, ``reference_window`` and ``other_window`` as START:DUR; an empty cell keeps
    the default). Raises ManifestError (one line)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise ManifestError(f"manifest {name!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"manifest {name!r} is not UTF-8 text (byte {exc.start})") from None
    except (csv.Error, OSError) as exc:
        raise ManifestError(f"manifest {name!r} cannot be read: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ManifestError(f"manifest {name!r} is empty: it needs a header row 'reference,other'")
    header = [cell.strip().lstrip("\ufeff") for cell in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ManifestError(f"manifest {name!r} has no {missing[0]!r} column (its header: {','.join(header)})")
    unknown = [c for c in header if c not in REQUIRED and c not in OPTION_COLUMNS]
    if unknown:
        raise ManifestError(f"manifest {name!r} has an unknown column {unknown[0]!r} "
                            f"(known: {', '.join(REQUIRED + tuple(OPTION_COLUMNS))})")
    pairs = []
    for row in rows[1:]:
        cells = dict(zip(header, (c.strip() for c in row)))
        options = {k: v for k, v in cells.items() if k in OPTION_COLUMNS and v}
        pairs.append(Pair(cells.get("reference", ""), cells.get("other", ""), options))
    return pairs


def _options(pair: Pair) -> dict:
    options = {}
    for name, value in pair.options.items():
        read = OPTION_COLUMNS.get(name)
        if read is None:
            raise ValueError(f"unknown option {name!r}")
        if isinstance(value, str) and read is not str:
            try:
                value = read(value)
            except ValueError as exc:
                wanted = "START:DUR" if read is parse_window else "a number"
                raise ValueError(f"{name} must be {wanted}, got {value!r}") from exc
        options[name] = value
    return options


def run_pair(pair: Pair, split_decode: bool = True) -> dict:
    """One pair's result line (a dict): the keys of ``audiosync files --json`` plus ``reference``
    and ``other``; for a pair that failed, ``error`` and ``error_type`` instead. Never raises
    for a bad pair (so it can run anywhere: a process, a Dask worker). ``split_decode``: see
    :class:`audiosync.FileOptions` (off where pairs run side by side)."""
    head = {"reference": pair.reference, "other": pair.other}
    try:
        if not pair.reference or not pair.other:
            raise ValueError("the row has an empty reference or other")
        result = sync_files(pair.reference, pair.other, drift=True, split_decode=split_decode,
                            **_options(pair))  # as `files --json`
    except Exception as exc:  # noqa: BLE001 - a failed pair is data for its line
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {**head, "error": message, "error_type": type(exc).__name__}
    return {**head, **result.to_dict(), "calibration_ms": 0.0}


def _as_pair(item) -> Pair:
    if isinstance(item, Pair):
        return item
    if isinstance(item, dict):
        rest = {k: v for k, v in item.items() if k not in REQUIRED}
        return Pair(str(item.get("reference", "")), str(item.get("other", "")), rest)
    reference, other, *options = item
    return Pair(os.fspath(reference), os.fspath(other), dict(options[0]) if options else {})


def _serve() -> None:
    """A local worker: one pair (JSON) per line on stdin, one result per line on stdout."""
    try:
        for line in sys.stdin:
            row = json.loads(line)
            # Workers run side by side: each decodes its pair's inputs whole, one ffmpeg each.
            print(json.dumps(run_pair(Pair(row["reference"], row["other"], row["options"]), False)), flush=True)
    except (KeyboardInterrupt, BrokenPipeError):  # the batch was stopped: its parent says so
        pass


class _Worker:
    """One worker process of a local batch, fed one pair at a time."""

    def __init__(self):
        # This very package, whatever the working folder holds (python -m would put it first).
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = f"import sys; sys.path[0] = {here!r}; from audiosync.batch import _serve; _serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def run(self, pair: Pair) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"reference": pair.reference, "other": pair.other,
                                              "options": pair.options}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if line:
            return json.loads(line)
        self.close()
        code = self.proc.returncode
        return {"reference": pair.reference, "other": pair.other,
                "error": f"the worker process died (exit status {code})", "error_type": "WorkerDied"}

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def _local(pairs: list[Pair], jobs: int) -> Iterator[dict]:
    if jobs == 1:
        yield from map(run_pair, pairs)
        return
    # Worker processes of our own, not multiprocessing: when the batch ends nothing is left
    # running (multiprocessing keeps a resource tracker, forkserver a server, for the
    # interpreter's life). Each feeder thread owns one worker.
    todo = iter(pairs)
    lock = threading.Lock()
    results: queue.Queue = queue.Queue()
    stop = threading.Event()
    workers: list[_Worker] = []

    def feed() -> None:
        worker = _Worker()
        workers.append(worker)
        try:
            while not stop.is_set():
                with lock:
                    pair = next(todo, None)
                if pair is None:
                    return
                result = worker.run(pair)
                if worker.proc.poll() is not None:  # died: a fresh one for the next pair
                    worker.close()
                    worker = _Worker()
                    workers.append(worker)
                results.put(result)
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer
            results.put(exc)
        finally:
            worker.close()
            results.put(None)

    threads = [threading.Thread(target=feed, name=f"audiosync-batch-{i}", daemon=True)
               for i in range(min(jobs, len(pairs)))]
    for t in threads:
        t.start()
    try:
        running = len(threads)
        while running:
            item = results.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        if not stop.is_set() and any(t.is_alive() for t in threads):
            for w in list(workers):  # stopped early: do not wait for the pairs in progress
                w.proc.terminate()
        stop.set()
        for t in threads:
            t.join()


def _dask(pairs: list[Pair], scheduler: str) -> Iterator[dict]:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise MissingExtraError("a batch on a Dask cluster needs dask: pip install 'audiosync[dask]'") from None
    try:
        client = Client(scheduler, timeout=10, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
    try:
        workers = max(1, sum(client.nthreads().values()))
        todo = iter(pairs)
        # range first: zip stops on it without taking one more pair from todo
        window = [client.submit(run_pair, p, False, pure=False)
                  for _, p in zip(range(workers * _IN_FLIGHT_PER_WORKER), todo)]
        stream = as_completed(window, loop=client.loop)
        for future in stream:
            yield future.result()
            future.release()
            for p in todo:
                stream.add(client.submit(run_pair, p, False, pure=False))
                break
    finally:
        client.close()


def batch(pairs: Iterable, *, jobs: int | None = None, scheduler: str | None = None,
          on_result: Callable[[dict], None] | None = None) -> Iterator[dict]:
    """Run every pair; yield one result dict per pair as it finishes (see :func:`run_pair`).

    Parameters
    ----------
    pairs : iterable
        :class:`Pair` objects, ``(reference, other[, options])`` tuples, or dicts with
        ``reference``, ``other`` and option keys.
    jobs : int, optional
        Local worker processes (default 1: in this process, one pair at a time).
    scheduler : str, optional
        A Dask scheduler's address (``tcp://HOST:8786``): each pair is one task on its
        workers, which need audiosync installed. Needs ``audiosync[dask]``.
    on_result : callable, optional
        Called with each result as well.
    """
    todo = [_as_pair(p) for p in pairs]
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    if scheduler is not None and jobs is not None:
        raise ValueError("give jobs or scheduler, not both: the cluster's workers are its jobs")
    if on_result is not None and not callable(on_result):
        raise ValueError(f"on_result must be callable, got {on_result!r}")
    results = _dask(todo, scheduler) if scheduler is not None else _local(todo, jobs or 1)
    for result in results:
        if on_result is not None:
            on_result(result)
        yield result


def _done(out: str) -> set[tuple[str, str]]:
    """The pairs already in ``out``; a last line cut short by a crash is removed."""
    done: set[tuple[str, str]] = set()
    try:
        with open(out, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                f.truncate(end)  # a half line: never glue the next result to it
    except FileNotFoundError:
        return done
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
            done.add((row["reference"], row["other"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


def run_manifest(manifest: str, out: str, *, jobs: int | None = None, scheduler: str | None = None,
                 progress: Callable[[int, int], object] | None = None) -> tuple[int, int, int]:
    """Run a manifest's pairs that ``out`` does not hold yet, appending one line each.

    Returns (pairs run now, pairs that failed now, pairs skipped as already done).
    ``progress(total, done_before)`` may return an object with ``update(1)`` and ``close()``.
    """
    pairs = read_manifest(manifest)
    done = _done(out)
    seen: set[tuple[str, str]] = set()
    todo = []
    for p in pairs:
        if p.key not in done and p.key not in seen:
            todo.append(p)
        seen.add(p.key)
    skipped = len(seen) - len(todo)
    bar = progress(len(todo), 0) if progress is not None else None
    lock = threading.Lock()
    ran = failed = 0
    try:
        with open(out, "a", encoding="utf-8") as f:
            for result in batch(todo, jobs=jobs, scheduler=scheduler):
                line = json.dumps(result) + "\n"
                with lock:  # one write of the whole line, flushed: a crash never leaves half a line
                    f.write(line)
                    f.flush()
                ran += 1
                failed += "error" in result
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return ran, failed, skipped

