"""The kernel against an earlier build of itself, on the same data, in one run.

Run (outside the source folder):

    git worktree add /tmp/old c95c145 && (cd /tmp/old && python setup.py build_ext --inplace)
    python bench/before_after.py --old /tmp/old [--rounds 3] [--repeat 5]

Times ``cross_correlation`` (single and double precision) at 3, 10 and 30 s
of 48 kHz capture against twice as much source, in child processes that
take turns (old, new with FFTW_ESTIMATE only, new with this machine's
wisdom), ``--rounds`` times; prints the best of each and the ratios. The
old build is imported from ``--old``; the new one is the installed package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, sys, time
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
import numpy as np
import audiosync
from audiosync import cross_correlation
from audiosync.xcorr import working_length
repeat = int(sys.argv[2])
rng = np.random.default_rng(0)
out = {"file": audiosync.__file__}
for seconds in (3, 10, 30):
    n = seconds * 48000
    m = working_length(2 * n)
    source = rng.standard_normal(m)
    sample = source[n // 3 : n // 3 + n].copy()
    s32, x32 = source.astype(np.float32), sample.astype(np.float32)
    for precision, (a, b) in (("double", (source, sample)), ("single", (s32, x32))):
        assert cross_correlation(a, b, precision=precision).lag == n // 3  # plans made here
        best = 1e9
        for _ in range(repeat):
            t = time.perf_counter()
            cross_correlation(a, b, precision=precision)
            best = min(best, time.perf_counter() - t)
        out[f"{seconds}-{precision}"] = 1000 * best
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="folder holding the old build's audiosync/")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    empty = tempfile.mkdtemp(prefix="audiosync-nowisdom-")
    variants = {
        "old": (os.path.abspath(args.old), {"AUDIOSYNC_CACHE_DIR": empty}),
        "new, estimate": ("", {"AUDIOSYNC_CACHE_DIR": empty}),
        "new, wisdom": ("", {}),
    }
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for name, (path, env) in variants.items():
            out = subprocess.run(
                [sys.executable, "-c", CHILD, path, str(args.repeat)], check=True, capture_output=True, text=True,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **env},
                cwd=tempfile.gettempdir()).stdout
            times = json.loads(out)
            print(f"# {name}: {times.pop('file')}", file=sys.stderr)
            for key, ms in times.items():
                best.setdefault(name, {})[key] = min(ms, best.get(name, {}).get(key, 1e9))
    keys = list(best["old"])
    print(f"{'call':>10} | " + " ".join(f"{name:>14}" for name in variants) + " | old/new,est old/new,wis")
    for key in keys:
        o, e, w = (best[name][key] for name in variants)
        print(f"{key:>10} | {o:>11.2f} ms {e:>11.2f} ms {w:>11.2f} ms | {o / e:>11.2f} {o / w:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
