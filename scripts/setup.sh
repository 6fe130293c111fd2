#!/usr/bin/env bash
# Prepare a fresh machine: headless GL system libraries (Debian), then .venv with this package.
# `--test` also installs what the tests need: Debian's headless Chromium and its driver (the study page is
# tested in a real browser) and the test extra. Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
packages="libegl1 libgl1 libgl1-mesa-dri libosmesa6"
if [ "${1:-}" = "--test" ]; then
  extra="test"
  packages="$packages chromium chromium-driver"
fi

# Headless MuJoCo rendering: EGL through Mesa (llvmpipe), OSMesa as the fallback.
need=()
for pkg in $packages; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: missing system packages: ${need[*]} (install them with apt-get as root)" >&2; exit 1; fi
  echo "setup: installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.mirrorlab-installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # torch==2.13.0 is pinned in pyproject.toml: the CPU wheel on disk, not a multi-GB CUDA build.
  .venv/bin/pip install -q -e ".${extra:+[$extra]}"
  touch "$stamp"
fi
