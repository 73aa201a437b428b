"""Generator: identity-modulated convolutions with multi-scale control masks (doc 004).

Starting from a 4x4 map (a learned constant by default, doc 004's zero map optionally), every
block doubles the resolution:

    h = upsample(h)
    h = act(ModDemodConv3x3(h, affine(identity_embedding)))
    M = sigmoid(conv1x1(concat(h, f_att_i)))          # control mask, [B, 1, H, W]
    h = h + M * f_att_i                               # the target's attributes where M says so

and a final 1x1 conv + tanh turns h into RGB. Block i reads attribute features f_att_i of
`attribute_channels[i]` channels at `initial_size * 2**(i+1)` px: exactly what
`AttributeEncoder` returns when `attribute_channels == AttributeEncoder.output_channels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from fswap.models.layers import ModulatedConv2d, validate_channels
from fswap.models.loading import HashedWeightsMixin


@dataclass
class GeneratorOutput(BaseOutput):
    """Output of `Generator`.

    Args:
        image: the swapped face, RGB in [-1, 1], [B, 3, sample_size, sample_size].
        control_masks: one [B, 1, H_i, W_i] mask per block, coarse to fine, in [0, 1];
            1 = the pixel keeps the target's attributes (hair, background, occluders).
    """

    image: torch.Tensor
    control_masks: list[torch.Tensor]


class ControlledBlock(nn.Module):
    """Upsample -> identity-modulated 3x3 conv -> act -> control-masked attribute injection."""

    def __init__(self, in_channels: int, out_channels: int, attribute_channels: int, identity_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, identity_dim, kernel_size=3)
        self.act = nn.LeakyReLU(0.2)
        self.mask_conv = nn.Conv2d(out_channels + attribute_channels, 1, 1)
        # The attribute features are added to h, so they must have h's channels: a 1x1 projection when
        # the two schedules differ, nothing when they agree (the default).
        self.attribute_proj = (
            nn.Conv2d(attribute_channels, out_channels, 1)
            if attribute_channels != out_channels
            else nn.Identity()
        )

    def forward(
        self,
        h: torch.Tensor,
        identity_style: torch.Tensor,
        attribute_feature: torch.Tensor,
        fused_modconv: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
        h = self.act(self.conv(h, identity_style, fused=fused_modconv))
        control_mask = torch.sigmoid(self.mask_conv(torch.cat([h, attribute_feature], dim=1)))
        h = h + control_mask * self.attribute_proj(attribute_feature)
        return h, control_mask


class Generator(HashedWeightsMixin, ModelMixin, ConfigMixin):
    """Face-swap generator: identity embedding + multi-scale attribute features -> swapped face + control masks.

    Args:
        identity_dim: size of the identity embedding (512 for ArcFace).
        block_out_channels: channels of h after each block, coarse to fine; one block per entry.
        attribute_channels: channels of the attribute feature each block reads, coarse to fine;
            must have one entry per block. Set it to `AttributeEncoder.output_channels`.
        initial_size: side of the starting map.
        sample_size: output side; must equal `initial_size * 2 ** len(block_out_channels)`.
        out_channels: image channels.
        learned_initial_map: start from a learned constant (StyleGAN2). False starts from doc 004's
            zero map; then block 0's modulated conv only ever sees zeros (its output is its bias), so
            its weights get no gradient and the identity first acts at block 1.

    Example:
        >>> import torch
        >>> from fswap.models import AttributeEncoder, Generator
        >>> attribute_encoder = AttributeEncoder(**AttributeEncoder.TINY_CONFIG)
        >>> generator = Generator(**Generator.TINY_CONFIG)
        >>> target_image, occlusion_mask = torch.zeros(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
        >>> attribute_features = attribute_encoder(target_image, occlusion_mask).attribute_features
        >>> identity_embedding = torch.nn.functional.normalize(torch.randn(1, 16), dim=-1)
        >>> output = generator(identity_embedding, attribute_features)
        >>> output.image.shape, [m.shape[-1] for m in output.control_masks]
        (torch.Size([1, 3, 32, 32]), [8, 16, 32])
    """

    TINY_CONFIG = {
        "identity_dim": 16,
        "block_out_channels": (16, 16, 8),
        "attribute_channels": (16, 16, 8),
        "sample_size": 32,
    }

    @register_to_config
    def __init__(
        self,
        identity_dim: int = 512,
        block_out_channels: tuple[int, ...] = (512, 256, 128, 128, 64, 32),
        attribute_channels: tuple[int, ...] = (512, 256, 128, 128, 64, 32),
        initial_size: int = 4,
        sample_size: int = 256,
        out_channels: int = 3,
        learned_initial_map: bool = True,
    ):
        super().__init__()
        block_out_channels = validate_channels("block_out_channels", block_out_channels)
        attribute_channels = validate_channels("attribute_channels", attribute_channels)
        if len(attribute_channels) != len(block_out_channels):
            raise ValueError(
                f"attribute_channels {attribute_channels} must have one entry per generator block "
                f"(block_out_channels has {len(block_out_channels)})"
            )
        if initial_size <= 0 or sample_size != initial_size * 2 ** len(block_out_channels):
            raise ValueError(
                f"sample_size={sample_size} must equal initial_size * 2 ** len(block_out_channels) = "
                f"{initial_size} * 2 ** {len(block_out_channels)}"
            )
        if identity_dim <= 0 or out_channels <= 0:
            raise ValueError(
                f"identity_dim and out_channels must be positive, got {identity_dim}, {out_channels}"
            )
        # Tuples in the config whether the model came from Python or from config.json (JSON has lists).
        self.register_to_config(block_out_channels=block_out_channels, attribute_channels=attribute_channels)

        initial_map = torch.randn(1, block_out_channels[0], initial_size, initial_size)
        self.initial_map = nn.Parameter(initial_map) if learned_initial_map else None
        in_channels = (block_out_channels[0], *block_out_channels[:-1])
        self.blocks = nn.ModuleList(
            ControlledBlock(c_in, c_out, c_att, identity_dim)
            for c_in, c_out, c_att in zip(in_channels, block_out_channels, attribute_channels, strict=True)
        )
        self.to_rgb = nn.Conv2d(block_out_channels[-1], out_channels, 1)

    def forward(
        self,
        identity_embedding: torch.Tensor,
        attribute_features: list[torch.Tensor],
        fused_modconv: bool = True,
    ) -> GeneratorOutput:
        """Generate the swapped face.

        Args:
            identity_embedding: [B, identity_dim] unit-norm source identity (`IdentityEncoder`).
            attribute_features: `AttributeEncoder(...).attribute_features`, coarse to fine.
            fused_modconv: grouped-conv modulated convolutions (see `layers.modulated_conv2d`).

        Returns:
            `GeneratorOutput(image, control_masks)`.
        """
        self._check_inputs(identity_embedding, attribute_features)
        batch_size = identity_embedding.shape[0]
        size = self.config.initial_size
        if self.initial_map is not None:
            # repeat, not expand: a view of a parameter taken under no_grad still "requires grad" without a
            # grad_fn, which breaks torch's module hooks (FlopCounterMode, ModuleTracker).
            h = self.initial_map.to(identity_embedding.dtype).repeat(batch_size, 1, 1, 1)
        else:
            h = identity_embedding.new_zeros(batch_size, self.config.block_out_channels[0], size, size)
        # Unit-norm embeddings have components of size ~1/sqrt(D); rescaling to unit variance lets the
        # default-initialised affine layers start with styles of order 1 around their bias of 1.
        identity_style = identity_embedding * math.sqrt(self.config.identity_dim)

        control_masks = []
        for block, attribute_feature in zip(self.blocks, attribute_features, strict=True):
            h, control_mask = block(h, identity_style, attribute_feature, fused_modconv)
            control_masks.append(control_mask)
        image = torch.tanh(self.to_rgb(h))
        return GeneratorOutput(image=image, control_masks=control_masks)

    def _check_inputs(self, identity_embedding: torch.Tensor, attribute_features: list[torch.Tensor]) -> None:
        config = self.config
        if identity_embedding.ndim != 2 or identity_embedding.shape[1] != config.identity_dim:
            raise ValueError(
                f"identity_embedding must be [B, {config.identity_dim}], got {tuple(identity_embedding.shape)}"
            )
        if len(attribute_features) != len(config.block_out_channels):
            raise ValueError(
                f"the generator has {len(config.block_out_channels)} blocks but got {len(attribute_features)} "
                "attribute features: use an AttributeEncoder whose output_channels equal attribute_channels"
            )
        for i, (feature, channels) in enumerate(
            zip(attribute_features, config.attribute_channels, strict=True)
        ):
            side = config.initial_size * 2 ** (i + 1)
            expected = (identity_embedding.shape[0], channels, side, side)
            if tuple(feature.shape) != expected:
                raise ValueError(
                    f"attribute_features[{i}] is {tuple(feature.shape)}, block {i} expects {expected} "
                    f"(a {config.sample_size}-px crop through an AttributeEncoder with output_channels "
                    f"{tuple(config.attribute_channels)})"
                )
