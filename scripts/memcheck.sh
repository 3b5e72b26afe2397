#!/usr/bin/env bash
# Memory safety of the FFTW kernel (issue 8): run scripts/memcheck_workload.py under
# valgrind's memcheck and FAIL on
#   - an invalid read or write, an invalid free, or a use of an uninitialised value
#     with a stack frame in the extensions (_xcorr*.so, _planner*.so);
#   - a definitely or indirectly lost block whose allocation stack mentions _xcorr or _planner
#     or fftw;
#   - a workload that crashes, fails its own checks, or runs past the time limit.
# Reports outside the kernel (CPython, numpy) are counted and listed, not judged.
#
#   bash scripts/memcheck.sh [PYTHON]
#
# PYTHON (or MEMCHECK_PYTHON): the interpreter whose installed audiosync is
# checked; default .venv/bin/python (made by `bash dev.sh test`). Environment:
# MEMCHECK_TIME_LIMIT (seconds, default 170); MEMCHECK_WORKLOAD (default
# scripts/memcheck_workload.py); MEMCHECK_XML=FILE: only judge an existing
# valgrind XML log (how the detection itself is shown to work); KEEP_TMP=1
# keeps the logs. Installs valgrind with apt-get (through sudo when not root)
# when it is missing. Prints PASS or FAIL lines and a summary; exits 0 on PASS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:-${MEMCHECK_PYTHON:-$ROOT/.venv/bin/python}}
WORKLOAD=${MEMCHECK_WORKLOAD:-$ROOT/scripts/memcheck_workload.py}
TIME_LIMIT=${MEMCHECK_TIME_LIMIT:-170}

# The judge: reads valgrind's XML (one <error> per report, with its kind and
# stack of <frame>s, each with <obj> and <fn>), prints a summary, exits 1 on FAIL.
judge() {
  python3 - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET

MEMORY = {"InvalidRead", "InvalidWrite", "InvalidFree", "MismatchedFree", "UninitCondition",
          "UninitValue", "SyscallParam", "Overlap", "InvalidMemPool", "FishyValue"}
LEAKS = {"Leak_DefinitelyLost", "Leak_IndirectlyLost"}

try:
    root = ET.parse(sys.argv[1]).getroot()
except (ET.ParseError, OSError) as exc:
    # valgrind died mid-run (a client that wrecks the heap can take it down): judge
    # the reports it managed to write; the missing FINISHED status fails the run.
    print(f"memcheck: valgrind's XML log is incomplete ({exc}); judging the reports in it")
    import re
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    root = ET.fromstring("<valgrindoutput>" + "".join(re.findall(r"<error>.*?</error>", text, re.S))
                         + "</valgrindoutput>")


def frames(error):
    out = []
    for stack in error.findall("stack"):
        for f in stack.findall("frame"):
            out.append(((f.findtext("obj") or ""), (f.findtext("fn") or "?"),
                        f"{f.findtext('file') or ''}:{f.findtext('line') or ''}".strip(":")))
    return out


def describe(error):
    what = error.findtext("what") or error.findtext("xwhat/text") or ""
    stack = frames(error)
    shown = [f"      {fn} ({obj.rsplit('/', 1)[-1]}{' ' + where if where else ''})" for obj, fn, where in stack[:7]]
    return "\n".join([f"    {error.findtext('kind')}: {what}", *shown])


KERNEL_MODULES = ("_xcorr", "_planner")  # the compiled modules


def in_kernel(stack):
    return any(obj.rsplit("/", 1)[-1].startswith(KERNEL_MODULES) for obj, _, _ in stack)


def mentions_kernel_or_fftw(stack):
    return any(any(k in obj or k in fn for k in KERNEL_MODULES) or "fftw" in obj.lower() or "fftw" in fn.lower()
               for obj, fn, _ in stack)


failures, others, where = [], {}, {}
for error in root.findall("error"):
    kind = error.findtext("kind") or "?"
    stack = frames(error)
    if kind in MEMORY and in_kernel(stack):
        failures.append(error)
    elif kind in LEAKS and mentions_kernel_or_fftw(stack):
        failures.append(error)
    else:
        others[kind] = others.get(kind, 0) + 1
        first = next((obj.rsplit("/", 1)[-1] for obj, _, _ in stack
                      if obj and "vgpreload" not in obj and "valgrind" not in obj), "?")
        where[first] = where.get(first, 0) + 1

statuses = root.findall("status")  # RUNNING at the start, FINISHED at the end
state = statuses[-1].findtext("state") if statuses else "?"
suppressed = sum(int(p.findtext("count") or 0) for p in root.findall("suppcounts/pair"))
print(f"memcheck: {len(root.findall('error'))} report(s): {len(failures)} in the kernel, "
      f"{sum(others.values())} elsewhere {dict(sorted(others.items())) or ''}, {suppressed} suppressed")
if where:
    print("  elsewhere, by library: " + ", ".join(f"{k} {v}" for k, v in sorted(where.items(), key=lambda kv: -kv[1])))
if state != "FINISHED":
    print(f"FAIL: valgrind did not finish (state {state})")
    sys.exit(1)
SHOWN = 6
for error in failures[:SHOWN]:
    print(describe(error))
if len(failures) > SHOWN:
    print(f"    ... and {len(failures) - SHOWN} more (KEEP_TMP=1 keeps the full log)")
if failures:
    kinds = {}
    for error in failures:
        kinds[error.findtext("kind")] = kinds.get(error.findtext("kind"), 0) + 1
    print(f"FAIL: {len(failures)} memory error(s) or leak(s) in _xcorr/FFTW: {dict(sorted(kinds.items()))}")
    sys.exit(1)
print("PASS: no invalid access, uninitialised value or leak in _xcorr/FFTW")
EOF
}

if [ -n "${MEMCHECK_XML:-}" ]; then
  judge "$MEMCHECK_XML"
  exit $?
fi

if ! command -v valgrind >/dev/null 2>&1; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  echo "memcheck: installing valgrind" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
if [ ! -x "$PY" ]; then
  echo "FAIL: no interpreter at $PY (run 'bash dev.sh test' first, or give PYTHON)" >&2
  exit 1
fi
EXT=$(cd / && "$PY" -c 'import audiosync._xcorr as x; print(x.__file__)')

# CPython's own suppressions (Debian's python3 package ships them here); with
# PYTHONMALLOC=malloc every Python object is a malloc block valgrind can follow.
SUPP=()
for f in /usr/lib/valgrind/python3.supp /usr/lib/valgrind/python.supp \
         /usr/share/doc/python3*/valgrind-python.supp; do
  [ -f "$f" ] && SUPP+=("--suppressions=$f")
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/audiosync-memcheck.XXXXXX")
if [ "${KEEP_TMP:-0}" != 1 ]; then trap 'rm -rf "$TMP"' EXIT; fi
echo "memcheck: $(valgrind --version) on $EXT"
echo "memcheck: suppressions: ${SUPP[*]:-none}; time limit ${TIME_LIMIT} s; logs in $TMP"
start=$SECONDS
set +e
(cd "$TMP" && PYTHONMALLOC=malloc timeout --kill-after=10 "$TIME_LIMIT" \
  valgrind --tool=memcheck --xml=yes --xml-file="$TMP/memcheck.xml" --log-file="$TMP/valgrind.log" \
    --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --num-callers=40 --error-limit=no "${SUPP[@]}" \
    "$PY" "$WORKLOAD" >"$TMP/workload.out" 2>&1)
rc=$?
set -e
took=$((SECONDS - start))
tail -n 3 "$TMP/workload.out" | sed 's/^/    /'
verdict=0
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "FAIL: the workload ran past ${TIME_LIMIT} s under valgrind"
  verdict=1
elif [ "$rc" -ne 0 ] || ! grep -q '^workload: OK' "$TMP/workload.out"; then
  echo "FAIL: the workload exited with status $rc under valgrind:"
  tail -n 20 "$TMP/workload.out" "$TMP/valgrind.log" | sed 's/^/    /'
  verdict=1
else
  echo "PASS: the workload ran to the end under valgrind (${took} s)"
fi
if [ "$verdict" -eq 0 ] || [ -s "$TMP/memcheck.xml" ]; then
  judge "$TMP/memcheck.xml" || verdict=1
fi
if [ "$verdict" -eq 0 ]; then
  echo "memcheck: PASS (${took} s)"
else
  echo "memcheck: FAIL (${took} s)"
fi
exit "$verdict"
