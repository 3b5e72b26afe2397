#!/usr/bin/env bash
# Set up everything audiosync needs on Debian/Ubuntu, then run one job:
#   bash dev.sh demo    the main job on the built-in example
#   bash dev.sh test    the test suite
# System packages come from apt-get (through sudo when not root), Python
# packages from pip into .venv beside this script.
set -euo pipefail
cd "$(dirname "$0")"

job=${1:-}
case "$job" in
  demo|test) shift ;;
  *) echo "usage: bash dev.sh demo|test [pytest arguments]" >&2; exit 2 ;;
esac

APT_PACKAGES=(python3-venv python3-dev gcc libc6-dev pkg-config libfftw3-dev
              ffmpeg pulseaudio pulseaudio-utils)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "dev.sh: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
extras=""
[ "$job" = test ] && extras="[test]"
.venv/bin/python -m pip install -q ".$extras"

case "$job" in
  demo) exec .venv/bin/audiosync demo "$@" ;;
  # pytest from the venv's bin (not python -m) keeps the source tree off
  # sys.path, so the tests exercise the installed package.
  test) exec .venv/bin/pytest "$@" ;;
esac
