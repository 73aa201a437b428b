"""Putting a rendered face into its photo without a seam: matched grain, then multi-band blending.

- `match_grain`: a face softer than the photo around it is given the photo's grain (noise with
  the photo skin's fine-detail strength); one sharper is softened to it. Either way the face
  stops standing out at full resolution.
- `multiband_blend`: a Laplacian pyramid blend (Burt & Adelson). Each band of detail crosses the
  face's edge over a width that suits it: coarse light over a wide band, fine texture within a
  pixel or two, so neither a tone step nor a ghosted double edge shows.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Fine detail is what a Gaussian blur of this sigma (px) removes.
DETAIL_SIGMA = 1.0
#: A face is softened or given grain only when its detail differs from the photo's by more than this factor.
GRAIN_TOLERANCE = 1.15
_SOFTENING_SIGMAS = (0.4, 0.55, 0.7, 0.85)  # never blurred further: a beard or stubble has detail that skin lacks


def detail_strength(image: np.ndarray, where: np.ndarray) -> float:
    """How much fine detail (grain, pores, JPEG noise) `image` (uint8 RGB) has where `where` is
    set: a robust spread (1.4826 x median absolute value) of its luminance minus a blur of it."""
    luminance = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = luminance - cv2.GaussianBlur(luminance, (0, 0), DETAIL_SIGMA)
    values = detail[np.asarray(where) > 0.5]
    return 1.4826 * float(np.median(np.abs(values))) if values.size >= 16 else 0.0


def match_grain(face: np.ndarray, photo: np.ndarray, face_skin: np.ndarray, photo_skin: np.ndarray,
                seed: int = 0) -> np.ndarray:
    """`face` (uint8 RGB, in `photo`'s frame) with the fine detail of `photo`'s skin: softened
    when sharper (the blur that brings it closest), given grain when softer (seeded, so a swap
    repeats to the bit). Skins are where each is measured."""
    wanted, has = detail_strength(photo, photo_skin), detail_strength(face, face_skin)
    if wanted <= 0 or has <= 0 or max(wanted, has) / min(wanted, has) <= GRAIN_TOLERANCE:
        return face
    if has > wanted:
        softened = [cv2.GaussianBlur(face, (0, 0), sigma) for sigma in _SOFTENING_SIGMAS]
        errors = [abs(detail_strength(image, face_skin) - wanted) for image in softened]
        return softened[int(np.argmin(errors))]
    noise = np.random.default_rng(seed).standard_normal(face.shape[:2]).astype(np.float32)
    noise_detail = noise - cv2.GaussianBlur(noise, (0, 0), DETAIL_SIGMA)
    # The grain's own detail adds to the face's in quadrature: scale it to make up the difference.
    scale = np.sqrt(wanted**2 - has**2) / max(1.4826 * float(np.median(np.abs(noise_detail))), 1e-6)
    grained = face.astype(np.float32) + (scale * noise)[..., None]
    return np.clip(grained.round(), 0, 255).astype(np.uint8)


def multiband_blend(background: np.ndarray, foreground: np.ndarray, blend: np.ndarray,
                    levels: int | None = None) -> np.ndarray:
    """`foreground` put into `background` (uint8 [H, W, 3], one frame) by a Laplacian pyramid
    blend: uint8. `blend` [H, W] in [0, 1] says where; each band crosses at its half-way line,
    over a width that grows with the band's scale. Nothing changes where `blend` is 0 (those
    bytes are the background's), and the change fades in over the blend mask's own feather."""
    blend = np.asarray(blend, np.float32)
    inside = (blend > 0.5).astype(np.float32)
    if levels is None:
        levels = max(1, min(5, int(np.log2(max(min(blend.shape), 2))) - 3))
    back_pyramid = _laplacian_pyramid(background.astype(np.float32), levels)
    fore_pyramid = _laplacian_pyramid(foreground.astype(np.float32), levels)
    weights = [inside]
    for _ in range(levels):
        weights.append(cv2.pyrDown(weights[-1]))
    bands = [w[..., None] * fore + (1.0 - w[..., None]) * back
             for w, fore, back in zip(weights, fore_pyramid, back_pyramid, strict=True)]
    blended = _collapse(bands)
    # Within the blend mask's feather the pyramid's result fades into the background, so that
    # every byte outside the mask stays the background's.
    fade = np.clip(blend * 4.0, 0.0, 1.0)[..., None]
    result = background.astype(np.float32) + fade * (blended - background.astype(np.float32))
    result = np.clip(result.round(), 0, 255).astype(np.uint8)
    return np.where(blend[..., None] > 0, result, background)


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass images, finest first, then the coarsest Gaussian level."""
    pyramid, current = [], image
    for _ in range(levels):
        smaller = cv2.pyrDown(current)
        pyramid.append(current - cv2.pyrUp(smaller, dstsize=current.shape[1::-1]))
        current = smaller
    return pyramid + [current]


def _collapse(pyramid: list[np.ndarray]) -> np.ndarray:
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = cv2.pyrUp(image, dstsize=band.shape[1::-1]) + band
    return image
