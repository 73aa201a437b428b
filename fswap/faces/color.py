"""Appearance matching: the swapped crop takes the target face's colour statistics.

This is the simple form of doc 003's feature-distribution matching: per-channel mean and
standard deviation transfer in CIE LAB, measured inside a mask.
"""

from __future__ import annotations

import cv2
import numpy as np


def match_appearance(
    crop: np.ndarray, reference: np.ndarray, mask: np.ndarray, strength: float = 1.0
) -> np.ndarray:
    """Return `crop` (RGB uint8) recoloured so that, inside `mask`, its LAB mean and spread match
    `reference`'s. `strength` in [0, 1] blends between no change (0) and full matching (1).

    The chroma (a, b) spread may shrink but never grow: stretching it from a pale photo to a
    saturated one turns lips and eyes purple (seen swapping yaoming.jpg onto t1.jpg).
    """
    if crop.shape != reference.shape:
        raise ValueError(f"crop {crop.shape} and reference {reference.shape} must have the same shape")
    inside = np.asarray(mask) > 0.5
    if strength <= 0 or inside.sum() < 16:  # nothing to do, or nothing to measure
        return crop.copy()
    crop_lab = _to_lab(crop)
    reference_lab = _to_lab(reference)
    crop_mean, crop_std = _stats(crop_lab, inside)
    reference_mean, reference_std = _stats(reference_lab, inside)
    scale = reference_std / crop_std
    scale[1:] = np.minimum(scale[1:], 1.0)
    matched = (crop_lab - crop_mean) * scale + reference_mean
    matched = crop_lab + strength * (matched - crop_lab)
    return _from_lab(matched)


def _stats(lab: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pixels = lab[inside]
    return pixels.mean(axis=0), np.maximum(pixels.std(axis=0), 1e-3)


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _from_lab(lab: np.ndarray) -> np.ndarray:
    lab = np.stack([np.clip(lab[..., 0], 0, 100), lab[..., 1], lab[..., 2]], axis=-1).astype(np.float32)
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return (np.clip(rgb, 0.0, 1.0) * 255.0).round().astype(np.uint8)
