"""The live path end to end on the accuracy corpus: right, early, and never confidently wrong.

Run (after ``python bench/corpus.py``; from a folder other than the repository root):

    python bench/live.py                         # held-out packages, all three modes
    python bench/live.py --modes realtime --jobs 4 --save live.json
    python bench/live.py --load live.json        # the tables again

Every pair runs the real ``audiosync.SyncJob().sync(download, capture=...)``
(ffmpeg decodes the download, a local file of the whole song, and reads the
capture; the schedule, the producers and the decision are the package's):

* ``realtime``: ``capture=["-re", "-i", CAPTURE]``, the capture arriving in
  real time as from a sound card;
* ``fast``: ``capture=["-i", CAPTURE]``, the capture read faster than the
  download is decoded (a file capture, or a slow network);
* ``hint``: as ``realtime``, with ``hint_ms`` within +-2 s of the truth (a
  hint drawn at random in the song for different songs);
* ``wronghint``: as ``realtime``, with ``hint_ms`` 10 to 60 s away from the
  truth (a player that misreports its position): never confidently wrong.

Pairs run in parallel processes (``--jobs``; real-time runs mostly wait).
Per condition and overall it prints, over matched pairs: confident and
right within 10 ms, confidently wrong; over different-song pairs: confident
ones; the decision as the seconds of capture used (median, 90th
percentile, share at 3 s), the wall time from the call to the answer
(median, 90th percentile) and the largest peak RSS of a worker process.
Pairs are those whose songs are all in ``--packages`` (default: the
held-out packages, those not in bench/calibrate.py's fit set).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calibrate import DEFAULT_MANIFEST, in_packages  # noqa: E402

MODES = ("realtime", "fast", "hint", "wronghint")
TOL_MS = 10.0


def run_one(job: dict) -> dict:
    import audiosync

    cap = job["capture"]
    capture = ["-i", cap] if job["mode"] == "fast" else ["-re", "-i", cap]
    t0 = time.monotonic()
    result = audiosync.SyncJob().sync(job["download"], capture=capture, hint_ms=job.get("hint_ms"))
    wall = time.monotonic() - t0
    return {
        **{k: job[k] for k in ("id", "condition", "mode", "truth_ms", "package")},
        "lag_ms": result.lag_ms, "confident": result.confident, "reason": result.reason,
        "interval_s": result.interval_s, "evidence": result.evidence, "wall_s": wall,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "history": [{"interval_s": p.interval_s, "lag_ms": p.lag_ms, "evidence": p.evidence,
                     "downloaded_s": p.downloaded_s, "confident": p.confident} for p in result.history],
    }


def _q(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(math.ceil(q * len(values))) - 1))]


def table(rows: list[dict]) -> None:
    print(f"{'mode':8} {'condition':10} {'pairs':>5} {'right<=10ms':>11} {'wrong':>5} {'diff.conf':>9} "
          f"{'decision med':>12} {'p90':>5} {'at 3 s':>6} {'wall med':>8} {'p90':>6} {'RSS MB':>6}")
    for mode in MODES:
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        conditions = sorted({r["condition"] for r in sel}) + ["ALL"]
        for cond in conditions:
            rs = sel if cond == "ALL" else [r for r in sel if r["condition"] == cond]
            matched = [r for r in rs if r["truth_ms"] is not None]
            different = [r for r in rs if r["truth_ms"] is None]
            right = [r for r in matched if r["confident"] and abs(r["lag_ms"] - r["truth_ms"]) <= TOL_MS]
            wrong = [r for r in matched if r["confident"] and abs(r["lag_ms"] - r["truth_ms"]) > TOL_MS]
            diff_conf = [r for r in different if r["confident"]]
            decided = [r["interval_s"] if r in right else math.inf for r in matched]
            walls = [r["wall_s"] for r in right]
            at3 = sum(1 for d in decided if d <= 3.0 + 1e-6)
            pct = f"{100.0 * len(right) / len(matched):5.1f}%" if matched else "-"
            fmt = lambda v: "-" if v != v else ("never" if v == math.inf else f"{v:g}")  # noqa: E731
            print(f"{mode:8} {cond:10} {len(rs):5d} {pct:>11} {len(wrong):5d} {len(diff_conf):>4d}/{len(different):<4d} "
                  f"{fmt(statistics.median(decided)) if decided else '-':>12} {fmt(_q(decided, 0.9)):>5} "
                  f"{(100.0 * at3 / len(matched)) if matched else 0:5.1f}% "
                  f"{fmt(round(statistics.median(walls), 2)) if walls else '-':>8} "
                  f"{fmt(round(_q(walls, 0.9), 2)):>6} {max(r['maxrss_mb'] for r in rs):6.0f}")
            for r in wrong + diff_conf:
                print(f"    confident and wrong: {r['id']} ({r['package']}): {r['lag_ms']:.1f} ms against "
                      f"{r['truth_ms']} after {r['interval_s']} s, evidence {r['evidence']:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--packages", help="comma-separated packages (default: all but the fit packages)")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--limit", type=int, default=0, help="at most this many pairs (0: all)")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--save")
    ap.add_argument("--load")
    args = ap.parse_args(argv)
    if args.load:
        rows = json.loads(Path(args.load).read_text())["rows"]
        table(rows)
        return 0
    manifest = Path(args.manifest)
    pairs = json.loads(manifest.read_text())["pairs"]
    pairs = [p for p in pairs if in_packages(p, args.packages)]
    if args.limit:
        pairs = pairs[: args.limit]
    rng = np.random.default_rng(args.seed)
    jobs = []
    for mode in args.modes:
        for p in pairs:
            truth = p["lag_ms"]
            job = {"id": p["id"], "condition": p["condition"], "mode": mode, "truth_ms": truth,
                   "package": p.get("package"), "download": str(manifest.parent / p["download"]),
                   "capture": str(manifest.parent / p["capture"])}
            if mode == "hint":
                job["hint_ms"] = (truth + float(rng.uniform(-2000, 2000))) if truth is not None \
                    else float(rng.uniform(0, 180_000))
            elif mode == "wronghint":
                away = float(rng.uniform(10_000, 60_000)) * (1 if rng.random() < 0.5 else -1)
                base = truth if truth is not None else float(rng.uniform(0, 180_000))
                job["hint_ms"] = base + away if base + away >= 0 else base - away
            jobs.append(job)
    print(f"{len(pairs)} pairs x {len(args.modes)} modes = {len(jobs)} runs on {args.jobs} processes "
          f"({os.cpu_count()} cores)", file=sys.stderr)
    rows = []
    t0 = time.monotonic()
    with ProcessPoolExecutor(args.jobs) as ex:
        futures = [ex.submit(run_one, j) for j in jobs]
        for k, f in enumerate(as_completed(futures)):
            rows.append(f.result())
            print(f"\r{k + 1}/{len(jobs)} runs, {time.monotonic() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if args.save:
        Path(args.save).write_text(json.dumps({"rows": rows}))
    table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
