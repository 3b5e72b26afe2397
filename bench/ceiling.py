"""What no method can decide early: the held-out pairs whose first seconds of capture hold no song,
or hold a passage that the song itself repeats.

Run (after ``python bench/corpus.py``; from a folder other than the repository root):

    python bench/ceiling.py --save ceiling.json     # ~5 min on one core
    python bench/ceiling.py --load ceiling.json

For every matched pair of the held-out packages (those bench/live.py runs
on), and for T = 3, 6 and 10 s, from the download alone (the song as
published, no capture condition):

* ``no song``: the capture starts more than T - 1 s before the song (the
  ``before`` condition), so its first T s hold less than a second of music
  (or the song ends within a second of where it starts);
* ``repeated``: the music of the capture's first T s (the T s of the song
  where it starts, or from the song's start for a capture that starts
  before it) comes again elsewhere in the song (more than 0.1 s away) at
  a Pearson coefficient of at least 0.99 (or 0.95): the capture's first T s are then equally the
  song at two places, and an answer that is never confidently wrong must
  wait (without a position) or trust the position between identical places.

Pearson is taken at every lag by one FFT correlation and running sums.
It prints the counts per T, over all matched pairs and over the base
conditions (bench/live.py's 101: not drift, repeat, windows), and the
share that remains decidable at T at most.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calibrate import DEFAULT_MANIFEST, in_packages  # noqa: E402

from audiosync._sizes import working_length  # noqa: E402

RATE = 16000
LENGTHS = (3, 6, 10)
AWAY_S = 0.1


class Song:
    """A song's transform and running sums, made once for every place looked up in it."""

    def __init__(self, song: np.ndarray):
        self.song, self.m = song, len(song)
        # Circular, as long as the song: the lags wanted (0 to m - n) never wrap.
        self.size = working_length(self.m)
        self.spectrum = np.fft.rfft(song, self.size)
        self.sums = np.concatenate([[0.0], np.cumsum(song)])
        self.squares = np.concatenate([[0.0], np.cumsum(song * song)])

    def best_elsewhere(self, at: int, n: int) -> tuple[float, float]:
        """(Pearson, offset s) of the best place more than AWAY_S from ``at`` where
        ``song[at:at + n]`` comes again."""
        seg = self.song[at:at + n] - self.song[at:at + n].mean()
        count = self.m - n + 1
        products = np.fft.irfft(self.spectrum * np.conj(np.fft.rfft(seg, self.size)), self.size)[:count]
        s1 = self.sums[n:] - self.sums[:-n]
        spread = np.maximum(self.squares[n:] - self.squares[:-n] - s1 * s1 / n, 1e-20)
        r = products / np.sqrt(spread * float(seg @ seg))
        r[spread < 1e-12] = -1.0
        away = int(AWAY_S * RATE)
        r[max(0, at - away):at + away + 1] = -1.0
        k = int(np.argmax(r))
        return float(r[k]), (k - at) / RATE


def measure(manifest: Path) -> list[dict]:
    from audiosync import ffmpeg

    pairs = sorted((p for p in json.loads(manifest.read_text())["pairs"]
                    if p["lag_ms"] is not None and in_packages(p, None)), key=lambda p: p["download"])
    rows, song, name = [], None, None
    for i, p in enumerate(pairs):
        if p["download"] != name:
            song = None  # one song's buffers at a time
            name, song = p["download"], Song(ffmpeg.decode(str(manifest.parent / p["download"]), RATE)
                                              .astype(np.float64))
        at = int(round(p["lag_ms"] * RATE / 1000))
        row = {"id": p["id"], "condition": p["condition"], "truth_ms": p["lag_ms"]}
        for t in LENGTHS:
            # The music in the capture's first t s: from the song's start when the capture starts
            # before it (at < 0); less than a second of it counts as no song.
            start, stop = max(0, at), min(song.m, at + t * RATE)
            row[str(t)] = None if stop - start < RATE else song.best_elsewhere(start, stop - start)
        rows.append(row)
        print(f"\r{i + 1}/{len(pairs)} pairs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def report(rows: list[dict]) -> None:
    for label, keep in (("all matched", lambda r: True),
                        ("base conditions", lambda r: r["condition"] not in ("drift", "repeat", "windows"))):
        sel = [r for r in rows if keep(r)]
        if not sel:
            continue
        print(f"{label}: {len(sel)} held-out pairs")
        for t in LENGTHS:
            no_song = [r for r in sel if r[str(t)] is None]
            rep = {lim: [r for r in sel if r[str(t)] is not None and r[str(t)][0] >= lim] for lim in (0.99, 0.95)}
            most = len(sel) - len(no_song) - len(rep[0.99])
            print(f"  T = {t:2d} s: no song {len(no_song)} ({', '.join(r['id'] for r in no_song) or '-'}); "
                  f"repeated at >= 0.99: {len(rep[0.99])} ({', '.join(r['id'] for r in rep[0.99]) or '-'}), "
                  f">= 0.95: {len(rep[0.95])}; decidable at most: {len(sel) - len(no_song)}/{len(sel)} "
                  f"({100.0 * (len(sel) - len(no_song)) / len(sel):.1f}%), "
                  f"{most}/{len(sel)} ({100.0 * most / len(sel):.1f}%) without trusting a position between "
                  f"identical places")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--load", type=Path)
    args = ap.parse_args(argv)
    rows = json.loads(args.load.read_text())["rows"] if args.load else measure(args.manifest)
    if args.save:
        args.save.write_text(json.dumps({"rows": rows}))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
