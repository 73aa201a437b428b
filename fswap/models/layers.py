"""Blocks shared by the fswap networks: conv blocks, U-Net stages and the modulated convolution.

The models in this package (identity.py, attributes.py, generator.py, segmenter.py,
discriminator.py) import from here; nothing here knows about faces.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    fused: bool = True,
    padding: int | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """StyleGAN2 convolution whose kernel is scaled per sample by `styles` (after stylegan2-ada-pytorch).

    Args:
        x: input feature map [N, I, H, W].
        weight: shared kernel [O, I, k, k].
        styles: per-sample scale of each input channel [N, I] (the affine transform of the identity).
        demodulate: rescale each output channel of the modulated kernel to unit norm.
        fused: one grouped convolution with a kernel per sample (fast at inference); False scales the
            activations instead and runs one ordinary convolution (same result, less memory for big batches).
        padding: zero padding; defaults to k // 2 ("same" output size for odd k).

    Returns:
        [N, O, H', W'].
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kernel_h, kernel_w = weight.shape
    assert x.ndim == 4 and x.shape[1] == in_channels, (x.shape, weight.shape)
    assert styles.shape == (batch_size, in_channels), (styles.shape, x.shape)
    padding = kernel_h // 2 if padding is None else padding

    if fused:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, in_channels, 1, 1)  # [NOIkk]
        if demodulate:
            dcoefs = (w.square().sum(dim=(2, 3, 4)) + eps).rsqrt()  # [NO]
            w = w * dcoefs.reshape(batch_size, out_channels, 1, 1, 1)  # [NOIkk]
        x = x.reshape(1, batch_size * in_channels, *x.shape[2:])  # [1(NI)HW]
        w = w.reshape(batch_size * out_channels, in_channels, kernel_h, kernel_w)  # [(NO)Ikk]
        x = F.conv2d(x, w, padding=padding, groups=batch_size)  # [1(NO)HW]
        return x.reshape(batch_size, out_channels, *x.shape[2:])  # [NOHW]

    x = x * styles.reshape(batch_size, in_channels, 1, 1)  # [NIHW]
    x = F.conv2d(x, weight, padding=padding)  # [NOHW]
    if demodulate:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, in_channels, 1, 1)  # [NOIkk]
        dcoefs = (w.square().sum(dim=(2, 3, 4)) + eps).rsqrt()  # [NO]
        x = x * dcoefs.reshape(batch_size, out_channels, 1, 1)  # [NOHW]
    return x


class ModulatedConv2d(nn.Module):
    """Conv whose kernel is modulated (and demodulated) by an affine map of a style vector."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, kernel_size: int = 3):
        super().__init__()
        # Equalised learning rate: the weight is stored at unit variance and scaled at run time.
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.affine = nn.Linear(style_dim, in_channels)
        # Styles start at 1 so that an untrained layer behaves like a plain convolution.
        nn.init.ones_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(style)  # [NI]
        x = modulated_conv2d(x, self.weight * self.weight_gain, styles, demodulate=True, fused=fused)
        return x + self.bias.reshape(1, -1, 1, 1)


class ConvNormAct(nn.Module):
    """3x3 conv -> GroupNorm -> SiLU (stride 2 halves the resolution)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, norm_num_groups: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(norm_num_groups, out_channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class DownStage(nn.Module):
    """U-Net encoder stage: a stride-2 ConvNormAct, then `num_layers - 1` more at the new resolution."""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, norm_num_groups: int = 8):
        super().__init__()
        self.layers = nn.ModuleList(
            [ConvNormAct(in_channels, out_channels, stride=2, norm_num_groups=norm_num_groups)]
            + [
                ConvNormAct(out_channels, out_channels, norm_num_groups=norm_num_groups)
                for _ in range(num_layers - 1)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class UpStage(nn.Module):
    """U-Net decoder stage: 1x1 projection, nearest x2, add the skip, then `num_layers` ConvNormAct.

    The skip is added (LinkNet-style) rather than concatenated: each decoder conv then maps c -> c
    channels instead of 3c -> c (upsampled 2c + skip c), a third of the cost at the resolutions
    where the network spends most of its FLOPs.
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, norm_num_groups: int = 8):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 1)
        self.layers = nn.ModuleList(
            ConvNormAct(out_channels, out_channels, norm_num_groups=norm_num_groups)
            for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # Projecting before upsampling runs the 1x1 conv on a quarter of the pixels.
        x = F.interpolate(self.proj(x), scale_factor=2.0, mode="nearest") + skip
        for layer in self.layers:
            x = layer(x)
        return x


def validate_channels(
    name: str, channels, norm_num_groups: int | None = None, min_len: int = 1
) -> tuple[int, ...]:
    """A channel schedule as a tuple of positive ints; ValueError with the offending value otherwise."""
    if isinstance(channels, int) or len(channels) < min_len:
        raise ValueError(f"{name} must be a sequence of at least {min_len} channel counts, got {channels!r}")
    channels = tuple(channels)
    if not all(isinstance(c, int) and c > 0 for c in channels):
        raise ValueError(f"{name} must hold positive ints, got {channels!r}")
    if norm_num_groups is not None:
        if norm_num_groups <= 0:
            raise ValueError(f"norm_num_groups must be positive, got {norm_num_groups}")
        bad = [c for c in channels if c % norm_num_groups]
        if bad:
            raise ValueError(
                f"every entry of {name} must be divisible by norm_num_groups={norm_num_groups}; {bad} are not"
            )
    return channels


def validate_unet(block_out_channels, norm_num_groups: int, layers_per_block: int, sample_size: int) -> tuple[int, ...]:
    """Check a U-Net's schedule (the attribute encoder's and the segmenter's); return the channels as a tuple."""
    channels = validate_channels("block_out_channels", block_out_channels, norm_num_groups, min_len=2)
    if not isinstance(layers_per_block, int) or layers_per_block < 1:
        raise ValueError(f"layers_per_block must be a positive int, got {layers_per_block!r}")
    if sample_size <= 0 or sample_size % 2 ** (len(channels) - 1):
        raise ValueError(
            f"sample_size={sample_size} must be a positive multiple of 2 ** (len(block_out_channels) - 1) "
            f"= {2 ** (len(channels) - 1)}"
        )
    return channels


def validate_image_batch(images: torch.Tensor, name: str, channels: int) -> None:
    """ValueError unless `images` is a [B, channels, H, W] floating-point tensor."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != channels:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a [B, {channels}, H, W] tensor, got {shape}")
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor in [-1, 1] (or [0, 1] for masks), got {images.dtype}"
        )


def validate_unet_input(images: torch.Tensor, model: str, stages: int, hint: str) -> None:
    """ValueError unless the sides of `images` survive `stages` halvings (a U-Net's downsampling)."""
    factor = 2 ** (stages - 1)
    if images.shape[-2] % factor or images.shape[-1] % factor:
        raise ValueError(f"images are {tuple(images.shape[-2:])} px; {model} needs sides divisible by {factor} ({hint})")
