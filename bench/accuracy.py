"""Accuracy of sync methods on the corpus of bench/corpus.py, side by side.

Run (after ``python bench/corpus.py``):

    python bench/accuracy.py                          # the default methods, tables
    python bench/accuracy.py --methods seed aof syncstart seed/live --save ext.json
    python bench/accuracy.py --methods 'cand:*' --save cand.json
    python bench/accuracy.py --load ext.json cand.json          # tables of saved runs
    python bench/accuracy.py --load cand.json --sweep           # thresholds
    python bench/accuracy.py --list                   # the method names
    python bench/accuracy.py ... --json               # JSON instead of tables
    python bench/accuracy.py --methods audiosync aof syncstart --only drift repeat windows

A method is a callable ``(download_path, capture_path) -> (lag_ms or None,
confident, extra)`` registered by name in :data:`METHODS` (use
:func:`register`); ``extra`` may hold ``decision_s`` (seconds of capture
when a live method stopped) and ``decode_s`` (seconds spent decoding, shown
apart). Truth: ``capture(t) ≈ download(t + lag_ms)``.

Per condition and overall it prints: the share of matched pairs answered
confidently within 1 ms and within 10 ms, the confidently wrong answers (off
by more than 10 ms), the confident answers on different songs, the median
seconds per pair, and for live methods the median seconds of capture at the
decision (30 s, the end of the schedule, when never confident).

The conditions drift, repeat and windows (bench/corpus.py) test the file
options of ``sync_files``. Methods registered with ``options=True`` (only
``audiosync``) get each pair's options (:func:`pair_options`): ``drift=True``
on drift pairs, ``all_matches=True`` on repeat pairs, ``reference_window`` and
``other_window`` on windows pairs; the others run on the whole files as on
every pair (the windows are ignored for them). In the main table a drift
pair's truth is the lag at the capture's start and a repeat pair's answer is
scored against the nearer of its two occurrences (there <=1ms and <=10ms
count confident answers only: a method that rightly says "ambiguous" on a
repeat scores 0 in them; read the second table); the ALL rows count these
pairs too when they are run. A second table, per
method, then splits these pairs into held-out and fit packages (fit: those
of bench/calibrate.py's ``DEFAULT_FIT``) and shows: drift: the lag at the
capture's start within 10 ms, ``drift_ppm`` within 20 ppm of the truth and
the median |error| in ppm; repeat: both occurrences among ``matches``
(within 10 ms), the extra confident matches (and those of them that are not
a known recurrence of the music, ``details.repeats_ms``), the confident
headline answers and the confidently wrong ones (at neither occurrence nor a
known recurrence); windows: within 10 ms.

Methods:

* ``seed``: ``audiosync.sync_files(download, capture)`` (confident: |Pearson|
  >= 0.95), or the kernel on ffmpeg-decoded arrays when the installed
  audiosync has no ``sync_files``;
* ``seed/live``: ``audiosync.sync(download, capture=["-readrate", R, "-i",
  capture])``, the real live path with its schedule (3, 6, 10, 15, 20, 30 s);
  the capture file is read at R times real time (``--readrate``, default 4)
  so the download (decoded as fast as ffmpeg can) stays ahead of it as it
  does on a desktop; R = 0 passes ``["-i", capture]`` (read as fast as
  possible: the download then lags behind and early intervals can miss);
* ``aof``: BBC audio-offset-finder's ``find_offset_between_files(download,
  capture)`` with its defaults (8 kHz, 16 ms hops); confident when its
  standard score > 10; its ``time_offset`` is the lag as defined here;
* ``syncstart``: the ``syncstart`` command line (``-s -q -t 200``: no plots,
  whole files; its default ``-t 20`` would look at the first 20 s only); it
  prints ``file,seconds``: the download named means lag = +seconds, the
  capture named means lag = -seconds; it always answers;
* ``cand:NAME`` and ``cand:NAME/live``: the candidates of bench/methods.py
  (see :data:`CANDIDATES`), offline (the whole capture) and on the live
  schedule simulated on the decoded arrays (the first T s of the capture for
  T in 3, 6, 10, 15, 20, 30 against the first 120 s of the download).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import methods as M  # noqa: E402

RATE = 48000
DL_SECONDS = 1260.0  # the whole song (the corpus cuts songs at 20 min, plus an intro)
HERE = Path(__file__).resolve().parent
DEFAULT_MANIFEST = HERE / "data" / "corpus" / "manifest.json"
TOL_FINE_MS, TOL_MS = 1.0, 10.0
TOL_PPM = 20.0  # drift pairs: drift_ppm within this of the truth
NEW_CONDITIONS = ("drift", "repeat", "windows")  # the pairs of the file options
# the packages the thresholds were fitted on (bench/calibrate.py DEFAULT_FIT); the rest is held out
FIT_PACKAGES = ("frozen-bubble-data", "extremetuxracer-data", "lincity-ng-data", "fb-music-high")

METHODS: dict[str, object] = OrderedDict()
LIVE: set[str] = set()
OPTIONED: set[str] = set()  # methods that take a pair's options (pair_options) as keywords


def register(name: str, fn, live: bool = False, options: bool = False) -> None:
    """Add a method: fn(download_path, capture_path) -> (lag_ms | None, confident, extra);
    with options=True, fn(download_path, capture_path, **pair_options(pair))."""
    METHODS[name] = fn
    if live:
        LIVE.add(name)
    if options:
        OPTIONED.add(name)


def pair_options(p: dict) -> dict:
    """The sync_files options a pair asks for: drift pairs drift=True, repeat pairs
    all_matches=True, windows pairs the two windows; {} for the others."""
    d = p.get("details", {})
    if p["condition"] == "drift":
        return {"drift": True}
    if p["condition"] == "repeat":
        return {"all_matches": True}
    if p["condition"] == "windows":
        return {"reference_window": tuple(d["reference_window"]), "other_window": tuple(d["other_window"])}
    return {}


# -- decoding ----------------------------------------------------------------------

class Decoder:
    """ffmpeg -> mono float32 at 48 kHz, as the package decodes; downloads are kept."""

    def __init__(self):
        self.keep: dict[str, np.ndarray] = {}
        self.last: tuple[str, np.ndarray] | None = None
        self.seconds = 0.0

    def __call__(self, path: str, seconds: float | None = None) -> np.ndarray:
        key = f"{path}|{seconds}"
        if key in self.keep:
            return self.keep[key]
        if self.last and self.last[0] == key:
            return self.last[1]
        t = time.perf_counter()
        args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", path]
        if seconds:
            args += ["-t", str(seconds)]
        raw = subprocess.run([*args, "-vn", "-ac", "1", "-ar", str(RATE), "-f", "f32le", "pipe:1"],
                             capture_output=True, check=True).stdout
        x = np.frombuffer(raw, np.float32)
        self.seconds += time.perf_counter() - t
        if "/downloads/" in path:
            self.keep[key] = x
        else:
            self.last = (key, x)
        return x


DECODE = Decoder()


# -- the external and seed methods ------------------------------------------------------

READRATE = 4.0


def project_offline(download: str, capture: str, method: str = "phat", **options):
    """sync_files; options (drift, all_matches, the windows) are passed only when given."""
    import audiosync
    r = audiosync.sync_files(download, capture, method=method, **options)
    extra = {"confidence": r.confidence, "prominence": r.prominence}
    if options:
        extra["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
        if getattr(r, "drift_ppm", None) is not None:
            extra["drift_ppm"] = r.drift_ppm
            extra["drift_ppm_error"] = r.drift_ppm_error
        if options.get("all_matches"):
            extra["matches"] = [[float(m[0]), float(m[1])] for m in (r.matches or ())]
        if getattr(r, "lag_map", None):
            extra["lag_map_n"] = len(r.lag_map)
        if getattr(r, "breaks", None):
            extra["breaks"] = [[float(v) for v in b] for b in r.breaks]
    return r.lag_ms, bool(r.confident), extra


def project_live(download: str, capture: str, method: str = "phat"):
    import audiosync
    cap = ["-readrate", str(READRATE), "-i", capture] if READRATE else ["-i", capture]
    r = audiosync.SyncJob().sync(download, capture=cap, method=method)
    hist = [{"interval_s": p.interval_s, "lag_ms": p.lag_ms, "confidence": p.confidence,
             "downloaded_s": p.downloaded_s} for p in r.history]
    return r.lag_ms, bool(r.confident), {"confidence": r.confidence, "reason": r.reason,
                                         "decision_s": r.interval_s if r.confident else 30.0,
                                         "history": hist}


def seed_offline(download: str, capture: str):
    """The original method: raw correlation, confident when |Pearson| >= 0.95."""
    return project_offline(download, capture, method="seed")


def seed_live(download: str, capture: str):
    return project_live(download, capture, method="seed")


def aof(download: str, capture: str):
    from audio_offset_finder.audio_offset_finder import find_offset_between_files
    try:
        r = find_offset_between_files(download, capture)
    except Exception as exc:  # InsufficientAudioException and the like
        return None, False, {"error": f"{type(exc).__name__}: {exc}"}
    score = float(r["standard_score"])
    return 1000.0 * float(r["time_offset"]), score > 10, {"score": score}


def syncstart(download: str, capture: str):
    exe = Path(sys.executable).with_name("syncstart")
    out = subprocess.run([str(exe), download, capture, "-s", "-q", "-t", "200"],
                         capture_output=True, text=True)
    # it exits with sys.exit((file, offset)), status 1, so the status means nothing
    line = [ln for ln in out.stdout.strip().splitlines() if "," in ln]
    if not line:
        return None, False, {"error": (out.stderr or out.stdout)[-300:]}
    name, secs = line[-1].rsplit(",", 1)
    secs = float(secs)
    lag = 1000.0 * secs if os.path.samefile(name, download) else -1000.0 * secs
    return lag, True, {}


register("audiosync", project_offline, options=True)
register("audiosync/live", project_live, live=True)
register("seed", seed_offline)
register("seed/live", seed_live, live=True)
register("aof", aof)
register("syncstart", syncstart)


# -- the candidates of bench/methods.py -----------------------------------------------------

V = M.Variant
# name -> (variant, offline prominence threshold, live rule)
CANDIDATES: dict[str, tuple] = OrderedDict([
    # plain cross-correlation (the seed's correlation) with prominence instead of Pearson
    ("xc", (V(rate=16000, beta=0.0, band=None), 2.0, M.LiveRule((2.0,)))),
    ("xc-band", (V(rate=16000, beta=0.0, band=(100, 4000)), 2.0, M.LiveRule((2.0,)))),
    # partial whitening, band 100-4000 Hz
    ("b05-band", (V(rate=16000, beta=0.5, band=(100, 4000)), 2.0, M.LiveRule((2.0,)))),
    ("b07-band", (V(rate=16000, beta=0.7, band=(100, 4000)), 2.0, M.LiveRule((2.0,)))),
    ("b085-band", (V(rate=16000, beta=0.85, band=(100, 4000)), 2.0, M.LiveRule((2.0,)))),
    ("phat-band", (V(rate=16000, beta=1.0, band=(100, 4000)), 2.0, M.LiveRule((2.0,)))),
    # full band at 16 kHz (0-8 kHz) and classic GCC-PHAT at 48 kHz
    ("phat16", (V(rate=16000, beta=1.0, band=None), 2.0, M.LiveRule((2.0,)))),
    ("b07-16", (V(rate=16000, beta=0.7, band=None), 2.0, M.LiveRule((2.0,)))),
    # the same with 50 ms fades at both ends of both signals (the capture's cut edges
    # otherwise correlate with onsets in the download)
    # thresholds: 1.25 x the worst prominence of a different-song pair or a wrong lag
    # on this corpus (offline), and of every interval (live), rounded up; see the README
    ("phat-band-t", (V(rate=16000, beta=1.0, band=(100, 4000), taper_ms=50), 1.55, M.LiveRule((2.05,)))),
    ("b085-band-t", (V(rate=16000, beta=0.85, band=(100, 4000), taper_ms=50), 1.65, M.LiveRule((2.2,)))),
    # the best: PHAT on 16 kHz (0-8 kHz), 50 ms fades, prominence >= 1.5 (live: 1.9); the null
    # study (--null 2) saw 1.435 at most over 1406 different-song intervals
    ("phat16-t", (V(rate=16000, beta=1.0, band=None, taper_ms=50), 1.5, M.LiveRule((1.9,)))),
    ("phat48", (V(rate=48000, beta=1.0, band=None), 2.0, None)),
    ("b07-band48", (V(rate=48000, beta=0.7, band=(100, 4000)), 2.0, None)),
])
FEATURE_CACHE: dict = {}
ONLY: set | None = None  # the candidates asked for (the others are not computed)
SPECTRA = M.SpectrumCache()


def _features(download: str, capture: str, live: bool) -> dict:
    """Features of every candidate for this pair, computed once (all variants share the FFTs)."""
    key = (download, capture, live)
    if key in FEATURE_CACHE:
        return FEATURE_CACHE[key]
    if any(k[:2] != (download, capture) for k in FEATURE_CACHE):
        FEATURE_CACHE.clear()  # a new pair
    t = time.perf_counter()
    src = DECODE(download, DL_SECONDS)
    smp = DECODE(capture)
    dec = time.perf_counter() - t
    names = [n for n, c in CANDIDATES.items() if (not live or c[2] is not None)
             and (ONLY is None or n in ONLY)]
    variants = [CANDIDATES[n][0] for n in names]
    t = time.perf_counter()
    if live:
        per = M.live_history(src, smp, RATE, variants, cache=SPECTRA, source_key=download)
        res = {n: h for n, h in zip(names, per)}
    else:
        per = M.correlate(src, smp, RATE, variants, cache=SPECTRA, source_key=download)
        res = {n: f for n, f in zip(names, per)}
    FEATURE_CACHE[key] = {"features": res, "decode_s": dec, "compute_s": time.perf_counter() - t,
                          "n": len(variants)}
    return FEATURE_CACHE[key]


def _slim(f: dict) -> dict:
    return {k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else v)
            for k, v in f.items() if k in ("lag_ms", "prominence", "z", "pearson", "silent", "interval_s", "peak")}


def make_candidate(name: str, live: bool):
    variant, threshold, rule = CANDIDATES[name]

    def offline(download, capture):
        got = _features(download, capture, False)
        f = got["features"][name]
        conf = (not f["silent"]) and f["prominence"] >= threshold
        return f["lag_ms"], conf, {"features": _slim(f), "decode_s": got["decode_s"],
                                   "shared_compute_s": got["compute_s"] / got["n"]}

    def online(download, capture):
        got = _features(download, capture, True)
        hist = got["features"][name]
        k, ans = rule.decide(hist)
        f = hist[ans]
        return f["lag_ms"], k is not None, {
            "decision_s": hist[k]["interval_s"] if k is not None else 30.0,
            "history": [_slim(h) for h in hist], "decode_s": got["decode_s"],
            "shared_compute_s": got["compute_s"] / got["n"]}

    return online if live else offline


for _n in CANDIDATES:
    register(f"cand:{_n}", make_candidate(_n, False))
    if CANDIDATES[_n][2] is not None:
        register(f"cand:{_n}/live", make_candidate(_n, True), live=True)


# -- running and scoring -------------------------------------------------------------

def load_manifest(path: Path) -> tuple[Path, list[dict]]:
    m = json.loads(path.read_text())
    return path.parent, m["pairs"]


def truth_lags(p: dict) -> list[float]:
    """The right answers of a matched pair: both occurrences for a repeat pair, else lag_ms."""
    return list(p["details"].get("matches_ms") or [p["lag_ms"]])


def score_new(p: dict, row: dict) -> None:
    """The extra scores of a drift, repeat or windows pair, into row["new"]."""
    d, x = p["details"], row["extra"]
    new = {"package": p.get("package"), "download_package": p.get("download_package"),
           "options_used": "options" in x}
    if p["condition"] == "drift":
        new["truth_ppm"] = d["drift_ppm"]
        got = x.get("drift_ppm")
        new["drift_ppm"] = got
        new["drift_ppm_error"] = x.get("drift_ppm_error")
        new["ppm_err"] = None if got is None else got - d["drift_ppm"]
    elif p["condition"] == "repeat":
        truths = truth_lags(p)
        known = truths + list(d.get("repeats_ms", []))
        near = lambda lag, ls: any(abs(lag - t) <= TOL_MS for t in ls)  # noqa: E731
        lag = row["lag_ms"]
        new["headline_confident"] = row["confident"]
        new["headline_wrong"] = bool(row["confident"] and (lag is None or not near(lag, known)))
        if "matches" in x:
            ms = [m[0] for m in x["matches"]]
            new["matches_n"] = len(ms)
            new["found_both"] = all(near(t, ms) for t in truths)
            new["extra"] = sum(not near(m, truths) for m in ms)
            new["extra_unknown"] = sum(not near(m, known) for m in ms)
    row["new"] = new


def run(pairs: list[dict], base: Path, names: list[str], progress: bool = True) -> list[dict]:
    rows = []
    for j, p in enumerate(pairs):
        dl, cap = str(base / p["download"]), str(base / p["capture"])
        opts = pair_options(p)
        for name in names:
            t = time.perf_counter()
            try:
                if opts and name in OPTIONED:
                    lag, conf, extra = METHODS[name](dl, cap, **opts)
                else:
                    lag, conf, extra = METHODS[name](dl, cap)
            except Exception as exc:  # a method failing is a result, not a crash
                lag, conf, extra = None, False, {"error": f"{type(exc).__name__}: {exc}"}
            dt = time.perf_counter() - t
            err = None
            if lag is not None and p["lag_ms"] is not None:
                err = min((lag - t for t in truth_lags(p)), key=abs)  # repeat: the nearer occurrence
            row = {"id": p["id"], "condition": p["condition"], "method": name,
                   "true_ms": p["lag_ms"], "lag_ms": lag, "confident": bool(conf),
                   "err_ms": err, "time_s": extra["shared_compute_s"]
                   if name.startswith("cand:") else dt, "extra": extra}
            if p["condition"] in NEW_CONDITIONS:
                score_new(p, row)
            rows.append(row)
        if progress:
            print(f"[{j + 1}/{len(pairs)}] {p['id']}", file=sys.stderr, flush=True)
    return rows


def summarize(rows: list[dict], name: str, conditions: list[str]) -> list[dict]:
    out = []
    for cond in [*conditions, "ALL"]:
        rs = [r for r in rows if r["method"] == name and (cond == "ALL" or r["condition"] == cond)]
        if not rs:
            continue
        matched = [r for r in rs if r["true_ms"] is not None]
        diff = [r for r in rs if r["true_ms"] is None]
        ok = lambda r, tol: r["confident"] and r["err_ms"] is not None and abs(r["err_ms"]) <= tol  # noqa: E731
        s = {"condition": cond, "pairs": len(rs), "matched": len(matched), "different": len(diff),
             "within_1ms": sum(ok(r, TOL_FINE_MS) for r in matched),
             "within_10ms": sum(ok(r, TOL_MS) for r in matched),
             "wrong": sum(r["confident"] and (r["err_ms"] is None or abs(r["err_ms"]) > TOL_MS) for r in matched),
             "diff_confident": sum(r["confident"] for r in diff),
             "median_s": statistics.median(r["time_s"] for r in rs)}
        dec = [r["extra"].get("decision_s") for r in matched if r["extra"].get("decision_s") is not None]
        s["median_decision_s"] = statistics.median(dec) if dec else None
        out.append(s)
    return out


def table(rows: list[dict], names: list[str], conditions: list[str], timing: dict | None = None) -> str:
    lines = []
    for name in names:
        summ = summarize(rows, name, conditions)
        if not summ:
            continue
        live = any(s["median_decision_s"] is not None for s in summ)
        lines.append(f"\n== {name}")
        head = f"{'condition':<10} {'pairs':>5} {'<=1ms':>7} {'<=10ms':>7} {'wrong':>5} {'diff conf':>9} {'s/pair':>7}"
        if live:
            head += f" {'decide s':>8}"
        lines.append(head)
        for s in summ:
            m = s["matched"]
            pct = lambda k: f"{100 * k / m:6.1f}%" if m else "      -"  # noqa: E731
            t = s["median_s"]
            if timing and name in timing and s["condition"] == "ALL":
                t = timing[name]
            line = (f"{s['condition']:<10} {s['pairs']:>5} {pct(s['within_1ms'])} {pct(s['within_10ms'])} "
                    f"{s['wrong']:>5} {str(s['diff_confident']) + '/' + str(s['different']) if s['different'] else '-':>9} "
                    f"{t:7.2f}")
            if live:
                d = s["median_decision_s"]
                line += f" {d:8.1f}" if d is not None else f" {'-':>8}"
            lines.append(line)
    return "\n".join(lines)


def summarize_new(rows: list[dict], name: str) -> list[dict]:
    """Per new condition and group (held out, fit, all): the extra scores of score_new."""
    out = []
    fit = set(FIT_PACKAGES)
    groups = (("held-out", lambda n: n["package"] not in fit and n["download_package"] not in fit),
              ("fit", lambda n: n["package"] in fit and n["download_package"] in fit),
              ("all", lambda n: True))
    for cond in NEW_CONDITIONS:
        for g, keep in groups:
            rs = [r for r in rows if r["method"] == name and r["condition"] == cond and "new" in r
                  and keep(r["new"])]
            if not rs:
                continue
            ok = [r["confident"] and r["err_ms"] is not None and abs(r["err_ms"]) <= TOL_MS for r in rs]
            s = {"condition": cond, "group": g, "pairs": len(rs), "within_10ms": sum(ok),
                 "wrong": sum(r["confident"] and (r["err_ms"] is None or abs(r["err_ms"]) > TOL_MS) for r in rs),
                 "options_used": sum(r["new"]["options_used"] for r in rs),
                 "median_s": statistics.median(r["time_s"] for r in rs)}
            if cond == "drift":
                errs = [abs(r["new"]["ppm_err"]) for r in rs if r["new"].get("ppm_err") is not None]
                s["ppm_answered"] = len(errs)
                s["within_ppm"] = sum(e <= TOL_PPM for e in errs)
                s["median_abs_ppm_err"] = statistics.median(errs) if errs else None
                s["max_abs_ppm_err"] = max(errs) if errs else None
            elif cond == "repeat":
                listed = [r for r in rs if "found_both" in r["new"]]
                s["matches_listed"] = len(listed)
                s["found_both"] = sum(r["new"]["found_both"] for r in listed)
                s["no_third"] = sum(r["new"]["extra"] == 0 for r in listed)
                s["extra"] = sum(r["new"]["extra"] for r in listed)
                s["extra_unknown"] = sum(r["new"]["extra_unknown"] for r in listed)
                s["headline_confident"] = sum(r["new"]["headline_confident"] for r in rs)
                s["headline_wrong"] = sum(r["new"]["headline_wrong"] for r in rs)
            out.append(s)
    return out


def table_new(rows: list[dict], names: list[str]) -> str:
    """The drift, repeat and windows pairs, per method, held out and fit apart."""
    lines = []
    for name in names:
        summ = summarize_new(rows, name)
        if not summ:
            continue
        lines.append(f"\n== {name}: file options ({'passed' if name in OPTIONED else 'not passed: whole files, windows ignored'})")
        for cond in NEW_CONDITIONS:
            ss = [s for s in summ if s["condition"] == cond]
            if not ss:
                continue
            pct = lambda k, n: f"{k:>2}/{n:<2} {100 * k / n:5.1f}%" if n else f"{'-':>13}"  # noqa: E731
            if cond == "drift":
                lines.append(f"{'drift':<8} {'group':<8} {'pairs':>5} {'start<=10ms':>13} {'wrong':>5} "
                             f"{'ppm<=20':>13} {'med|ppm err|':>12} {'max':>7} {'s/pair':>7}")
                for s in ss:
                    med = s.get("median_abs_ppm_err")
                    mx = s.get("max_abs_ppm_err")
                    lines.append(f"{'':<8} {s['group']:<8} {s['pairs']:>5} {pct(s['within_10ms'], s['pairs'])} "
                                 f"{s['wrong']:>5} {pct(s['within_ppm'], s['pairs']) if s['ppm_answered'] else f'{chr(45):>13}'} "
                                 f"{f'{med:12.2f}' if med is not None else f'{chr(45):>12}'} "
                                 f"{f'{mx:7.1f}' if mx is not None else f'{chr(45):>7}'} {s['median_s']:7.2f}")
            elif cond == "repeat":
                lines.append(f"{'repeat':<8} {'group':<8} {'pairs':>5} {'both found':>13} {'no third':>13} "
                             f"{'extra':>5} {'unknown':>7} {'head conf':>9} {'head wrong':>10} {'<=10ms':>13} {'s/pair':>7}")
                for s in ss:
                    n = s["matches_listed"]
                    lines.append(f"{'':<8} {s['group']:<8} {s['pairs']:>5} "
                                 f"{pct(s['found_both'], n) if n else f'{chr(45):>13}'} "
                                 f"{pct(s['no_third'], n) if n else f'{chr(45):>13}'} "
                                 f"{s['extra'] if n else '-':>5} {s['extra_unknown'] if n else '-':>7} "
                                 f"{s['headline_confident']:>9} {s['headline_wrong']:>10} "
                                 f"{pct(s['within_10ms'], s['pairs'])} {s['median_s']:7.2f}")
            else:
                lines.append(f"{'windows':<8} {'group':<8} {'pairs':>5} {'<=10ms':>13} {'wrong':>5} {'s/pair':>7}")
                for s in ss:
                    lines.append(f"{'':<8} {s['group']:<8} {s['pairs']:>5} {pct(s['within_10ms'], s['pairs'])} "
                                 f"{s['wrong']:>5} {s['median_s']:7.2f}")
    if lines:
        lines.append("\n(drift: the lag at the capture's start; repeat: <=10ms and wrong against the nearer "
                     "occurrence, extra = confident matches at neither occurrence, unknown = of those, at no "
                     "known recurrence of the music either; head wrong = a confident headline at neither)")
    return "\n".join(lines)


def overview(rows: list[dict], names: list[str], conditions: list[str]) -> str:
    """One line per method: overall, plus the plain-encode and noise targets."""
    lines = [f"{'method':<22} {'<=1ms':>7} {'<=10ms':>7} {'wrong':>5} {'diff':>5} {'plain+noise<=1ms':>16} {'s/pair':>7} {'decide s':>8}"]
    plain = {"encode", "before", "after", "noise20", "noise10", "noise5", "noise0"}
    for name in names:
        rs = [r for r in rows if r["method"] == name]
        if not rs:
            continue
        a = summarize(rs, name, [])[-1]
        pn = [r for r in rs if r["condition"] in plain and r["true_ms"] is not None]
        fine = sum(r["confident"] and abs(r["err_ms"] or 1e9) <= 1 for r in pn)
        m = a["matched"]
        d = a["median_decision_s"]
        lines.append(f"{name:<22} {100 * a['within_1ms'] / m:6.1f}% {100 * a['within_10ms'] / m:6.1f}% "
                     f"{a['wrong']:>5} {a['diff_confident']:>2}/{a['different']:<2} {100 * fine / max(1, len(pn)):15.1f}% "
                     f"{a['median_s']:7.2f} {d if d is not None else float('nan'):8.1f}")
    return "\n".join(lines)


def redecide(rows: list[dict]) -> None:
    """Apply the current thresholds and rules of CANDIDATES to saved candidate rows."""
    for r in rows:
        if not r["method"].startswith("cand:"):
            continue
        name = r["method"][5:].split("/")[0]
        if name not in CANDIDATES:
            continue
        _, thr, rule = CANDIDATES[name]
        if r["method"].endswith("/live"):
            hist = r["extra"]["history"]
            k, ans = rule.decide(hist)
            r["lag_ms"] = hist[ans]["lag_ms"]
            r["confident"] = k is not None
            r["extra"]["decision_s"] = hist[k]["interval_s"] if k is not None else 30.0
        else:
            f = r["extra"]["features"]
            r["confident"] = (not f.get("silent")) and f["prominence"] >= thr
        r["err_ms"] = None if r["true_ms"] is None else r["lag_ms"] - r["true_ms"]


# -- threshold sweep ---------------------------------------------------------------

def sweep(rows: list[dict], margin: float) -> str:
    """For each candidate: the smallest prominence threshold with no confident wrong or
    different-song answer; the results there and at ``margin`` times the worst null."""
    out = []
    names = sorted({r["method"] for r in rows if r["method"].startswith("cand:")})
    for name in names:
        rs = [r for r in rows if r["method"] == name]
        live = name.endswith("/live")
        if not live:
            null = [r["extra"]["features"]["prominence"] for r in rs
                    if r["true_ms"] is None or abs(r["err_ms"]) > TOL_MS]
            worst_diff = max((r["extra"]["features"]["prominence"] for r in rs if r["true_ms"] is None), default=0)
            worst = max(null, default=0.0)
            good = sorted(r["extra"]["features"]["prominence"] for r in rs
                          if r["true_ms"] is not None and abs(r["err_ms"]) <= TOL_MS)
            m = sum(r["true_ms"] is not None for r in rs)
            fine = sorted(r["extra"]["features"]["prominence"] for r in rs
                          if r["true_ms"] is not None and abs(r["err_ms"]) <= TOL_FINE_MS)
            for label, thr in (("min", worst * 1.0001), (f"x{margin:g}", worst * margin)):
                n_ok = sum(g >= thr for g in good)
                n_fine = sum(g >= thr for g in fine)
                out.append(f"{name:<24} worst different {worst_diff:6.3f} worst null {worst:6.3f} thr[{label}] {thr:6.3f}: "
                           f"{100 * n_ok / m:5.1f}% within 10 ms, {100 * n_fine / m:5.1f}% within 1 ms")
        else:
            # per interval: worst prominence among different-song pairs and wrong lags
            by_k: dict[int, list[float]] = {}
            for r in rs:
                for k, h in enumerate(r["extra"]["history"]):
                    wrong = r["true_ms"] is None or abs(h["lag_ms"] - r["true_ms"]) > TOL_MS
                    if wrong and not h.get("silent"):
                        by_k.setdefault(k, []).append(h["prominence"])
            worst = [max(by_k.get(k, [0.0])) for k in range(6)]
            out.append(f"{name:<24} worst null per interval {' '.join(f'{w:5.2f}' for w in worst)}")
            thr_one = max(worst) * margin
            for label, rule in (
                (f"flat x{margin:g}", M.LiveRule((thr_one,))),
                (f"per-interval x{margin:g}", M.LiveRule(tuple(max(w * margin, 1.05) for w in worst))),
            ):
                out.append(f"    {label:<22} {describe_rule(rule)}: {live_score(rs, rule)}")
    return "\n".join(out)


def describe_rule(rule) -> str:
    s = "prom >= " + "/".join(f"{t:.2f}" for t in rule.thresholds)
    if rule.agree is not None:
        s += f" or (two in a row >= {rule.agree:.2f}, lags within {rule.agree_ms:g} ms)"
    return s


def live_score(rs: list[dict], rule) -> str:
    m = [r for r in rs if r["true_ms"] is not None]
    ok = wrong = diff = 0
    dec = []
    for r in rs:
        hist = r["extra"]["history"]
        k, ans = rule.decide(hist)
        if r["true_ms"] is None:
            diff += k is not None
            continue
        dec.append(hist[k]["interval_s"] if k is not None else 30.0)
        if k is not None:
            if abs(hist[ans]["lag_ms"] - r["true_ms"]) <= TOL_MS:
                ok += 1
            else:
                wrong += 1
    return (f"{100 * ok / len(m):5.1f}% within 10 ms, wrong {wrong}, different {diff}, "
            f"median decision {statistics.median(dec):.0f} s")


# -- null study: captures against downloads of other songs -----------------------------

def null_study(base: Path, pairs: list[dict], names: list[str], k: int, seed: int = 1) -> dict:
    """Live-schedule features of every capture against ``k`` downloads of other songs.

    Downloads are zero-padded to 120 s so one transform size serves all. Returns
    {candidate: [prominence of every (capture, download, interval) trial]}, and
    the worst trial of each.
    """
    rng = np.random.default_rng(seed)
    downloads: dict[str, set] = {}
    for p in pairs:
        d = p["details"]
        songs = {d.get("download_song", d["song"]) if p["lag_ms"] is None else d["song"]}
        if d.get("intro_other_music"):
            songs.add(d["intro_other_music"])
        downloads.setdefault(p["download"], set()).update(songs)
    variants = [CANDIDATES[n][0] for n in names]
    cache = M.SpectrumCache()
    out = {n: [] for n in names}
    hists = {n: [] for n in names}
    worst = {n: (0.0, None) for n in names}
    dls = sorted(downloads)
    n_dl = int(DL_SECONDS * RATE)
    for j, p in enumerate(pairs):
        song = p["details"]["song"]
        others = [d for d in dls if song not in downloads[d]]
        cap = str(base / p["capture"])
        smp = DECODE(cap)
        for d in rng.choice(others, size=min(k, len(others)), replace=False):
            src = DECODE(str(base / d), DL_SECONDS)
            if len(src) < n_dl:
                src = np.concatenate([src, np.zeros(n_dl - len(src), np.float32)])
            per = M.live_history(src, smp, RATE, variants, cache=cache, source_key=str(d),
                                 want_pearson=False, sample_key=cap)
            for name, hist in zip(names, per):
                hists[name].append([{"lag_ms": h["lag_ms"], "prominence": h["prominence"],
                                     "silent": h["silent"], "interval_s": h["interval_s"]} for h in hist])
                for h in hist:
                    if h["silent"]:
                        continue
                    out[name].append(h["prominence"])
                    if h["prominence"] > worst[name][0]:
                        worst[name] = (h["prominence"], f"{p['id']} vs {d} at {h['interval_s']} s")
        # keep the download transforms, drop this capture's
        cache._d = {kk: v for kk, v in cache._d.items()  # drop this capture's transforms
                    if not (isinstance(kk[0], tuple) and isinstance(kk[0][0], tuple))}
        print(f"[null {j + 1}/{len(pairs)}] {p['id']}", file=sys.stderr, flush=True)
    return {"trials": out, "worst": worst, "histories": hists}


# -- main ----------------------------------------------------------------------------

DEFAULT_METHODS = ["seed", "seed/live", "aof", "syncstart", "cand:phat16-t", "cand:phat16-t/live"]


def main(argv=None) -> int:
    global READRATE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    ap.add_argument("--methods", nargs="*", default=DEFAULT_METHODS, help="names or patterns ('cand:*')")
    ap.add_argument("--conditions", "--only", nargs="*", help="only these conditions")
    ap.add_argument("--ids", nargs="*", help="only these pair ids")
    ap.add_argument("--readrate", type=float, default=READRATE, help="seed/live: capture read speed (0: as fast as possible)")
    ap.add_argument("--save", help="write the per-pair results here (JSON)")
    ap.add_argument("--load", nargs="*", help="read saved results instead of running")
    ap.add_argument("--json", action="store_true", help="print JSON (summaries and per-pair rows)")
    ap.add_argument("--sweep", action="store_true", help="threshold sweep of the candidates")
    ap.add_argument("--margin", type=float, default=1.25)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--null", type=int, default=0, metavar="K",
                    help="null study: every capture against K downloads of other songs (live schedule)")
    ap.add_argument("--null-methods", nargs="*", default=["b07-band", "phat-band"])
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    READRATE = args.readrate
    if args.list:
        print("\n".join(f"{n}{' (live)' if n in LIVE else ''}" for n in METHODS))
        return 0
    global ONLY
    names = []
    for pat in args.methods:
        hits = [n for n in METHODS if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise SystemExit(f"no method {pat!r}; --list shows them")
        names += [h for h in hits if h not in names]
    ONLY = {n.split(":", 1)[1].split("/")[0] for n in names if n.startswith("cand:")}

    if args.null:
        base, pairs = load_manifest(Path(args.manifest))
        t0 = time.perf_counter()
        res = null_study(base, pairs, args.null_methods, args.null)
        lines = []
        for n, trials in res["trials"].items():
            a = np.array(trials)
            lines.append(f"{n:<12} {len(a)} trials: max {a.max():.3f} ({res['worst'][n][1]}), "
                         f"99.9% {np.quantile(a, 0.999):.3f}, 99% {np.quantile(a, 0.99):.3f}, "
                         f"median {np.median(a):.3f}")
        for n, hs in res["histories"].items():
            if n in CANDIDATES and CANDIDATES[n][2] is not None:
                for rule in (CANDIDATES[n][2], M.LiveRule((2.5,), agree=1.3)):
                    fp = sum(rule.decide(h)[0] is not None for h in hs)
                    lines.append(f"{n:<12} live rule {describe_rule(rule)}: confident on {fp} of {len(hs)} "
                                 f"different-song schedules")
                thr = CANDIDATES[n][1]
                lines.append(f"{n:<12} offline threshold {thr}: {sum(t >= thr for t in res['trials'][n])} "
                             f"of {len(res['trials'][n])} intervals above it")
        print("\n".join(lines))
        print(f"null study: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.save:
            Path(args.save).write_text(json.dumps(res, default=float))
        return 0
    if args.load:
        rows = []
        for f in args.load:
            rows += json.loads(Path(f).read_text())["rows"]
        names = [n for n in dict.fromkeys(r["method"] for r in rows)
                 if any(fnmatch.fnmatchcase(n, p) for p in args.methods)] or list(dict.fromkeys(r["method"] for r in rows))
        if args.methods == DEFAULT_METHODS:
            names = list(dict.fromkeys(r["method"] for r in rows))
        redecide(rows)
    else:
        base, pairs = load_manifest(Path(args.manifest))
        if args.conditions:
            pairs = [p for p in pairs if p["condition"] in args.conditions]
        if args.ids:
            pairs = [p for p in pairs if p["id"] in args.ids]
        t0 = time.perf_counter()
        rows = run(pairs, base, names, progress=not args.quiet)
        if not args.quiet:
            print(f"ran {len(pairs)} pairs x {len(names)} methods in {time.perf_counter() - t0:.0f} s "
                  f"(decoding {DECODE.seconds:.0f} s)", file=sys.stderr)
        if args.save:
            Path(args.save).write_text(json.dumps({"rows": rows}, default=float))
    if args.conditions:
        rows = [r for r in rows if r["condition"] in args.conditions]
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    if args.json:
        out = {"summary": {n: summarize(rows, n, conditions) for n in names}}
        if any("new" in r for r in rows):
            out["summary_options"] = {n: summarize_new(rows, n) for n in names}
        out["rows"] = rows
        print(json.dumps(out, default=float, indent=1))
        return 0
    print(overview(rows, names, conditions))
    print(table(rows, names, conditions))
    if any("new" in r for r in rows):
        print(table_new(rows, names))
    if args.sweep:
        print("\n" + sweep(rows, args.margin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
