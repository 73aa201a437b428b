"""Which pipeline the app runs, loaded once, on the GPU when there is one."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from fswap.assets import default_model
from fswap.pipeline import FaceSwapPipeline


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_default_pipeline() -> FaceSwapPipeline:
    """The checkpoint named by `$FSWAP_MODEL` (a folder or Hub id), else the embedded default."""
    return FaceSwapPipeline.from_pretrained(default_model(), device=default_device())


class LazyPipeline:
    """Loads the pipeline the first time it is asked for, once, however many requests ask at once.

    Example:
        >>> pipeline = LazyPipeline(load_default_pipeline)
        >>> pipeline.get() is pipeline.get()
        True
    """

    def __init__(self, loader: Callable[[], FaceSwapPipeline] | FaceSwapPipeline):
        if isinstance(loader, FaceSwapPipeline):
            self._pipeline, self._loader = loader, None
        else:
            self._pipeline, self._loader = None, loader
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    def get(self) -> FaceSwapPipeline:
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = self._loader()
        return self._pipeline
