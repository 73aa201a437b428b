"""Discriminator: multi-scale patch discriminator with per-layer features (training only, doc 004).

Each scale sees the image average-pooled by 2**scale and returns its patch logits plus the
activations of every layer before them, which the feature-matching loss compares (shallow
layers on non-face regions, deep layers on the whole map).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from fswap.models.layers import validate_channels, validate_image_batch
from fswap.models.loading import HashedWeightsMixin


class ScaleOutput(NamedTuple):
    """One scale of the discriminator: patch logits [B, 1, h, w] and the features that led to them."""

    logits: torch.Tensor
    features: list[torch.Tensor]


class PatchLayer(nn.Module):
    """4x4 conv -> GroupNorm (optional) -> LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm_num_groups: int | None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1)
        # GroupNorm rather than InstanceNorm: it still works when a coarse scale's map is 1x1.
        self.norm = nn.GroupNorm(norm_num_groups, out_channels) if norm_num_groups else nn.Identity()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class PatchDiscriminator(nn.Module):
    """pix2pixHD-style PatchGAN: stride-2 layers, then a stride-1 layer and a 1-channel logit conv."""

    def __init__(self, in_channels: int, block_out_channels: tuple[int, ...], norm_num_groups: int):
        super().__init__()
        in_channels = (in_channels, *block_out_channels[:-1])
        num_layers = len(block_out_channels)
        self.layers = nn.ModuleList(
            # No norm on the first layer (it would erase the image's colour statistics); stride 1 on the last.
            PatchLayer(c_in, c_out, 1 if i == num_layers - 1 else 2, None if i == 0 else norm_num_groups)
            for i, (c_in, c_out) in enumerate(zip(in_channels, block_out_channels, strict=True))
        )
        self.conv_out = nn.Conv2d(block_out_channels[-1], 1, 4, padding=1)

    def forward(self, x: torch.Tensor) -> ScaleOutput:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return ScaleOutput(logits=self.conv_out(x), features=features)


class Discriminator(HashedWeightsMixin, ModelMixin, ConfigMixin):
    """Multi-scale patch discriminator; used only in training.

    Args:
        in_channels: image channels.
        num_scales: number of patch discriminators; scale s sees the image downsampled by 2**s.
        block_out_channels: channels of each layer of one patch discriminator; all layers but
            the last halve the resolution.
        norm_num_groups: GroupNorm groups (every layer but the first); must divide the channels.
        sample_size: the image size the model is trained for (must survive every downsampling).

    Example:
        >>> import torch
        >>> from fswap.models import Discriminator
        >>> discriminator = Discriminator(**Discriminator.TINY_CONFIG)
        >>> outputs = discriminator(torch.rand(2, 3, 32, 32) * 2 - 1)
        >>> [tuple(out.logits.shape) for out in outputs]
        [(2, 1, 6, 6), (2, 1, 2, 2)]
    """

    TINY_CONFIG = {
        "num_scales": 2,
        "block_out_channels": (8, 16, 16),
        "norm_num_groups": 4,
        "sample_size": 32,
    }

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        num_scales: int = 3,
        block_out_channels: tuple[int, ...] = (64, 128, 256, 512),
        norm_num_groups: int = 32,
        sample_size: int = 256,
    ):
        super().__init__()
        channels = validate_channels("block_out_channels", block_out_channels, norm_num_groups, min_len=2)
        if in_channels <= 0 or not isinstance(num_scales, int) or num_scales < 1:
            raise ValueError(
                f"in_channels and num_scales must be positive ints, got {in_channels}, {num_scales}"
            )
        # The coarsest scale after its stride-2 layers must be >= 4 px: the two stride-1 4x4 convs each take 1 px.
        smallest = sample_size // 2 ** (num_scales - 1 + len(channels) - 1)
        if sample_size % 2 ** (num_scales - 1) or smallest < 4:
            raise ValueError(
                f"sample_size={sample_size} is too small for num_scales={num_scales} and "
                f"{len(channels)} layers: the coarsest scale would be {smallest} px after downsampling (need >= 4)"
            )
        self.register_to_config(block_out_channels=channels)  # a tuple even when read from JSON
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, channels, norm_num_groups) for _ in range(num_scales)
        )

    def forward(self, images: torch.Tensor) -> list[ScaleOutput]:
        """Per scale (finest first) the patch logits and the features of every layer, for RGB images in [-1, 1]."""
        validate_image_batch(images, "images", self.config.in_channels)
        outputs = []
        for scale, discriminator in enumerate(self.scales):
            if scale > 0:
                images = F.avg_pool2d(images, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(images))
        return outputs
