"""Many recordings: timeline accuracy on real music, batch throughput, and resume after SIGKILL.

Run (after ``python bench/corpus.py``; from a folder other than the repository root):

    python bench/many.py                 # all three parts, ~10 min on 2 cores
    python bench/many.py --part timeline # or batch, resume
    python bench/many.py --part layouts --song fbh-2p --layouts 20   # one song, many layouts

**Timeline.** For songs of every package of the corpus, six excerpts of 20 s
cut at exact samples (48 kHz) from the song, each starting 6 s plus a
random fraction of a second after the previous one (each overlaps the next
two; excerpts three or more apart do not overlap and are placed only
through the others, and the pairs close cycles), with noise at
30 dB SNR, each encoded differently (Opus, MP3, FLAC, AAC in an MP4 video
with a test pattern, Vorbis, AAC in M4A), plus an excerpt of another
song. :func:`audiosync.align` places them; printed: the largest offset
error against the truth, whether the other song is unplaced, and, with one
confident pair corrupted by 40 ms, whether that pair is the one dropped.
``--part layouts`` does the same for one song in many random layouts (a
song whose passages repeat almost exactly is where placements go wrong),
and counts the excerpts placed wrong and their confidence.

**Batch.** The first 40 matched pairs of the corpus manifest (whole song
against a 30-40 s capture), run by :func:`audiosync.batch` on 1 process,
on 2 local worker processes, and on a Dask ``LocalCluster`` of 2 worker
processes with one thread each; pairs per second and the ratios. Also the
work of one worker on this process alone (one ffmpeg per input: a batch's
1 process decodes a long download as two halves, on both cores), so that
the ratio of 2 processes to 1 measures what the second process adds.

**Resume.** ``audiosync batch`` on the same 40 pairs, killed with SIGKILL
(its whole process group) once about half the lines are written, then run
again: the lines are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from audiosync import align, batch, ffmpeg
from audiosync.batch import Pair, run_pair
from audiosync.timeline import likeness, place

DATA = Path(__file__).resolve().parent / "data" / "corpus"
RATE = 48000
EXCERPTS, LENGTH_S, STEP_S = 6, 20.0, 6.0
CODECS = (
    ("opus", ("-c:a", "libopus", "-b:a", "96k")),
    ("mp3", ("-c:a", "libmp3lame", "-b:a", "160k")),
    ("flac", ("-c:a", "flac")),
    ("mp4", None),  # AAC in a video
    ("ogg", ("-c:a", "libvorbis", "-q:a", "4")),
    ("m4a", ("-c:a", "aac", "-b:a", "128k")),
)
BATCH_PAIRS = 40


def _songs(manifest: dict) -> list[tuple[str, str, str]]:
    """(song, package, download path) of the corpus, one per song."""
    seen = {}
    for p in manifest["pairs"]:
        seen.setdefault(p["song"], (p["song"], p["package"], str(DATA / p["download"])))
    return list(seen.values())


def _encode(audio: np.ndarray, path: Path, codec) -> None:
    if codec is None:
        wav = path.with_suffix(".wav")
        ffmpeg.encode(audio, RATE, str(wav), "-c:a", "pcm_s16le")
        subprocess.run(ffmpeg.command("-y", "-f", "lavfi", "-i", f"testsrc=size=160x120:rate=25:duration={LENGTH_S}",
                                      "-i", str(wav), "-c:v", "mpeg4", "-c:a", "aac", "-b:a", "128k", "-shortest",
                                      str(path)), check=True)
        wav.unlink()
    else:
        ffmpeg.encode(audio, RATE, str(path), *codec)


def timeline_part(folder: Path, rng: np.random.Generator, per_package: int) -> list[dict]:
    manifest = json.load(open(DATA / "manifest.json"))
    by_package: dict[str, list] = {}
    for song in _songs(manifest):
        by_package.setdefault(song[1], []).append(song)
    rows = []
    for package, songs in by_package.items():
        picked = 0
        for name, _, download in songs:
            audio = ffmpeg.decode(download, RATE)
            need = (STEP_S + 1.0) * (EXCERPTS - 1) + LENGTH_S + 5.0
            if len(audio) < need * RATE:
                continue
            picked += 1
            if picked > per_package:
                break
            others = [s for p, ss in by_package.items() if p != package for s in ss]
            stranger = others[int(rng.integers(len(others)))]
            rows.append(_one_timeline(folder / name, audio, stranger, rng, name, package))
            r = rows[-1]
            print(f"{package:22} {name:24} max error {r['max_error_ms']:7.3f} ms  placed {r['placed']}/{EXCERPTS}  "
                  f"other song unplaced: {r['stranger_unplaced']}  corruption seen: {r['corrupt_detected']}, "
                  f"the corrupted pair dropped: {r['corrupt_dropped']} "
                  f"(then max error {r['corrupt_max_error_ms']:.3f} ms)  {r['seconds']:.1f} s", flush=True)
    return rows


def _one_timeline(folder: Path, audio: np.ndarray, stranger, rng, name: str, package: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    start = float(rng.uniform(0, len(audio) / RATE - ((STEP_S + 1.0) * (EXCERPTS - 1) + LENGTH_S + 1.0)))
    paths, truth = [], []
    for k in range(EXCERPTS):
        i = int(round(start * RATE))
        cut = audio[i:i + int(LENGTH_S * RATE)].astype(np.float64)
        rms = float(np.sqrt(np.mean(cut ** 2))) or 1e-3
        cut = cut + rng.normal(0, rms * 10 ** (-30 / 20), len(cut))
        ext, codec = CODECS[k % len(CODECS)]
        path = folder / f"{k}.{ext}"
        _encode(cut.astype(np.float32), path, codec)
        paths.append(str(path))
        truth.append(1000.0 * i / RATE)
        start += STEP_S + float(rng.uniform(0.0, 1.0))
    other_audio = ffmpeg.decode(stranger[2], RATE)
    j = int(rng.integers(0, max(1, len(other_audio) - int(LENGTH_S * RATE))))
    stranger_path = folder / "other-song.flac"
    ffmpeg.encode(other_audio[j:j + int(LENGTH_S * RATE)], RATE, str(stranger_path), "-c:a", "flac")
    t0 = time.monotonic()
    t = align([*paths, str(stranger_path)])
    seconds = time.monotonic() - t0
    placed = [f for f in t.files[:EXCERPTS] if not f.unplaced]
    # Errors against the truth with the earliest placed excerpt as zero (the timeline's zero is
    # the earliest placed, which need not be the earliest excerpt).
    first = min((k for k, f in enumerate(t.files[:EXCERPTS]) if not f.unplaced), key=lambda k: truth[k], default=0)
    truth = [x - truth[first] for x in truth]
    zero = t.files[first].offset_ms or 0.0
    error = {k: abs(f.offset_ms - zero - want) for k, (f, want) in enumerate(zip(t.files, truth)) if not f.unplaced}
    errors = list(error.values())
    wrong = [t.files[k].confidence for k, e in error.items() if e > 1.0]
    # One pair that closes a cycle corrupted by 40 ms: the cycle must be seen to disagree (an
    # edge dropped); and which edge was dropped (a lone cycle cannot tell which pair is wrong:
    # its weakest goes).
    cyclic = [k for k, e in enumerate(t.edges) if e.status == "checked"]
    corrupt_detected = corrupt_dropped = None
    corrupt_error = float("nan")
    if cyclic:
        k = cyclic[int(rng.integers(len(cyclic)))]
        edges = list(t.edges)
        edges[k] = replace(edges[k], lag_ms=edges[k].lag_ms + 40.0)
        audio = [ffmpeg.decode(f.path, t.sample_rate) for f in t.files]  # as align hears them
        bad = place([f.path for f in t.files], [f.duration_s for f in t.files], edges, sample_rate=t.sample_rate,
                    alike=lambda a, b, lag: likeness(audio[a], audio[b], lag, t.sample_rate, t.tolerance_ms))
        dropped = [j for j, e in enumerate(bad.edges) if e.status == "dropped"]
        corrupt_detected = len(dropped) > len(t.dropped)
        corrupt_dropped = k in dropped
        corrupt_error = max((abs(f.offset_ms - want) for f, want in zip(bad.files, truth) if not f.unplaced),
                            default=float("nan"))
    return {"song": name, "package": package, "placed": len(placed), "wrong": len(wrong),
            "wrong_confidence": max(wrong, default=None),
            "max_error_ms": max(errors, default=float("nan")), "stranger_unplaced": t.files[-1].unplaced,
            "dropped_measured": len(t.dropped), "corrupt_detected": corrupt_detected,
            "corrupt_dropped": corrupt_dropped,
            "corrupt_max_error_ms": corrupt_error, "seconds": seconds}


def layouts_part(folder: Path, rng, song: str, count: int) -> list[dict]:
    """One song, ``count`` random layouts of the timeline part (a stress test of one song)."""
    manifest = json.load(open(DATA / "manifest.json"))
    songs = {name: (name, package, download) for name, package, download in _songs(manifest)}
    name, package, download = songs[song]
    audio = ffmpeg.decode(download, RATE)
    others = [s for s in songs.values() if s[1] != package]
    rows = []
    for k in range(count):
        stranger = others[int(rng.integers(len(others)))]
        rows.append(_one_timeline(folder / f"{name}-{k}", audio, stranger, rng, name, package))
        r = rows[-1]
        print(f"layout {k:3} placed {r['placed']}/{EXCERPTS}  wrong {r['wrong']} (confidence "
              f"{r['wrong_confidence']})  max error {r['max_error_ms']:.3f} ms  other song unplaced: "
              f"{r['stranger_unplaced']}", flush=True)
    return rows


def _timeline_summary(rows: list[dict]) -> None:
    right = [r for r in rows if r["placed"] == EXCERPTS and r["wrong"] == 0]
    partly = [r for r in rows if 0 < r["placed"] < EXCERPTS and r["wrong"] == 0]
    wrong = [r for r in rows if r["wrong"]]
    confident_wrong = [r for r in wrong if r["wrong_confidence"] >= 0.95]
    print(f"timeline: {len(rows)} layouts; all {EXCERPTS} excerpts placed right (within 1 ms) in {len(right)} "
          f"(largest error {max((r['max_error_ms'] for r in right), default=float('nan')):.3f} ms); "
          f"some unplaced, the placed right in {len(partly)}; none placed in "
          f"{sum(r['placed'] == 0 for r in rows)}; an excerpt placed wrong in {len(wrong)} "
          f"({len(confident_wrong)} with confidence >= 0.95); other song unplaced in "
          f"{sum(r['stranger_unplaced'] for r in rows)}/{len(rows)}; "
          f"corruption seen in {sum(bool(r['corrupt_detected']) for r in rows)}/"
          f"{sum(r['corrupt_detected'] is not None for r in rows)} (the corrupted pair dropped in "
          f"{sum(bool(r['corrupt_dropped']) for r in rows)})", flush=True)


def _batch_pairs() -> list[tuple[str, str, float]]:
    manifest = json.load(open(DATA / "manifest.json"))
    matched = [p for p in manifest["pairs"] if p["condition"] != "different"]
    return [(str(DATA / p["download"]), str(DATA / p["capture"]), p["lag_ms"]) for p in matched[:BATCH_PAIRS]]


def batch_part() -> dict:
    pairs = _batch_pairs()
    work = [(r, o) for r, o, _ in pairs]
    truth = {(r, o): lag for r, o, lag in pairs}
    runs = {}

    cores = {}

    def cpu_s() -> float:  # this process and its reaped children (ffmpeg, worker processes)
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def timed(label, one_ffmpeg=False, **kwargs):
        t0, c0 = time.monotonic(), cpu_s()
        if one_ffmpeg:  # what each worker of jobs=2 does with a pair, on this process alone
            results = [run_pair(Pair(r, o, {}), split_decode=False) for r, o in work]
        else:
            results = list(batch(work, **kwargs))
        seconds = time.monotonic() - t0
        right = sum(1 for res in results if res.get("confident")
                    and abs(res["lag_ms"] - truth[(res["reference"], res["other"])]) <= 10.0)
        runs[label] = seconds
        # Cores kept busy on average (a Dask cluster's workers are not this process's children).
        cores[label] = (cpu_s() - c0) / seconds
        print(f"{label:28} {len(results)} pairs in {seconds:6.1f} s: {len(results) / seconds:5.2f} pairs/s "
              f"({right} confident and right within 10 ms); {cores[label]:.2f} cores busy", flush=True)

    timed("1 process")
    timed("1 process, one ffmpeg/input", one_ffmpeg=True)
    timed("2 local processes", jobs=2)
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        timed("Dask LocalCluster, 2 workers", scheduler=cluster.scheduler_address)
    two = runs["1 process"] / runs["2 local processes"]
    scaling = runs["1 process, one ffmpeg/input"] / runs["2 local processes"]
    dask = runs["Dask LocalCluster, 2 workers"] / runs["2 local processes"]
    print(f"2 processes / 1 process: {two:.2f}x (target >= 1.7); "
          f"/ 1 process doing a worker's work (one ffmpeg per input): {scaling:.2f}x")
    print(f"Dask time / local time (2 workers each): {dask:.2f} (target <= 1.15)")
    n = os.cpu_count() or 1
    for label in ("1 process", "1 process, one ffmpeg/input"):
        print(f"on {n} cores, {label} keeping {cores[label]:.2f} busy: 2 processes can be at most "
              f"{min(2.0, n / cores[label]):.2f}x as fast")
    return {"speedup_2": two, "scaling_2": scaling, "dask_over_local": dask, **runs,
            "cores_busy": cores}


def resume_part(folder: Path) -> dict:
    pairs = _batch_pairs()
    manifest = folder / "manifest.csv"
    manifest.write_text("reference,other\n" + "".join(f"{r},{o}\n" for r, o, _ in pairs))
    out = folder / "results.jsonl"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "audiosync", "batch", str(manifest), "--out", str(out), "--jobs", "2", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=folder, start_new_session=True)
    while proc.poll() is None and (not out.exists() or out.read_text().count("\n") < len(pairs) // 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = out.read_text().count("\n")
    subprocess.run(cmd, cwd=folder, check=True)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    keys = {(x["reference"], x["other"]) for x in lines}
    print(f"resume: killed with {killed_at} of {len(pairs)} lines written; after the re-run {len(lines)} lines, "
          f"{len(keys)} distinct pairs (want {len(pairs)} and {len(pairs)})")
    return {"killed_at": killed_at, "lines": len(lines), "distinct": len(keys), "pairs": len(pairs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("timeline", "layouts", "batch", "resume", "all"), default="all")
    ap.add_argument("--per-package", type=int, default=2, help="songs per package in the timeline part")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--song", default="fbh-2p", help="the song of the layouts part")
    ap.add_argument("--layouts", type=int, default=20, help="random layouts of that song")
    args = ap.parse_args()
    if not (DATA / "manifest.json").exists():
        sys.exit("run python bench/corpus.py first")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="audiosync-many-") as tmp:
        folder = Path(tmp)
        if args.part in ("timeline", "all"):
            rows = timeline_part(folder, rng, args.per_package)
            _timeline_summary(rows)
        if args.part == "layouts":
            _timeline_summary(layouts_part(folder, rng, args.song, args.layouts))
        if args.part in ("batch", "all"):
            batch_part()
        if args.part in ("resume", "all"):
            resume_part(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
