"""Which pipeline the app runs, loaded once, on the GPU when there is one."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from fswap.assets import default_model
from fswap.pipeline import FaceSwapPipeline


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_default_detector():
    """The swap detector named by `$FSWAP_DETECTOR` (a folder), else the one shipped in checkpoints/.
    None when there is none: the Check tab then reports the provenance signals only."""
    import os

    from fswap.errors import FswapError
    from fswap.swap_detection import DEFAULT_DETECTOR, load_detector

    folder = os.environ.get("FSWAP_DETECTOR") or DEFAULT_DETECTOR
    try:
        return load_detector(folder).to(default_device())
    except (FswapError, OSError):
        return None


def signing_credentials():
    """The Space owner's C2PA signer from `$FSWAP_C2PA_CERT` and `$FSWAP_C2PA_KEY` (PEM files; on a
    Space, secrets), else None: results are then signed with the local test certificate."""
    import os

    from fswap.provenance import C2paCredentials

    certificate, key = os.environ.get("FSWAP_C2PA_CERT"), os.environ.get("FSWAP_C2PA_KEY")
    if not certificate or not key:
        return None
    return C2paCredentials.from_files(certificate, key, algorithm=os.environ.get("FSWAP_C2PA_ALGORITHM", "es256"))


def default_settings() -> dict:
    """The pipeline settings of `$FSWAP_MODEL` or the embedded default, read from its
    `model_index.json` without loading it (`PIPELINE_SETTINGS` when it cannot be read)."""
    from fswap.errors import FswapError
    from fswap.pipeline import PIPELINE_SETTINGS, checkpoint_settings

    try:
        return checkpoint_settings(default_model())
    except (FswapError, OSError, ValueError):
        return dict(PIPELINE_SETTINGS)


def load_default_pipeline() -> FaceSwapPipeline:
    """The checkpoint named by `$FSWAP_MODEL` (a folder or Hub id), else the embedded default."""
    return FaceSwapPipeline.from_pretrained(default_model(), device=default_device())


class LazyPipeline:
    """Loads the pipeline (or any object: the app also loads its detector this way) the first time it
    is asked for, once, however many requests ask at once; a loader that answers None is not retried.

    Example:
        >>> pipeline = LazyPipeline(load_default_pipeline)
        >>> pipeline.get() is pipeline.get()
        True
    """

    def __init__(self, loader: Callable[[], FaceSwapPipeline] | FaceSwapPipeline):
        if isinstance(loader, FaceSwapPipeline):
            self._pipeline, self._loader, self._loaded = loader, None, True
        else:
            self._pipeline, self._loader, self._loaded = None, loader, False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded

    def get(self) -> FaceSwapPipeline:
        # A flag, not `is None`: a loader may answer None (no detector shipped), and that answer is kept too.
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._pipeline = self._loader()
                    self._loaded = True
        return self._pipeline
