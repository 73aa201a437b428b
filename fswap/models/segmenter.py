"""OcclusionSegmenter: a small U-Net that says which pixels of a face crop are visible face skin (doc 000)."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from fswap.models.layers import (
    ConvNormAct,
    DownStage,
    UpStage,
    validate_image_batch,
    validate_unet,
    validate_unet_input,
)
from fswap.models.loading import HashedWeightsMixin


class OcclusionSegmenter(HashedWeightsMixin, ModelMixin, ConfigMixin):
    """U-Net: RGB face crop -> non-occlusion logits at the input resolution (1 = visible face skin).

    Hands, glasses, hair and microphones in front of the face come out as 0, so the swap keeps
    them and the identity encoder ignores them.

    Args:
        in_channels: image channels.
        block_out_channels: channels at each resolution, finest first; the input is halved
            `len(block_out_channels) - 1` times.
        layers_per_block: ConvNormAct layers per encoder / decoder stage.
        norm_num_groups: GroupNorm groups; must divide every entry of `block_out_channels`.
        sample_size: the crop size the model is trained for; inputs must be divisible by
            2 ** (len(block_out_channels) - 1).

    Example:
        >>> import torch
        >>> from fswap.models import OcclusionSegmenter
        >>> segmenter = OcclusionSegmenter(**OcclusionSegmenter.TINY_CONFIG)
        >>> images = torch.rand(2, 3, 32, 32) * 2 - 1
        >>> segmenter.predict_mask(images).shape
        torch.Size([2, 1, 32, 32])
    """

    TINY_CONFIG = {
        "block_out_channels": (8, 16, 16),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "sample_size": 32,
    }

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 128, 256),
        layers_per_block: int = 2,
        norm_num_groups: int = 8,
        sample_size: int = 256,
    ):
        super().__init__()
        if in_channels <= 0:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        channels = validate_unet(block_out_channels, norm_num_groups, layers_per_block, sample_size)
        self.register_to_config(block_out_channels=channels)  # a tuple even when read from JSON

        self.conv_in = ConvNormAct(in_channels, channels[0], norm_num_groups=norm_num_groups)
        self.down_stages = nn.ModuleList(
            DownStage(c_in, c_out, layers_per_block, norm_num_groups)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.up_stages = nn.ModuleList(
            UpStage(c_in, c_out, layers_per_block, norm_num_groups)
            for c_in, c_out in zip(channels[::-1][:-1], channels[::-1][1:], strict=True)
        )
        self.conv_out = nn.Conv2d(channels[0], 1, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Non-occlusion logits [B, 1, H, W] for RGB face crops in [-1, 1] ([B, 3, H, W])."""
        validate_image_batch(images, "images", self.config.in_channels)
        validate_unet_input(images, "OcclusionSegmenter", len(self.config.block_out_channels),
                            f"it was configured for {self.config.sample_size} px crops")
        skips = [self.conv_in(images)]
        for stage in self.down_stages:
            skips.append(stage(skips[-1]))
        x = skips.pop()
        for stage, skip in zip(self.up_stages, reversed(skips), strict=True):
            x = stage(x, skip)
        return self.conv_out(x)

    @torch.no_grad()
    def predict_mask(self, images: torch.Tensor) -> torch.Tensor:
        """Probability that each pixel is visible face skin, [B, 1, H, W] in [0, 1]."""
        return torch.sigmoid(self(images))
