"""Relighting: the swapped face takes the target face's light, not only its mean colour.

A face's pixels are, roughly, its skin's own colour times the light falling on it (in linear
light, not sRGB). The light varies slowly over the face; the skin's own colour has the detail.
So the target's slowly varying light is measured on its skin (eyes, brows and lips left out, as
they are no skin: the measure fills them in from the skin around them), the source texture's
the same way, and the texture is multiplied by their ratio, per channel:

    relit = texture x shading(target) / shading(texture)

The face then carries the target's shading and colour cast (a side lit, a blue stage light, a
darker neck-side cheek) while keeping the source's features and skin detail. Global colour
statistics (`fswap.faces.color`) cannot move shading from one side to the other; this does.
"""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.masks import mouth_interior, region_mask

#: The light is measured at this scale: a Gaussian sigma as a fraction of the face's size.
#: Smaller carries more of the target's own face (its wrinkles, stubble) into the swap.
LIGHT_SCALE = 0.08
#: How far a pixel's light may be changed, as a factor either way.
MAX_GAIN = 4.0
#: Eyes, brows and lips are grown by this fraction of the face's size before they are left out.
FEATURE_GROWTH = 0.03
#: The eyes and the inside of the mouth take this much less of the change, on a log scale.
FEATURE_DAMPING = 0.5
_GAMMA = 2.2


def skin_weight(landmarks: np.ndarray, shape: tuple[int, int], visible: np.ndarray | None = None) -> np.ndarray:
    """float32 [H, W]: 1 on the face's skin (`landmarks` [106, 2] in that frame), less its eyes,
    brows and lips, and less what `visible` (bool or [0, 1]) says is not seen."""
    face = region_mask(landmarks, shape, "face")
    size = float(np.ptp(np.asarray(landmarks, np.float64), axis=0).max())
    features = np.maximum.reduce([region_mask(landmarks, shape, name) for name in ("eyes", "brows", "mouth")])
    width = 2 * int(round(FEATURE_GROWTH * size)) + 1
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    weight = face * (1.0 - features)
    if visible is not None:
        weight = weight * (np.asarray(visible, np.float32) > 0.5)
    return weight.astype(np.float32)


def feature_weight(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 [H, W] in [0, 1]: the eyes and the inside of the mouth (`landmarks` [106, 2]),
    softened over a few pixels."""
    features = np.maximum(region_mask(landmarks, shape, "eyes"), mouth_interior(landmarks, shape).astype(np.float32))
    size = float(np.ptp(np.asarray(landmarks, np.float64), axis=0).max())
    return cv2.GaussianBlur(features, (0, 0), max(FEATURE_GROWTH * size, 0.5))


def shading(image: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """float32 [H, W, 3], linear light: `image`'s slowly varying light measured where `weight`
    is high (a normalised convolution: weighted blur over blurred weight). Far from any weight it
    tends to the weighted mean, so a region with no skin to measure on gets the face's average."""
    linear = to_linear(image)
    weight = np.asarray(weight, np.float32)
    total = max(float(weight.sum()), 1e-6)
    mean = (linear * weight[..., None]).sum(axis=(0, 1)) / total
    floor = 1e-3
    blurred = cv2.GaussianBlur(linear * weight[..., None], (0, 0), sigma)
    blurred_weight = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    return (blurred + floor * mean) / (blurred_weight + floor)


def relight(
    texture: np.ndarray,
    target: np.ndarray,
    texture_weight: np.ndarray,
    target_weight: np.ndarray,
    face_size: float,
    features: np.ndarray | None = None,
    scale: float = LIGHT_SCALE,
) -> np.ndarray:
    """`texture` (uint8 RGB, a face warped onto the target's) with the light of `target` (the
    target photo, same frame): uint8 RGB. Each light is measured on its own skin weights
    (`skin_weight`), at a scale of `scale` x `face_size` px; where `features` ([H, W] in [0, 1],
    `feature_weight`) is 1, the change is damped by `FEATURE_DAMPING` (on a log scale)."""
    sigma = max(scale * face_size, 0.5)
    gain = shading(target, target_weight, sigma) / np.maximum(shading(texture, texture_weight, sigma), 1e-4)
    gain = np.clip(gain, 1.0 / MAX_GAIN, MAX_GAIN)
    if features is not None:
        # What is no skin (the whites of the eyes, teeth) takes only part of a change that is the
        # skins' own colour as much as light: a dark skin's teeth brightened as far as its skin
        # to a pale one's would glow.
        gain = gain ** (1.0 - FEATURE_DAMPING * np.asarray(features, np.float32)[..., None])
    return from_linear(to_linear(texture) * gain)


def to_linear(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB (approximately: a 2.2 power) -> float32 linear light in [0, 1]."""
    return (np.asarray(image, np.float32) / 255.0) ** _GAMMA


def from_linear(linear: np.ndarray) -> np.ndarray:
    """float linear light -> uint8 sRGB."""
    return (np.clip(linear, 0.0, 1.0) ** (1.0 / _GAMMA) * 255.0).round().astype(np.uint8)
