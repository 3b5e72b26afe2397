"""What the player's position (a vouched ``hint_ms``) is worth, and what a wrong one costs.

Run (after ``python bench/corpus.py``; from a folder other than the repository root):

    python bench/hints.py --save hints.json      # the held-out packages, ~12 min on 2 cores
    python bench/hints.py --packages frozen-bubble-data,fb-music-high,extremetuxracer-data,lincity-ng-data
    python bench/hints.py --load hints.json

For every matched pair (the whole download; the capture's first 3, 6 and
10 s, at 16 kHz) it runs :func:`audiosync.method.estimate` as a live sync
does with a hint window of +-3 s, once as a mere hint (the narrower chance
only) and once vouched for (``trusted=True``, what ``hint_ms`` now means),
with three positions: ``right`` (within +-2 s of the truth), ``wrong`` (10 s
or more from it, drawn at random in the song) and, for null pairs (a
capture against another song of its packages), ``random``. It prints per
kind and rule the pairs confident and right within 10 ms (or at a known
recurrence of the music), at which length, and those confident and wrong.
End to end, with the producers and the schedule: bench/live.py's ``hint``
and ``wronghint`` modes.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calibrate import DEFAULT_MANIFEST, in_packages  # noqa: E402

RATE = 16000
LENGTHS = (3, 6, 10)
HALF_MS = 3000.0


def _window(h_ms: float) -> tuple[int, int]:
    return int(math.floor((h_ms - HALF_MS) * RATE / 1000)), int(math.ceil((h_ms + HALF_MS) * RATE / 1000))


def one(job) -> list[dict]:
    from audiosync import ffmpeg
    from audiosync import method as M

    pair, other, seed, base = job
    rng = np.random.default_rng(seed)
    dl = ffmpeg.decode(str(Path(base) / (other or pair)["download"]), RATE)
    cap = ffmpeg.decode(str(Path(base) / pair["capture"]), RATE)
    truth = None if other else pair["lag_ms"]
    song_ms = 1000.0 * len(dl) / RATE
    c = M.make_correlator(dl, min(len(dl), max(LENGTHS) * RATE, len(cap)), "phat", RATE)
    if truth is None:
        hints = {"random": float(rng.uniform(0, song_ms))}
    else:
        far = truth
        while abs(far - truth) < 10_000:
            far = float(rng.uniform(0, song_ms))
        hints = {"right": truth + float(rng.uniform(-2000, 2000)), "wrong": far}
    rows = []
    for seconds in LENGTHS:
        if seconds * RATE > len(cap):
            break
        sample = cap[: seconds * RATE]
        for kind, h in hints.items():
            plain = M.estimate(c, sample, "phat", RATE, "live", window=_window(h))
            vouched = M.estimate(c, sample, "phat", RATE, "live", window=_window(h), trusted=True)
            rows.append({"id": pair["id"] + (f"~{other['id']}" if other else ""), "kind": kind,
                         "condition": "null" if other else pair["condition"], "truth_ms": truth,
                         "seconds": seconds, "repeats_ms": [] if other else pair["details"].get("repeats_ms", []),
                         "hint": [plain.lag_ms(RATE), plain.confidence],
                         "vouched": [vouched.lag_ms(RATE), vouched.confidence]})
    return rows


def report(rows: list[dict]) -> None:
    by = collections.defaultdict(dict)
    for r in rows:
        by[(r["id"], r["kind"])][r["seconds"]] = r
    print(f"{'position':8} {'rule':8} {'pairs':>5} {'right':>6} {'at 3 s':>6} {'6 s':>4} {'10 s':>4} {'wrong':>5}")
    for kind in ("right", "wrong", "random"):
        for rule in ("hint", "vouched"):
            first, wrong, n = collections.Counter(), [], 0
            for (pid, k), lengths in by.items():
                if k != kind:
                    continue
                n += 1
                for seconds in sorted(lengths):
                    r = lengths[seconds]
                    lag, confidence = r[rule]
                    if confidence >= 0.95:
                        known = [] if r["truth_ms"] is None else [r["truth_ms"], *r["repeats_ms"]]
                        if any(abs(lag - t) <= 10.0 for t in known):
                            first[seconds] += 1
                        else:
                            wrong.append(f"{pid} at {seconds} s")
                        break
            if n:
                print(f"{kind:8} {rule:8} {n:5d} {sum(first.values()):6d} {first[3]:6d} {first[6]:4d} "
                      f"{first[10]:4d} {len(wrong):5d} {' '.join(wrong)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    ap.add_argument("--packages", help="comma-separated packages (default: all but the fit packages)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--save")
    ap.add_argument("--load")
    args = ap.parse_args(argv)
    if args.load:
        report(json.loads(Path(args.load).read_text())["rows"])
        return 0
    manifest = Path(args.manifest)
    pairs = json.loads(manifest.read_text())["pairs"]
    matched = [p for p in pairs if p["lag_ms"] is not None and in_packages(p, args.packages)]
    nulls = []
    for k, p in enumerate(matched[::3]):
        group = [q for q in matched if q.get("song") != p.get("song") and q["condition"] != "intro"]
        if group:
            nulls.append((p, group[(k * 7) % len(group)]))
    jobs = [(p, None, i, str(manifest.parent)) for i, p in enumerate(matched)] + \
           [(p, q, 1000 + i, str(manifest.parent)) for i, (p, q) in enumerate(nulls)]
    rows = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for i, r in enumerate(ex.map(one, jobs)):
            rows += r
            print(f"\r{i + 1}/{len(jobs)} pairs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if args.save:
        Path(args.save).write_text(json.dumps({"rows": rows}))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
