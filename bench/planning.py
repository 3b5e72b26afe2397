"""Planner effort without wisdom: FFTW_ESTIMATE or FFTW_MEASURE under a short time limit?

Run: python bench/planning.py [--rounds N] [--limits 0.1,0.3,1,3] [--precisions single,double]
                              [--cases live,offline] [--unlimited]

The question: a process that has no FFTW wisdom for a transform size must
plan it before its first correlation. Which planner setting
(``audiosync.wisdom.set_effort``) gives the answer soonest: "estimate", or
"measure" with ``time_limit`` seconds (FFTW's ``fftw_set_timelimit``)?

Each configuration (setting x case x precision) runs in a FRESH subprocess
(plans are cached in a process) whose ``AUDIOSYNC_CACHE_DIR`` is a new empty
folder (no saved wisdom), with ``OPENBLAS_NUM_THREADS=1``. Signals are synthetic (``audiosync.synth``) with
a little noise added to the captures; the worker checks that every
correlation found the true lag (column "ok").

Cases, as the package calls the correlator (``audiosync.method``):

- live: ``make_correlator(song, 30 s, "phat", 16000)`` over a 240 s song
  (linear; transform of 240 + 30 s), then ``estimate(..., "live", s)`` of
  captures of 3, 6 and 10 s (the start of a live sync), then a few more
  10 s captures for the steady state.
- offline: a 60 s reference against a 35 s capture (linear, as
  ``audiosync.offline``), ``estimate(..., "offline")``, then the same
  capture again for the steady state.

Figures per configuration, in seconds, from the correlator's creation:

- first: creation + the first correlation (planning, the reference's
  transform, the first capture's correlation);
- steady: median of the correlations after the sequence (plan quality);
- total: live, creation + the 3, 6 and 10 s correlations; offline, the
  one correlation offline makes (= first).

Configurations run interleaved (one of each per round, in a rotated order,
one process at a time) for --rounds rounds; the table shows the best and
the median over rounds. The machine is shared and noisy: read the medians,
and the best values as the floor. ``--unlimited`` adds FFTW_MEASURE with no
time limit (minutes of planning per process at these sizes) for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RATE = 16_000            # the package's analysis rate
LIVE_SONG_S = 240.0      # a whole song, as the live path keeps
LIVE_LONGEST_S = 30.0
LIVE_SEQUENCE_S = (3.0, 6.0, 10.0)
LIVE_STEADY = 5          # further 10 s correlations for the steady state
OFFLINE_REF_S = 60.0
OFFLINE_CAPTURE_S = 35.0
OFFLINE_STEADY = 3
CAPTURE_AT_S = 20.0      # where the captures start in the reference
NOISE = 0.05             # added to the captures (the song peaks at 1)


# --------------------------------------------------------------------------- worker

def _worker(cfg: dict) -> dict:
    """One configuration in this (fresh) process; returns its timings."""
    import numpy as np

    from audiosync import method, synth, wisdom

    if cfg["effort"] == "estimate":
        wisdom.set_effort("estimate")
    else:
        wisdom.set_effort("measure", cfg["limit"])
    precision = cfg["precision"]
    rng = np.random.default_rng(cfg["seed"])
    at = int(round(CAPTURE_AT_S * RATE))

    def capture(song: np.ndarray, seconds: float) -> np.ndarray:
        n = int(round(seconds * RATE))
        return (song[at:at + n] + NOISE * rng.standard_normal(n)).astype(np.float32)

    if cfg["case"] == "live":
        song = synth.make_song(LIVE_SONG_S, RATE, cfg["seed"])
        captures = [capture(song, s) for s in LIVE_SEQUENCE_S]
        steady_captures = [capture(song, LIVE_SEQUENCE_S[-1]) for _ in range(LIVE_STEADY)]
        seconds = list(LIVE_SEQUENCE_S) + [LIVE_SEQUENCE_S[-1]] * LIVE_STEADY
        longest, mode = int(round(LIVE_LONGEST_S * RATE)), "live"
    else:
        song = synth.make_song(OFFLINE_REF_S, RATE, cfg["seed"])
        captures = [capture(song, OFFLINE_CAPTURE_S)]
        steady_captures = [captures[0]] * OFFLINE_STEADY
        seconds = [OFFLINE_CAPTURE_S] * (1 + OFFLINE_STEADY)
        longest, mode = len(captures[0]), "offline"

    times, lags = [], []
    t0 = time.perf_counter()
    correlator = method.make_correlator(song, longest, "phat", RATE, precision=precision)
    created = time.perf_counter() - t0
    for k, (sample, s) in enumerate(zip(captures + steady_captures, seconds)):
        t = time.perf_counter()
        est = method.estimate(correlator, sample, "phat", RATE, mode, s)
        times.append(time.perf_counter() - t)
        lags.append(est.lag)
    n_seq = len(captures)
    return {
        "first": created + times[0],
        "steady": statistics.median(times[n_seq:]),
        "total": created + sum(times[:n_seq]),
        "ok": sum(lag == at for lag in lags),
        "calls": len(lags),
        "transform": correlator.n,
    }


# --------------------------------------------------------------------------- driver

def _label(cfg: dict) -> str:
    if cfg["effort"] == "estimate":
        return "ESTIMATE"
    return "MEASURE, no limit" if cfg["limit"] is None else f"MEASURE, {cfg['limit']:g} s"


def _run(cfg: dict) -> dict:
    cache = tempfile.mkdtemp(prefix="planbench-wisdom-")  # empty: no saved wisdom
    env = {**os.environ, "AUDIOSYNC_CACHE_DIR": cache,
           "OPENBLAS_NUM_THREADS": "1"}
    timeout = 3600 if cfg["limit"] is None and cfg["effort"] != "estimate" else 600
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)],
                              env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=cache)  # not a source tree: the installed package is imported
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {cfg} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--limits", default="0.1,0.3,1,3", help="MEASURE time limits, seconds")
    ap.add_argument("--precisions", default="single,double")
    ap.add_argument("--cases", default="live,offline")
    ap.add_argument("--unlimited", action="store_true", help="add FFTW_MEASURE without a time limit (slow)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0

    settings = [("estimate", None)] + [("measure", float(x)) for x in args.limits.split(",") if x]
    if args.unlimited:
        settings.append(("measure", None))
    cases = [c for c in args.cases.split(",") if c]
    precisions = [p for p in args.precisions.split(",") if p]
    configs = [{"case": c, "precision": p, "effort": e, "limit": lim}
               for c in cases for p in precisions for e, lim in settings]
    results: dict[int, list[dict]] = {i: [] for i in range(len(configs))}
    print(f"{len(configs)} configurations x {args.rounds} rounds, each in a fresh process "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)", flush=True)
    started = time.perf_counter()
    for r in range(args.rounds):
        order = list(range(len(configs)))
        shift = r % len(order)
        order = order[shift:] + order[:shift]  # rotated: no configuration always runs first
        for i in order:
            cfg = dict(configs[i], seed=r + 1)
            results[i].append(_run(cfg))
        print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)

    def stat(i: int, key: str) -> tuple[float, float]:
        v = [x[key] for x in results[i]]
        return min(v), statistics.median(v)

    head = (f"{'case':8} {'prec':6} {'setting':18} {'transform':>9} | {'first best':>10} {'median':>7} | "
            f"{'steady best':>11} {'median':>7} | {'total best':>10} {'median':>7} | {'ok':>7}")
    print()
    print("seconds; first = creation + first correlation (planning included); steady = median of later")
    print("correlations; total = live: creation + 3, 6, 10 s correlations, offline: the one correlation")
    print(head)
    print("-" * len(head))
    winners = {}
    for c in cases:
        for p in precisions:
            idx = [i for i, cfg in enumerate(configs) if cfg["case"] == c and cfg["precision"] == p]
            best = min(idx, key=lambda i: stat(i, "total")[1])
            winners[(c, p)] = best
            for i in idx:
                f, s, t = stat(i, "first"), stat(i, "steady"), stat(i, "total")
                ok = sum(x["ok"] for x in results[i]), sum(x["calls"] for x in results[i])
                mark = "*" if i == best else " "
                print(f"{c:8} {p:6} {_label(configs[i]):18} {results[i][0]['transform']:>9} | "
                      f"{f[0]:10.3f} {f[1]:7.3f} | {s[0]:11.3f} {s[1]:7.3f} | "
                      f"{t[0]:10.3f} {t[1]:6.3f}{mark} | {ok[0]:>3}/{ok[1]:<3}")
            print("-" * len(head))
    print("* = lowest median total of its case and precision")

    # The one-line conclusion: the live sequence in the default precision.
    case = "live" if "live" in cases else cases[0]
    prec = "single" if "single" in precisions else precisions[0]
    w = winners[(case, prec)]
    idx = [i for i, cfg in enumerate(configs) if cfg["case"] == case and cfg["precision"] == prec]
    others = sorted((stat(i, "total")[1], _label(configs[i])) for i in idx if i != w)
    tw = stat(w, "total")[1]
    runner = f"; next {others[0][1]} at {others[0][0]:.2f} s" if others else ""
    slowest = f", slowest {others[-1][1]} at {others[-1][0]:.2f} s" if len(others) > 1 else ""
    print(f"Conclusion: the {case} sequence ({prec}) finishes soonest with {_label(configs[w])} "
          f"(median total {tw:.2f} s{runner}{slowest}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
