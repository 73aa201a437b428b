"""Doc 003's two stages finished at the target photo's own resolution.

The networks work on small aligned crops (128 px for the default checkpoint). Pasting their face
back upsamples it, and the source's texture has been resampled three times on the way (photo →
crop → warp → photo): the swap comes out softer than the source photo, and softness costs
identity. Here the first stage is redone in the photo itself: the source photo's face is warped
straight onto the target's landmarks inside the target face's rectangle (one resampling, as in
the classic swap), and the network's correction, i.e. the smooth part of what it changed in the
crop's first stage (light, colour, seams), is carried up and added. Detail comes from the source's
pixels, appearance from the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fswap.faces.align import composite, invert_matrix
from fswap.faces.blend import match_grain, multiband_blend
from fswap.faces.color import match_appearance
from fswap.faces.relight import feature_weight, relight, skin_weight
from fswap.faces.render import SourceFace, fill_from_mirror
from fswap.faces.trust import face_size
from fswap.faces.warp import face_points, face_rectangle, warp_face_onto

#: The correction's low-pass: Gaussian sigma as a fraction of the crop size (2 px at 128 px).
#: What the network changes above that frequency is mostly its own softness, which is exactly
#: what the source's pixels replace.
CORRECTION_BLUR = 1.0 / 64.0


def network_correction(generated: np.ndarray, first_stage: np.ndarray, blur: float = CORRECTION_BLUR) -> np.ndarray:
    """The smooth part of what the network changed in the first stage: float32 [S, S, 3] in grey
    levels, from the generated crop and its first-stage input (both uint8 [S, S, 3])."""
    if generated.shape != first_stage.shape:
        raise ValueError(f"generated {generated.shape} and first stage {first_stage.shape} must have one shape")
    difference = generated.astype(np.float32) - first_stage.astype(np.float32)
    sigma = blur * generated.shape[0]
    return cv2.GaussianBlur(difference, (0, 0), sigma) if sigma > 0 else difference


@dataclass
class FacePatch:
    """The target face's rectangle of its photo, where a full-resolution swap is worked out (the
    warp's outer ring bounds the blend mask), so that a big photo costs little more than the face."""

    x0: int
    y0: int
    x1: int
    y1: int
    matrix: np.ndarray  # 2x3 photo -> aligned crop

    @classmethod
    def around(cls, target_landmarks: np.ndarray, shape: tuple[int, ...], matrix: np.ndarray) -> FacePatch | None:
        """The rectangle around the face with `target_landmarks`, or None when it lies outside the photo."""
        x0, y0, x1, y1 = face_rectangle(face_points(target_landmarks), shape)
        return None if x1 <= x0 or y1 <= y0 else cls(int(x0), int(y0), int(x1), int(y1), np.asarray(matrix, np.float64))

    def cut(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0:self.y1, self.x0:self.x1]

    def from_crop(self, array: np.ndarray) -> np.ndarray:
        """A crop-space array (a mask, a correction) in the patch: float32, 0 outside the crop."""
        local = invert_matrix(self.matrix)
        local[:, 2] -= (self.x0, self.y0)
        return cv2.warpAffine(array.astype(np.float32), local, (self.x1 - self.x0, self.y1 - self.y0),
                              flags=cv2.INTER_LINEAR, borderValue=0.0)

    def to_crop(self, array: np.ndarray, size: int, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
        """A patch-space array seen through the crop matrix, [size, size]."""
        patch_to_crop = self.matrix.copy()
        patch_to_crop[:, 2] += patch_to_crop[:, :2] @ (self.x0, self.y0)
        return cv2.warpAffine(array, patch_to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def composite_full_resolution(
    target_image: np.ndarray,
    target_landmarks: np.ndarray,
    source_image: np.ndarray,
    source_landmarks: np.ndarray,
    matrix: np.ndarray,
    skin: np.ndarray,
    blend: np.ndarray,
    correction: np.ndarray | None = None,
    appearance_matching: bool = True,
    shape_landmarks: np.ndarray | None = None,
    *,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Swap one face at the target's resolution.

    Args:
        target_image, source_image: RGB uint8 photos.
        target_landmarks, source_landmarks: [106, 2] landmarks in their photo's coordinates.
        matrix: 2x3 target photo → aligned crop transform; `skin`, `blend` and `correction` live in that crop.
        skin: [S, S] visible face skin (> 0.5), where colours are measured.
        blend: [S, S] feathered blend mask in [0, 1], what is pasted.
        correction: [S, S, 3] float grey levels added to the warped source (`network_correction`),
            or None for the first stage alone.
        appearance_matching: recolour the corrected face to the target's skin statistics.
        shape_landmarks: [106, 2] where the source's texture is warped to, in the target photo
            (`fswap.faces.shape.identity_shape`); default the target's landmarks.
        out: where to write the swapped photo (a copy of `target_image`, or `target_image`
            itself to swap in place); default a new copy.

    Returns:
        The swapped photo (pixels where the blend mask is 0 are the target's, bit for bit) and
        the pasted face seen through `matrix` (uint8 [S, S, 3]), for display.
    """
    size = skin.shape[0]
    result = target_image.copy() if out is None else out
    frame = FacePatch.around(target_landmarks, target_image.shape, matrix)
    if frame is None:  # the face lies outside the photo
        return result, np.zeros((size, size, 3), np.uint8)
    patch = frame.cut(target_image)
    destination = target_landmarks if shape_landmarks is None else shape_landmarks
    texture, coverage = warp_face_onto(
        source_image, source_landmarks, np.asarray(destination, np.float64) - (frame.x0, frame.y0), patch.shape[:2]
    )
    skin_patch = (frame.from_crop(skin) > 0.5) & coverage
    # The first stage's recolouring, then the network's correction on top of it.
    face = match_appearance(texture, patch, skin_patch).astype(np.float32)
    if correction is not None:
        face = face + frame.from_crop(correction)
    face = np.clip(face.round(), 0, 255).astype(np.uint8)
    if appearance_matching:
        face = match_appearance(face, patch, skin_patch)
    frame.cut(result)[...] = composite(patch, face, frame.from_crop(blend) * coverage)
    return result, frame.to_crop(face, size, cv2.BORDER_REPLICATE)


@dataclass
class RelitSwap:
    """`relit_full_resolution`'s result; the masks are seen through the target's crop matrix."""

    image: np.ndarray  # the swapped photo
    face_crop: np.ndarray  # uint8 [S, S, 3], the pasted face
    trust: np.ndarray  # float32 [S, S], how far the source's pixels were trusted (`fswap.faces.trust`)
    mirrored: np.ndarray  # float32 [S, S], where its mirror image's were used instead
    uncovered: np.ndarray  # float32 [S, S], where neither showed the face: the target's own stays


def relit_full_resolution(
    target_image: np.ndarray,
    target_landmarks: np.ndarray,
    source: SourceFace,
    matrix: np.ndarray,
    skin: np.ndarray,
    blend: np.ndarray,
    shape_landmarks: np.ndarray | None = None,
    use_mirror: bool = True,
    relight_face: bool = True,
    *,
    out: np.ndarray | None = None,
) -> RelitSwap:
    """Swap one face at the target's resolution, rendered to pass for a photo (`fswap.faces.render`):
    the source's texture where it is trusted, its mirror image's where that is trusted more, relit
    to the target's light (`fswap.faces.relight`), given the photo's grain and blended in bands
    (`fswap.faces.blend`).

    Args:
        target_image: RGB uint8 photo; target_landmarks: [106, 2] in it.
        source: the source face cut from its photo with what covers it (`SourceFace.cut`).
        matrix, skin, blend, shape_landmarks, out: as in `composite_full_resolution` (no network
            correction is added: on the relit face it washed the light out).
        use_mirror: fill what the source does not show well from its mirror image.
        relight_face: give the face the target's light (False: the source photo's, as it is).
    """
    size = skin.shape[0]
    result = target_image.copy() if out is None else out
    frame = FacePatch.around(target_landmarks, target_image.shape, matrix)
    if frame is None:  # the face lies outside the photo
        empty = np.zeros((size, size), np.float32)
        return RelitSwap(result, np.zeros((size, size, 3), np.uint8), empty, empty, empty)
    patch = frame.cut(target_image)
    offset = (frame.x0, frame.y0)
    destination = np.asarray(target_landmarks if shape_landmarks is None else shape_landmarks, np.float64) - offset
    rendered = fill_from_mirror(source, destination, patch.shape[:2], use_mirror)
    visible = frame.from_crop(skin) > 0.5
    target_skin = skin_weight(np.asarray(target_landmarks, np.float64) - offset, patch.shape[:2], visible)
    texture_skin = skin_weight(destination, patch.shape[:2], rendered.coverage & (rendered.trust > 0.5) & visible)
    face = rendered.texture
    if relight_face:
        face = relight(face, patch, texture_skin, target_skin, face_size(destination),
                       features=feature_weight(destination, patch.shape[:2]))
    face = match_grain(face, patch, texture_skin, target_skin)
    alpha = frame.from_crop(blend) * rendered.coverage * (1.0 - rendered.uncovered)
    frame.cut(result)[...] = multiband_blend(patch, face, alpha)
    return RelitSwap(result, frame.to_crop(face, size, cv2.BORDER_REPLICATE), frame.to_crop(rendered.trust, size),
                     frame.to_crop(rendered.mirrored, size), frame.to_crop(rendered.uncovered.astype(np.float32), size))
