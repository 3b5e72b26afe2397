"""The ``audiosync`` command (also ``python -m audiosync``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from audiosync.errors import AudiosyncError, InputError, ManifestError

if TYPE_CHECKING:
    from audiosync.results import Progress, SyncResult

__all__ = ["main"]

# 0: a confident answer; 1: an answer, not confident; 2: bad usage (arguments
# or option values); 3: the job could not run (an input, the capture, ffmpeg).
EXIT_CONFIDENT, EXIT_NOT_CONFIDENT, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3

log = logging.getLogger("audiosync")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # bad usage: one line, status 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show debug logs and tracebacks")
    # The same option after the command; SUPPRESS keeps it from resetting one given before it.
    sub_common = argparse.ArgumentParser(add_help=False)
    sub_common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show debug logs and tracebacks")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    out.add_argument("--plot", metavar="FILE.png", help="write a PNG of the correlation (needs audiosync[plot])")
    out.add_argument("--calibration", metavar="MS", type=float, default=0.0,
                     help="add MS to the reported lag (your player's output latency)")

    p = _Parser(prog="audiosync", description="How far apart two recordings of the same music are.",
                parents=[common])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    f = sub.add_parser("files", parents=[sub_common, out], help="the lag of OTHER relative to REFERENCE",
                       description="Print the lag of OTHER relative to REFERENCE: other(t) ≈ reference(t + lag).")
    f.add_argument("reference", help="file or URL")
    f.add_argument("other", help="file or URL")
    f.add_argument("--max-seconds", type=float, metavar="S", help="read at most S seconds of each")
    f.add_argument("--sample-rate", type=int, default=16000, metavar="R", help="analysis rate (default 16000)")
    f.add_argument("--min-confidence", type=float, default=0.95, metavar="C")
    f.add_argument("--all", action="store_true", help="list every place OTHER occurs in REFERENCE")
    f.add_argument("--ref-window", type=_window, metavar="START:DUR",
                   help="read only DUR seconds of REFERENCE from START (DUR empty: to the end)")
    f.add_argument("--other-window", type=_window, metavar="START:DUR", help="likewise for OTHER")

    live = sub.add_parser("live", parents=[sub_common, out], help="sync the desktop's audio against a song",
                          description="Record the desktop while decoding the song; print how far into the "
                                      "song the desktop is (positive: seek the video forward).")
    live.add_argument("url", nargs="?", metavar="URL_OR_PATH", help="media URL, YouTube page or file")
    live.add_argument("--title", help="find the song by searching YouTube for TITLE (needs audiosync[youtube])")
    live.add_argument("--capture", metavar="SOURCE",
                      help="PulseAudio source to record (default: the default output's monitor); "
                           "an existing file is read as if it were the desktop")
    live.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    live.add_argument("--hint", type=float, metavar="MS",
                      help="where the player is in the song, in ms (its reported position), "
                           "vouched for within --hint-window")
    live.add_argument("--hint-window", type=float, default=3000.0, metavar="MS",
                      help="how far from --hint the capture's start may be (default 3000)")
    live.add_argument("--min-confidence", type=float, default=0.95, metavar="C")

    ls = sub.add_parser("listen", parents=[sub_common], help="keep recording the desktop and follow the song",
                        description="Record the desktop continuously (into memory only) and print how far "
                                    "into the song it is; with --follow, a line at every seek, pause or skip "
                                    "until Ctrl-C.")
    ls.add_argument("url", metavar="URL_OR_PATH", help="media URL, YouTube page or file")
    ls.add_argument("--follow", action="store_true", help="keep following: one line per change")
    ls.add_argument("--json", action="store_true", help="JSON: one object, or with --follow one per line")
    ls.add_argument("--capture", metavar="SOURCE",
                    help="PulseAudio source to record (default: the default output's monitor); "
                         "an existing file is read at its own pace as if it were the desktop")
    ls.add_argument("--every", type=float, default=2.0, metavar="S", help="with --follow: re-check every S s")
    ls.add_argument("--min-confidence", type=float, default=0.95, metavar="C")
    ls.add_argument("--calibration", metavar="MS", type=float, default=0.0,
                    help="added to every lag printed (the sound card's latency, measured once)")

    s = sub.add_parser("setup", parents=[sub_common], help="route a player into the dedicated audiosync sink")
    s.add_argument("player", metavar="PLAYER_NAME", help="the player's application.name, e.g. Spotify")

    sub.add_parser("prepare", parents=[sub_common], help="measure FFTW plans for the sizes audiosync uses (once)",
                   description="Measure FFTW plans for the transform sizes of a live sync and save them as "
                               "wisdom in the user's cache folder; later runs plan them at no cost. "
                               "Takes minutes; run it once per machine, e.g. at set-up.")

    a = sub.add_parser("align", parents=[sub_common], help="put several recordings on one timeline",
                       description="Measure every pair of FILEs and place them on one timeline (the earliest "
                                   "placed file starts at 0); a file that overlaps none is reported unplaced.")
    a.add_argument("files", nargs="+", metavar="FILE", help="two or more files or URLs (video: its audio)")
    a.add_argument("--reference", metavar="FILE", help="the timeline is the group of files linked to FILE")
    a.add_argument("--json", action="store_true", help="print the timeline as one JSON object on stdout")
    a.add_argument("--plot", metavar="FILE.png", help="draw the timeline (needs audiosync[plot])")
    a.add_argument("--export", nargs=2, action="append", default=[], metavar=("FORMAT", "OUT"),
                   help="write the timeline as csv, edl or fcpxml to OUT (repeatable)")
    a.add_argument("--apply", metavar="DIR", help="write copies of the placed files that all start at 0 into DIR")
    a.add_argument("--fps", type=int, default=25, help="EDL frame rate (default 25)")
    a.add_argument("--max-seconds", type=float, metavar="S", help="read at most S seconds of each")
    a.add_argument("--sample-rate", type=int, default=16000, metavar="R", help="analysis rate (default 16000)")
    a.add_argument("--min-confidence", type=float, default=0.95, metavar="C")

    b = sub.add_parser("batch", parents=[sub_common], help="sync the pairs of a CSV manifest",
                       description="Sync every reference,other pair of MANIFEST (a CSV; optional columns: "
                                   "max_seconds, sample_rate, min_confidence, timeout, method, reference_window and "
                                   "other_window as START:DUR) and append one "
                                   "JSON line per pair to RESULTS. Pairs already in RESULTS are skipped, so a "
                                   "killed batch resumes.")
    b.add_argument("manifest", metavar="MANIFEST")
    b.add_argument("--out", required=True, metavar="RESULTS.jsonl")
    b.add_argument("--jobs", type=int, metavar="N", help="local worker processes (default 1)")
    b.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://HOST:8786 "
                                                         "(needs audiosync[dask])")
    b.add_argument("--quiet", action="store_true", help="no progress bar")

    d = sub.add_parser("demo", parents=[sub_common], help="run the main job on a built-in example")
    d.add_argument("--offline", action="store_true", help="skip PulseAudio: run the example through sync_files")
    return p


def _window(text: str) -> tuple[float, float | None]:
    """START:DUR for --ref-window and --other-window."""
    from audiosync.options import parse_window

    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _calibrated(out: dict, calibration: float) -> dict:
    """The JSON answer with ``calibration`` ms added to every lag in it (the lag, the lag map's,
    the breaks' and the matches')."""
    def add(value: float) -> float:
        return round(value + calibration, 3)

    out = {**out, "lag_ms": add(out["lag_ms"]), "calibration_ms": calibration}
    out["lag_map"] = [{**p, "lag_ms": add(p["lag_ms"])} for p in out.get("lag_map", [])]
    out["breaks"] = [{**b, "lag_before_ms": add(b["lag_before_ms"]), "lag_after_ms": add(b["lag_after_ms"])}
                     for b in out.get("breaks", [])]
    if "matches" in out:
        out["matches"] = [{**m, "lag_ms": add(m["lag_ms"])} for m in out["matches"]]
    return out


def _progress(p: Progress) -> None:
    print(f"  {p.describe()}", file=sys.stderr, flush=True)


def _report(result: SyncResult, args: argparse.Namespace) -> int:
    lag = result.lag_ms + args.calibration
    if args.plot:
        from audiosync.plot import plot_result

        plot_result(result, args.plot)
    if args.json:
        out = _calibrated(result.to_dict(), args.calibration)
        if args.command == "live":  # the live path measures no drift: its keys would always be empty
            for key in ("drift_ppm", "drift_ppm_error", "lag_map", "breaks"):
                out.pop(key)
        print(json.dumps(out))
    else:
        verdict = "confident" if result.confident else f"NOT confident ({result.reason})"
        print(f"lag {lag:.1f} ms, confidence {result.confidence:.3f}, {verdict}")
        if result.drift_ppm is not None:
            print(f"drift {result.drift_ppm:+.2f} ± {result.drift_ppm_error:.2f} ppm over "
                  f"{len(result.lag_map)} windows" + "".join(
                      f"; break at {b.time_s:.1f} s: {b.lag_before_ms:.1f} -> {b.lag_after_ms:.1f} ms"
                      for b in result.breaks))
        for m in result.matches or ():
            print(f"match at {m.lag_ms + args.calibration:.1f} ms, confidence {m.confidence:.3f}")
    return EXIT_CONFIDENT if result.confident else EXIT_NOT_CONFIDENT


def _files(args: argparse.Namespace) -> int:
    from audiosync import decoding, ffmpeg

    windows = (args.ref_window, args.other_window)
    try:
        # The decoders first, then numpy and the rest (about 0.1 s) while they start.
        decoding.start_early((args.reference, args.other), args.sample_rate, windows)
        from audiosync.offline import sync_files

        result = sync_files(args.reference, args.other, sample_rate=args.sample_rate,
                            max_seconds=args.max_seconds, min_confidence=args.min_confidence,
                            keep_audio=bool(args.plot), drift=True, all_matches=args.all,
                            reference_window=windows[0], other_window=windows[1])
    finally:
        ffmpeg.drop_early()
    return _report(result, args)


def _live(args: argparse.Namespace) -> int:
    from audiosync.control import sync
    from audiosync.download import search_url

    if bool(args.url) == bool(args.title):
        raise _UsageError("give either URL_OR_PATH or --title")
    capture = _capture_spec(args.capture)
    url, use_ytdlp = (args.url, None) if args.url else (search_url(args.title), True)
    print("recording the desktop ...", file=sys.stderr, flush=True)
    result = sync(url, capture=capture, timeout=args.timeout, min_confidence=args.min_confidence,
                  on_progress=_progress, use_ytdlp=use_ytdlp, keep_audio=bool(args.plot),
                  hint_ms=args.hint, hint_window_ms=args.hint_window)
    return _report(result, args)


def _capture_spec(capture: str | None, paced: bool = False) -> str | list[str] | None:
    """The --capture value as a capture spec: a source name, or an existing file's input."""
    if capture and os.path.isfile(capture):
        # As for every local path: absolute, behind "file:", so that a name such as
        # "take:1.wav" or "pipe:0" is not read as an ffmpeg protocol.
        return [*(["-re"] if paced else []), "-i", "file:" + os.path.abspath(capture)]
    return capture


def _listen(args: argparse.Namespace) -> int:
    import queue

    from audiosync.listener import Listener

    # A file stands for a sound card: read at its own pace, as a recording arrives.
    with Listener(_capture_spec(args.capture, paced=True)) as listener:
        print("listening to the desktop ...", file=sys.stderr, flush=True)
        if not args.follow:
            result = listener.sync(args.url, since=time.monotonic(), min_confidence=args.min_confidence,
                                   on_progress=_progress)
            return _report(result, argparse.Namespace(**{**vars(args), "plot": None, "command": "live"}))
        changes: queue.Queue = queue.Queue()
        tracker = listener.track(args.url, on_change=changes.put, every_s=args.every,
                                 min_confidence=args.min_confidence)
        try:
            while tracker.running or not changes.empty():
                try:
                    result = changes.get(timeout=0.2)
                except queue.Empty:
                    continue
                if args.json:
                    out = {k: v for k, v in result.to_dict().items()
                           if k in ("lag_ms", "confidence", "confident", "reason")}
                    out["lag_ms"] = round(out["lag_ms"] + args.calibration, 3)
                    out["capture_started"] = result.capture_started  # time.monotonic() of lag_ms
                    print(json.dumps(out), flush=True)
                elif result.confident:
                    print(f"lag {result.lag_ms + args.calibration:.1f} ms at {result.capture_started:.3f} "
                          f"(monotonic), confidence {result.confidence:.3f}", flush=True)
                else:
                    print(f"lag unknown ({result.reason})", flush=True)
        finally:
            tracker.stop()
        if tracker.error:
            raise InputError(tracker.error)
    return EXIT_CONFIDENT


def _setup(args: argparse.Namespace) -> int:
    from audiosync.capture import setup

    if setup(args.player):
        print(f"{args.player} now plays through the 'audiosync' sink; capture records only it")
        return 0
    print(f"audiosync: could not set up {args.player!r} (run with --debug for the reason)", file=sys.stderr)
    return 1


def _prepare(args: argparse.Namespace) -> int:
    from audiosync import wisdom

    seconds = wisdom.prepare(on_progress=wisdom.progress_bar)
    print(f"measured FFTW plans in {seconds:.0f} s; saved in {os.path.dirname(wisdom.path(True))}")
    return 0


_EXPORTS = ("csv", "edl", "fcpxml")


def _align(args: argparse.Namespace) -> int:
    from audiosync.timeline import align

    for fmt, _ in args.export:
        if fmt not in _EXPORTS:
            raise _UsageError(f"--export FORMAT must be one of {', '.join(_EXPORTS)}, got {fmt!r}")

    def measured(edge) -> None:
        print(f"  pair {edge.a + 1}-{edge.b + 1}: {edge.lag_ms:.1f} ms, confidence {edge.confidence:.3f}",
              file=sys.stderr, flush=True)

    timeline = align(args.files, reference=args.reference, on_pair=None if args.json else measured,
                     sample_rate=args.sample_rate, max_seconds=args.max_seconds,
                     min_confidence=args.min_confidence)
    for fmt, out in args.export:
        if fmt == "csv":
            timeline.to_csv(out)
        elif fmt == "edl":
            timeline.to_edl(out, fps=args.fps)
        else:
            timeline.to_fcpxml(out)
    if args.apply:
        timeline.apply(args.apply)
    if args.plot:
        from audiosync.plot import plot_timeline

        plot_timeline(timeline, args.plot)
    if args.json:
        print(timeline.to_json())
    else:
        for f in timeline.files:
            where = "unplaced" if f.unplaced else f"{f.offset_ms:12.3f} ms  confidence {f.confidence:.3f}"
            print(f"{where:>40}  {f.path}")
        for e in timeline.dropped:
            why = ("lays down overlaps that do not match" if e.residual_ms is None
                   else f"disagrees with its cycle by {e.residual_ms:.1f} ms")
            print(f"dropped: {timeline.files[e.a].path} -> {timeline.files[e.b].path} ({e.lag_ms:.1f} ms) {why}",
                  file=sys.stderr)
    return EXIT_CONFIDENT if not timeline.unplaced else EXIT_NOT_CONFIDENT


def _batch(args: argparse.Namespace) -> int:
    from audiosync.batch import run_manifest

    def bar(total: int, _done: int):
        from tqdm import tqdm

        return tqdm(total=total, unit="pair", file=sys.stderr, dynamic_ncols=True)

    ran, failed, skipped = run_manifest(args.manifest, args.out, jobs=args.jobs, scheduler=args.scheduler,
                                        progress=None if args.quiet else bar)
    if not args.quiet:
        print(f"{ran} pairs run ({failed} failed), {skipped} already done; results in {args.out}", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_CONFIDENT


def _demo(args: argparse.Namespace) -> int:
    from audiosync.demo import main as demo

    return demo(offline=args.offline)


_COMMANDS = {"files": _files, "live": _live, "setup": _setup, "prepare": _prepare, "align": _align,
             "batch": _batch, "demo": _demo, "listen": _listen}


class _UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    # The command makes no BLAS call worth a thread, and OpenBLAS's threads, started when numpy
    # is imported, spin on the other core that ffmpeg and the transforms need. For this process
    # and the worker processes it starts (batch); the user's own setting is kept, and a numpy
    # already imported (main() called in-process) keeps its threads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = _parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="audiosync %(levelname)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="audiosync: %(message)s")
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("audiosync: interrupted", file=sys.stderr)
        return 130
    except (AudiosyncError, OSError, ValueError, _UsageError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"audiosync: error: {message}", file=sys.stderr)
        # A named error (SilentInputError is also a ValueError) or the system's is
        # the job failing; a bare ValueError is an option value, like bad usage.
        usage = isinstance(exc, (_UsageError, ManifestError)) \
            or (isinstance(exc, ValueError) and not isinstance(exc, AudiosyncError))
        return EXIT_USAGE if usage else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
