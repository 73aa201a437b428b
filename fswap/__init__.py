"""fswap: occlusion-aware face swapping with control masks."""

from fswap.errors import CheckpointError, FswapError, ImageError, ModelNotFoundError, NoFaceError
from fswap.options import OptionError, SwapOptions
from fswap.version import __version__


def __getattr__(name: str):
    # The pipeline pulls in torch and diffusers: import it only when asked for.
    if name in ("FaceSwapPipeline", "SwapOutput"):
        from fswap import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'fswap' has no attribute {name!r}")


__all__ = [
    "FaceSwapPipeline",
    "SwapOutput",
    "SwapOptions",
    "OptionError",
    "CheckpointError",
    "FswapError",
    "ImageError",
    "ModelNotFoundError",
    "NoFaceError",
    "__version__",
]
