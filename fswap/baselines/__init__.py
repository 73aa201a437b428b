"""Reference methods that fswap is measured against; not the product."""

from fswap.baselines.classic import ClassicFaceSwapper, ClassicSwapResult, classic_swap

__all__ = ["ClassicFaceSwapper", "ClassicSwapResult", "classic_swap"]
