"""Build the accuracy corpus: pairs of a "download" and a "capture" with a known lag.

Run: python bench/corpus.py [--data bench/data] [--seed 5] [--per 16]
                            [--packages PKG[,PKG...]] [--only COND ...] [--jobs N]

The music is real: 37 songs (3 h 18 min) of game music from seven Debian
packages, chosen for a spread of genres and of the things that make a lag hard
to find (exact loops, repeated sections, quiet or sparse passages, long songs):

===================== ===== ==========================================================
package               songs what
===================== ===== ==========================================================
frozen-bubble-data      3   tracker pop rendered to Vorbis (3-5 min, repeated patterns)
fb-music-high           1   the 2-player theme as the XM module itself (libopenmpt
                            renders it): another render of fb-2p, so the two are
                            never paired as "different songs" (same ``work``)
extremetuxracer-data    6   short (54-114 s) dense race/menu music, some exact loops
lincity-ng-data         3   electronic on a 2 s exact loop, a played blues, a slow piece
wesnoth-1.16-music      9   orchestral and folk: quiet and sparse passages, wide dynamics
planetblupi-music-ogg   6   steady synthesized game music rendered to 10 min; one is a
                            120 s piece repeated exactly to 20 min (the lag is then only
                            known modulo 120 s: see ``repeats_ms``)
nexuiz-music            9   electronic built on exact loops, two with long quiet passages
===================== ===== ==========================================================

``SONGS`` gives each song's package, file and character. The packages are
fetched with ``apt-get download`` (after one ``apt-get update`` if that fails)
and unpacked with ``dpkg -x`` under ``DATA/pkg``; nexuiz keeps its music in a zip
archive (``music.pk3``), unpacked beside it (``music.pk3.d``). Notification
sounds come from sound-theme-freedesktop, speech from espeak-ng. Nothing here is
committed: everything is written under ``DATA`` (git-ignored).

Songs are used whole, up to ``MAX_SONG_SECONDS`` (20 min, the longest download
the live path searches); only pb-music003 (20 min 4 s) is cut, to its first 20 min.

For every pair:

* the download is what the desktop app downloads: the WHOLE song (or a music
  video: a 20-60 s spoken/ambient intro, then the whole song, so up to 21 min),
  Opus 128 kb/s at 48 kHz in WebM;
* the capture is what is heard on the desktop: the song as the player plays
  it (the Vorbis original, or an MP3/AAC encode of it, at 44.1 kHz), put
  through the condition, written as 16-bit FLAC at 48 or 44.1 kHz, 30-40 s;
* ``lag_ms`` is the truth: ``capture(t) ≈ download(t + lag_ms)``, or null for
  different songs.

Three later conditions test the file options of ``audiosync.sync_files``
(appended to ``CONDITIONS``, so the earlier pairs keep their seeds and songs):

* ``drift``: an encode-like capture that plays the song faster by
  ``details.drift_ppm`` (+100, -100, +300, -300 ppm in turn): ``capture(t) ≈
  download(lag_ms + t * (1 + drift_ppm * 1e-6))``, ``lag_ms`` the lag at the
  capture's start (a slightly longer cut of the player's signal through
  ``asetrate=SR*(1+ppm*1e-6),aresample=SR`` with soxr, then cut to length;
  ``speed_graph`` keeps the rate whole, as asetrate needs). Checked at seed 5:
  the lags of 2 s stretches of each capture (every 1 s, against the download)
  fit a line of slope drift_ppm +-1.2 ppm, through lag_ms +-0.04 ms;
* ``repeat``: the download is the song twice with 1-3 s of digital silence
  between (``downloads/repeat-NN-SONG.webm``), the capture an encode-like
  excerpt; ``lag_ms`` is the first occurrence, ``details.matches_ms`` both
  (``repeats_ms`` holds the music's own recurrences in both copies);
* ``windows``: an encode-like pair plus ``details.reference_window`` and
  ``details.other_window`` (``[start_s, duration_s]``): the download's window
  starts 5-60 s before the truth (not before 0) and holds the capture plus
  5-30 s, the capture's starts 2-8 s in and lasts 15 s; ``lag_ms`` is in the
  inputs' own timelines, as always.

Where a capture starts in its song (``details.start_s``; it always ends inside
the song): encode, noise*, master, mic, desktop, drift, repeat, windows and the
different-song captures anywhere, uniformly over [0, song length - capture length]; before: 0.2-5 s
before the song starts (digital silence, then the song's start); after: even
pairs 0.05-5 s into the song, odd pairs anywhere from 25 s on; intro: even pairs
in the song's first 8 s after the intro, odd pairs anywhere in the song.

The songs are spread over the pairs in turn (each song in about 6 conditions
at the default ``--per 16``: 185 pairs of the first twelve conditions, then 16
drift, 8 repeat and 8 windows pairs, 217 in all); ``--packages`` keeps only the songs of
those packages (both songs of a different-song pair are drawn from them).

The codec round trips were checked to add no delay (ffmpeg honours the Opus
pre-skip, the LAME gapless header and the AAC edit list: a correlation with
the original peaks at 0 ± 0.02 samples). Filters that change the waveform
(EQ, compressor, all-pass, band-pass, room) are applied without any shift
of the signal, so the truth is the geometric offset; the room response has
its direct path at 0 (a speaker 1 m away would add 2.9 ms).

Loops make some truths ambiguous: for every matched pair, ``details.repeat_ncc``
is the highest normalized correlation (8 kHz mono, clean song) of the capture's
stretch of the song with any other position of the song at least 30 ms away, and
``details.repeats_ms`` the other lags (±0.1 ms; the best 100, ``repeats_n`` counts
them all) where it is >= 0.95: there the capture's music recurs (nearly) exactly,
and a method cannot tell them apart.
For different-song pairs ``details.download_match_ncc`` is the same measure
against the download's song (it should be low).

The manifest is ``DATA/corpus/manifest.json``; every pair carries ``song`` and
``package`` (the capture's song) and ``download_song`` and ``download_package``
(the same for matched pairs). Every pair is reproducible from ``--seed`` (each
pair has its own generator seeded from (seed, condition, index); which song a
pair uses depends only on ``--per``, ``--packages`` and the pair's place).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import signal

SR = 44100  # the masters and the player's rate
MAX_SONG_SECONDS = 1200.0  # songs are used whole up to this (the live path's longest download)
MASTER_SECONDS = MAX_SONG_SECONDS  # what is decoded of each song file
CAPTURE_S = (30.0, 40.0)
NOTIFY_PACKAGE = "sound-theme-freedesktop"
REPEAT_SR = 8000  # rate of the loop analysis (repeat_ncc, repeats_ms)
REPEAT_MIN = 0.95
REPEATS_KEPT = 100  # at most this many of them (the best) in repeats_ms


class Song(NamedTuple):
    package: str
    path: str  # under DATA/pkg
    note: str  # character: what makes it easy or hard
    work: str | None = None  # songs of one work (renders of one piece) are never "different"


_FB = "usr/share/games/frozen-bubble/snd/"
_ETR = "usr/share/games/etr/music/"
_LC = "usr/share/games/lincity-ng/music/default/"
_WN = "usr/share/games/wesnoth/1.16/data/core/music/"
_PB = "usr/share/planetblupi/music/"
_NX = "usr/share/games/nexuiz/data/music.pk3.d/sound/cdtracks/"

# Lengths as used; "repeats x%": share of 5 s stretches that recur elsewhere with a
# normalized correlation >= 0.95 (exact loops); "quiet": 1 s frames 15 dB under the mean.
SONGS: dict[str, Song] = {
    # frozen-bubble-data: tracker music rendered to Vorbis
    "fb-1p": Song("frozen-bubble-data", _FB + "frozen-mainzik-1p.ogg",
                  "tracker pop, 5:22; repeated patterns (repeats 30%), a 13 s quiet break"),
    "fb-2p": Song("frozen-bubble-data", _FB + "frozen-mainzik-2p.ogg",
                  "tracker pop, 3:04, dense; repeated patterns (repeats 30%)", "frozen-mainzik-2p"),
    "fb-intro": Song("frozen-bubble-data", _FB + "introzik.ogg",
                     "tracker, 3:16, dense, little exact repetition"),
    # fb-music-high: the module itself
    "fbh-2p": Song("fb-music-high", _FB + "frozen-mainzik-2p.xm",
                   "XM module rendered by libopenmpt, 3:27: the fb-2p piece, another render "
                   "(0.5-0.67 correlation with fb-2p, drifting tempo); repeats 40%", "frozen-mainzik-2p"),
    # extremetuxracer-data: short game pieces
    "etr-calm": Song("extremetuxracer-data", _ETR + "calmrace-ks.ogg",
                     "calm electronic race music, 1:54; exact loops (repeats 50%)"),
    "etr-credits": Song("extremetuxracer-data", _ETR + "credits1-cp.ogg",
                        "dense, through-composed, 1:23"),
    "etr-freezing": Song("extremetuxracer-data", _ETR + "freezingpoint.ogg",
                         "dense, 1:36, little exact repetition"),
    "etr-race1": Song("extremetuxracer-data", _ETR + "race1-jt.ogg",
                      "dense, 0:54 (the shortest), near-loops"),
    "etr-spunky": Song("extremetuxracer-data", _ETR + "spunkyrace-ks.ogg",
                       "dense race music, 1:48, near-exact loops"),
    "etr-start1": Song("extremetuxracer-data", _ETR + "start1-jt.ogg",
                       "menu music, 1:08, some repeats"),
    # lincity-ng-data
    "lc-lincity": Song("lincity-ng-data", _LC + "01 - pronobozo - lincity.ogg",
                       "electronic, 3:31, built on a 2.03 s exact loop (repeats 80%)"),
    "lc-blues": Song("lincity-ng-data", _LC + "02 - Robert van Herk - City Blues.ogg",
                     "blues, 3:44, played: no exact repeats"),
    "lc-archi": Song("lincity-ng-data", _LC + "03 - Robert van Herk - Architectural Contemplations.ogg",
                     "slow, few onsets, 2:09; one exactly repeated section"),
    # wesnoth-1.16-music: orchestral and folk
    "wn-journeys-end": Song("wesnoth-1.16-music", _WN + "journeys_end.ogg",
                            "orchestral, 3:44; quiet passages (11% quiet)"),
    "wn-silvan-sanctuary": Song("wesnoth-1.16-music", _WN + "silvan_sanctuary.ogg",
                                "orchestral/ambient, 3:37; sparse (10% quiet, a 12 s quiet run)"),
    "wn-traveling-minstrels": Song("wesnoth-1.16-music", _WN + "traveling_minstrels.ogg",
                                   "folk ensemble, 3:35; quiet gaps (2% digital silence)"),
    "wn-revelation": Song("wesnoth-1.16-music", _WN + "revelation.ogg",
                          "dark ambient/orchestral, 1:18; sparse (27% quiet, a 21 s quiet run)"),
    "wn-northerners": Song("wesnoth-1.16-music", _WN + "northerners.ogg",
                           "orchestral with drums, 3:27; a 13 s quiet run"),
    "wn-knalgan-theme": Song("wesnoth-1.16-music", _WN + "knalgan_theme.ogg",
                             "orchestral/celtic, 9:17 (long); repeated sections (repeats 20%)"),
    "wn-battle": Song("wesnoth-1.16-music", _WN + "battle.ogg",
                      "orchestral battle music, 5:18; wide dynamics (14% quiet)"),
    "wn-nunc-dimittis": Song("wesnoth-1.16-music", _WN + "nunc_dimittis.ogg",
                             "choral/orchestral, 3:51; quiet passages, one exactly repeated section"),
    "wn-casualties-of-war": Song("wesnoth-1.16-music", _WN + "casualties_of_war.ogg",
                                 "orchestral, 5:25; a 21 s quiet passage (14% quiet)"),
    # planetblupi-music-ogg: synthesized game music, rendered long
    "pb-music003": Song("planetblupi-music-ogg", _PB + "music003.ogg",
                        "synthesized, a 120 s piece repeated exactly 10 times (20:04, used to 20:00): "
                        "every lag is ambiguous modulo 120 s"),
    "pb-music004": Song("planetblupi-music-ogg", _PB + "music004.ogg",
                        "synthesized, steady, 10:02; little exact repetition"),
    "pb-music005": Song("planetblupi-music-ogg", _PB + "music005.ogg",
                        "synthesized, steady, 10:05; exact loops (repeats 80%)"),
    "pb-music007": Song("planetblupi-music-ogg", _PB + "music007.ogg",
                        "synthesized, steady, 10:03; near-exact repeats"),
    "pb-music008": Song("planetblupi-music-ogg", _PB + "music008.ogg",
                        "synthesized, steady, 10:05; no exact repeats"),
    "pb-music009": Song("planetblupi-music-ogg", _PB + "music009.ogg",
                        "synthesized, steady, 10:03; near-exact repeats (repeats 20%)"),
    # nexuiz-music: electronic
    "nx-thru-the-mirror": Song("nexuiz-music", _NX + "thru-the-mirror.ogg",
                               "electronic, 6:40; exact loops (repeats 60%) and sparse quiet passages "
                               "(25% quiet, a 48 s quiet run)"),
    "nx-sixtyfour-revisited": Song("nexuiz-music", _NX + "sixtyfour_revisited.ogg",
                                   "electronic, 3:31, dense; exact 7.56 s loops (repeats 70%)"),
    "nx-brainsukker": Song("nexuiz-music", _NX + "brainsukker.ogg",
                           "electronic, 7:41; loops (repeats 30%)"),
    "nx-breakdown-easy": Song("nexuiz-music", _NX + "breakdown-easy.ogg",
                              "electronic, 9:30 (long); loops (repeats 40%), a 22 s quieter break"),
    "nx-infight": Song("nexuiz-music", _NX + "infight.ogg",
                       "electronic, 6:02; sparse (18% quiet, a 34 s quiet run), near-exact loops"),
    "nx-digital-pursuit": Song("nexuiz-music", _NX + "digital-pursuit.ogg",
                               "electronic, 3:16, dense; near-exact loops (repeats 20%)"),
    "nx-subcities": Song("nexuiz-music", _NX + "subcities.ogg",
                         "electronic, 7:42; exact loops (repeats 70%), 6 s of digital silence"),
    "nx-neuronal-diving": Song("nexuiz-music", _NX + "neuronal-diving.ogg",
                               "electronic, 6:26; less repetitive, a 12 s quiet run"),
    "nx-northern-lights": Song("nexuiz-music", _NX + "northern-lights.ogg",
                               "electronic/ambient, 4:41; a 17 s quieter passage"),
}
SONG_PACKAGE = {name: s.package for name, s in SONGS.items()}
MUSIC_PACKAGES = list(dict.fromkeys(s.package for s in SONGS.values()))
NOTIFY_DIR = "usr/share/sounds/freedesktop/stereo"

# What the player plays: (ffmpeg encoder arguments, file suffix); None = the Vorbis original.
PLAYER_CODECS = {
    "vorbis": None,
    "mp3-192": (["-c:a", "libmp3lame", "-b:a", "192k"], ".mp3"),
    "mp3-128": (["-c:a", "libmp3lame", "-b:a", "128k"], ".mp3"),
    "aac-160": (["-c:a", "aac", "-b:a", "160k"], ".m4a"),
    "aac-96": (["-c:a", "aac", "-b:a", "96k"], ".m4a"),
}

SENTENCES = [
    "Welcome back to the channel. Today we are going to talk about something a little different.",
    "Before the song starts, I want to thank everybody who came out to the show last night.",
    "This one was recorded in a single take, in a small room, with the windows open.",
    "If you like what you hear, you know what to do. Let us get into it.",
    "The weather this weekend looks dry in the north, with showers moving in from the west on Sunday.",
    "Your meeting starts in five minutes. Please join from the link in the invitation.",
    "Turn left in two hundred metres, then keep right at the fork.",
    "She said the train was late again, so we walked the last two miles in the rain.",
    "Chapter seven. The lighthouse keeper had not seen a ship in eleven days.",
    "Remember to save your work before you close the laptop tonight.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the fence.",
    "We are live in three, two, one. Good evening and welcome to the late programme.",
    "Add two cups of flour, a pinch of salt, and stir until the dough comes together.",
    "Thank you for calling. All of our agents are busy. Please stay on the line.",
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "The results are in, and the numbers are better than anyone expected this quarter.",
]
VOICES = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-us+f3", "en-gb+f2", "en-us+m3"]

BASE_CONDITIONS = ["encode", "before", "after", "noise20", "noise10", "noise5", "noise0",
                   "master", "mic", "desktop", "intro", "different"]
# Added later: appended (their seeds come from their place in CONDITIONS) and dealt songs
# after all the base pairs (see plan()), so the base pairs are the same as before.
EXTRA_CONDITIONS = ["drift", "repeat", "windows"]
CONDITIONS = BASE_CONDITIONS + EXTRA_CONDITIONS
DRIFT_PPM = (100.0, -100.0, 300.0, -300.0)  # drift pair i plays the song faster by DRIFT_PPM[i % 4]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- ffmpeg helpers -----------------------------------------------------------

def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                          input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')[-800:]}")
    return proc.stdout


def decode(path: str | Path, sr: int = SR, channels: int = 2, seconds: float | None = None) -> np.ndarray:
    """Decode to float32, shape (n, channels)."""
    args = ["-i", str(path)]
    if seconds is not None:
        args += ["-t", f"{seconds:.3f}"]
    raw = ffmpeg(*args, "-vn", "-ac", str(channels), "-ar", str(sr), "-f", "f32le", "pipe:1")
    return np.frombuffer(raw, np.float32).reshape(-1, channels).copy()


def raw_input_args(sr: int, channels: int) -> list[str]:
    return ["-f", "f32le", "-ar", str(sr), "-ac", str(channels), "-i", "pipe:0"]


def run_filter(x: np.ndarray, graph: str, sr: int = SR) -> np.ndarray:
    """Run an ffmpeg audio filter graph on x (n, ch); same length back."""
    ch = x.shape[1]
    out = ffmpeg(*raw_input_args(sr, ch), "-af", graph, "-f", "f32le", "-ac", str(ch), "-ar", str(sr),
                 "pipe:1", stdin=np.ascontiguousarray(x, np.float32).tobytes())
    y = np.frombuffer(out, np.float32).reshape(-1, ch)
    if len(y) < len(x):
        y = np.concatenate([y, np.zeros((len(x) - len(y), ch), np.float32)])
    return y[: len(x)].copy()


def encode_file(x: np.ndarray, path: Path, codec_args: list[str], sr_in: int = SR,
                sr_out: int | None = None) -> None:
    args = [*raw_input_args(sr_in, x.shape[1]), *codec_args]
    if sr_out:
        args += ["-ar", str(sr_out)]
    ffmpeg(*args, str(path), stdin=np.ascontiguousarray(x, np.float32).tobytes())


def _has_soxr() -> bool:
    try:
        out = subprocess.run(["ffmpeg", "-hide_banner", "-h", "filter=aresample"],
                             capture_output=True, text=True).stdout
    except OSError:
        return False
    return "soxr" in out


HAS_SOXR = _has_soxr()


def speed_graph(ppm: float, sr: int = SR) -> str:
    """An ffmpeg filter graph that plays audio at sr faster by ppm: y(t) = x(t * (1 + ppm * 1e-6)).

    asetrate takes a whole number of Hz (44104.41 would become 44104: 90.7 ppm, not 100),
    so the signal is labelled K times its rate, K the smallest that makes the faster rate
    whole, resampled there (soxr when ffmpeg has it) and labelled back: the ratio is exact."""
    from fractions import Fraction
    fast = Fraction(sr) * (1 + Fraction(str(ppm)) / 10**6)
    k = fast.denominator
    if sr * k > 2**31 - 1:
        raise ValueError(f"speed_graph: {ppm} ppm at {sr} Hz needs a rate above INT_MAX")
    soxr = ":resampler=soxr:precision=28" if HAS_SOXR else ":filter_size=64"
    return f"asetrate={int(fast * k)},aresample={sr * k}{soxr},asetrate={sr}"


# -- fetching -------------------------------------------------------------------

def _apt_download(pkgs: list[str], debs: Path) -> None:
    log(f"apt-get download {' '.join(pkgs)}")
    subprocess.run(["apt-get", "download", *pkgs], cwd=debs, check=True, stdout=subprocess.DEVNULL)


def fetch(data: Path, packages: list[str]) -> Path:
    """apt-get download the packages and dpkg -x them into DATA/pkg; return that root.

    A .pk3 file (a zip archive: nexuiz) in a package is unpacked beside itself, into
    NAME.pk3.d. Each .deb is unpacked once (a stamp per .deb in DATA/pkg/.unpacked/).
    """
    debs = data / "debs"
    root = data / "pkg"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        try:
            _apt_download(missing, debs)
        except subprocess.CalledProcessError:
            log("apt-get download failed: apt-get update, then again")
            subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
            _apt_download(missing, debs)
    stamps = root / ".unpacked"
    if stamps.is_file():  # the old layout: one stamp for everything
        stamps.unlink()
    stamps.mkdir(parents=True, exist_ok=True)
    for p in packages:
        deb = max(debs.glob(f"{p}_*.deb"))
        stamp = stamps / deb.name
        if stamp.exists():
            continue
        log(f"dpkg -x {deb.name}")
        listing = subprocess.run(["dpkg", "-X", str(deb), str(root)], check=True,
                                 capture_output=True, text=True).stdout.splitlines()
        for rel in listing:
            if rel.endswith(".pk3"):
                pk3 = (root / rel).resolve()
                dest = pk3.with_name(pk3.name + ".d")
                with zipfile.ZipFile(pk3) as z:
                    for member in z.namelist():
                        if not (dest / member).resolve().is_relative_to(dest):
                            raise SystemExit(f"{pk3}: unsafe member {member!r}")
                    z.extractall(dest)
        stamp.write_text("ok\n")
    return root


# -- sources of sound -----------------------------------------------------------

def ncc(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Normalized correlation of seg with every full-overlap stretch of x (index = start in x).

    The stretch's energy is floored at 5% of seg's, so near-silence does not score."""
    e = float(np.dot(seg, seg))
    if e <= 0 or len(seg) > len(x):
        return np.zeros(max(0, len(x) - len(seg) + 1))
    c = signal.fftconvolve(x, seg[::-1], mode="valid")
    cs = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    en = cs[len(seg):] - cs[: -len(seg)]
    return c / np.sqrt(np.maximum(en, 0.05 * e) * e)


class Library:
    """Masters (decoded songs at 44.1 kHz stereo), player encodes, downloads, speech, notifications.

    The masters and the player's decodes are written as .npy under DATA/cache/decoded and
    memory-mapped (3 h 18 min of music: 4.2 GB a version), and removed by close()."""

    def __init__(self, root: Path, data: Path, out: Path, songs: list[str], jobs: int = 2):
        self.root = root
        self.cache = data / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        # decoded audio (float32, memory-mapped): several GB, removed by close()
        self.scratch = self.cache / "decoded"
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        self.out = out
        self.songs = songs
        self.masters: dict[str, np.ndarray] = {}
        self.full_len: dict[str, float] = {}
        self.truncated: dict[str, bool] = {}
        self._player: dict[tuple[str, str], np.ndarray] = {}
        self._mono: dict[str, np.ndarray] = {}
        self._locks: dict[object, threading.Lock] = {}
        self._glock = threading.Lock()
        self.notify: list[tuple[str, np.ndarray]] = []
        with ThreadPoolExecutor(jobs) as ex:
            for name, m in zip(songs, ex.map(self._master, songs)):
                self.masters[name] = m
                self.full_len[name] = len(m) / SR
                self.truncated[name] = len(m) >= int(MASTER_SECONDS * SR) - 1
        for f in sorted((root / NOTIFY_DIR).glob("*.oga")):
            if f.stat().st_size > 0 and not f.name.startswith("audio-channel"):
                self.notify.append((f.stem, decode(f)))

    def close(self) -> None:
        """Remove the decoded audio (the player's MP3/AAC encodes stay in the cache)."""
        self.masters.clear()
        self._player.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _master(self, name: str) -> np.ndarray:
        f = self.scratch / f"master-{name}-{MASTER_SECONDS:.0f}.npy"
        if not f.exists():
            path = self.root / SONGS[name].path
            if not path.exists():
                raise SystemExit(f"song {name} missing after unpacking: {path}")
            tmp = f.with_name(f.stem + ".tmp.npy")
            np.save(tmp, decode(path, seconds=MASTER_SECONDS))
            tmp.rename(f)
        return np.load(f, mmap_mode="r")

    def _lock(self, key) -> threading.Lock:
        with self._glock:
            return self._locks.setdefault(key, threading.Lock())

    def player(self, song: str, codec: str) -> np.ndarray:
        """The song as the player decodes it (44.1 kHz stereo float32)."""
        key = (song, codec)
        with self._lock(key):
            if key not in self._player:
                spec = PLAYER_CODECS[codec]
                if spec is None:
                    self._player[key] = self.masters[song]
                else:
                    args, suffix = spec
                    n = len(self.masters[song])
                    f = self.cache / f"{song}-{n}.{codec}{suffix}"
                    g = self.scratch / f"{song}-{n}.{codec}.npy"
                    if not g.exists():
                        if not f.exists():
                            tmp = f.with_name(f.stem + ".tmp" + suffix)
                            encode_file(self.masters[song], tmp, args)
                            tmp.rename(f)
                        tmp = g.with_name(g.stem + ".tmp.npy")
                        np.save(tmp, decode(f)[:n])
                        tmp.rename(g)
                    self._player[key] = np.load(g, mmap_mode="r")
            return self._player[key]

    def mono(self, song: str) -> np.ndarray:
        """The master, mono at REPEAT_SR (linear-phase resampling: no shift)."""
        with self._lock(("mono", song)):
            if song not in self._mono:
                m = self.masters[song].mean(axis=1, dtype=np.float64)
                self._mono[song] = signal.resample_poly(m, REPEAT_SR // 100, SR // 100)
            return self._mono[song]

    def stretch(self, song: str, start: int, length: int) -> tuple[np.ndarray, float]:
        """The part of the song under a capture (start, length at SR), mono at REPEAT_SR;
        and where it starts in mono(song), in REPEAT_SR samples."""
        m = self.mono(song)
        a = max(start, 0) * REPEAT_SR / SR
        b = (start + length) * REPEAT_SR / SR
        i, j = int(np.ceil(a)), min(int(np.floor(b)), len(m))
        return m[i:j], float(i)

    def repeats(self, song: str, start: int, length: int) -> tuple[float, list[float], int]:
        """(highest ncc elsewhere (>= 30 ms away), [offsets in ms of the other places
        >= REPEAT_MIN: the best REPEATS_KEPT], how many such places)."""
        seg, at = self.stretch(song, start, length)
        if len(seg) < REPEAT_SR:
            return 0.0, [], 0
        c = ncc(self.mono(song), seg)
        far = np.abs(np.arange(len(c)) - at) >= 0.030 * REPEAT_SR
        if not far.any():
            return 0.0, [], 0
        best = float(c[far].max())
        peaks, _ = signal.find_peaks(np.where(far, c, 0), height=REPEAT_MIN, distance=int(0.01 * REPEAT_SR))
        total = len(peaks)
        peaks = sorted(peaks, key=lambda k: -c[k])[:REPEATS_KEPT]
        out = []
        for k in peaks:
            d = 0.0
            if 0 < k < len(c) - 1:
                den = c[k - 1] - 2 * c[k] + c[k + 1]
                if den < 0:
                    d = float(np.clip(0.5 * (c[k - 1] - c[k + 1]) / den, -0.5, 0.5))
            out.append((k + d - at) / REPEAT_SR * 1000)
        return best, sorted(out), total

    def match(self, song: str, other: str, start: int, length: int) -> float:
        """Highest ncc of other's stretch under a capture anywhere in song."""
        seg, _ = self.stretch(other, start, length)
        if len(seg) < REPEAT_SR:
            return 0.0
        c = ncc(self.mono(song), seg)
        return float(c.max()) if len(c) else 0.0

    def download(self, song: str) -> Path:
        """The plain download of a song: the whole song, Opus 128k, 48 kHz, WebM."""
        path = self.out / "downloads" / f"{song}.webm"
        with self._lock(("dl", song)):
            if not path.exists():
                write_download(self.masters[song], path)
        return path

    def speech(self, text_i: int, voice: str, speed: int, pitch: int) -> np.ndarray:
        """espeak-ng speech at 44.1 kHz stereo float32."""
        key = ("speech", text_i, voice, speed, pitch)
        with self._lock(key):
            f = self.cache / f"speech-{text_i}-{voice.replace('+', '_')}-{speed}-{pitch}.wav"
            if not f.exists():
                tmp = f.with_name(f.stem + ".tmp.wav")
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                                "-w", str(tmp), SENTENCES[text_i]], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                tmp.rename(f)
        return decode(f)


def write_download(x: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.webm")
    encode_file(x, tmp, ["-c:a", "libopus", "-b:a", "128k", "-vbr", "on"], sr_out=48000)
    tmp.rename(path)


def write_capture(x: np.ndarray, path: Path, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_file(x, path, ["-c:a", "flac", "-sample_fmt", "s16"], sr_out=rate)


# -- signal processing ------------------------------------------------------------

def rms(x: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    active = np.abs(x).max(axis=1) > 1e-4 if x.ndim == 2 else np.abs(x) > 1e-4
    if not active.any():
        return 0.0
    return float(np.sqrt(np.mean(x[active] ** 2)))


def cut(player: np.ndarray, start: int, length: int) -> np.ndarray:
    """length samples of the player signal from start (negative: leading digital silence)."""
    out = np.zeros((length, player.shape[1]), np.float32)
    if start < 0:
        n = min(length + start, len(player))
        if n > 0:
            out[-start:-start + n] = player[:n]
    else:
        seg = player[start:start + length]
        out[: len(seg)] = seg
    return out


def noise(rng: np.random.Generator, n: int, ch: int, kind: str) -> np.ndarray:
    w = rng.standard_normal((n, ch)).astype(np.float32)
    if kind == "pink":  # Paul Kellet's economy pink filter, as an IIR
        b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
        a = [1, -2.494956002, 2.017265875, -0.522189400]
        w = signal.lfilter(b, a, w, axis=0).astype(np.float32)
    return w / np.sqrt(np.mean(w.astype(np.float64) ** 2))


def add_noise(rng, x: np.ndarray, snr_db: float, kind: str) -> np.ndarray:
    level = rms(x) / (10 ** (snr_db / 20))
    return x + level * noise(rng, len(x), x.shape[1], kind)


def finish(rng, x: np.ndarray, gain_db: float) -> np.ndarray:
    """Apply the gain, never clipping (a capture is scaled to peak at most 0.98)."""
    g = 10 ** (gain_db / 20)
    peak = float(np.abs(x).max()) or 1.0
    g = min(g, 0.98 / peak)
    return (x * g).astype(np.float32)


def room_ir(rng, sr: int = SR) -> tuple[np.ndarray, dict]:
    """A short synthetic room response: direct path at 0, early reflections, a decaying tail."""
    rt60 = float(rng.uniform(0.2, 0.6))
    n = int(rt60 * sr)
    h = np.zeros(n)
    h[0] = 1.0
    refl = []
    for _ in range(int(rng.integers(3, 7))):
        d = int(rng.uniform(0.002, 0.025) * sr)
        a = float(rng.uniform(0.15, 0.6) * rng.choice([-1, 1]))
        h[d] += a
        refl.append((round(d / sr * 1000, 2), round(a, 2)))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.005 * sr)] = 0
    drr_db = float(rng.uniform(0, 8))  # direct-to-reverberant ratio
    tail *= np.sqrt(1.0 / (10 ** (drr_db / 10)) / np.sum(tail ** 2))
    h += tail
    return h, {"rt60_s": round(rt60, 3), "drr_db": round(drr_db, 1), "reflections_ms": refl}


# -- conditions ---------------------------------------------------------------------

def same_work(a: str, b: str) -> bool:
    return a == b or (SONGS[a].work is not None and SONGS[a].work == SONGS[b].work)


class Builder:
    def __init__(self, lib: Library, seed: int, out: Path):
        self.lib = lib
        self.seed = seed
        self.out = out
        self.songs = lib.songs

    def others(self, song: str) -> list[str]:
        """The corpus's songs that are not the same piece as song."""
        return [s for s in self.songs if not same_work(s, song)]

    def rng(self, cond: str, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, CONDITIONS.index(cond), i])

    @staticmethod
    def pick(rng, seq):
        return seq[int(rng.integers(len(seq)))]

    def song_start(self, rng, song: str, length: int, lo: float, hi: float | None) -> int:
        """A start in [lo, hi] s (hi None: the end); the whole capture lies inside the song
        (and so inside its download, which holds the whole song)."""
        avail = len(self.lib.masters[song]) / SR - length / SR - 0.5
        hi = avail if hi is None else min(hi, avail)
        lo = min(lo, hi)
        return int(round(rng.uniform(lo, hi) * SR))

    def base(self, rng, song: str, lo: float = 0.0, hi: float | None = None, codec: str | None = None):
        """The player's signal cut for a capture, by default anywhere in the song;
        returns (x, start, details)."""
        codec = codec or self.pick(rng, list(PLAYER_CODECS))
        length = int(round(rng.uniform(*CAPTURE_S) * SR))
        start = self.song_start(rng, song, length, lo, hi)
        x = cut(self.lib.player(song, codec), start, length)
        return x, start, {"song": song, "codec": codec, "capture_s": round(length / SR, 3)}

    # Each returns (capture array, lag samples at 44.1 kHz or None, details, download path).

    def encode(self, rng, song):
        x, start, d = self.base(rng, song)
        d["gain_db"] = round(float(rng.uniform(-14, 3)), 1)
        return finish(rng, x, d["gain_db"]), start, d

    def before(self, rng, song):
        lead = float(rng.uniform(0.2, 5.0))
        x, _, d = self.base(rng, song, 0, 0)
        start = -int(round(lead * SR))
        x = cut(self.lib.player(song, d["codec"]), start, len(x))
        d.update(lead_silence_s=round(lead, 3), gain_db=round(float(rng.uniform(-12, 0)), 1))
        return finish(rng, x, d["gain_db"]), start, d

    def after(self, rng, song, i):
        lo, hi = (0.05, 5.0) if i % 2 == 0 else (25.0, None)  # just after the start / joined later
        x, start, d = self.base(rng, song, lo, hi)
        d["gain_db"] = round(float(rng.uniform(-12, 0)), 1)
        return finish(rng, x, d["gain_db"]), start, d

    def noisy(self, rng, song, snr):
        x, start, d = self.base(rng, song)
        kind = self.pick(rng, ["white", "pink"])
        d.update(snr_db=snr, noise=kind, gain_db=round(float(rng.uniform(-10, 0)), 1))
        return finish(rng, add_noise(rng, x, snr, kind), d["gain_db"]), start, d

    def master(self, rng, song):
        x, start, d = self.base(rng, song)
        parts = []
        for _ in range(int(rng.integers(2, 5))):
            f = float(np.exp(rng.uniform(np.log(60), np.log(10000))))
            parts.append(f"equalizer=f={f:.0f}:t=o:w={rng.uniform(0.7, 2):.2f}:g={rng.uniform(-9, 9):.1f}")
        if rng.random() < 0.5:
            parts.append(f"bass=g={rng.uniform(-6, 6):.1f}")
        if rng.random() < 0.5:
            parts.append(f"treble=g={rng.uniform(-6, 6):.1f}")
        parts.append(
            f"acompressor=threshold={rng.uniform(-24, -10):.1f}dB:ratio={rng.uniform(2, 8):.1f}"
            f":attack={rng.uniform(2, 20):.1f}:release={rng.uniform(40, 250):.0f}:makeup={rng.uniform(1, 6):.1f}dB")
        for _ in range(int(rng.integers(1, 4))):
            parts.append(f"allpass=f={rng.uniform(150, 6000):.0f}:t=q:w={rng.uniform(0.4, 1.5):.2f}")
        graph = ",".join(parts)
        y = run_filter(x, graph)
        d.update(filters=graph, gain_db=round(float(rng.uniform(-8, 0)), 1))
        return finish(rng, y, d["gain_db"]), start, d

    def mic(self, rng, song):
        x, start, d = self.base(rng, song)
        mono = x.mean(axis=1, keepdims=True)
        lo, hi = float(rng.uniform(120, 200)), float(rng.uniform(5500, 8000))
        y = run_filter(mono, f"highpass=f={lo:.0f},highpass=f={lo:.0f},lowpass=f={hi:.0f},lowpass=f={hi:.0f}")
        h, room = room_ir(rng)
        y = signal.fftconvolve(y[:, 0], h)[: len(y)][:, None].astype(np.float32)
        snr = float(rng.uniform(8, 25))
        kind = self.pick(rng, ["white", "pink"])
        y = add_noise(rng, y, snr, kind)
        y = np.repeat(y, 2, axis=1)
        d.update(band_hz=[round(lo), round(hi)], room=room, snr_db=round(snr, 1), noise=kind,
                 gain_db=round(float(rng.uniform(-20, -6)), 1))
        return finish(rng, y, d["gain_db"]), start, d

    def desktop(self, rng, song, i):
        x, start, d = self.base(rng, song)
        music = rms(x)
        y = x.astype(np.float32).copy()
        events = []
        for _ in range(int(rng.integers(2, 7))):
            name, s = self.pick(rng, self.lib.notify)
            pos = int(rng.integers(0, max(1, len(y) - len(s))))
            lvl = float(rng.uniform(0, 12))
            s = s * (music * 10 ** (lvl / 20) / max(rms(s), 1e-9))
            n = min(len(s), len(y) - pos)
            y[pos:pos + n] += s[:n]
            events.append({"sound": name, "at_s": round(pos / SR, 2), "db": round(lvl, 1)})
        heavy = i % 2 == 1  # a video call or a podcast over most of the capture
        pos = int(rng.uniform(0, 5) * SR)
        while pos < len(y):
            sp = self.lib.speech(int(rng.integers(len(SENTENCES))), self.pick(rng, VOICES),
                                 int(rng.integers(140, 190)), int(rng.integers(30, 70)))
            lvl = float(rng.uniform(-6, 6))
            sp = sp * (music * 10 ** (lvl / 20) / max(rms(sp), 1e-9))
            n = min(len(sp), len(y) - pos)
            y[pos:pos + n] += sp[:n]
            events.append({"speech_at_s": round(pos / SR, 2), "db": round(lvl, 1), "s": round(n / SR, 1)})
            if not heavy:
                break
            pos += n + int(rng.uniform(0.3, 2.0) * SR)
        d.update(events=events, speech_heavy=heavy, gain_db=round(float(rng.uniform(-10, 0)), 1))
        return finish(rng, y, d["gain_db"]), start, d

    def intro_download(self, rng, song: str, i: int) -> tuple[Path, int, dict]:
        """A music video: a spoken/ambient intro of 20-60 s, then the song."""
        intro_s = float(rng.uniform(20, 60))
        n = int(round(intro_s * SR))
        music = rms(self.lib.masters[song][: 30 * SR])
        amb = noise(rng, n, 2, "pink")
        amb = signal.lfilter(*signal.butter(2, 2000 / (SR / 2)), amb, axis=0).astype(np.float32)
        amb *= music * 10 ** (rng.uniform(-30, -18) / 20) / max(rms(amb), 1e-9)
        intro = amb
        other = None
        pool = self.others(song)
        if i % 3 == 2 and pool:  # some other music under the talk (a jingle, a radio, a street band)
            other = self.pick(rng, pool)
            o = self.lib.masters[other]
            seg = o[int(rng.uniform(0, 40) * SR):][: min(n, 12 * SR)]
            p = int(rng.uniform(0, max(1, n - len(seg)) / SR) * SR)
            intro[p:p + len(seg)] += seg * 10 ** (rng.uniform(-14, -6) / 20)
        pos = int(rng.uniform(0.5, 3) * SR)
        while pos < n - SR:
            sp = self.lib.speech(int(rng.integers(len(SENTENCES))), self.pick(rng, VOICES[:4]),
                                 int(rng.integers(150, 180)), 50)
            sp = sp * (music * 10 ** (rng.uniform(-3, 3) / 20) / max(rms(sp), 1e-9))
            m = min(len(sp), n - pos)
            intro[pos:pos + m] += sp[:m]
            pos += m + int(rng.uniform(0.4, 2.5) * SR)
        fade = np.linspace(1, 0, int(0.5 * SR))[:, None]
        intro[-len(fade):] *= fade
        full = np.concatenate([intro, self.lib.masters[song]])  # the intro, then the whole song
        path = self.out / "downloads" / f"video-{i:02d}-{song}.webm"
        write_download(full, path)
        return path, n, {"intro_s": round(n / SR, 3), "intro_other_music": other}

    def intro(self, rng, song, i):
        """Returns (x, start in the song, details, download, intro length)."""
        dl, intro_n, di = self.intro_download(rng, song, i)
        lo, hi = (0.0, 8.0) if i % 2 == 0 else (0.0, None)  # as the song starts / anywhere
        x, start, d = self.base(rng, song, lo, hi)
        d.update(di, gain_db=round(float(rng.uniform(-10, 0)), 1))
        return finish(rng, x, d["gain_db"]), start, d, dl, intro_n

    def drift(self, rng, song, i):
        """An encode-like excerpt that plays the song faster by ppm: x(t) = song(start + t * r),
        r = 1 + ppm * 1e-6. A slightly longer cut of the player's signal is declared to be at
        SR * r (asetrate: played r times faster) and resampled back to SR (soxr; see
        speed_graph), then cut to length; the lag is the one at the capture's start."""
        ppm = DRIFT_PPM[i % len(DRIFT_PPM)]
        r = 1.0 + ppm * 1e-6
        codec = self.pick(rng, list(PLAYER_CODECS))
        length = int(round(rng.uniform(*CAPTURE_S) * SR))
        need = int(np.ceil(length * r)) + SR // 10  # the song under the capture, plus 0.1 s
        start = self.song_start(rng, song, need, 0.0, None)
        seg = cut(self.lib.player(song, codec), start, need + SR)  # 1 s more for the resampler's tail
        graph = speed_graph(ppm)
        y = run_filter(seg, graph)
        if len(y) < length + SR // 20:
            raise RuntimeError(f"drift: resampled cut too short ({len(y)} < {length})")
        x = y[:length]
        d = {"song": song, "codec": codec, "capture_s": round(length / SR, 3), "drift_ppm": ppm,
             "filter": graph,
             "drift_over_capture_ms": round(ppm * 1e-6 * length / SR * 1000, 3),
             "gain_db": round(float(rng.uniform(-14, 3)), 1)}
        return finish(rng, x, d["gain_db"]), start, d

    def repeat_download(self, rng, song: str, i: int) -> tuple[Path, int, dict]:
        """The song twice, 1-3 s of digital silence between (a looped upload, a music video
        that plays the song again); returns (path, where the second copy starts, details)."""
        gap = int(round(rng.uniform(1.0, 3.0) * SR))
        m = self.lib.masters[song]
        full = np.concatenate([m, np.zeros((gap, m.shape[1]), np.float32), m])
        path = self.out / "downloads" / f"repeat-{i:02d}-{song}.webm"
        write_download(full, path)
        return path, len(m) + gap, {"gap_s": round(gap / SR, 4), "second_copy_s": round((len(m) + gap) / SR, 4)}

    def repeat(self, rng, song, i):
        """Returns (x, start in the song, details, download, second copy's start)."""
        dl, second, di = self.repeat_download(rng, song, i)
        x, start, d = self.encode(rng, song)
        d.update(di)
        return x, start, d, dl, second

    def windows(self, rng, song):
        """An encode-like pair, plus the windows of each input to read (own timelines)."""
        x, start, d = self.encode(rng, song)
        cap_s = len(x) / SR
        true_s = start / SR
        ws = max(0.0, true_s - float(rng.uniform(5, 60)))
        wd = (true_s - ws) + cap_s + float(rng.uniform(5, 30))
        os_ = float(rng.uniform(2, 8))
        d["reference_window"] = [round(ws, 3), round(wd, 3)]
        d["other_window"] = [round(os_, 3), 15.0]
        return x, start, d

    def build(self, cond: str, i: int, song: str) -> dict:
        """Pair i of cond; song is the download's song (for matched pairs, the capture's too)."""
        rng = self.rng(cond, i)
        dl = None
        offset = 0  # where the song starts in the download
        cap_song = song
        if cond == "encode":
            x, start, d = self.encode(rng, song)
        elif cond == "before":
            x, start, d = self.before(rng, song)
        elif cond == "after":
            x, start, d = self.after(rng, song, i)
        elif cond.startswith("noise"):
            x, start, d = self.noisy(rng, song, float(cond[5:]))
        elif cond == "master":
            x, start, d = self.master(rng, song)
        elif cond == "mic":
            x, start, d = self.mic(rng, song)
        elif cond == "desktop":
            x, start, d = self.desktop(rng, song, i)
        elif cond == "intro":
            x, start, d, dl, offset = self.intro(rng, song, i)
        elif cond == "drift":
            x, start, d = self.drift(rng, song, i)
        elif cond == "repeat":
            x, start, d, dl, second = self.repeat(rng, song, i)
        elif cond == "windows":
            x, start, d = self.windows(rng, song)
        elif cond == "different":
            cap_song = other = self.pick(rng, self.others(song))
            how = ["encode", "after", "noise10", "mic", "desktop", "master"][i % 6]
            sub = np.random.default_rng([self.seed, 99, i])
            if how == "encode":
                x, start, d = self.encode(sub, other)
            elif how == "after":
                x, start, d = self.after(sub, other, i)
            elif how == "noise10":
                x, start, d = self.noisy(sub, other, 10.0)
            elif how == "mic":
                x, start, d = self.mic(sub, other)
            elif how == "desktop":
                x, start, d = self.desktop(sub, other, i)
            else:
                x, start, d = self.master(sub, other)
            d.update(download_song=song, capture_condition=how)
            if i % 4 == 3:  # the download is a music video of the first song
                dl, _, di = self.intro_download(sub, song, 50 + i)
                d.update(di)
        else:
            raise ValueError(cond)
        d["start_s"] = round(start / SR, 4)
        if cond == "different":
            lag = None
            d["download_match_ncc"] = round(self.lib.match(song, cap_song, start, len(x)), 3)
        else:
            lag = offset + start
            best, alt, total = self.lib.repeats(song, start, len(x))
            d["repeat_ncc"] = round(best, 3)
            d["repeats_ms"] = [round(lag / SR * 1000 + a, 1) for a in alt]
            d["repeats_n"] = total
            if cond == "repeat":  # the second copy: the truth again, and its own recurrences
                d["matches_ms"] = [round(lag / SR * 1000, 4), round((lag + second) / SR * 1000, 4)]
                d["repeats_ms"] += [round((lag + second) / SR * 1000 + a, 1) for a in alt]
        dl = dl or self.lib.download(song)
        rate = 48000 if rng.random() < 0.7 else 44100
        cap = self.out / "captures" / f"{cond}-{i:02d}.flac"
        write_capture(x, cap, rate)
        d["capture_rate"] = rate
        return {
            "id": f"{cond}-{i:02d}",
            "condition": cond,
            "song": cap_song,
            "package": SONGS[cap_song].package,
            "download_song": song,
            "download_package": SONGS[song].package,
            "download": os.path.relpath(dl, self.out),
            "capture": os.path.relpath(cap, self.out),
            "lag_ms": None if lag is None else round(lag / SR * 1000, 4),
            "lag_samples_44100": lag,
            "details": d,
        }


def plan(per: dict[str, int], songs: list[str]) -> list[tuple[str, int, str]]:
    """(condition, index, song) for every pair: the conditions taken in turn, round by round,
    and the songs dealt in turn over that order, so each song lands in several conditions.

    The base conditions come first, then EXTRA_CONDITIONS (round by round among
    themselves), the deal going on where the base pairs left it: adding the extra
    conditions changed no base pair's song."""
    order = []
    for group in (BASE_CONDITIONS, EXTRA_CONDITIONS):
        rounds = max((per.get(c, 0) for c in group), default=0)
        order += [(c, i) for i in range(rounds) for c in group if i < per.get(c, 0)]
    return [(c, i, songs[k % len(songs)]) for k, (c, i) in enumerate(order)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent / "data"))
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--per", type=int, default=16,
                    help="pairs per condition (noise*: 0.8x each, different: 1.6x, repeat and windows: "
                         "0.5x); 16: 217 pairs")
    ap.add_argument("--packages", default=",".join(MUSIC_PACKAGES), metavar="PKG[,PKG...]",
                    help="build pairs only from the songs of these packages (default: all: %(default)s)")
    ap.add_argument("--only", nargs="*", help="build only these conditions")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)

    packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    unknown = [p for p in packages if p not in MUSIC_PACKAGES]
    if unknown or not packages:
        raise SystemExit(f"--packages: unknown {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(MUSIC_PACKAGES)}")
    songs = [s for s in SONGS if SONGS[s].package in packages]
    if args.only:
        bad = [c for c in args.only if c not in CONDITIONS]
        if bad:
            raise SystemExit(f"--only: unknown {', '.join(bad)}; known: {', '.join(CONDITIONS)}")
    for tool in ("ffmpeg", "espeak-ng", "apt-get", "dpkg"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed")
    t0 = time.monotonic()
    data = Path(args.data).resolve()
    root = fetch(data, [p for p in MUSIC_PACKAGES if p in packages] + [NOTIFY_PACKAGE])
    out = data / "corpus"
    if not args.only and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    lib = Library(root, data, out, songs, args.jobs)
    log(f"loaded {len(songs)} songs ({sum(lib.full_len.values()) / 60:.0f} min) of {len(packages)} packages, "
        f"{len(lib.notify)} notification sounds in {time.monotonic() - t0:.1f} s")
    b = Builder(lib, args.seed, out)
    per = {c: args.per for c in CONDITIONS}
    for c in ("noise20", "noise10", "noise5", "noise0"):
        per[c] = max(2, args.per * 8 // 10)
    per["different"] = max(2, args.per * 16 // 10)
    per["repeat"] = max(2, args.per // 2)
    per["windows"] = max(2, args.per // 2)
    if not any(b.others(s) for s in songs):
        log("one piece only: no different-song pairs")
        per["different"] = 0
    jobs = [j for j in plan(per, songs) if not args.only or j[0] in args.only]
    # the plain downloads first, in parallel (every condition shares them)
    with ThreadPoolExecutor(args.jobs) as ex:
        list(ex.map(lib.download, songs))
    log(f"downloads ready at {time.monotonic() - t0:.1f} s")
    done = [0]
    dlock = threading.Lock()

    def one(job):
        pair = b.build(*job)
        with dlock:
            done[0] += 1
            if done[0] % 10 == 0 or done[0] == len(jobs):
                log(f"{done[0]}/{len(jobs)} pairs at {time.monotonic() - t0:.1f} s")
        return pair

    try:
        with ThreadPoolExecutor(args.jobs) as ex:
            pairs = list(ex.map(one, jobs))
    finally:
        lib.close()
    manifest_path = out / "manifest.json"
    song_info = {}
    if args.only and manifest_path.exists():
        old_manifest = json.loads(manifest_path.read_text())
        old = [p for p in old_manifest["pairs"] if p["condition"] not in args.only]
        pairs = old + pairs
        song_info.update(old_manifest.get("songs", {}))
    pairs.sort(key=lambda p: (CONDITIONS.index(p["condition"]), p["id"]))
    for k in songs:
        song_info[k] = {"package": SONGS[k].package, "path": SONGS[k].path,
                        "seconds_used": round(lib.full_len[k], 1),
                        "cut_to_max": lib.truncated[k], "note": SONGS[k].note}
    manifest = {
        "seed": args.seed,
        "per": args.per,
        "packages": packages,
        "max_song_seconds": MAX_SONG_SECONDS,
        "convention": "capture(t) ~= download(t + lag_ms); lag_ms null: different songs",
        "songs": song_info,
        "pairs": pairs,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    counts = {}
    for p in pairs:
        counts[p["condition"]] = counts.get(p["condition"], 0) + 1
    log(f"{len(pairs)} pairs ({', '.join(f'{k} {v}' for k, v in counts.items())}) in "
        f"{time.monotonic() - t0:.1f} s -> {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
