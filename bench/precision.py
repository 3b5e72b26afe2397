"""Single against double precision on the accuracy corpus: the same lags?

Run (after ``python bench/corpus.py``):

    python bench/precision.py [--manifest PATH] [--json]

Every pair of the corpus, decoded as the package decodes (mono float32,
48 kHz, whole files, as ``sync_files`` reads them), goes through

* the default method's kernel call (``phat``: band weights, whitening, fades,
  guard zone; what ``sync_files`` and the live path run), and
* the plain linear cross-correlation (``cross_correlation(..., linear=True)``),

once in single and once in double precision. It prints how many integer lags
differ, the largest difference of the sub-sample lag (in samples and ms),
the largest difference of the phat confidence, and the kernel time of each
precision (planning excluded: each size is planned before it is timed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402

from audiosync import cross_correlation  # noqa: E402
from audiosync.method import estimate, make_correlator  # noqa: E402

RATE = accuracy.RATE


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def compare(download, capture) -> dict:
    row = {}
    for precision in ("single", "double"):
        def phat():
            c = make_correlator(download, len(capture), "phat", RATE, precision=precision)
            return estimate(c, capture, "phat", RATE, "offline")

        def plain():
            return cross_correlation(download, capture, linear=True, precision=precision)

        phat()  # plans made before timing
        est, t_phat = timed(phat)
        plain()
        corr, t_plain = timed(plain)
        row[precision] = {"phat_lag": est.lag, "phat_fraction": est.fraction, "confidence": est.confidence,
                          "plain_lag": corr.lag, "phat_s": t_phat, "plain_s": t_plain}
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=accuracy.DEFAULT_MANIFEST)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    base, pairs = accuracy.load_manifest(args.manifest)
    rows, skipped = [], 0
    for j, p in enumerate(pairs):
        download = accuracy.DECODE(str(base / p["download"]))
        capture = accuracy.DECODE(str(base / p["capture"]))
        if len(capture) > len(download) or len(capture) < 2:
            skipped += 1
            continue
        rows.append({"id": p["id"], **compare(download, capture)})
        print(f"[{j + 1}/{len(pairs)}] {p['id']}", file=sys.stderr, flush=True)
    s, d = [r["single"] for r in rows], [r["double"] for r in rows]
    summary = {
        "pairs": len(rows), "skipped_capture_longer": skipped,
        "phat_lag_differs": sum(a["phat_lag"] != b["phat_lag"] for a, b in zip(s, d)),
        "plain_lag_differs": sum(a["plain_lag"] != b["plain_lag"] for a, b in zip(s, d)),
        "phat_max_subsample_diff": max(abs(a["phat_lag"] + a["phat_fraction"] - b["phat_lag"] - b["phat_fraction"])
                                       for a, b in zip(s, d)),
        "phat_max_confidence_diff": max(abs(a["confidence"] - b["confidence"]) for a, b in zip(s, d)),
        "phat_s": {"single": sum(a["phat_s"] for a in s), "double": sum(b["phat_s"] for b in d)},
        "plain_s": {"single": sum(a["plain_s"] for a in s), "double": sum(b["plain_s"] for b in d)},
    }
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=1))
        return 0
    print(f"{summary['pairs']} pairs ({skipped} skipped: capture longer than download)")
    print(f"phat (the default method): integer lag differs on {summary['phat_lag_differs']}, "
          f"largest sub-sample difference {summary['phat_max_subsample_diff']:.2e} samples "
          f"({1000 * summary['phat_max_subsample_diff'] / RATE:.2e} ms), largest confidence difference "
          f"{summary['phat_max_confidence_diff']:.2e}; kernel time single {summary['phat_s']['single']:.2f} s, "
          f"double {summary['phat_s']['double']:.2f} s "
          f"({summary['phat_s']['double'] / summary['phat_s']['single']:.2f}x)")
    print(f"plain linear cross-correlation: integer lag differs on {summary['plain_lag_differs']}; "
          f"kernel time single {summary['plain_s']['single']:.2f} s, double {summary['plain_s']['double']:.2f} s "
          f"({summary['plain_s']['double'] / summary['plain_s']['single']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
