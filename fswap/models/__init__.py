"""The fswap networks: one per file, each a diffusers `ModelMixin` + `ConfigMixin`."""

from fswap.models.attributes import AttributeEncoder, AttributeEncoderOutput
from fswap.models.detector import DetectorOutput, SwapDetector
from fswap.models.discriminator import Discriminator, ScaleOutput
from fswap.models.generator import Generator, GeneratorOutput
from fswap.models.identity import IdentityEncoder, mean_identity
from fswap.models.layers import modulated_conv2d
from fswap.models.loading import load_component
from fswap.models.segmenter import OcclusionSegmenter

__all__ = [
    "AttributeEncoder",
    "AttributeEncoderOutput",
    "DetectorOutput",
    "Discriminator",
    "Generator",
    "GeneratorOutput",
    "IdentityEncoder",
    "OcclusionSegmenter",
    "ScaleOutput",
    "SwapDetector",
    "load_component",
    "mean_identity",
    "modulated_conv2d",
]
