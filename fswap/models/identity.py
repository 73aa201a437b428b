"""IdentityEncoder: the frozen ArcFace MobileFaceNet (insightface `w600k_mbf`) written in plain torch.

Weights come from insightface's ONNX file through `fswap.models.convert_arcface`; the layer
order below is the ONNX graph's order, which the converter relies on. BatchNorms are already
folded into the convolutions in that file, and the final BatchNorm1d is folded into `fc`, so
the network has no normalisation layers and behaves the same in train and eval mode.

Licence of the converted weights: InsightFace model zoo, non-commercial research use only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from fswap.models.layers import validate_channels, validate_image_batch
from fswap.models.loading import HashedWeightsMixin


class ConvPReLU(nn.Module):
    """Conv (BatchNorm folded in) -> PReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class DepthWiseBlock(nn.Module):
    """MobileFaceNet bottleneck: 1x1 expand -> 3x3 depthwise -> 1x1 linear project (+ residual)."""

    def __init__(
        self, in_channels: int, out_channels: int, expansion: int, stride: int = 1, residual: bool = False
    ):
        super().__init__()
        assert not residual or (stride == 1 and in_channels == out_channels)
        self.residual = residual
        self.expand = ConvPReLU(in_channels, expansion)
        self.depthwise = ConvPReLU(expansion, expansion, kernel_size=3, stride=stride, groups=expansion)
        self.project = nn.Conv2d(expansion, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MobileStage(nn.Module):
    """A stride-2 bottleneck followed by residual bottlenecks at the new resolution."""

    def __init__(self, in_channels, out_channels, downsample_expansion, residual_expansion, num_blocks):
        super().__init__()
        self.downsample = DepthWiseBlock(in_channels, out_channels, downsample_expansion, stride=2)
        self.blocks = nn.ModuleList(
            DepthWiseBlock(out_channels, out_channels, residual_expansion, residual=True)
            for _ in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


def neutralise_occluded(images: torch.Tensor, visible_mask: torch.Tensor) -> torch.Tensor:
    """Replace occluded pixels (mask 0) by neutral grey (0 in [-1, 1]); soft masks blend linearly.

    Measured on 7 real faces with 3 occluder placements: grey keeps the embedding closer to the
    unoccluded one than filling with the mean visible colour (mean cosine 0.686 vs 0.678 for the lower
    face, 0.682 vs 0.664 for the eyes), and both beat leaving another face's pixels in (0.54).
    """
    return images * visible_mask


def mean_identity(identity_embeddings: torch.Tensor) -> torch.Tensor:
    """One identity from several photos: normalise(mean of the normalised embeddings) over dim -2.

    [K, D] -> [D]; [B, K, D] -> [B, D].
    """
    if identity_embeddings.ndim < 2 or identity_embeddings.shape[-2] == 0:
        raise ValueError(
            f"mean_identity needs [..., K, D] embeddings with K >= 1, got {tuple(identity_embeddings.shape)}"
        )
    return F.normalize(F.normalize(identity_embeddings, dim=-1).mean(dim=-2), dim=-1)


class IdentityEncoder(HashedWeightsMixin, ModelMixin, ConfigMixin):
    """Frozen ArcFace face-recognition network: an RGB face crop -> L2-normalised identity embedding.

    The defaults are insightface's `w600k_mbf` (MobileFaceNet, 112x112 input, 512-D output);
    `fswap.models.convert_arcface.convert_arcface_onnx` loads its ONNX weights. All parameters
    have `requires_grad=False`, but the output stays differentiable with respect to the input
    image, which is what the identity losses need.

    Args:
        input_size: side of the square crop the network runs at; inputs are resized to it.
            Must be divisible by 16.
        embedding_dim: size of the identity embedding.
        stem_channels: channels of the stride-2 stem and of the grouped conv after it.
        stem_groups: groups of that grouped 3x3 conv.
        stage_channels: output channels of each stride-2 stage.
        downsample_expansions: hidden width of each stage's stride-2 bottleneck.
        residual_expansions: hidden width of each stage's residual bottlenecks.
        residual_blocks: number of residual bottlenecks per stage.
        head_channels: channels of the 1x1 conv after the last stage.
        reduce_channels: channels of the 1x1 conv before flatten + fully-connected layer.

    Example:
        >>> import torch
        >>> from fswap.models import IdentityEncoder
        >>> encoder = IdentityEncoder(**IdentityEncoder.TINY_CONFIG)
        >>> faces = torch.rand(2, 3, 64, 64) * 2 - 1  # RGB in [-1, 1], any size
        >>> encoder(faces).shape
        torch.Size([2, 16])
    """

    TINY_CONFIG = {
        "input_size": 32,
        "embedding_dim": 16,
        "stem_channels": 8,
        "stem_groups": 4,
        "stage_channels": (8, 16, 16),
        "downsample_expansions": (8, 16, 32),
        "residual_expansions": (8, 16, 16),
        "residual_blocks": (1, 1, 1),
        "head_channels": 32,
        "reduce_channels": 4,
    }

    @register_to_config
    def __init__(
        self,
        input_size: int = 112,
        embedding_dim: int = 512,
        stem_channels: int = 128,
        stem_groups: int = 64,
        stage_channels: tuple[int, ...] = (128, 256, 256),
        downsample_expansions: tuple[int, ...] = (128, 256, 512),
        residual_expansions: tuple[int, ...] = (128, 256, 256),
        residual_blocks: tuple[int, ...] = (4, 6, 2),
        head_channels: int = 512,
        reduce_channels: int = 64,
    ):
        super().__init__()
        stage_channels = validate_channels("stage_channels", stage_channels)
        num_stages = len(stage_channels)
        downsample_expansions = validate_channels("downsample_expansions", downsample_expansions)
        residual_expansions = validate_channels("residual_expansions", residual_expansions)
        residual_blocks = tuple(residual_blocks)
        if not (len(downsample_expansions) == len(residual_expansions) == len(residual_blocks) == num_stages):
            raise ValueError(
                "stage_channels, downsample_expansions, residual_expansions and residual_blocks must have the same "
                f"length (one entry per stage), got {num_stages}, {len(downsample_expansions)}, "
                f"{len(residual_expansions)}, {len(residual_blocks)}"
            )
        if any(not isinstance(n, int) or n < 0 for n in residual_blocks):
            raise ValueError(f"residual_blocks must hold non-negative ints, got {residual_blocks}")
        for name, value in [
            ("embedding_dim", embedding_dim),
            ("head_channels", head_channels),
            ("reduce_channels", reduce_channels),
            ("stem_channels", stem_channels),
        ]:
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if stem_groups <= 0 or stem_channels % stem_groups:
            raise ValueError(
                f"stem_groups={stem_groups} must be positive and divide stem_channels={stem_channels}"
            )
        downsampling = 2 ** (num_stages + 1)  # the stem and every stage halve the resolution
        if input_size <= 0 or input_size % downsampling:
            raise ValueError(f"input_size must be a positive multiple of {downsampling}, got {input_size}")
        feature_map_size = input_size // downsampling
        # Tuples in the config whether the model came from Python or from config.json (JSON has lists).
        self.register_to_config(
            stage_channels=stage_channels,
            downsample_expansions=downsample_expansions,
            residual_expansions=residual_expansions,
            residual_blocks=residual_blocks,
        )

        self.conv_in = ConvPReLU(3, stem_channels, kernel_size=3, stride=2)
        self.conv_grouped = ConvPReLU(stem_channels, stem_channels, kernel_size=3, groups=stem_groups)
        in_channels = (stem_channels, *stage_channels[:-1])
        self.stages = nn.ModuleList(
            MobileStage(*args)
            for args in zip(
                in_channels,
                stage_channels,
                downsample_expansions,
                residual_expansions,
                residual_blocks,
                strict=True,
            )
        )
        self.conv_head = ConvPReLU(stage_channels[-1], head_channels)
        self.conv_reduce = ConvPReLU(head_channels, reduce_channels)
        self.fc = nn.Linear(reduce_channels * feature_map_size * feature_map_size, embedding_dim)

        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed RGB faces in [-1, 1] ([B, 3, H, W], ArcFace-aligned, any size) -> [B, embedding_dim], unit norm."""
        validate_image_batch(images, "images", 3)
        size = self.config.input_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(
                images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        # insightface feeds this network RGB: cv2.dnn.blobFromImages(..., swapRB=True) on BGR photos,
        # scaled as (x - 127.5) / 127.5, which is exactly our [-1, 1] RGB convention.
        x = self.conv_grouped(self.conv_in(images))
        for stage in self.stages:
            x = stage(x)
        x = self.conv_reduce(self.conv_head(x))
        return F.normalize(self.fc(x.flatten(1)), dim=-1)

    def encode(self, images: torch.Tensor, visible_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Embed faces, first neutralising occluded pixels.

        Args:
            images: RGB faces in [-1, 1], [B, 3, H, W], ArcFace-aligned.
            visible_mask: [B, 1, H, W] in [0, 1], 1 = visible face, 0 = occluder. Occluded pixels
                are set to neutral grey so that a hand or a microphone does not leak into the
                identity. None uses every pixel.

        Returns:
            [B, embedding_dim] unit-norm identity embeddings.
        """
        validate_image_batch(images, "images", 3)
        if visible_mask is not None:
            validate_image_batch(visible_mask, "visible_mask", 1)
            if visible_mask.shape[0] != images.shape[0] or visible_mask.shape[-2:] != images.shape[-2:]:
                raise ValueError(
                    f"visible_mask {tuple(visible_mask.shape)} must match images {tuple(images.shape)} "
                    "in batch size and spatial size"
                )
            images = neutralise_occluded(images, visible_mask.to(images.dtype))
        return self(images)

    mean_identity = staticmethod(mean_identity)
