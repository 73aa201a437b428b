"""fswap: occlusion-aware face swapping with control masks."""

from fswap.errors import CheckpointError, FswapError, ImageError, ModelNotFoundError, NoFaceError

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "FswapError",
    "ImageError",
    "ModelNotFoundError",
    "NoFaceError",
    "__version__",
]
