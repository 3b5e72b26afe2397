"""Which transform sizes FFTW's estimated plans run fast, and the table the package picks them from.

Run (from a folder other than the repository root, so that ``audiosync`` is the installed build;
alone on the machine: it times transforms):

    cd /tmp && python /work/main/bench/sizes.py --save sizes.json --write /work/main/audiosync/_fast_sizes.py  # ~21 min
    cd /tmp && python /work/main/bench/sizes.py --load sizes.json --write /work/main/audiosync/_fast_sizes.py  # again, from the times
    cd /tmp && python /work/main/bench/sizes.py --check                  # ~1 min: the gain, timed again
    cd /tmp && python /work/main/bench/sizes.py --search                 # ~2 min: in a sync's search (after bench/corpus.py)

Every size the kernel may use from 65536 (``EVEN_FROM``) to 2**25 (``offline.FULL_LIMIT``: no larger
transform is made), a multiple of 16 whose prime factors are 2, 3, 5 and 7, is timed (single precision, FFTW's estimated
plans, as the package plans without wisdom): the kernel's forward transform (best of 3) plus one
correlation (the conjugate product, the inverse transform and a peak search over 101 lags; best of
2). Neighbouring sizes differ by up to 3.4x with no rule of their factors that predicts it.

``--write``: every size with its time, for :func:`audiosync._sizes.working_length`, which takes
the fastest size from the smallest one up to ``SLACK`` (6%) above it when that ran at least
``MIN_GAIN`` (30%) faster than the smallest.

``--check`` times again, in this run, a grid of source lengths (a song of 2 to 20 minutes at 16 kHz
against the live path's 30 s capture, and the offline shapes: 3 to 30 minutes of reference with a
35 s other), each at the size the plain rule gives and at the size ``working_length`` gives now
(taking turns, best of 3 each): the table was chosen on other timings, so this is its gain measured
apart from its choice.

``--search`` times what a size changes in a sync: the offline search (``make_correlator`` and
``estimate`` of the whole capture, plans made afresh, as in a command) on bench/long.py's nine
held-out encode pairs of the corpus, at the plain size and at ``working_length``'s, taking turns,
best of 3 each, with the size's own timed gain beside.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from audiosync import _planner, _xcorr, fftw_version
from audiosync._sizes import EVEN_FROM, smooth_length, working_length
from audiosync.offline import FULL_LIMIT

LARGEST = FULL_LIMIT
SAMPLE = 48000  # the correlated sample's length: a 3 s capture


def smooth_sizes(lo: int, hi: int) -> list[int]:
    """Every size the plain rule gives from lo to hi (from EVEN_FROM on, the multiples of 16 whose
    prime factors are 2, 3, 5 and 7), smallest first."""
    out, n = [], smooth_length(lo)
    while n <= hi:
        out.append(n)
        n = smooth_length(n + 1)
    return out


def time_size(n: int, x: np.ndarray, y: np.ndarray, forward: int = 3, correlations: int = 2) -> float:
    """Seconds of one forward transform and one correlation at size n (each the best of its runs)."""
    _planner.plan(n, True)
    a = b = float("inf")
    try:
        for _ in range(forward):
            t = time.perf_counter()
            status, spec = _xcorr.spectrum(x[:n - SAMPLE], n, True, x)
            a = min(a, time.perf_counter() - t)
        for _ in range(correlations):
            t = time.perf_counter()
            _xcorr.correlate(spec, x[:n - SAMPLE], y, 0, 100, True)
            b = min(b, time.perf_counter() - t)
    finally:
        _planner.clear_plans()
    return a + b


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu unknown"


def write_table(path: Path, table: dict[int, float], measured: str) -> None:
    lines = [
        '"""How fast FFTW\'s estimated plans run each transform size: written by bench/sizes.py (not by hand).',
        "",
        f"{measured}",
        "Each size's microseconds for one forward transform and one correlation, single precision.",
        '"""',
        "",
        "# size: microseconds",
        "TIMES = {",
    ]
    items = [f"{n}: {round(t * 1e6)}," for n, t in table.items()]
    for i in range(0, len(items), 6):
        lines.append("    " + " ".join(items[i:i + 6]))
    lines += ["}", ""]
    path.write_text("\n".join(lines))


def check(repeat: int) -> None:
    rate = 16000
    shapes = [("live", int(song_s * 60 * rate) + 30 * rate - 1) for song_s in (2, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 10, 12, 15, 20)]
    shapes += [("files", int(ref_min * 60 * rate) + 35 * rate - 1) for ref_min in (3, 5, 8, 13, 20, 30)]
    x = np.random.default_rng(0).standard_normal(LARGEST).astype(np.float32)
    y = np.random.default_rng(1).standard_normal(SAMPLE).astype(np.float32)
    print(f"{'shape':6} {'length':>9} {'plain size':>10} {'ms':>7} {'table size':>10} {'ms':>7} {'plain/table':>11}")
    ratios = []
    for kind, m in shapes:
        old, new = smooth_length(m), working_length(m)
        t_old = t_new = float("inf")
        for _ in range(repeat):  # taking turns: the machine's mood falls on both alike
            t_old = min(t_old, time_size(old, x, y, 1, 1))
            t_new = min(t_new, time_size(new, x, y, 1, 1))
        ratios.append(t_old / t_new)
        print(f"{kind:6} {m:9d} {old:10d} {t_old * 1e3:7.1f} {new:10d} {t_new * 1e3:7.1f} {t_old / t_new:11.2f}",
              flush=True)
    print(f"median plain/table {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")


def search(repeat: int) -> None:
    import audiosync.xcorr as X
    from audiosync._fast_sizes import TIMES
    from audiosync.method import estimate, make_correlator
    from audiosync.offline import decode_inputs

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from calibrate import DEFAULT_MANIFEST
    from long import corpus_pairs

    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    base = DEFAULT_MANIFEST.parent
    print(f"{'pair':10} {'plain size':>10} {'ms':>6} {'chosen size':>11} {'ms':>6} {'timed gain':>10} "
          f"{'search gain':>11}  same lag")
    gains = []
    for pair in corpus_pairs(base.parent, manifest, 9):
        (ref, oth), _ = decode_inputs((str(base / pair["download"]), str(base / pair["capture"])), 16000)
        best = {"plain": float("inf"), "chosen": float("inf")}
        found, sizes = {}, {}
        try:
            for _ in range(repeat):
                for kind, rule in (("plain", smooth_length), ("chosen", working_length)):
                    X.working_length = rule
                    _planner.clear_plans()
                    t = time.perf_counter()
                    c = make_correlator(ref, len(oth), "phat", 16000)
                    e = estimate(c, oth, "phat", 16000, "offline", beside=True)
                    best[kind] = min(best[kind], time.perf_counter() - t)
                    found[kind], sizes[kind] = e.lag, c.n
        finally:
            X.working_length = working_length
        gains.append(best["plain"] / best["chosen"])
        print(f"{pair['id']:10} {sizes['plain']:10d} {best['plain'] * 1e3:6.0f} {sizes['chosen']:11d} "
              f"{best['chosen'] * 1e3:6.0f} {TIMES[sizes['plain']] / TIMES[sizes['chosen']]:10.2f} "
              f"{gains[-1]:11.2f}  {found['plain'] == found['chosen']}", flush=True)
    print(f"median search gain {statistics.median(gains):.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", help="time every size and write the times here (JSON)")
    ap.add_argument("--load", nargs="+", help="read the times from these files (--save's)")
    ap.add_argument("--write", help="write the table module here")
    ap.add_argument("--check", action="store_true", help="time the plain and the table's sizes again")
    ap.add_argument("--search", action="store_true", help="time a sync's search at the plain and the chosen sizes")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if args.check:
        check(args.repeat)
        return 0
    if args.search:
        search(args.repeat)
        return 0
    measured = None
    if args.load:
        times = {}
        for f in args.load:
            data = json.loads(Path(f).read_text())
            times.update({int(k): v for k, v in data["times"].items()})
            measured = data.get("measured", measured)
    else:
        x = np.random.default_rng(0).standard_normal(LARGEST).astype(np.float32)
        y = np.random.default_rng(1).standard_normal(SAMPLE).astype(np.float32)
        times = {}
        for n in smooth_sizes(EVEN_FROM, LARGEST):
            times[n] = time_size(n, x, y)
    measured = measured or (f"Measured on {platform.machine()} ({cpu_name()}), "
                            f"{fftw_version}, {len(times)} sizes from {min(times)} to {max(times)}.")
    if args.save:
        Path(args.save).write_text(json.dumps({"measured": measured, "times": times}))
    print(f"{len(times)} sizes timed")
    if args.write:
        write_table(Path(args.write), dict(sorted(times.items())), measured)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
