"""AttributeEncoder: a U-Net over the target crop whose decoder features feed the generator (doc 004).

The features come out coarse to fine, one per generator block:
`Generator.config.attribute_channels == AttributeEncoder.output_channels`
(= `block_out_channels` reversed) and both models share `sample_size`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from fswap.models.layers import ConvNormAct, DownStage, UpStage, validate_image_batch, validate_unet
from fswap.models.loading import HashedWeightsMixin


@dataclass
class AttributeEncoderOutput(BaseOutput):
    """Output of `AttributeEncoder`.

    Args:
        attribute_features: decoder features, coarse to fine; entry i is
            [B, output_channels[i], sample_size / 2**(n-1-i), ...] for n = len(block_out_channels).
        mean: posterior mean at the bottleneck when `variational=True`, else None.
        logvar: posterior log-variance at the bottleneck when `variational=True`, else None.
    """

    attribute_features: list[torch.Tensor]
    mean: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


class AttributeEncoder(HashedWeightsMixin, ModelMixin, ConfigMixin):
    """U-Net on the target face (RGB + non-occlusion mask) returning its decoder features at every scale.

    The encoder halves the resolution `len(block_out_channels) - 1` times; the decoder climbs back
    with additive skips. The bottleneck and every decoder stage are outputs, so at the default
    256 px the features are 8, 16, 32, 64, 128 and 256 px wide: one per generator block.

    Args:
        in_channels: 4 = RGB + non-occlusion mask (doc 000); 3 = RGB only (no mask is read).
        block_out_channels: channels at each resolution, finest first.
        layers_per_block: ConvNormAct layers per encoder / decoder stage.
        norm_num_groups: GroupNorm groups; must divide every entry of `block_out_channels`.
        sample_size: the crop size the model is trained for; inputs must be divisible by
            2 ** (len(block_out_channels) - 1).
        variational: a VAE-style bottleneck (doc 000): the bottleneck predicts a mean and a
            log-variance, samples from it in training mode, uses the mean in eval mode, and the
            output carries both for a KL loss.

    Example:
        >>> import torch
        >>> from fswap.models import AttributeEncoder
        >>> encoder = AttributeEncoder(**AttributeEncoder.TINY_CONFIG)
        >>> target_image = torch.rand(1, 3, 32, 32) * 2 - 1
        >>> occlusion_mask = torch.ones(1, 1, 32, 32)  # 1 = visible face
        >>> [f.shape[-1] for f in encoder(target_image, occlusion_mask).attribute_features]
        [8, 16, 32]
    """

    TINY_CONFIG = {"block_out_channels": (8, 16, 16), "norm_num_groups": 4, "sample_size": 32}

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        block_out_channels: tuple[int, ...] = (32, 64, 128, 128, 256, 512),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        sample_size: int = 256,
        variational: bool = False,
    ):
        super().__init__()
        if in_channels not in (3, 4):
            raise ValueError(
                f"in_channels must be 4 (RGB + non-occlusion mask) or 3 (RGB), got {in_channels}"
            )
        channels = validate_unet(block_out_channels, norm_num_groups, layers_per_block, sample_size)
        self.register_to_config(block_out_channels=channels)  # a tuple even when read from JSON

        self.conv_in = ConvNormAct(in_channels, channels[0], norm_num_groups=norm_num_groups)
        self.down_stages = nn.ModuleList(
            DownStage(c_in, c_out, layers_per_block, norm_num_groups)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        # Variational: a 1x1 conv predicts mean and log-variance of the bottleneck code.
        self.bottleneck_moments = nn.Conv2d(channels[-1], 2 * channels[-1], 1) if variational else None
        self.mid_block = ConvNormAct(channels[-1], channels[-1], norm_num_groups=norm_num_groups)
        self.up_stages = nn.ModuleList(
            UpStage(c_in, c_out, layers_per_block, norm_num_groups)
            for c_in, c_out in zip(channels[::-1][:-1], channels[::-1][1:], strict=True)
        )

    @property
    def output_channels(self) -> tuple[int, ...]:
        """Channels of `attribute_features`, coarse to fine: the generator's `attribute_channels`."""
        return tuple(reversed(self.config.block_out_channels))

    def forward(
        self,
        target_image: torch.Tensor,
        occlusion_mask: torch.Tensor | None = None,
        sample_posterior: bool | None = None,
    ) -> AttributeEncoderOutput:
        """Encode the target face.

        Args:
            target_image: aligned target crop, RGB in [-1, 1], [B, 3, H, W].
            occlusion_mask: non-occlusion mask [B, 1, H, W] in [0, 1], 1 = visible face, 0 = occluder.
                Required when `in_channels == 4`, ignored when it is 3.
            sample_posterior: variational only: sample the bottleneck (default: in training mode) or
                take its mean.

        Returns:
            `AttributeEncoderOutput` with `attribute_features` coarse to fine.
        """
        validate_image_batch(target_image, "target_image", 3)
        factor = 2 ** (len(self.config.block_out_channels) - 1)
        if target_image.shape[-2] % factor or target_image.shape[-1] % factor:
            raise ValueError(
                f"target_image is {tuple(target_image.shape[-2:])} px; AttributeEncoder needs sides divisible by "
                f"{factor} (it was configured for {self.config.sample_size} px crops)"
            )
        x = target_image
        if self.config.in_channels == 4:
            if occlusion_mask is None:
                raise ValueError("this AttributeEncoder reads RGB + non-occlusion mask: pass occlusion_mask")
            validate_image_batch(occlusion_mask, "occlusion_mask", 1)
            if occlusion_mask.shape[0] != x.shape[0] or occlusion_mask.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"occlusion_mask {tuple(occlusion_mask.shape)} must match target_image {tuple(x.shape)}"
                )
            # The mask is mapped to [-1, 1] like the image channels.
            x = torch.cat([x, occlusion_mask.to(x.dtype) * 2 - 1], dim=1)

        skips = [self.conv_in(x)]
        for stage in self.down_stages:
            skips.append(stage(skips[-1]))

        bottleneck = skips.pop()
        mean = logvar = None
        if self.bottleneck_moments is not None:
            mean, logvar = self.bottleneck_moments(bottleneck).chunk(2, dim=1)
            logvar = logvar.clamp(-30.0, 20.0)
            sample = self.training if sample_posterior is None else sample_posterior
            bottleneck = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean

        attribute_features = [self.mid_block(bottleneck)]
        for stage, skip in zip(self.up_stages, reversed(skips), strict=True):
            attribute_features.append(stage(attribute_features[-1], skip))
        return AttributeEncoderOutput(attribute_features=attribute_features, mean=mean, logvar=logvar)
