"""Build the accuracy corpus: pairs of a "download" and a "capture" with a known lag.

Run: python bench/corpus.py [--data bench/data] [--seed 5] [--per 10]

The music is real: the Ogg Vorbis game music of three Debian packages
(frozen-bubble-data, extremetuxracer-data, lincity-ng-data), fetched with
``apt-get download`` and unpacked with ``dpkg -x`` under ``DATA/pkg``.
Notification sounds come from sound-theme-freedesktop, speech from espeak-ng.
Nothing here is committed: everything is written under ``DATA`` (git-ignored).

For every pair:

* the download is what the desktop app downloads: the song (or a music video:
  a 20-60 s spoken/ambient intro, then the song), Opus 128 kb/s at 48 kHz in
  WebM, cut to its first 120 s (the live path's download buffer);
* the capture is what is heard on the desktop: the song as the player plays
  it (the Vorbis original, or an MP3/AAC encode of it, at 44.1 kHz), put
  through the condition, written as 16-bit FLAC at 48 or 44.1 kHz, 30-40 s;
* ``lag_ms`` is the truth: ``capture(t) ≈ download(t + lag_ms)``, or null for
  different songs.

The codec round trips were checked to add no delay (ffmpeg honours the Opus
pre-skip, the LAME gapless header and the AAC edit list: a correlation with
the original peaks at 0 ± 0.02 samples). Filters that change the waveform
(EQ, compressor, all-pass, band-pass, room) are applied without any shift
of the signal, so the truth is the geometric offset; the room response has
its direct path at 0 (a speaker 1 m away would add 2.9 ms).

The manifest is ``DATA/corpus/manifest.json``; every pair is reproducible
from ``--seed`` (each pair has its own generator seeded from
(seed, condition, index)).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import signal

SR = 44100  # the masters and the player's rate
DL_SECONDS = 120.0  # a download is cut to this (the live path's download buffer)
MASTER_SECONDS = 125.0
PACKAGES = ["frozen-bubble-data", "extremetuxracer-data", "lincity-ng-data", "sound-theme-freedesktop"]

SONGS = {
    "fb-1p": "usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg",
    "fb-2p": "usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.ogg",
    "fb-intro": "usr/share/games/frozen-bubble/snd/introzik.ogg",
    "etr-calm": "usr/share/games/etr/music/calmrace-ks.ogg",
    "etr-credits": "usr/share/games/etr/music/credits1-cp.ogg",
    "etr-freezing": "usr/share/games/etr/music/freezingpoint.ogg",
    "etr-race1": "usr/share/games/etr/music/race1-jt.ogg",
    "etr-spunky": "usr/share/games/etr/music/spunkyrace-ks.ogg",
    "etr-start1": "usr/share/games/etr/music/start1-jt.ogg",
    "lc-lincity": "usr/share/games/lincity-ng/music/default/01 - pronobozo - lincity.ogg",
    "lc-blues": "usr/share/games/lincity-ng/music/default/02 - Robert van Herk - City Blues.ogg",
    "lc-archi": "usr/share/games/lincity-ng/music/default/03 - Robert van Herk - Architectural Contemplations.ogg",
}
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

CONDITIONS = ["encode", "before", "after", "noise20", "noise10", "noise5", "noise0",
              "master", "mic", "desktop", "intro", "different"]


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


# -- fetching -------------------------------------------------------------------

def fetch(data: Path) -> Path:
    """apt-get download the packages and dpkg -x them into DATA/pkg; return that root."""
    debs = data / "debs"
    root = data / "pkg"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        log(f"apt-get download {' '.join(missing)}")
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL)
    stamp = root / ".unpacked"
    if not stamp.exists():
        root.mkdir(parents=True, exist_ok=True)
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        stamp.write_text("ok\n")
    for name, rel in SONGS.items():
        if not (root / rel).exists():
            raise SystemExit(f"song {name} missing after unpacking: {root / rel}")
    return root


# -- sources of sound -----------------------------------------------------------

class Library:
    """Masters (decoded Vorbis at 44.1 kHz stereo), player encodes, downloads, speech, notifications."""

    def __init__(self, root: Path, data: Path, out: Path):
        self.root = root
        self.cache = data / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.masters: dict[str, np.ndarray] = {}
        self.full_len: dict[str, float] = {}
        self._player: dict[tuple[str, str], np.ndarray] = {}
        self._locks: dict[object, threading.Lock] = {}
        self._glock = threading.Lock()
        self.notify: list[tuple[str, np.ndarray]] = []
        for name, rel in SONGS.items():
            path = root / rel
            self.masters[name] = decode(path, seconds=MASTER_SECONDS)
            self.full_len[name] = len(self.masters[name]) / SR
        for f in sorted((root / NOTIFY_DIR).glob("*.oga")):
            if f.stat().st_size > 0 and not f.name.startswith("audio-channel"):
                self.notify.append((f.stem, decode(f)))

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
                    f = self.cache / f"{song}.{codec}{suffix}"
                    if not f.exists():
                        tmp = f.with_name(f.stem + ".tmp" + suffix)
                        encode_file(self.masters[song], tmp, args)
                        tmp.rename(f)
                    self._player[key] = decode(f)[: len(self.masters[song])]
            return self._player[key]

    def download(self, song: str) -> Path:
        """The plain download of a song: Opus 128k, 48 kHz, WebM, first 120 s."""
        path = self.out / "downloads" / f"{song}.webm"
        with self._lock(("dl", song)):
            if not path.exists():
                write_download(self.masters[song][: int(DL_SECONDS * SR)], path)
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

class Builder:
    def __init__(self, lib: Library, seed: int, out: Path):
        self.lib = lib
        self.seed = seed
        self.out = out

    def rng(self, cond: str, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, CONDITIONS.index(cond), i])

    @staticmethod
    def pick(rng, seq):
        return seq[int(rng.integers(len(seq)))]

    def song_start(self, rng, song: str, length: int, lo: float, hi: float) -> int:
        # the whole capture lies inside the (120 s) download
        avail = min(len(self.lib.masters[song]) / SR, DL_SECONDS) - length / SR - 0.5
        hi = min(hi, avail)
        lo = min(lo, hi)
        return int(round(rng.uniform(lo, hi) * SR))

    def base(self, rng, song: str, lo: float = 0.0, hi: float = 60.0, codec: str | None = None):
        """The player's signal cut for a capture; returns (x, start, details)."""
        codec = codec or self.pick(rng, list(PLAYER_CODECS))
        length = int(round(rng.uniform(30, 40) * SR))
        start = self.song_start(rng, song, length, lo, hi)
        x = cut(self.lib.player(song, codec), start, length)
        return x, start, {"song": song, "codec": codec, "capture_s": round(length / SR, 3)}

    # Each returns (capture array, lag samples at 44.1 kHz or None, details, download path).

    def encode(self, rng, song):
        x, start, d = self.base(rng, song, 1, 30)
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
        lo, hi = (0.05, 5.0) if i % 2 == 0 else (25.0, 85.0)
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
        if i % 3 == 2:  # some other music under the talk (a jingle, a radio, a street band)
            other = self.pick(rng, [s for s in SONGS if s != song])
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
        full = np.concatenate([intro, self.lib.masters[song]])[: int(DL_SECONDS * SR)]
        path = self.out / "downloads" / f"video-{i:02d}-{song}.webm"
        write_download(full, path)
        return path, n, {"intro_s": round(n / SR, 3), "intro_other_music": other}

    def intro(self, rng, song, i):
        dl, intro_n, di = self.intro_download(rng, song, i)
        x, start, d = self.base(rng, song, 0, 8)
        d.update(di, gain_db=round(float(rng.uniform(-10, 0)), 1))
        return finish(rng, x, d["gain_db"]), intro_n + start, d, dl

    def build(self, cond: str, i: int) -> dict:
        rng = self.rng(cond, i)
        songs = list(SONGS)
        song = songs[(i * 5 + CONDITIONS.index(cond)) % len(songs)]  # spread songs over conditions
        dl = None
        if cond == "encode":
            x, lag, d = self.encode(rng, song)
        elif cond == "before":
            x, lag, d = self.before(rng, song)
        elif cond == "after":
            x, lag, d = self.after(rng, song, i)
        elif cond.startswith("noise"):
            x, lag, d = self.noisy(rng, song, float(cond[5:]))
        elif cond == "master":
            x, lag, d = self.master(rng, song)
        elif cond == "mic":
            x, lag, d = self.mic(rng, song)
        elif cond == "desktop":
            x, lag, d = self.desktop(rng, song, i)
        elif cond == "intro":
            x, lag, d, dl = self.intro(rng, song, i)
        elif cond == "different":
            other = self.pick(rng, [s for s in songs if s != song])
            how = ["encode", "after", "noise10", "mic", "desktop", "master"][i % 6]
            sub = np.random.default_rng([self.seed, 99, i])
            if how == "encode":
                x, _, d = self.encode(sub, other)
            elif how == "after":
                x, _, d = self.after(sub, other, i)
            elif how == "noise10":
                x, _, d = self.noisy(sub, other, 10.0)
            elif how == "mic":
                x, _, d = self.mic(sub, other)
            elif how == "desktop":
                x, _, d = self.desktop(sub, other, i)
            else:
                x, _, d = self.master(sub, other)
            lag = None
            d.update(download_song=song, capture_condition=how)
            if i % 4 == 3:  # the download is a music video of the first song
                dl, _, di = self.intro_download(sub, song, 50 + i)
                d.update(di)
        else:
            raise ValueError(cond)
        dl = dl or self.lib.download(song)
        rate = 48000 if rng.random() < 0.7 else 44100
        cap = self.out / "captures" / f"{cond}-{i:02d}.flac"
        write_capture(x, cap, rate)
        d["capture_rate"] = rate
        return {
            "id": f"{cond}-{i:02d}",
            "condition": cond,
            "download": os.path.relpath(dl, self.out),
            "capture": os.path.relpath(cap, self.out),
            "lag_ms": None if lag is None else round(lag / SR * 1000, 4),
            "lag_samples_44100": lag,
            "details": d,
        }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent / "data"))
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--per", type=int, default=10, help="pairs per condition (noise*: 8 each, different: 16)")
    ap.add_argument("--only", nargs="*", help="build only these conditions")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)

    for tool in ("ffmpeg", "espeak-ng", "apt-get", "dpkg"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed")
    t0 = time.monotonic()
    data = Path(args.data).resolve()
    root = fetch(data)
    out = data / "corpus"
    if not args.only and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    lib = Library(root, data, out)
    log(f"loaded {len(lib.masters)} songs, {len(lib.notify)} notification sounds in {time.monotonic() - t0:.1f} s")
    b = Builder(lib, args.seed, out)
    per = {c: args.per for c in CONDITIONS}
    for c in ("noise20", "noise10", "noise5", "noise0"):
        per[c] = max(2, args.per * 8 // 10)
    per["different"] = max(2, args.per * 16 // 10)
    jobs = [(c, i) for c in CONDITIONS if not args.only or c in args.only for i in range(per[c])]
    # the plain downloads first, in parallel (every condition shares them)
    with ThreadPoolExecutor(args.jobs) as ex:
        list(ex.map(lib.download, list(SONGS)))
    log(f"downloads ready at {time.monotonic() - t0:.1f} s")
    with ThreadPoolExecutor(args.jobs) as ex:
        pairs = list(ex.map(lambda job: b.build(*job), jobs))
    manifest_path = out / "manifest.json"
    if args.only and manifest_path.exists():
        old = [p for p in json.loads(manifest_path.read_text())["pairs"] if p["condition"] not in args.only]
        pairs = old + pairs
        pairs.sort(key=lambda p: (CONDITIONS.index(p["condition"]), p["id"]))
    manifest = {
        "seed": args.seed,
        "convention": "capture(t) ~= download(t + lag_ms); lag_ms null: different songs",
        "songs": {k: {"path": v, "seconds_used": round(lib.full_len[k], 1)} for k, v in SONGS.items()},
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
