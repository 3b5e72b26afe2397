#!/usr/bin/env bash
# Build FFTW 3.3.10 from its release tarball, checksum-verified, as shared
# libraries in double (libfftw3) and single (libfftw3f) precision, for the
# macOS wheels (cibuildwheel's before-all; delocate then bundles the dylibs).
#
#   bash scripts/build_fftw_macos.sh [PREFIX]
#
# PREFIX defaults to $FFTW_DIR, else /tmp/audiosync-fftw; setup.py finds the
# result through FFTW_DIR. MACOSX_DEPLOYMENT_TARGET must match the wheels'
# (pyproject.toml sets it per architecture); when unset it defaults to 11.0
# on arm64 and 10.15 on x86_64. FFTW_TARBALL=path uses a local copy of
# fftw-3.3.10.tar.gz (still checksum-verified) instead of downloading it.
# FFTW's configure picks its own optimisation flags (-O3 and -mtune=native,
# which tunes but stays portable) unless CFLAGS is set. Written for the
# bash 3.2 that macOS ships. The script also runs on Linux (same flags, .so instead of .dylib), which is
# how it is tested without a Mac. A finished build for the same version and
# target is reused.
set -euo pipefail

FFTW_VERSION=3.3.10
FFTW_SHA256=56c932549852cddcfafdab3820b0200c7742675be92179e59e6215b340e26467
FFTW_URL="https://www.fftw.org/fftw-${FFTW_VERSION}.tar.gz"

prefix=${1:-${FFTW_DIR:-/tmp/audiosync-fftw}}
os=$(uname -s)
arch=$(uname -m)

if [ "$os" = Darwin ]; then
  case "$arch" in
    arm64) export MACOSX_DEPLOYMENT_TARGET=${MACOSX_DEPLOYMENT_TARGET:-11.0} ;;
    *)     export MACOSX_DEPLOYMENT_TARGET=${MACOSX_DEPLOYMENT_TARGET:-10.15} ;;
  esac
  target=$MACOSX_DEPLOYMENT_TARGET
  libext=dylib
else
  target=none
  libext=so
fi

# SIMD kernels are chosen at run time by FFTW's CPU detection, so enabling
# AVX/AVX2 is safe on older x86_64 CPUs. No NEON on arm64: FFTW 3.3.10's
# configure accepts it for double precision only when it sees "aarch64",
# and the generic code is what Homebrew ships there too.
simd=()
case "$arch" in
  x86_64|amd64) simd=(--enable-sse2 --enable-avx --enable-avx2) ;;
esac

stamp="$prefix/.audiosync-fftw-stamp"
want="fftw-$FFTW_VERSION os=$os arch=$arch target=$target simd=${simd[*]+${simd[*]}}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -e "$prefix/lib/libfftw3.$libext" ] && [ -e "$prefix/lib/libfftw3f.$libext" ]; then
  echo "build_fftw_macos: reusing $prefix ($want)"
  exit 0
fi

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
work=$(mktemp -d "${TMPDIR:-/tmp}/fftw-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

tarball="$work/fftw-$FFTW_VERSION.tar.gz"
if [ -n "${FFTW_TARBALL:-}" ]; then
  cp "$FFTW_TARBALL" "$tarball"
else
  echo "build_fftw_macos: downloading $FFTW_URL"
  curl -fsSL --retry 5 --retry-delay 5 -o "$tarball" "$FFTW_URL"
fi
got=$(sha256_of "$tarball")
if [ "$got" != "$FFTW_SHA256" ]; then
  echo "build_fftw_macos: SHA-256 mismatch for fftw-$FFTW_VERSION.tar.gz: got $got, want $FFTW_SHA256" >&2
  exit 1
fi
echo "build_fftw_macos: SHA-256 ok ($got)"
tar -xzf "$tarball" -C "$work"
src="$work/fftw-$FFTW_VERSION"

echo "build_fftw_macos: $want -> $prefix ($jobs jobs)"
rm -rf "$prefix"
for precision in double single; do
  flags=()
  [ "$precision" = single ] && flags=(--enable-single)
  mkdir -p "$work/build-$precision"
  (
    cd "$work/build-$precision"
    "$src/configure" --prefix="$prefix" --enable-shared --disable-static \
      --disable-fortran --disable-doc --disable-dependency-tracking \
      ${flags[@]+"${flags[@]}"} ${simd[@]+"${simd[@]}"} > configure.log 2>&1 ||
      { tail -40 configure.log >&2; exit 1; }
    make -j"$jobs" > make.log 2>&1 || { tail -40 make.log >&2; exit 1; }
    make install > install.log 2>&1 || { tail -40 install.log >&2; exit 1; }
  )
done

# Smoke test: link both precisions and run one transform each.
cat > "$work/smoke.c" <<'EOF'
#include <fftw3.h>
#include <stdio.h>
int main(void) {
  double in[8] = {1, 0, 0, 0, 0, 0, 0, 0}; fftw_complex out[5];
  float inf[8] = {1, 0, 0, 0, 0, 0, 0, 0}; fftwf_complex outf[5];
  fftw_plan p = fftw_plan_dft_r2c_1d(8, in, out, FFTW_ESTIMATE);
  fftwf_plan pf = fftwf_plan_dft_r2c_1d(8, inf, outf, FFTW_ESTIMATE);
  fftw_execute(p); fftwf_execute(pf);
  printf("%s: X[3] = %g, single X[3] = %g\n", fftw_version, out[3][0], (double)outf[3][0]);
  fftw_destroy_plan(p); fftwf_destroy_plan(pf);
  return (out[3][0] == 1.0 && outf[3][0] == 1.0f) ? 0 : 1;
}
EOF
cc -I"$prefix/include" "$work/smoke.c" -L"$prefix/lib" -lfftw3 -lfftw3f -lm \
   -Wl,-rpath,"$prefix/lib" -o "$work/smoke"
"$work/smoke"

echo "$want" > "$stamp"
echo "build_fftw_macos: installed"
ls -l "$prefix/lib/"libfftw3*."$libext"*
if [ "$os" = Darwin ]; then
  for lib in "$prefix"/lib/libfftw3.3.dylib "$prefix"/lib/libfftw3f.3.dylib; do
    otool -D "$lib" | tail -1
    # LC_BUILD_VERSION's minos is the macOS version the dylib needs.
    otool -l "$lib" | awk '/LC_BUILD_VERSION|LC_VERSION_MIN_MACOSX/ {p=1} p && /minos|version/ {print "  " $0; p=0}'
  done
fi
