"""Loss functions of doc 004, named after its equations. Pure functions of tensors.

    L = L_GAN + L_mask + L_FM + 10 L_rec + 5 L_ICL
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_adversarial_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """L_GAN for the generator: non-saturating, averaged over discriminator scales."""
    return torch.stack([F.softplus(-logits).mean() for logits in fake_logits]).mean()


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """L_GAN for the discriminator: real → 1, fake → 0, averaged over scales."""
    terms = [F.softplus(-real).mean() + F.softplus(fake).mean() for real, fake in zip(real_logits, fake_logits, strict=True)]
    return torch.stack(terms).mean()


def mask_loss(control_masks: list[torch.Tensor]) -> torch.Tensor:
    """L_mask = Σ_i |M_i|₁ (mean over pixels per scale, summed over scales): masks must earn their opening."""
    return torch.stack([mask.abs().mean() for mask in control_masks]).sum()


def reconstruction_loss(swapped_image: torch.Tensor, target_image: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_rec = |Y − X_t|₁, optionally per sample (`weight` [B]: 1 for same-identity pairs)."""
    per_sample = (swapped_image - target_image).abs().mean(dim=(1, 2, 3))
    if weight is None:
        return per_sample.mean()
    return (per_sample * weight).sum() / weight.sum().clamp(min=1.0)


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |a − b| over the pixels where `mask` [B, 1, H, W] is 1 (resized to a's size)."""
    if mask.shape[-2:] != a.shape[-2:]:
        mask = F.interpolate(mask, size=a.shape[-2:], mode="area")
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1]).clamp(min=1.0)


def feature_matching_loss(
    fake_features: list[list[torch.Tensor]], real_features: list[list[torch.Tensor]], non_face_mask: torch.Tensor,
    shallow_layers: int = 2,
) -> torch.Tensor:
    """L_FM: discriminator features of the swap match the target's; the first `shallow_layers`
    of each scale only outside the face (they see texture, and the face must change), the
    deeper ones everywhere (they see structure: pose, light, expression)."""
    terms = []
    for fake_scale, real_scale in zip(fake_features, real_features, strict=True):
        for layer, (fake, real) in enumerate(zip(fake_scale, real_scale, strict=True)):
            real = real.detach()
            if layer < shallow_layers:
                terms.append(masked_l1(fake, real, non_face_mask))
            else:
                terms.append((fake - real).abs().mean())
    return torch.stack(terms).mean()


def identity_contrastive_loss(
    swapped_identity: torch.Tensor, source_identity: torch.Tensor, target_identity: torch.Tensor
) -> torch.Tensor:
    """L_ICL = 1 − cos(z(Y), z(X_s)) + (cos(z(Y), z(X_t)) − cos(z(X_s), z(X_t)))².

    The first term pulls the swap to the source; the second keeps the swap exactly as similar
    to the target as the source is, so it does not copy the target. Embeddings are unit-norm [B, D].
    """
    to_source = (swapped_identity * source_identity).sum(dim=-1)
    to_target = (swapped_identity * target_identity).sum(dim=-1)
    source_to_target = (source_identity * target_identity).sum(dim=-1).detach()
    return (1 - to_source + (to_target - source_to_target) ** 2).mean()
