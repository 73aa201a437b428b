"""SwapDetector: a small CNN that tells swapped faces from real ones, and shows where the swap was pasted.

The classifier looks at an aligned face crop (the same ArcFace alignment the swap pipeline
uses, with the margin in `crop_margin`) and returns one logit. The optional mask head climbs back
from the coarsest features through `mask_upsamplings` U-Net decoder stages and predicts the
swap's blend mask at that resolution: trained on the blend masks of the swaps, it localises the
manipulation and gives the classifier a dense signal to learn from.

Blending seams, resampling and missing camera noise are fine-grained cues, so the network keeps
the full resolution in its first stage and only then halves it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from fswap.hub.push import PushToHubMixin
from fswap.models.layers import (
    ConvNormAct,
    DownStage,
    UpStage,
    validate_image_batch,
    validate_unet,
    validate_unet_input,
)
from fswap.models.loading import HashedWeightsMixin


@dataclass
class DetectorOutput(BaseOutput):
    """Output of `SwapDetector`.

    Args:
        logits: [B] swap logits (sigmoid = probability that the face was swapped).
        mask_logits: [B, 1, h, w] blend-mask logits (1 = pasted by a swap), h = sample_size /
            2 ** (len(block_out_channels) - 1 - mask_upsamplings); None without a mask head.
    """

    logits: torch.Tensor
    mask_logits: torch.Tensor | None = None


class SwapDetector(PushToHubMixin, HashedWeightsMixin, ModelMixin, ConfigMixin):
    """Aligned RGB face crops in [-1, 1] -> a swap logit per crop and, optionally, a blend-mask map.

    Args:
        in_channels: image channels.
        block_out_channels: channels at each resolution, finest first; the first stage runs at
            the input resolution, each later one halves it.
        layers_per_block: ConvNormAct layers per stage.
        norm_num_groups: GroupNorm groups; must divide every entry of `block_out_channels`.
        mask_head: predict where the face was pasted (trained on the swaps' blend masks).
        mask_upsamplings: decoder stages of the mask head, from the coarsest features up; the
            mask comes out at sample_size / 2 ** (len(block_out_channels) - 1 - mask_upsamplings).
        sample_size: the crop size the model is trained for; inputs must be divisible by
            2 ** (len(block_out_channels) - 1).
        crop_margin: the alignment margin of the crops it was trained on
            (`fswap.faces.alignment_matrix(keypoints, sample_size, crop_margin)`); the network
            does not use it, `fswap.swap_detection.detect_swaps` cuts the crops with it.

    Example:
        >>> import torch
        >>> from fswap.models import SwapDetector
        >>> detector = SwapDetector(**SwapDetector.TINY_CONFIG)
        >>> images = torch.rand(2, 3, 32, 32) * 2 - 1
        >>> probabilities, masks = detector.predict(images)
        >>> probabilities.shape, masks.shape
        (torch.Size([2]), torch.Size([2, 1, 16, 16]))
    """

    TINY_CONFIG = {
        "block_out_channels": (8, 16, 16),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "mask_upsamplings": 1,
        "sample_size": 32,
    }

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 128, 256),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        mask_head: bool = True,
        mask_upsamplings: int = 2,
        sample_size: int = 128,
        crop_margin: float = 0.25,
    ):
        super().__init__()
        if in_channels <= 0:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        channels = validate_unet(block_out_channels, norm_num_groups, layers_per_block, sample_size)
        if not isinstance(mask_upsamplings, int) or not 0 <= mask_upsamplings <= len(channels) - 1:
            raise ValueError(
                f"mask_upsamplings must be an int from 0 to len(block_out_channels) - 1 = {len(channels) - 1}, "
                f"got {mask_upsamplings!r}"
            )
        if crop_margin <= -0.5:
            raise ValueError(f"crop_margin must be greater than -0.5, got {crop_margin}")
        self.register_to_config(block_out_channels=channels)  # a tuple even when read from JSON

        # First stage at full resolution: no stride before the blending cues have been seen.
        self.conv_in = ConvNormAct(in_channels, channels[0], norm_num_groups=norm_num_groups)
        self.full_resolution = nn.ModuleList(
            ConvNormAct(channels[0], channels[0], norm_num_groups=norm_num_groups) for _ in range(layers_per_block - 1)
        )
        self.down_stages = nn.ModuleList(
            DownStage(c_in, c_out, layers_per_block, norm_num_groups)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        # Average and max pooling: a swap may show only in a small part of the crop.
        self.classifier = nn.Linear(2 * channels[-1], 1)
        if mask_head:
            reversed_channels = channels[::-1][: mask_upsamplings + 1]
            self.mask_up_stages = nn.ModuleList(
                UpStage(c_in, c_out, layers_per_block, norm_num_groups)
                for c_in, c_out in zip(reversed_channels[:-1], reversed_channels[1:], strict=True)
            )
            self.mask_out = nn.Conv2d(reversed_channels[-1], 1, 3, padding=1)
        else:
            self.mask_up_stages, self.mask_out = None, None

    @property
    def mask_size(self) -> int | None:
        """Side of the predicted mask for `sample_size` inputs; None without a mask head."""
        if not self.config.mask_head:
            return None
        return self.config.sample_size // 2 ** (len(self.config.block_out_channels) - 1 - self.config.mask_upsamplings)

    def forward(self, images: torch.Tensor) -> DetectorOutput:
        """Swap logits [B] and blend-mask logits [B, 1, h, w] (or None) for RGB face crops in [-1, 1]."""
        validate_image_batch(images, "images", self.config.in_channels)
        validate_unet_input(images, "SwapDetector", len(self.config.block_out_channels),
                            f"it was trained on {self.config.sample_size} px crops: cut them with "
                            "fswap.swap_detection.align_faces")
        x = self.conv_in(images)
        for layer in self.full_resolution:
            x = layer(x)
        features = [x]
        for stage in self.down_stages:
            features.append(stage(features[-1]))

        deepest = features[-1]
        pooled = torch.cat([deepest.mean(dim=(2, 3)), deepest.amax(dim=(2, 3))], dim=1)  # [B, 2C]
        logits = self.classifier(pooled)[:, 0]  # [B]

        mask_logits = None
        if self.mask_up_stages is not None:
            x = deepest
            for stage, skip in zip(self.mask_up_stages, reversed(features[:-1]), strict=False):
                x = stage(x, skip)
            mask_logits = self.mask_out(x)  # [B, 1, h, w]
        return DetectorOutput(logits=logits, mask_logits=mask_logits)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Probability that each crop was swapped [B], and the blend-mask probabilities [B, 1, h, w] or None."""
        output = self(images)
        masks = None if output.mask_logits is None else torch.sigmoid(output.mask_logits)
        return torch.sigmoid(output.logits), masks
