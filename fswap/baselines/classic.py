"""The classic landmark face swap: what every later benchmark is measured against, not the product.

Delaunay triangles over the target's 106 landmarks, a piecewise-affine warp of the source
face onto them, LAB skin-tone matching, and Poisson blending (`cv2.seamlessClone`). Every step
runs inside the target face's bounding rectangle, so a big photo costs little more than one
copy of it, and pixels where `blend_mask` is 0 are returned bit-identical.

Example:
    >>> from fswap.assets import example_image
    >>> from fswap.baselines import ClassicFaceSwapper
    >>> swapper = ClassicFaceSwapper()
    >>> result = swapper(example_image("yaoming.jpg"), example_image("t1.jpg"), target_faces="all")
    >>> result.image.shape
    (886, 1280, 3)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fswap.faces import Face, FaceAnalyzer, feather, match_appearance, region_mask, select_faces
from fswap.faces.align import composite
from fswap.faces.analyzer import FaceSelector, face_numbered
from fswap.faces.warp import face_points, face_rectangle, triangulate, warp_triangles
from fswap.imageio import ImageInput, load_image
from fswap.timing import timed

#: Feather radius of the final composite, as a fraction of the face size.
FEATHER_FRACTION = 0.04


@dataclass
class ClassicSwapResult:
    """A classic swap: the swapped image, where it was blended, and how long each stage took."""

    image: np.ndarray  # [H, W, 3] RGB uint8, the target's size
    blend_mask: np.ndarray  # [H, W] float32 in [0, 1], target coordinates; 0 = target pixel kept as is
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, summed over faces


def poisson_blend(
    face_image: np.ndarray, target_image: np.ndarray, face_mask: np.ndarray, padding: int
) -> np.ndarray:
    """Seamless (Poisson, NORMAL_CLONE) blend of `face_image` into `target_image` inside `face_mask`.

    All three share one frame [H, W]. They are padded by reflection first, so a mask that
    touches the frame's edge (a face at the border of the photo) is still legal for
    `cv2.seamlessClone`, whose mask must not touch the image border.
    """
    pad = (padding, padding, padding, padding)
    face_padded = cv2.copyMakeBorder(face_image, *pad, cv2.BORDER_REFLECT_101)
    target_padded = cv2.copyMakeBorder(target_image, *pad, cv2.BORDER_REFLECT_101)
    mask = cv2.copyMakeBorder((face_mask > 0.5).astype(np.uint8) * 255, *pad, cv2.BORDER_REFLECT_101)
    mask[[0, -1], :] = 0
    mask[:, [0, -1]] = 0
    if not mask.any():
        return target_image.copy()
    x, y, width, height = cv2.boundingRect(mask)
    # seamlessClone puts the mask's bounding box at centre - size // 2: this centre leaves it in place.
    centre = (x + width // 2, y + height // 2)
    # seamlessClone writes into its mask argument (OpenCV 5), so it gets a copy.
    blended = cv2.seamlessClone(face_padded, target_padded, mask.copy(), centre, cv2.NORMAL_CLONE)
    return blended[padding:-padding, padding:-padding]


def classic_swap(
    source_image: np.ndarray,
    target_image: np.ndarray,
    source_face: Face,
    target_face: Face,
    *,
    color_correction: bool = True,
    poisson: bool = True,
) -> ClassicSwapResult:
    """Swap `source_face` onto `target_face` the classic way: triangles, colour match, Poisson blend.

    Args:
        source_image: RGB uint8 [H, W, 3] holding the source face.
        target_image: RGB uint8 [H', W', 3] whose face is replaced.
        source_face, target_face: faces detected with `landmarks=True` in those images.
        color_correction: match the warped face's skin tone to the target face (`fswap.faces.match_appearance`).
        poisson: blend with `cv2.seamlessClone`; otherwise only the feathered composite.

    Returns:
        The swapped image, its blend mask in target coordinates and per-stage timings.
    """
    for name, image in (("source_image", source_image), ("target_image", target_image)):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{name} must be RGB uint8 [H, W, 3], got {image.dtype} {image.shape}")
    for name, face in (("source_face", source_face), ("target_face", target_face)):
        if face.landmarks is None:
            raise ValueError(
                f"{name} has no landmarks; detect it with analyzer.detect(image, landmarks=True)"
            )
    timings: dict[str, float] = {}

    with timed(timings, "triangulate"):
        source_points = face_points(source_face.landmarks)
        target_points = face_points(target_face.landmarks)
        x0, y0, x1, y1 = face_rectangle(target_points, target_image.shape)
        origin = np.array([x0, y0], dtype=np.float64)
        triangles = triangulate(target_points)
    blend_mask = np.zeros(target_image.shape[:2], dtype=np.float32)
    if x1 <= x0 or y1 <= y0:  # the face lies entirely outside the image
        return ClassicSwapResult(target_image.copy(), blend_mask, timings)

    target_patch = target_image[y0:y1, x0:x1]
    with timed(timings, "warp"):
        warped_face, coverage = warp_triangles(
            source_image, source_points, target_points - origin, triangles, target_patch.shape[:2]
        )
        face_mask = region_mask(target_face.landmarks - origin, target_patch.shape, "face") * coverage
    face_size = float(max(np.ptp(target_face.landmarks, axis=0)))

    if color_correction:
        with timed(timings, "color_correction"):
            warped_face = match_appearance(warped_face, target_patch, face_mask)
    if poisson:
        with timed(timings, "poisson_blend"):
            padding = max(4, round(0.1 * face_size))
            warped_face = poisson_blend(warped_face, target_patch, face_mask, padding)
    with timed(timings, "composite"):
        patch_mask = feather(face_mask, max(1.0, FEATHER_FRACTION * face_size))
        swapped_image = target_image.copy()
        swapped_image[y0:y1, x0:x1] = composite(target_patch, warped_face, patch_mask)
        blend_mask[y0:y1, x0:x1] = patch_mask
    return ClassicSwapResult(swapped_image, blend_mask, timings)


class ClassicFaceSwapper:
    """The classic landmark swap behind one call: load, detect, swap every chosen target face.

    Args:
        analyzer: the `FaceAnalyzer` to detect faces with; by default the registry-shipped
            models (`FaceAnalyzer.from_pretrained()`).

    Example:
        >>> from fswap.assets import example_image
        >>> from fswap.baselines import ClassicFaceSwapper
        >>> swapper = ClassicFaceSwapper()
        >>> result = swapper(example_image("yaoming.jpg"), example_image("gdp.jpg"))
        >>> sorted(result.timings)
        ['color_correction', 'composite', 'detect', 'poisson_blend', 'triangulate', 'warp']
    """

    def __init__(self, analyzer: FaceAnalyzer | None = None):
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer.from_pretrained()

    def __call__(
        self,
        source_image: ImageInput,
        target_image: ImageInput,
        target_faces: FaceSelector = "largest",
        *,
        source_face: int | None = None,
        color_correction: bool = True,
        poisson: bool = True,
        source_name: str | None = None,
        target_name: str | None = None,
    ) -> ClassicSwapResult:
        """Put the largest (or the chosen) face of `source_image` onto the chosen faces of `target_image`.

        Args:
            source_image: a path, bytes, PIL image or array; its largest face is the source.
            target_image: the same kinds; its size is the result's size.
            target_faces: "largest", "all", an index or list of indices (largest face first),
                or a reference embedding [512] to pick the most similar face.
            source_face: the index of the source's face (largest first) instead of the largest.
            color_correction, poisson: as in `classic_swap`.
            source_name, target_name: how to call the images in error messages; by default
                their file names, or "the source image" / "the target image".

        Raises:
            NoFaceError: an image has no face, or a requested face index does not exist.
            ImageError: an image cannot be read.
        """
        source_name = source_name or _image_name(source_image, "the source image")
        target_name = target_name or _image_name(target_image, "the target image")
        source_image = load_image(source_image, name=source_name)
        target_image = load_image(target_image, name=target_name)
        timings: dict[str, float] = {}
        with timed(timings, "detect"):
            source_face = face_numbered(self.analyzer.detect(source_image), source_face, source_name)
            faces = self.analyzer.detect(target_image, embeddings=isinstance(target_faces, np.ndarray))
            chosen = [faces[index] for index in select_faces(faces, target_faces, name=target_name)]

        swapped_image = target_image
        blend_mask = np.zeros(target_image.shape[:2], dtype=np.float32)
        for target_face in chosen:
            result = classic_swap(
                source_image,
                swapped_image,
                source_face,
                target_face,
                color_correction=color_correction,
                poisson=poisson,
            )
            swapped_image = result.image
            np.maximum(blend_mask, result.blend_mask, out=blend_mask)
            for stage, seconds in result.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        if swapped_image is target_image:  # no face was chosen (an empty list)
            swapped_image = target_image.copy()
        return ClassicSwapResult(swapped_image, blend_mask, timings)


def _image_name(image: ImageInput, role: str) -> str:
    """What to call an image in error messages: its file name when it has one."""
    return Path(image).name if isinstance(image, (str, os.PathLike)) else role
