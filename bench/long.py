"""One-hour recordings with drift, and what a sync costs next to decoding the inputs.

Run (after ``python bench/corpus.py``; from a directory other than the repo root,
so that ``audiosync`` is the installed build):

    cd /tmp && /work/main/.venv/bin/python /work/main/bench/long.py
    python bench/long.py --save long.json                # the figures as JSON too
    python bench/long.py --skip-speed                    # the 1-hour pairs only
    python bench/long.py --skip-long --speed-pairs 10    # the speed figure on corpus pairs only
    python bench/long.py --rebuild                       # build the 1-hour pairs again

The 1-hour pairs (built once, cached under ``DATA/long``, git-ignored): the
corpus's songs (decoded from ``DATA/pkg``, the paths of the corpus manifest's
``songs``) in a seeded order, each once, 0.5-2 s of silence between, cut to
60 min: the reference, written as Opus 128 kb/s at 48 kHz in WebM (a concert
recording, a DJ set). The other is the same audio from ``LAG_S`` (37.25 s) on,
played faster by ``ppm`` (+100 for the first pair, -100 for the second;
``corpus.speed_graph``: asetrate/aresample with soxr, an exact ratio), for 55
min, with pink noise 30 dB under the music, as MP3 192 kb/s at 44.1 kHz (first
pair) or AAC 160 kb/s at 48 kHz (second). So ``other(t) ≈ reference(LAG_S + t *
(1 + ppm * 1e-6))``: lag 37250 ms at the other's start, ``drift_ppm`` = ppm.
Left out of the hour: pb-music003 (a 120 s piece repeated exactly: the place in
it is only known modulo 120 s) and a second render of a work already in (fbh-2p
is fb-2p). The truth is checked once when a pair is built: 5 s of the other at
its start, middle and end, correlated (numpy, 16 kHz) around the expected
place in the reference (``check`` in the pair's JSON).

For each 1-hour pair, ``audiosync files REF OTHER --json`` runs in a subprocess
and the table shows the lag at the other's start against the truth (target:
within 10 ms), ``drift_ppm`` against the truth (target: within 2 ppm) and the
reported ``drift_ppm_error``, the wall time, and the peak resident memory: of
the audiosync process itself (``ru_maxrss`` from ``os.wait4``: the largest of
it and the children it reaped) and of its whole process tree (its RSS and its
ffmpeg children's, summed, sampled every 20 ms from /proc) (target: <= 1 GB).

Speed: for each 1-hour pair and for ``--speed-pairs`` (10) corpus pairs of the
encode condition whose songs are held out (not bench/calibrate.py's fit
packages), in this one run and side by side: (a) ffmpeg decoding the two
inputs to mono 16 kHz float PCM (``-ac 1 -ar 16000 -f f32le /dev/null``) one
after the other, (b) the same two ffmpeg at once, (c) ``audiosync files REF
OTHER --json``; the ratios c/a and c/b per pair and their medians. Before
that, one warm-up of (a) and (c) per pair (page cache, imports, FFT plans);
each figure is the best of ``--repeat`` (1) runs. The machines are shared and
noisy: read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as C  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
DEFAULT_AUDIOSYNC = HERE.parent / ".venv" / "bin" / "audiosync"
REF_S = 3600.0  # the reference: 60 min
OTHER_S = 3300.0  # the other: 55 min
LAG_S = 37.25  # where the other starts in the reference
SNR_DB = 30.0
EXCLUDED = ("pb-music003",)  # exact 120 s repeats: the place is known only modulo 120 s
# pair k: (ppm, codec arguments, suffix, rate)
PAIRS = [
    (100.0, ["-c:a", "libmp3lame", "-b:a", "192k"], ".mp3", 44100),
    (-100.0, ["-c:a", "aac", "-b:a", "160k"], ".m4a", 48000),
]
FIT_PACKAGES = ("frozen-bubble-data", "extremetuxracer-data", "lincity-ng-data", "fb-music-high")
TOL_MS, TOL_PPM, RSS_LIMIT_MB = 10.0, 2.0, 1024.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- building the 1-hour pairs -------------------------------------------------------

def hour_songs(manifest: dict, seed: int) -> list[str]:
    """The songs of the hour, in a seeded order; each work once, EXCLUDED left out."""
    names, works = [], set()
    for name in sorted(manifest["songs"]):
        work = C.SONGS[name].work if name in C.SONGS else None
        if name in EXCLUDED or (work is not None and work in works):
            continue
        works.add(work or name)
        names.append(name)
    rng = np.random.default_rng([seed, 7])
    return [names[i] for i in rng.permutation(len(names))]


def build_reference(data: Path, manifest: dict, k: int, rng) -> tuple[np.ndarray, list[dict]]:
    """60 min of the corpus's songs back to back (44.1 kHz stereo float32) and the track list."""
    need = int(REF_S * C.SR)
    parts, tracks, n = [], [], 0
    for name in hour_songs(manifest, k):
        x = C.decode(data / "pkg" / manifest["songs"][name]["path"], seconds=C.MAX_SONG_SECONDS)
        gap = np.zeros((int(rng.uniform(0.5, 2.0) * C.SR), 2), np.float32)
        tracks.append({"song": name, "at_s": round(n / C.SR, 3), "s": round(len(x) / C.SR, 3)})
        parts += [x, gap]
        n += len(x) + len(gap)
        if n >= need:
            break
    if n < need:
        raise SystemExit(f"the corpus's songs make {n / C.SR / 60:.1f} min only, not {REF_S / 60:.0f}")
    return np.concatenate(parts)[:need], tracks


def mono16(path: Path) -> np.ndarray:
    return C.decode(path, sr=16000, channels=1)[:, 0].astype(np.float64)


def check_truth(ref: Path, other: Path, ppm: float) -> list[dict]:
    """Where 5 s of the other at its start, middle and end are in the reference, against
    the truth lag(t) = LAG_S + t * ppm * 1e-6 (numpy, 16 kHz, +-0.5 s searched)."""
    r, o = mono16(ref), mono16(other)
    sr, out = 16000, []
    for t0 in (1.0, OTHER_S / 2, OTHER_S - 6.0):
        seg = o[int(t0 * sr): int((t0 + 5) * sr)]
        mid = t0 + 2.5
        expect_ms = (LAG_S + mid * ppm * 1e-6) * 1000
        at = int((t0 + expect_ms / 1000 - 0.5) * sr)
        c = C.ncc(r[at: at + len(seg) + sr], seg)
        j = int(np.argmax(c))
        d = 0.0
        if 0 < j < len(c) - 1:
            den = c[j - 1] - 2 * c[j] + c[j + 1]
            d = 0.5 * (c[j - 1] - c[j + 1]) / den if den < 0 else 0.0
        got_ms = ((at + j + d) / sr - t0) * 1000
        out.append({"t_s": round(mid, 1), "expected_ms": round(expect_ms, 3), "measured_ms": round(got_ms, 3),
                    "diff_ms": round(got_ms - expect_ms, 3), "ncc": round(float(c[j]), 3)})
    return out


def build_pair(data: Path, manifest: dict, k: int, rebuild: bool = False) -> dict:
    """Pair k (cached under DATA/long): its paths and truth."""
    ppm, codec, suffix, rate = PAIRS[k]
    out = data / "long"
    out.mkdir(parents=True, exist_ok=True)
    meta = out / f"long-{k}.json"
    ref = out / f"long-{k}-reference.webm"
    other = out / f"long-{k}-other{suffix}"
    if not rebuild and meta.exists() and ref.exists() and other.exists():
        return json.loads(meta.read_text())
    t0 = time.monotonic()
    rng = np.random.default_rng([5, 31, k])
    x, tracks = build_reference(data, manifest, k, rng)
    C.write_download(x, ref)  # Opus 128k, 48 kHz, WebM
    log(f"long-{k}: reference {len(tracks)} tracks, {len(x) / C.SR / 60:.1f} min in {time.monotonic() - t0:.0f} s")
    start = int(round(LAG_S * C.SR))
    n = int(round(OTHER_S * C.SR))
    seg = x[start: start + int(np.ceil(n * (1 + ppm * 1e-6))) + C.SR]
    del x
    y = C.run_filter(seg, C.speed_graph(ppm))[:n]
    del seg
    y = C.add_noise(rng, y, SNR_DB, "pink")
    y = C.finish(rng, y, -3.0)
    tmp = other.with_name(other.stem + ".tmp" + suffix)
    C.encode_file(y, tmp, codec, sr_out=rate)
    tmp.rename(other)
    del y
    log(f"long-{k}: other {OTHER_S / 60:.0f} min at {ppm:+.0f} ppm in {time.monotonic() - t0:.0f} s; checking the truth")
    info = {"id": f"long-{k}", "reference": str(ref.relative_to(data)), "other": str(other.relative_to(data)),
            "lag_ms": LAG_S * 1000, "drift_ppm": ppm, "reference_s": REF_S, "other_s": OTHER_S,
            "other_codec": " ".join(codec), "other_rate": rate, "snr_db": SNR_DB, "filter": C.speed_graph(ppm),
            "tracks": tracks,
            "convention": "other(t) ~= reference(t * (1 + drift_ppm * 1e-6) + lag_ms / 1000)"}
    info["check"] = check_truth(ref, other, ppm)
    meta.write_text(json.dumps(info, indent=1))
    log(f"long-{k}: built in {time.monotonic() - t0:.0f} s; truth check "
        + ", ".join(f"t={c['t_s']} s: {c['diff_ms']:+.3f} ms (ncc {c['ncc']})" for c in info["check"]))
    return info


# -- running ------------------------------------------------------------------------

def tree_rss_kb(pid: int) -> int:
    """RSS of pid and its descendants, summed (kB), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def measure(cmd: list[str], sample_tree: bool = False) -> dict:
    """Run cmd; wall seconds, exit code, stdout, and peak RSS (own via wait4, tree via /proc)."""
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak_tree = 0
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if sample_tree:
                peak_tree = max(peak_tree, tree_rss_kb(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "rc": proc.returncode, "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")[-2000:],
                "maxrss_mb": ru.ru_maxrss / 1024, "tree_rss_mb": peak_tree / 1024 if sample_tree else None}


def ffmpeg_cmd(path: Path) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
            "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-y", "/dev/null"]


def decode_sequential(a: Path, b: Path) -> float:
    t = time.perf_counter()
    for p in (a, b):
        subprocess.run(ffmpeg_cmd(p), check=True)
    return time.perf_counter() - t


def decode_parallel(a: Path, b: Path) -> float:
    t = time.perf_counter()
    procs = [subprocess.Popen(ffmpeg_cmd(p)) for p in (a, b)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"ffmpeg failed on {p.args}")
    return time.perf_counter() - t


def sync(exe: str, ref: Path, other: Path, sample_tree: bool = True) -> dict:
    m = measure([exe, "files", str(ref), str(other), "--json"], sample_tree=sample_tree)
    try:  # the exit status tells confident (0) from not (1): the JSON is there either way
        m["result"] = json.loads(m["stdout"])
    except ValueError:
        raise RuntimeError(f"audiosync files {ref} {other}: exit {m['rc']}: {m['stderr'] or m['stdout'][-500:]}") from None
    del m["stdout"]
    return m


def duration_s(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return float("nan")


def speed_row(exe: str, pid: str, ref: Path, other: Path, repeat: int, first: dict | None = None) -> dict:
    """(a), (b), (c) for one pair, after a warm-up of (a) and (c) (first: a (c) already run, used
    as the warm-up)."""
    decode_sequential(ref, other)
    if first is None:
        sync(exe, ref, other, sample_tree=False)
    a = min(decode_sequential(ref, other) for _ in range(repeat))
    b = min(decode_parallel(ref, other) for _ in range(repeat))
    c = min(sync(exe, ref, other, sample_tree=False)["wall_s"] for _ in range(repeat))
    return {"id": pid, "reference_s": duration_s(ref), "other_s": duration_s(other),
            "a_sequential_s": a, "b_parallel_s": b, "c_audiosync_s": c, "c_over_a": c / a, "c_over_b": c / b}


def long_row(exe: str, data: Path, info: dict) -> dict:
    ref, other = data / info["reference"], data / info["other"]
    m = sync(exe, ref, other)
    r = m["result"]
    lag_err = r["lag_ms"] - info["lag_ms"] if r.get("lag_ms") is not None else None
    ppm = r.get("drift_ppm")
    ppm_err = ppm - info["drift_ppm"] if ppm is not None else None
    lag_map = r.get("lag_map") or []
    return {"id": info["id"], "truth_lag_ms": info["lag_ms"], "truth_ppm": info["drift_ppm"],
            "lag_ms": r.get("lag_ms"), "lag_err_ms": lag_err, "confident": r.get("confident"),
            "confidence": r.get("confidence"), "drift_ppm": ppm, "ppm_err": ppm_err,
            "drift_ppm_error": r.get("drift_ppm_error"), "lag_map_n": len(lag_map),
            "lag_map_confident_share": (sum(w["confidence"] >= 0.95 for w in lag_map) / len(lag_map)) if lag_map else None,
            "breaks": r.get("breaks"), "wall_s": m["wall_s"], "maxrss_mb": m["maxrss_mb"],
            "tree_rss_mb": m["tree_rss_mb"],
            "ok": (lag_err is not None and abs(lag_err) <= TOL_MS and ppm_err is not None
                   and abs(ppm_err) <= TOL_PPM and max(m["maxrss_mb"], m["tree_rss_mb"] or 0) <= RSS_LIMIT_MB)}


def corpus_pairs(data: Path, manifest: dict, n: int) -> list[dict]:
    fit = set(FIT_PACKAGES)
    ps = [p for p in manifest["pairs"] if p["condition"] == "encode"
          and p["package"] not in fit and p["download_package"] not in fit]
    return ps[:n]


# -- output ------------------------------------------------------------------------

def f(v, fmt: str, width: int) -> str:
    return f"{v:{fmt}}".rjust(width) if isinstance(v, (int, float)) and v == v else "-".rjust(width)


def long_table(rows: list[dict]) -> str:
    lines = [f"1-hour pairs: reference {REF_S / 60:.0f} min Opus, other {OTHER_S / 60:.0f} min from "
             f"{LAG_S} s, drifted, {SNR_DB:.0f} dB pink noise "
             f"(targets: lag within {TOL_MS:g} ms, drift within {TOL_PPM:g} ppm, peak RSS <= {RSS_LIMIT_MB:.0f} MB)",
             f"{'pair':<7} {'truth ms':>9} {'lag err ms':>10} {'conf':>5} {'truth ppm':>9} {'ppm':>9} "
             f"{'ppm err':>8} {'+-':>6} {'windows':>7} {'breaks':>6} {'wall s':>7} {'RSS MB':>7} {'tree MB':>7} ok"]
    for r in rows:
        lines.append(f"{r['id']:<7} {r['truth_lag_ms']:9.2f} {f(r['lag_err_ms'], '+.3f', 10)} "
                     f"{'yes' if r['confident'] else 'no':>5} {r['truth_ppm']:+9.1f} {f(r['drift_ppm'], '+.3f', 9)} "
                     f"{f(r['ppm_err'], '+.3f', 8)} {f(r['drift_ppm_error'], '.3f', 6)} {r['lag_map_n']:>7} "
                     f"{len(r['breaks'] or []):>6} {r['wall_s']:7.1f} {r['maxrss_mb']:7.0f} "
                     f"{f(r['tree_rss_mb'], '.0f', 7)} {'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


def speed_table(rows: list[dict]) -> str:
    lines = ["speed: (a) ffmpeg decoding both inputs to mono 16 kHz f32 one after the other, (b) the two at "
             "once, (c) audiosync files --json",
             f"{'pair':<12} {'ref s':>7} {'other s':>7} {'(a) s':>7} {'(b) s':>7} {'(c) s':>7} {'c/a':>6} {'c/b':>6}"]
    for r in rows:
        lines.append(f"{r['id']:<12} {r['reference_s']:7.1f} {r['other_s']:7.1f} {r['a_sequential_s']:7.2f} "
                     f"{r['b_parallel_s']:7.2f} {r['c_audiosync_s']:7.2f} {r['c_over_a']:6.2f} {r['c_over_b']:6.2f}")
    for label, rs in (("median 1 h", [r for r in rows if r["id"].startswith("long-")]),
                      ("median corpus", [r for r in rows if not r["id"].startswith("long-")])):
        if rs:
            lines.append(f"{label:<12} {'':>7} {'':>7} {statistics.median(r['a_sequential_s'] for r in rs):7.2f} "
                         f"{statistics.median(r['b_parallel_s'] for r in rs):7.2f} "
                         f"{statistics.median(r['c_audiosync_s'] for r in rs):7.2f} "
                         f"{statistics.median(r['c_over_a'] for r in rs):6.2f} "
                         f"{statistics.median(r['c_over_b'] for r in rs):6.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--audiosync", default=str(DEFAULT_AUDIOSYNC) if DEFAULT_AUDIOSYNC.exists()
                    else (shutil.which("audiosync") or "audiosync"), help="the audiosync command (default: %(default)s)")
    ap.add_argument("--pairs", type=int, default=len(PAIRS), help=f"1-hour pairs (at most {len(PAIRS)})")
    ap.add_argument("--speed-pairs", type=int, default=10, help="held-out encode pairs of the corpus for the speed figure")
    ap.add_argument("--repeat", type=int, default=1, help="speed: best of this many runs")
    ap.add_argument("--rebuild", action="store_true", help="build the 1-hour pairs again")
    ap.add_argument("--skip-long", action="store_true", help="no 1-hour pairs (speed on corpus pairs only)")
    ap.add_argument("--skip-speed", action="store_true", help="no speed figure")
    ap.add_argument("--save", metavar="FILE.json")
    args = ap.parse_args(argv)
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed")
    data = Path(args.data).resolve()
    manifest_path = data / "corpus" / "manifest.json"
    if not manifest_path.exists():
        raise SystemExit(f"no corpus at {manifest_path}: run python bench/corpus.py first")
    manifest = json.loads(manifest_path.read_text())
    exe = args.audiosync
    t0 = time.monotonic()
    infos, long_rows, speed_rows = [], [], []
    if not args.skip_long:
        infos = [build_pair(data, manifest, k, args.rebuild) for k in range(min(args.pairs, len(PAIRS)))]
        for info in infos:
            log(f"{info['id']}: audiosync files ... --json")
            long_rows.append(long_row(exe, data, info))
            if not args.skip_speed:
                log(f"{info['id']}: speed")
                speed_rows.append(speed_row(exe, info["id"], data / info["reference"], data / info["other"],
                                            args.repeat, first=long_rows[-1]))
    if not args.skip_speed:
        base = manifest_path.parent
        for p in corpus_pairs(data, manifest, args.speed_pairs):
            log(f"{p['id']}: speed")
            speed_rows.append(speed_row(exe, p["id"], base / p["download"], base / p["capture"], args.repeat))
    if long_rows:
        print(long_table(long_rows))
        for info in infos:
            print(f"  {info['id']} truth check (numpy, 5 s): "
                  + ", ".join(f"t={c['t_s']} s {c['diff_ms']:+.3f} ms" for c in info.get("check", [])))
    if speed_rows:
        if long_rows:
            print()
        print(speed_table(speed_rows))
    log(f"long.py: {time.monotonic() - t0:.0f} s")
    if args.save:
        Path(args.save).write_text(json.dumps({"long": long_rows, "speed": speed_rows,
                                               "pairs": [{k: v for k, v in i.items() if k != "tracks"} | {"tracks": len(i["tracks"])}
                                                         for i in infos]}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
