"""Relighting: the swapped face takes the target face's light, not only its mean colour.

A face's pixels are, roughly, its skin's own colour times the light falling on it (in linear
light, not sRGB). The light varies slowly over the face; the skin's own colour has the detail.
So the target's slowly varying light is measured on its skin (eyes, brows and lips left out, as
they are no skin: the measure fills them in from the skin around them), the source texture's
the same way, and the texture's brightness is multiplied by their ratio:

    relit = texture x brightness(target) / brightness(texture)      (linear light, local)

then its hue (CIE LAB a, b) is shifted by the difference of the two skins' local mean hues, at a
coarser scale. The face then carries the target's shading and colour cast (a side lit, a blue
stage light, a darker neck-side cheek) while keeping the source's features and skin detail.
Global colour statistics (`fswap.faces.color`) cannot move shading from one side to the other;
this does. Highlights pushed past white are rolled off, not clipped, and the eyes and teeth take
only part of the change (they are no skin).
"""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.masks import mouth_interior, region_mask

#: The light is measured at this scale: a Gaussian sigma as a fraction of the face's size.
#: Smaller carries more of the target's own face (its wrinkles, stubble) into the swap.
LIGHT_SCALE = 0.08
#: Relit light above this (linear; sRGB ~200) is rolled off towards white rather than clipped.
HIGHLIGHT_KNEE = 0.55
#: Blurs at least this wide (sigma, px) are worked out on a copy scaled down by sigma / 8.
COARSE_BLUR = 40.0
#: The source skin's fine contrast is taken down to the target skin's, but to no less than this share.
MIN_CONTRAST = 0.5
#: The colour cast (hue) is measured over this many times the light's scale.
COLOUR_SCALE = 3.0
#: How far a pixel's light may be changed, as a factor either way (in linear light: a pale
#: face's skin reflects some six times as much as a dark one's).
MAX_GAIN = 8.0
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
    return _local_mean(to_linear(image), weight, sigma)


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
    `feature_weight`) is 1, the change of light is damped by `FEATURE_DAMPING` (on a log scale)
    and the hue keeps its own."""
    sigma = max(scale * face_size, 0.5)
    # Light and shade: a brightness ratio at `sigma`, in linear light.
    target_light = _luminance(shading(target, target_weight, sigma))
    texture_light = _luminance(shading(texture, texture_weight, sigma))
    gain = np.clip(target_light / texture_light, 1.0 / MAX_GAIN, MAX_GAIN)
    # The skin's own contrast below that scale (shine, blotches of make-up, hard light) taken
    # down to the target skin's where it is stronger: a shiny face brightened onto matt skin
    # shows its highlights as pale patches.
    texture_detail = np.log(_luminance(to_linear(texture)) / texture_light)
    target_detail = np.log(_luminance(to_linear(target)) / target_light)
    softer = float(np.clip(_spread(target_detail, target_weight) / max(_spread(texture_detail, texture_weight), 1e-6),
                           MIN_CONTRAST, 1.0))
    skin = cv2.GaussianBlur(np.asarray(texture_weight, np.float32), (0, 0), max(FEATURE_GROWTH * face_size, 0.5))
    gain = gain * np.exp((softer - 1.0) * texture_detail * skin[..., None])
    if features is not None:
        # What is no skin (the whites of the eyes, teeth) takes only part of a change that is the
        # skins' own colour as much as light: a dark skin's teeth brightened as far as its skin
        # to a pale one's would glow.
        gain = gain ** (1.0 - FEATURE_DAMPING * np.asarray(features, np.float32)[..., None])
    relit = from_linear(_shoulder(to_linear(texture) * gain))
    # Colour cast: a shift of hue (LAB a, b) at a coarser scale. Per-channel gains would tint
    # a highlight or a white eye with the cast of the skin, and paint blotches wherever the source
    # had make-up; a shift moves every colour alike.
    coarse = COLOUR_SCALE * sigma
    lab = _lab(relit)
    target_lab = _lab(target)
    texture_hue = _local_mean(lab, texture_weight, coarse)
    # The skin's spread of hue (tan, blush, make-up) is taken down to the target skin's where it
    # is wider: a saturated skin's blotches, brightened onto a pale one, read as paint.
    narrower = np.array([1.0] + [np.clip(_spread(target_lab[..., c:c + 1], target_weight)
                                         / max(_spread(lab[..., c:c + 1], texture_weight), 1e-6), MIN_CONTRAST, 1.0)
                                 for c in (1, 2)], np.float32)
    change = _local_mean(target_lab, target_weight, coarse) - texture_hue + (narrower - 1.0) * (lab - texture_hue)
    # A change of hue means more on a dark pixel than on skin: it is scaled by the pixel's
    # lightness against its skin's, or dark make-up and brows would turn purple or green.
    skin_lightness = np.maximum(texture_hue[..., :1], 1.0)
    change = change * np.clip(lab[..., :1] / skin_lightness, 0.0, 1.0)
    if features is not None:  # the whites of the eyes and the teeth keep their hue
        change = change * (1.0 - np.asarray(features, np.float32)[..., None])
    lab[..., 1:] += change[..., 1:]
    return (np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _spread(values: np.ndarray, weight: np.ndarray) -> float:
    """A robust spread (1.4826 x median absolute deviation) of `values` where `weight` > 0.5."""
    inside = np.asarray(values)[..., 0][np.asarray(weight) > 0.5]
    if inside.size < 16:
        return 0.0
    return 1.4826 * float(np.median(np.abs(inside - np.median(inside))))


def _shoulder(linear: np.ndarray, knee: float = HIGHLIGHT_KNEE) -> np.ndarray:
    """Linear light above `knee` rolled off smoothly towards 1 instead of clipped: a brightened
    face keeps the shape of its highlights rather than turning to white patches."""
    over = np.maximum(linear - knee, 0.0)
    return np.where(linear > knee, knee + (1.0 - knee) * (1.0 - np.exp(-over / (1.0 - knee))), linear)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(image, np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _local_mean(image: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """`image`'s weighted local mean (a normalised convolution), the weighted mean far from any weight."""
    weight = np.asarray(weight, np.float32)
    mean = (image * weight[..., None]).sum(axis=(0, 1)) / max(float(weight.sum()), 1e-6)
    floor = 1e-3
    weighted = image * weight[..., None]
    if sigma >= COARSE_BLUR:
        # A blur this wide keeps nothing finer than sigma / 8: worked out on a smaller copy, it
        # costs a fraction (a face of 450 px took 1 s of blurs at full size).
        factor = int(sigma // 8)
        size = (max(image.shape[1] // factor, 1), max(image.shape[0] // factor, 1))
        small = [cv2.GaussianBlur(cv2.resize(array, size, interpolation=cv2.INTER_AREA), (0, 0), sigma / factor)
                 for array in (weighted, weight)]
        blurred, blurred_weight = (cv2.resize(array, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
                                   for array in small)
    else:
        blurred, blurred_weight = (cv2.GaussianBlur(array, (0, 0), sigma) for array in (weighted, weight))
    return (blurred.reshape(image.shape) + floor * mean) / (blurred_weight[..., None] + floor)


def _luminance(linear: np.ndarray) -> np.ndarray:
    """[H, W, 1] luminance of linear RGB (Rec. 709 weights), kept off zero."""
    return np.maximum(linear @ np.array([0.2126, 0.7152, 0.0722], np.float32), 1e-4)[..., None]


def to_linear(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB (approximately: a 2.2 power) -> float32 linear light in [0, 1]."""
    return (np.asarray(image, np.float32) / 255.0) ** _GAMMA


def from_linear(linear: np.ndarray) -> np.ndarray:
    """float linear light -> uint8 sRGB."""
    return (np.clip(linear, 0.0, 1.0) ** (1.0 / _GAMMA) * 255.0).round().astype(np.uint8)
