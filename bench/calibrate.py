"""Fit the confidence threshold on some packages of the corpus and report on the others.

Run (after ``python bench/corpus.py``; from a folder other than the repository root):

    python bench/calibrate.py --save rows.json          # estimate every pair, ~35 min on one core
    python bench/calibrate.py --shard 1/2 --save a.json & python bench/calibrate.py --shard 2/2 --save b.json
    python bench/calibrate.py --load a.json b.json      # the two halves together
    python bench/calibrate.py --load rows.json          # fit and report again, instantly
    python bench/calibrate.py --load rows.json --fit frozen-bubble-data,extremetuxracer-data

For every pair of the manifest (download: the whole song; capture: 30-40 s)
both decoded at 16 kHz mono as the package decodes them, it runs the
project's method (:func:`audiosync.method.estimate`) on the capture's first
T seconds for T in the live schedule (3, 6, 10, 15, 20, 30), against the
whole download, as a live sync does once the download is complete:

* ``start``: with no hint (the default schedule's window at the song's start);
* and offline, the whole capture (as ``sync_files``).

(A hint only narrows the search that the chance is counted over; its effect
is measured end to end by bench/live.py.)

Null pairs are added to the manifest's different-song pairs: every third
matched capture against the download of another song of its own group (fit
or held out).

Each estimate keeps its lag, its evidence (``-log10`` of its chance, the
quantity that the confidence maps) and its prominence, and, for the rule
the package had before (the prominence of the unmasked phase transform over
thresholds 2.0 at 3 s, 1.9 at 6 s, 1.6 from 10 s, 1.5 offline), its own
estimate on the same audio.

The fit, on the fit packages only: ``EVIDENCE_95`` is the largest evidence
of any estimate on a different song (or a null pair), times ``--margin``
(1.25); then ``PROMINENCE_95`` is the largest prominence of a wrong
estimate (more than 10 ms off) on a matched pair that passed that evidence,
its excess over 1 times the margin. The report, on the
held-out packages (never used to fit), per rule: the share of matched pairs
confident and right within 10 ms (and 1 ms offline), confident and wrong,
confident on different songs, and the decision (the first T confident) as
median and 90th percentile. The threshold written in audiosync/method.py is
printed next to the fitted one.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from audiosync import ffmpeg
from audiosync import method as M

RATE = 16000
SCHEDULE = (3, 6, 10, 15, 20, 30)
FLOOR_S = M.MIN_CONFIDENT_S  # the shortest capture that may be confident (--floor)
HINT_WINDOW_MS = 3000.0
TOL_MS, FINE_MS = 10.0, 1.0
MODES = ("start",)  # the hint mode is measured end to end by bench/live.py
# The rule before this work: prominence thresholds per capture length (README of issue 5).
OLD_LIVE = ((3.0, 2.0), (6.0, 1.9), (math.inf, 1.6))
OLD_OFFLINE = 1.5
DEFAULT_MANIFEST = Path(__file__).resolve().parent / "data" / "corpus" / "manifest.json"
DEFAULT_FIT = ("frozen-bubble-data", "extremetuxracer-data", "lincity-ng-data", "fb-music-high")


def in_packages(pair: dict, packages: str | None) -> bool:
    """Whether both songs of ``pair`` are in ``packages`` (comma-separated); None: both held out
    (neither in DEFAULT_FIT). What bench/live.py and bench/hints.py run on."""
    keep = set(packages.split(",")) if packages else None
    songs = (pair.get("package"), pair.get("download_package", pair.get("package")))
    return all(s in keep for s in songs) if keep else not any(s in DEFAULT_FIT for s in songs)


def old_threshold(seconds: float | None) -> float:
    if seconds is None:
        return OLD_OFFLINE
    return next(t for upto, t in OLD_LIVE if seconds <= upto + 1e-9)


def old_prominence(correlator, sample: np.ndarray) -> tuple[int, float, float]:
    """The previous rule's estimate: the phase transform over the whole 0-8 kHz band, its prominence."""
    n, m = len(sample), correlator.source.shape[0]
    overlap = min(int(M.MIN_OVERLAP_S * RATE), n, m)
    try:
        peak = correlator.find(sample, lags=(-(n - overlap), m - overlap), weights=M._band(correlator.n, RATE),
                               beta=1.0, guard=int(round(M.GUARD_S * RATE)))
    except ValueError:
        return 0, 0.0, 0.0
    return peak.lag, peak.fraction, peak.prominence


def estimate_pair(pair: dict, base: Path, rng: np.random.Generator, download: dict | None = None) -> list[dict]:
    """The rows of one pair; with ``download`` (another pair), its capture against that pair's
    download instead: a null pair (different songs) of the same packages."""
    dl = ffmpeg.decode(str(base / (download or pair)["download"]), RATE)
    cap = ffmpeg.decode(str(base / pair["capture"]), RATE)
    truth = None if download else pair["lag_ms"]
    song_ms = 1000.0 * len(dl) / RATE
    if truth is None:
        hint_ms = float(rng.uniform(0, song_ms))
    else:
        hint_ms = truth + float(rng.uniform(-2000.0, 2000.0))
    correlator = M.make_correlator(dl, min(len(dl), int(max(SCHEDULE) * RATE), len(cap)), "phat", RATE)
    rows = []
    lengths = [t for t in SCHEDULE if t * RATE <= len(cap)] + [None]
    for seconds in lengths:
        sample = cap if seconds is None else cap[: int(seconds * RATE)]
        if seconds is None:
            correlator_here = M.make_correlator(dl, len(sample), "phat", RATE) if len(sample) > correlator.max_sample_length \
                else correlator
        else:
            correlator_here = correlator
        old_lag, old_fraction, old_prom = old_prominence(correlator_here, sample)
        searched = len(dl) + len(sample) - 2 * min(RATE, len(dl), len(sample)) + 1  # estimate's lags
        for mode in (("offline",) if seconds is None else MODES):
            h = hint_ms if mode == "hint" else 0.0
            window = (int(math.floor((h - HINT_WINDOW_MS) * RATE / 1000)), int(math.ceil((h + HINT_WINDOW_MS) * RATE / 1000)))
            est = M.estimate(correlator_here, sample, "phat", RATE, "live" if seconds else "offline",
                             seconds or math.inf, window=None if mode == "offline" else window)
            rows.append({
                "id": pair["id"] + (f"~{download['id']}" if download else ""),
                "condition": "null" if download else pair["condition"], "package": pair.get("package"),
                "download_package": (download or pair).get("download_package", (download or pair).get("package")),
                "truth_ms": truth, "seconds": seconds, "mode": mode,
                "lag_ms": est.lag_ms(RATE), "evidence": est.evidence, "prominence": est.prominence,
                "coefficient": est.coefficient, "confidence": est.confidence,
                # the waveform's Pearson lead at the peak over other likely places (method.lead)
                "lead": est.lead if math.isfinite(est.lead) else 2.0,
                # the rule of method.estimate, on the whole song's lags
                "alone": M.stands_alone(est.prominence, RATE, searched, len(sample)),
                "old_lag_ms": 1000.0 * (old_lag + old_fraction) / RATE, "old_prominence": old_prom,
            })
    return rows


def work(song: str) -> str:
    """The composition a song renders: fb-music-high holds frozen-bubble's music in higher
    quality (fbh-2p is fb-2p), so a null pair of the two is no null."""
    return song.replace("fbh-", "fb-", 1)


def verdict(row: dict, rule: str, limits: tuple[float, ...]) -> tuple[bool, float]:
    """(confident, lag_ms) of a row under a rule: "new" (evidence, prominence, lead; a fourth
    limit: the lead that passes without the prominence) or "old" (prominence)."""
    if rule == "old":
        return row["old_prominence"] >= old_threshold(row["seconds"]), row["old_lag_ms"]
    evidence_95, prominence_95, lead_95, *alone = limits
    short = row["seconds"] is not None and row["seconds"] < FLOOR_S
    # alone (--lead-alone): a waveform lead this large stands in for the prominence
    stands_out = row["prominence"] >= prominence_95 or (bool(alone) and _lead(row) >= alone[0])
    return (row["evidence"] >= evidence_95 and stands_out and _agrees(row, lead_95)
            and not short), row["lag_ms"]


def _lead(row: dict) -> float:
    if "lead" in row:
        return row["lead"]
    # rows saved when the test was the ratio of unexplained variances (1 - r)
    return (min(row["dominance"], 1e6) - 1.0) * (1.0 - row["coefficient"])


def _agrees(row: dict, lead_95: float) -> bool:
    # A peak that stands alone (method.stands_alone, over the whole song) is not asked the lead (its
    # evidence, saved since that rule, is then the peak's own).
    return _lead(row) >= lead_95 or row.get("alone", False)


def _wrong(r: dict) -> bool:
    return r["truth_ms"] is None or abs(r["lag_ms"] - r["truth_ms"]) > TOL_MS


def fit(rows: list[dict], margin: float) -> tuple[tuple[float, float, float], list[dict]]:
    """EVIDENCE_95: above every unrelated-audio estimate (different songs, nulls); then
    PROMINENCE_95 (the phase transform's) and LEAD_95 (the waveform's Pearson lead): above
    every wrong estimate on matched pairs that passed the evidence and matched best at the peak."""
    unrelated = [r for r in rows if r["truth_ms"] is None]
    worst_e = max(unrelated, key=lambda r: r["evidence"], default=None)
    e95 = (worst_e["evidence"] if worst_e else 0.0) * margin
    wrong = [r for r in rows if r["truth_ms"] is not None and _wrong(r) and r["evidence"] >= e95
             and _agrees(r, 0.0)]
    worst_p = max(wrong, key=lambda r: r["prominence"], default=None)
    grow = lambda v: 1.0 + (v - 1.0) * margin  # noqa: E731
    p95 = max(grow(worst_p["prominence"]) if worst_p else 1.05, 1.05)
    # Either test alone must keep every wrong estimate out: the lead only has to keep out those
    # the prominence lets in; at least 0.01 (a lead of 0 is two places alike).
    let_in = [r for r in wrong if r["prominence"] >= p95]
    worst_q = max(let_in, key=_lead, default=None)
    q95 = max(_lead(worst_q) * margin if worst_q else 0.0, 0.01)
    return (e95, p95, q95), [r for r in (worst_e, worst_p, worst_q) if r]


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:5.1f}%" if b else "   - "


def report(rows: list[dict], rule: str, limits: tuple[float, float], title: str) -> None:
    print(f"\n{title}")
    print(f"{'mode':8} {'pairs':>5} {'right<=10ms':>11} {'right<=1ms':>10} {'wrong':>5} {'diff.conf':>9} "
          f"{'decision median':>15} {'p90':>5} {'at 3 s':>7}")
    for mode in (*MODES, "offline"):
        sel = [r for r in rows if r["mode"] == mode]
        by_pair: dict[str, list[dict]] = {}
        for r in sel:
            by_pair.setdefault(r["id"], []).append(r)
        matched = [rs for rs in by_pair.values() if rs[0]["truth_ms"] is not None]
        different = [rs for rs in by_pair.values() if rs[0]["truth_ms"] is None]
        right = fine = wrong = at3 = 0
        decisions = []
        for rs in matched:
            rs = sorted(rs, key=lambda r: r["seconds"] or 0)
            for r in rs:
                confident, lag = verdict(r, rule, limits)
                if confident:
                    err = abs(lag - r["truth_ms"])
                    if err <= TOL_MS:
                        right += 1
                        fine += err <= FINE_MS
                        decisions.append(r["seconds"] or 0)
                        at3 += r["seconds"] == 3
                    else:
                        wrong += 1
                    break
            else:
                decisions.append(math.inf)
        diff_conf = sum(any(verdict(r, rule, limits)[0] for r in rs) for rs in different)
        finite = sorted(decisions)
        median = statistics.median(finite) if finite else math.nan
        p90 = finite[min(len(finite) - 1, int(math.ceil(0.9 * len(finite))) - 1)] if finite else math.nan
        fmt = lambda v: "never" if v == math.inf else ("-" if v != v else f"{v:g} s")  # noqa: E731
        print(f"{mode:8} {len(matched):5d} {_pct(right, len(matched)):>11} {_pct(fine, len(matched)):>10} "
              f"{wrong:5d} {diff_conf:>4d}/{len(different):<4d} {fmt(median) if mode != 'offline' else '':>15} "
              f"{fmt(p90) if mode != 'offline' else '':>5} {_pct(at3, len(matched)) if mode != 'offline' else '':>7}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    ap.add_argument("--save", help="write the estimates to this JSON file")
    ap.add_argument("--load", nargs="+", help="read estimates saved by --save (several: shards) instead of estimating")
    ap.add_argument("--shard", default="1/1", help="K/N: estimate every N-th pair from the K-th (run N processes)")
    ap.add_argument("--fit", default=",".join(DEFAULT_FIT), help="packages to fit on (the rest is held out)")
    ap.add_argument("--margin", type=float, default=1.25)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--null-every", type=int, default=3, help="one null pair per this many matched pairs")
    ap.add_argument("--schedule", type=float, nargs="+", help="capture lengths to estimate at (s; default: "
                    "the live schedule). 2 2.5 3 with --floor 2: the tracker's early searches (tracker.EARLY_S)")
    ap.add_argument("--floor", type=float, default=M.MIN_CONFIDENT_S,
                    help="the shortest capture that may be confident (s; default: a sync's, MIN_CONFIDENT_S)")
    ap.add_argument("--lead-alone", type=float, nargs="*", default=[],
                    help="also report the package's rule with a waveform lead this large standing in for the "
                         "prominence (tried for issue 14's slow answers; dropped)")
    args = ap.parse_args(argv)
    global SCHEDULE, FLOOR_S
    SCHEDULE = tuple(args.schedule or SCHEDULE)
    FLOOR_S = args.floor
    if args.load:
        rows = [r for f in args.load for r in json.loads(Path(f).read_text())["rows"]]
        # Estimates saved before null pairs kept to different works: leave those out.
        song_of = {p["id"]: p.get("song") for p in json.loads(Path(args.manifest).read_text())["pairs"]}
        rows = [r for r in rows if r["condition"] != "null"
                or len({work(song_of.get(i) or i) for i in r["id"].split("~")}) == 2]
    else:
        manifest = Path(args.manifest)
        pairs = json.loads(manifest.read_text())["pairs"]
        rng = np.random.default_rng(args.seed)
        rows = []
        t0 = time.monotonic()
        # Null pairs besides the manifest's different songs: every --null-every'th matched
        # capture against the download of a different song of its own group (fit or held out).
        fit_set = set(filter(None, args.fit.split(",")))
        matched = [p for p in pairs if p["lag_ms"] is not None]
        nulls = []
        for k, p in enumerate(matched[:: args.null_every]):
            group = [q for q in matched if (q.get("package") in fit_set) == (p.get("package") in fit_set)
                     and work(q.get("song", q["download"])) != work(p.get("song", p["download"]))
                     and q["condition"] != "intro"]
            if group:
                nulls.append((p, group[(k * 7) % len(group)]))
        jobs = [(p, None) for p in pairs] + nulls
        k, n = (int(v) for v in args.shard.split("/"))
        jobs = jobs[k - 1 :: n]
        for i, (pair, other) in enumerate(jobs):
            rows += estimate_pair(pair, manifest.parent, rng, other)
            print(f"\r{i + 1}/{len(jobs)} pairs, {time.monotonic() - t0:.0f} s", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if args.save:
            Path(args.save).write_text(json.dumps({"rows": rows}))
    fit_packages = set(filter(None, args.fit.split(",")))

    def in_fit(r: dict) -> bool:
        return r["package"] in fit_packages and r["download_package"] in fit_packages

    def held_out(r: dict) -> bool:
        return r["package"] not in fit_packages and r["download_package"] not in fit_packages

    fit_rows, test_rows = [r for r in rows if in_fit(r)], [r for r in rows if held_out(r)]
    (e95, p95, q95), worst = fit(fit_rows, args.margin)
    print(f"fit packages: {', '.join(sorted(fit_packages))} ({len({r['id'] for r in fit_rows})} pairs); "
          f"held out: {', '.join(sorted({r['package'] for r in test_rows}))} ({len({r['id'] for r in test_rows})} pairs)")
    for w in worst:
        print(f"  worst on the fit packages: {w['id']} ({w['mode']}, {w['seconds']} s, {w['condition']}): "
              f"evidence {w['evidence']:.2f}, prominence {w['prominence']:.3f}")
    # PROMINENCE_ALONE: above the prominence of every wrong or unrelated estimate (an exact repeat
    # of the capture, a repeat pair, two places alike by construction, left out).
    for name, part in (("fit", fit_rows), ("held-out", test_rows)):
        bad = [r for r in part if _wrong(r) and r["condition"] != "repeat"]
        top = max(bad, key=lambda r: r["prominence"], default=None)
        if top:
            print(f"  largest prominence of a wrong or unrelated estimate, {name} packages: {top['prominence']:.3f} "
                  f"({top['id']}, {top['mode']}, {top['seconds']} s); PROMINENCE_ALONE = {M.PROMINENCE_ALONE}")
    print(f"fitted EVIDENCE_95 = {e95:.2f}, PROMINENCE_95 = {p95:.3f}, LEAD_95 = {q95:.3f} "
          f"(margin {args.margin}); in audiosync/method.py: {M.EVIDENCE_95}, {M.PROMINENCE_95}, "
          f"{M.LEAD_95}")
    package = (M.EVIDENCE_95, M.PROMINENCE_95, M.LEAD_95)
    for rule, limits, name in (
            ("new", package, "evidence >= {:g}, prominence >= {:g}, lead >= {:g} (the package's)".format(*package)),
            ("new", (e95, p95, q95), f"evidence >= {e95:.2f}, prominence >= {p95:.3f}, lead >= {q95:.3f} (fitted now)"),
            ("old", (0.0, 0.0, 0.0), "prominence >= 2.0/1.9/1.6, offline 1.5 (before)"),
            *(("new", (*package, v), f"the package's, or lead >= {v:g} without the prominence")
              for v in args.lead_alone)):
        report(test_rows, rule, limits, f"held-out packages, rule: {name}")
        report(fit_rows, rule, limits, f"fit packages, rule: {name}")
    print(f"\nthe package's rule at each length (floor {FLOOR_S:g} s): confident and right, wrong; unrelated confident")
    for name, sel in (("held out", test_rows), ("fit", fit_rows)):
        for t in sorted({r["seconds"] for r in sel if r["seconds"] is not None}):
            at = [(r, *verdict(r, "new", package)) for r in sel if r["seconds"] == t and r["mode"] == "start"]
            matched = [a for a in at if a[0]["truth_ms"] is not None]
            right = sum(c and abs(lag - r["truth_ms"]) <= TOL_MS for r, c, lag in matched)
            wrong = sum(c and abs(lag - r["truth_ms"]) > TOL_MS for r, c, lag in matched)
            unrelated = [c for r, c, _ in at if r["truth_ms"] is None]
            print(f"  {name:8} {t:5g} s: {right}/{len(matched)} right, {wrong} wrong; "
                  f"{sum(unrelated)}/{len(unrelated)} unrelated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
