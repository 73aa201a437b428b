"""Writing a swap result with its Content Credentials: what the CLI and the app do with every output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fswap.fileio import check_output, write_atomically
from fswap.provenance.c2pa_manifest import DIGITAL_SOURCE_TYPE, C2paCredentials, sign_image

#: File suffixes a signed result may have, and the format each is encoded in.
SIGNED_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}


def write_signed_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    checkpoint: str,
    parent: bytes | str | os.PathLike | None = None,
    credentials: C2paCredentials | None = None,
    credentials_folder: str | os.PathLike | None = None,
    digital_source_type: str = DIGITAL_SOURCE_TYPE,
) -> Path:
    """Encode `image` by `path`'s suffix (PNG when it has none), sign it, and write it atomically.

    Args:
        path: where to write; the suffix picks PNG, JPEG, WebP or TIFF.
        image: the RGB uint8 result (already watermarked by the pipeline), or RGBA to keep a
            transparent photo's transparency (`fswap.imageio.with_transparency`; not in JPEG).
        checkpoint: the model that made it (Hub id, folder name, or "classic"), recorded in the claim.
        parent: the target photo's file; given, the manifest records it as the edited ingredient.
        credentials: the signer; None uses the local test certificate (`local_test_credentials`).
        credentials_folder: where the local test certificate lives (default `~/.cache/fswap/c2pa`).
        digital_source_type: the IPTC source type the manifest declares (`sign_image`).

    Raises:
        fswap.OutputError: the suffix is not a format Content Credentials can be written to, or the
            file cannot be written.
        fswap.provenance.ProvenanceError: signing failed (bad credentials).
    """
    path = check_output(path, suffixes=SIGNED_FORMATS)
    format = SIGNED_FORMATS[path.suffix.lower()]
    data = sign_image(
        image, checkpoint=checkpoint, format=format, parent=parent, credentials=credentials,
        credentials_folder=credentials_folder, digital_source_type=digital_source_type,
    )
    return write_atomically(path, data)
