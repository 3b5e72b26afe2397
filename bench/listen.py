"""The always-on listener end to end: answers from audio already heard, seeks, pauses, skips, cost.

Run (after ``python bench/corpus.py``; from a folder other than the repository root; needs
pulseaudio, pacat and ffmpeg):

    python bench/listen.py                       # the held-out packages' songs
    python bench/listen.py --songs 6 --save listen.json
    python bench/listen.py --load listen.json    # the tables again

The setup is the desktop app's: a private PulseAudio server with a null
sink; an ``audiosync.Listener`` recording its monitor, started before any
song; the song's download (the corpus's WebM/Opus encode) served over HTTP
on 127.0.0.1; the player (ffmpeg decoding the package's own file, another
encode, into ``pacat``) playing into the sink. Per song, with positions
drawn at random (``--seed``):

* **call**: the song starts at a random place; 3 to 5 s later (uniform)
  ``listener.sync(url, since=<when the player started>)`` is called, as
  the app does when the player reports the song change. Timed from the
  call to the answer; right when within 10 ms of the oracle.
* **seek**: a tracker (``every_s=2``) follows the song; the player is
  restarted at another place at least 20 s away. Timed from the seek to
  the ``on_change`` that reports the new lag.
* **pause**: the player stops for 2 s and resumes where it stopped. Timed
  from the resume to the ``on_change`` that reports the lag again.
* **skip**: the player switches to a different song. Timed from the skip
  to the ``on_change`` that reports the lag unknown; any confident report
  in the 8 s after the skip is confidently wrong.

The oracle locates the listener's own audio in the song by a plain
correlation of up to 8 s (Pearson above 0.8; below, the answer is counted
unverified, not right), searched from 1 s behind to 0.25 s ahead of where
the player was told to be (a whole-song search took a loop's repeat for the
place): for the call, the audio from the answer's first
sample, read at once; for the tracker, the newest 8 s some seconds after
the report, against ``tracker.lag_at(now)`` (what a player asks). It checks
the search, not the sound card's clock (both read the ring's time of each
sample). The clock is checked apart, against the player's: the answer's place at
the player's start less where it was told to start (``*_ahead_ms``), never
ahead, behind by the player's own start-up. How far a report's own time tie (``capture_started``) moved in
the seconds after it is printed apart; the saved rows also hold the seek's
error in the capture's samples alone (``seek_sample_err_ms``) and every
report around it (``seek_reports``). Cost: the CPU of the listener alone (its ffmpeg and
its reading thread, from /proc) over the run's quiet minute, as a share of
one core; a tracker's re-check CPU (thread time); the ring's size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calibrate import DEFAULT_FIT, DEFAULT_MANIFEST  # noqa: E402

TOL_MS = 10.0
PLAY_RATE = 48000
SINK = "bench"


class Player:
    """ffmpeg decoding ``path`` from ``start_s`` into pacat, into the sink."""

    def __init__(self, path: Path, start_s: float):
        self.decoder = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-nostdin", "-ss", f"{start_s:.3f}", "-i", str(path),
             "-ac", "2", "-ar", str(PLAY_RATE), "-f", "f32le", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.player = subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=float32le", f"--rate={PLAY_RATE}", "--channels=2",
             f"--device={SINK}"], stdin=self.decoder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.decoder.stdout.close()
        self.started = time.monotonic()
        self.start_s = start_s

    def at(self, t: float) -> float:
        """Where in the song the player was told to be at ``time.monotonic()`` ``t`` (the sound
        comes up to half a second later)."""
        return self.start_s + t - self.started

    def stop(self) -> float:
        """Stop; returns where in the song it was (roughly: the time played)."""
        where = self.start_s + time.monotonic() - self.started
        for proc in (self.player, self.decoder):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=5)
        return where


def _cpu_s(pid: int, tid: int | None = None) -> float:
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Where the sound can be against where the player was told to be: ffmpeg's start and pacat's
# buffer put it behind by up to half a second; the window stays narrower than a loop's bar.
ORACLE_BEHIND_S, ORACLE_AHEAD_S = 1.0, 0.25


def _oracle_ms(song16: np.ndarray, audio: np.ndarray, rate: int, near_s: float) -> float | None:
    """Where ``audio`` starts in the song (ms), by the plain correlation of its 0.5–8 s, searched
    only near ``near_s``: the player's position at the audio's first sample. A search of the
    whole song is fooled by a loop: a bar that repeats exactly, 3.55 s on, matched a capture
    of nx-brainsukker at Pearson 0.98 where its true place (one sample's phase off on the
    16 kHz grid, and this song is bright) matched at 0.81."""
    from audiosync.xcorr import cross_correlation

    a, b = rate // 2, min(len(audio), 8 * rate)
    if b - a < 2 * rate:
        return None
    lo = int(round((near_s - ORACLE_BEHIND_S) * rate)) + a
    hi = int(round((near_s + ORACLE_AHEAD_S) * rate)) + a
    where, coefficient = cross_correlation(song16, audio[a:b], linear=True, lags=(lo, hi))
    return 1000.0 * (where - a) / rate if coefficient > 0.8 else None


def ahead_ms(result, started: float, position_s: float) -> float | None:
    """The song's place at ``started`` (a player's start) by ``result``, less ``position_s`` (where
    the player was told to start): not the ring's reading, the answer's time against the
    player's. The player's start-up puts its sound behind (negative); ahead is wrong."""
    if result.capture_started is None:
        return None
    return result.lag_ms + 1000.0 * (started - result.capture_started) - 1000.0 * position_s


def _wait_for(changes: list, after: float, want, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hit = [entry for entry in list(changes) if entry[0] > after and want(entry[1])]
        if hit:
            return hit[0]
        time.sleep(0.02)
    return None


def run_song(ls, song: dict, other: dict, url: str, rng: random.Random, rate: int) -> dict:
    row: dict = {"song": song["name"], "package": song["package"]}
    length = song["seconds"]
    song16 = song["pcm"]

    def call_error(result) -> float | None:
        """The answer against the oracle on the audio from its first sample, read at once (the
        ring's clock tie does not move in between)."""
        if result.capture_started is None:
            return None
        audio, first_t = ls.audio(since=result.capture_started)
        truth = None if first_t is None else _oracle_ms(song16, audio, rate, player.at(first_t))
        return None if truth is None else result.lag_ms + 1000.0 * (first_t - result.capture_started) - truth

    def track_error(tracker, reported: float) -> float | None:
        """``tracker.lag_at(now)`` against the oracle on the newest 8 s, 8.5 s after the report:
        what a player asks."""
        time.sleep(max(0.0, reported + 8.5 - time.monotonic()))
        now = time.monotonic()
        # Both read with one clock tie: the oracle takes a tenth of a second, in which the ring
        # may re-estimate the tie (a step of the sound server's latency ageing out; printed
        # apart as the clock tie's move).
        audio, first_t = ls.audio(since=now - 8.5)
        position = tracker.lag_at(now)
        truth = None if first_t is None else _oracle_ms(song16, audio, rate, player.at(first_t))
        if truth is None or position is None:
            return None
        return position - (truth + 1000.0 * (now - first_t))

    def tie_move(tie) -> float | None:
        """How far the ring's time of the report's first sample moved since the report (the rest
        of clock_move is the song's place moving under the line: a player that stalled)."""
        if tie is None or tie[2] is None:
            return None
        index, segment, then = tie
        now = ls.time_at(index, segment)
        return None if now is None else 1000.0 * (now - then)

    def clock_move(result) -> float | None:
        """How far the report's own time tie (capture_started) moved since: the line it reported,
        read with the ring's clock tie of now, against the tracker's line."""
        position = tracker.lag_at(time.monotonic())
        if position is None or result.capture_started is None:
            return None
        return result.lag_ms + 1000.0 * (time.monotonic() - result.capture_started) - position

    def sample_error(tracker) -> float | None:
        """The tracker's line now against the oracle, both in the capture's samples (no clock tie)."""
        line = tracker._line
        heard = ls.heard(newest=8.5)
        truth = None if heard.time is None else _oracle_ms(song16, heard.samples, rate, player.at(heard.time))
        if line is None or truth is None or heard.segment != line[0]:
            return None
        return tracker._position(heard.index, line) - truth

    def measure(key: str, started: float, position_s: float) -> None:
        """The first confident report after the player (re)started at ``position_s``: how soon,
        from the command and from the sound, how right, and how its clock tie moved."""
        hit = _wait_for(changes, started, lambda r: r.confident, 15)
        row[f"{key}_s"] = row[f"{key}_sound_s"] = row[f"{key}_err_ms"] = row[f"{key}_clock_ms"] = None
        row[f"{key}_ahead_ms"] = None
        row[f"{key}_tie_ms"] = None
        if hit is None:
            return
        reported, result, tie = hit
        row[f"{key}_s"] = reported - started
        row[f"{key}_ahead_ms"] = ahead_ms(result, started, position_s)
        # From the sound: when the reported line says the song was at the player's start position.
        row[f"{key}_sound_s"] = reported - started + row[f"{key}_ahead_ms"] / 1000.0
        row[f"{key}_err_ms"] = track_error(tracker, reported)
        row[f"{key}_clock_ms"] = clock_move(result)
        row[f"{key}_tie_ms"] = tie_move(tie)

    # -- call: the song started 3-5 s before the call -----------------------------------
    start = rng.uniform(5.0, max(6.0, length - 60.0))
    player = Player(song["file"], start)
    time.sleep(rng.uniform(3.0, 5.0))
    t_call = time.monotonic()
    result = ls.sync(url, since=player.started)
    row["call_s"] = time.monotonic() - t_call
    row["call_confident"] = result.confident
    row["call_start_s"] = start
    row["call_history"] = [(round(h.interval_s, 3), round(h.lag_ms, 3), round(h.confidence, 4))
                           for h in result.history]
    row["call_err_ms"] = call_error(result)
    row["call_ahead_ms"] = ahead_ms(result, player.started, start) if result.confident else None

    # -- a tracker: seek, pause, skip -----------------------------------------------------
    changes: list = []

    def on_change(r) -> None:
        """Each report, with the sample its capture_started was read for and that time."""
        tie = None
        if r.capture_started is not None:
            heard = ls.heard(newest=0.0)
            index = ls.index_at(r.capture_started, heard.segment)
            tie = None if index is None else (index, heard.segment, ls.time_at(index, heard.segment))
        changes.append((time.monotonic(), r, tie))

    tracker = ls.track(url, on_change=on_change, every_s=2.0,
                       since=player.started)
    locked = _wait_for(changes, 0, lambda r: r.confident, 20)
    time.sleep(4.0)
    where = player.stop()
    target = (where + 20 + rng.uniform(0, max(1.0, length - where - 50))) % max(30.0, length - 30)
    if abs(target - where) < 20:
        target = 5.0 if where > 30 else where + 20
    player = Player(song["file"], target)
    measure("seek", player.started, target)
    row["seek_reports"] = [(round(t - player.started, 3), r.confident, round(r.lag_ms, 3))
                           for t, r, _ in changes if t > player.started - 3]
    row["seek_sample_err_ms"] = sample_error(tracker) if row["seek_s"] is not None else None
    time.sleep(1.0)
    where = player.stop()
    time.sleep(2.0)
    player = Player(song["file"], where)
    measure("pause", player.started, where)
    time.sleep(1.0)
    player.stop()
    player = Player(other["file"], rng.uniform(5.0, max(6.0, other["seconds"] - 30)))
    skip = player.started
    hit = _wait_for(changes, skip, lambda r: not r.confident, 10)
    row["skip_s"] = None if hit is None else hit[0] - skip
    time.sleep(max(0.0, skip + 8.0 - time.monotonic()))
    row["skip_confident_wrong"] = sum(1 for t, r, _ in changes if t > skip and r.confident)
    player.stop()
    row["locked"] = locked is not None
    row["check_ms"] = list(tracker.check_ms)
    row["checks"] = len(tracker.check_ms)
    tracker.stop()
    return row


def _q(values, q):
    values = sorted(v for v in values if v is not None)
    if not values:
        return float("nan")
    return float(np.quantile(values, q))


def table(rows: list[dict], cost: dict) -> None:
    n = len(rows)

    def right(err):
        return err is not None and abs(err) <= TOL_MS

    print(f"{n} songs (packages: {', '.join(sorted({r['package'] for r in rows}))})")
    call_ok = [r for r in rows if r["call_confident"] and right(r["call_err_ms"])]
    call_wrong = [r for r in rows if r["call_confident"] and r["call_err_ms"] is not None
                  and not right(r["call_err_ms"])]
    unverified = [r for r in rows if r["call_confident"] and r["call_err_ms"] is None]
    print(f"call -> confident answer: {len(call_ok)}/{n} right within {TOL_MS:.0f} ms, "
          f"{len(call_wrong)} confidently wrong, {len(unverified)} unverified; time median {_q([r['call_s'] for r in call_ok], 0.5):.2f} s, "
          f"p90 {_q([r['call_s'] for r in rows], 0.9):.2f} s (all calls)")
    for key, name in (("seek", "seek -> new lag"), ("pause", "2 s pause, resume -> lag")):
        ok = [r for r in rows if right(r[f"{key}_err_ms"])]
        wrong = [r for r in rows if r[f"{key}_err_ms"] is not None and not right(r[f"{key}_err_ms"])]
        unverified = [r for r in rows if r[f"{key}_s"] is not None and r[f"{key}_err_ms"] is None]
        missed = [r for r in rows if r[f"{key}_s"] is None]
        print(f"{name}: {len(ok)}/{n} right within {TOL_MS:.0f} ms, {len(wrong)} wrong, {len(unverified)} "
              f"unverified, {len(missed)} not "
              f"reported in 15 s; time median {_q([r[f'{key}_s'] for r in ok], 0.5):.2f} s, "
              f"p90 {_q([r[f'{key}_s'] for r in ok], 0.9):.2f} s from the player's command; median "
              f"{_q([r[f'{key}_sound_s'] for r in ok], 0.5):.2f} s from its sound")
    moves = [abs(r[k]) for r in rows for k in ("seek_clock_ms", "pause_clock_ms") if r.get(k) is not None]
    ties = [abs(r[k]) for r in rows for k in ("seek_tie_ms", "pause_tie_ms") if r.get(k) is not None]
    print(f"clock tie: a report's capture_started moved by median {_q(moves, 0.5):.1f} ms, max "
          f"{_q(moves, 1.0):.1f} ms over the following ~9 s; of which the ring's time of its first sample "
          f"(re-estimated as reads come) median {_q(ties, 0.5):.1f} ms, max {_q(ties, 1.0):.1f} ms; the rest is "
          f"the song's place moving under the line (a player that stalls)")
    for key in ("call", "seek", "pause"):
        ahead = [r.get(f"{key}_ahead_ms") for r in rows if r.get(f"{key}_ahead_ms") is not None]
        if ahead:
            print(f"{key}: the answer's place at the player's start less where it was told to start "
                  f"(its start-up puts it behind; ahead is a wrong clock): median {_q(ahead, 0.5):+.0f} ms, "
                  f"from {min(ahead):+.0f} to {max(ahead):+.0f} ms")
    skipped = [r for r in rows if r["skip_s"] is not None]
    print(f"skip -> unknown: {len(skipped)}/{n} within 10 s, median {_q([r['skip_s'] for r in skipped], 0.5):.2f} s, "
          f"max {_q([r['skip_s'] for r in skipped], 1.0):.2f} s; confident reports after a skip: "
          f"{sum(r['skip_confident_wrong'] for r in rows)}")
    checks = [ms for r in rows for ms in r["check_ms"]]
    print(f"cost: listener {cost['listener_pct']:.2f}% of one core (ffmpeg {cost['ffmpeg_pct']:.2f}%, "
          f"reader thread {cost['thread_pct']:.2f}%, over {cost['seconds']:.0f} s); re-check CPU median "
          f"{_q(checks, 0.5):.1f} ms, p90 {_q(checks, 0.9):.1f} ms, max {_q(checks, 1.0):.1f} ms over {sum(r['checks'] for r in rows)} re-checks; "
          f"ring {cost['ring_s']:.0f} s at {cost['rate']} Hz = {cost['ring_mb']:.2f} MB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--packages", nargs="*", help="songs of these packages (default: the held-out ones)")
    ap.add_argument("--songs", type=int, default=12, help="how many songs (default 12)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--load", type=Path)
    args = ap.parse_args(argv)
    if args.load:
        saved = json.loads(args.load.read_text())
        table(saved["rows"], saved["cost"])
        return 0

    import audiosync
    from audiosync import ffmpeg as affmpeg
    from audiosync.fileserver import serving
    from audiosync.pulse_server import PrivatePulseServer

    manifest = json.loads(args.manifest.read_text())
    corpus = args.manifest.parent
    pkg = corpus.parent / "pkg"
    held = set(args.packages or (p for p in manifest["packages"] if p not in DEFAULT_FIT))
    rng = random.Random(args.seed)
    names = sorted(n for n, s in manifest["songs"].items()
                   if s["package"] in held and 90 <= s["seconds_used"] <= 700
                   and (pkg / s["path"]).exists() and (corpus / "downloads" / f"{n}.webm").exists())
    rng.shuffle(names)
    names = names[:args.songs]
    if len(names) < 2:  # the skip goes to the next song: it must be another
        ap.error(f"at least two songs are needed, found {len(names)}")
    rate = 16000
    songs = []
    for n in names:
        s = manifest["songs"][n]
        songs.append({"name": n, "package": s["package"], "file": pkg / s["path"], "seconds": s["seconds_used"],
                      "pcm": affmpeg.decode(str(corpus / "downloads" / f"{n}.webm"), rate)})
    print(f"songs: {', '.join(names)}", flush=True)

    rows = []
    # Byte ranges, as YouTube serves them (a long download is decoded from both ends).
    with serving(corpus / "downloads") as base, PrivatePulseServer((SINK,), rate=PLAY_RATE) as pulse:
        os.environ["PULSE_SERVER"] = pulse.server
        with audiosync.Listener(f"{SINK}.monitor", sample_rate=rate) as ls:
            # The quiet minute: the listener alone, nothing else of ours running.
            time.sleep(3.0)
            reader = next(t for t in threading.enumerate() if t.name == "audiosync-listener")
            pid, tid = ls._proc.pid, reader.native_id
            f0, r0, t0 = _cpu_s(pid), _cpu_s(os.getpid(), tid), time.monotonic()
            quiet = Player(songs[0]["file"], 0.0)
            time.sleep(60.0)
            quiet.stop()
            f1, r1, t1 = _cpu_s(pid), _cpu_s(os.getpid(), tid), time.monotonic()
            cost = {"seconds": t1 - t0, "ffmpeg_pct": 100 * (f1 - f0) / (t1 - t0),
                    "thread_pct": 100 * (r1 - r0) / (t1 - t0), "rate": rate, "ring_s": ls.seconds,
                    "ring_mb": ls.seconds * rate * 4 / 1e6}
            cost["listener_pct"] = cost["ffmpeg_pct"] + cost["thread_pct"]
            print(f"listener alone: {cost['listener_pct']:.2f}% of one core", flush=True)
            for i, song in enumerate(songs):
                other = songs[(i + 1) % len(songs)]
                row = run_song(ls, song, other, f"{base}/{song['name']}.webm", rng, rate)
                rows.append(row)
                print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}),
                      flush=True)
            restarts = ls.status().restarts
    print(f"listener restarts during the run: {restarts}")
    table(rows, cost)
    if args.save:
        args.save.write_text(json.dumps({"rows": rows, "cost": cost}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
