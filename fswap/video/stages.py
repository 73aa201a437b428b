"""One frame's face swaps, onto the faces a video has tracked and smoothed.

A video swaps the same source photos into every frame, so they are analysed once per clip
(`prepare_sources`: for the pipeline, `FaceSwapPipeline.prepare_sources`, identity included, every
mirror image made up front since the head turns), and each frame's tracked faces are swapped with
`FaceSwapPipeline.swap_faces`, their occlusion masks passed through a per-track filter first
(`fswap.video.smoothing.LowPass`) so the blend masks built from them are steady. The classic
landmark swap (`fswap.baselines.classic`) takes the faces as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fswap.baselines.classic import ClassicFaceSwapper, classic_swap
from fswap.faces import Face
from fswap.faces.align import invert_matrix, transform_points
from fswap.faces.analyzer import face_numbered
from fswap.imageio import ImageInput, image_name, is_single_image, load_image
from fswap.options import SwapOptions
from fswap.pipeline import FaceSwapPipeline, PreparedSources

#: A filter of one frame's occlusion masks [N, S, S] (one per face, in the faces' order).
MaskFilter = Callable[[np.ndarray], np.ndarray]


@dataclass
class ClassicSources:
    """One person's source photos for the classic swap: the photos and the face in each."""

    photos: list[np.ndarray]
    faces: list[Face]


def prepare_sources(swapper: FaceSwapPipeline | ClassicFaceSwapper, images: ImageInput | Sequence[ImageInput],
                    options: SwapOptions) -> PreparedSources | ClassicSources:
    """Read and analyse one person's source photos for `swapper`, once for a whole clip.

    Raises:
        fswap.ImageError: a photo cannot be read.
        fswap.NoFaceError: a photo has no face.
    """
    if isinstance(swapper, FaceSwapPipeline):
        return swapper.prepare_sources(images, options=options, mirrors_for=None)
    images = [images] if is_single_image(images) else list(images)
    if not images:
        raise ValueError("give at least one source photo")
    names = [image_name(image, f"source photo {i + 1}") for i, image in enumerate(images)]
    photos = [load_image(image, name=name) for image, name in zip(images, names, strict=True)]
    faces = [face_numbered(swapper.analyzer.detect(photo), None, name) for photo, name in zip(photos, names, strict=True)]
    return ClassicSources(photos, faces)


@dataclass
class SwappedRegion:
    """Where one face of a frame was pasted: a window of the frame and the blend mask in it
    (None in its place: the face lay outside the frame)."""

    window: tuple[int, int, int, int]  # x0, y0, x1, y1
    alpha: np.ndarray  # float32 [y1 - y0, x1 - x0]


def swap_pipeline_faces(pipeline: FaceSwapPipeline, sources: PreparedSources, frame: np.ndarray,
                        faces: list[Face], options: SwapOptions,
                        mask_filter: MaskFilter | None = None) -> tuple[np.ndarray, list[SwappedRegion | None]]:
    """`frame` with each of `faces` swapped for `sources`' person (no watermark: the video marks
    each frame itself); `mask_filter` smooths the faces' occlusion masks first."""
    output = pipeline.swap_faces(sources, frame, faces, options=options.replace(watermark=False),
                                 occlusion_filter=mask_filter, target_name="frame")
    return output.image, [crop_region(face.blend_mask, face.matrix, frame.shape) for face in output.swapped]


def swap_classic_faces(sources: ClassicSources, frame: np.ndarray,
                       faces: list[Face]) -> tuple[np.ndarray, list[SwappedRegion | None]]:
    """`frame` with each of `faces` swapped for the first source photo's face the classic way."""
    image, regions = frame, []
    for face in faces:
        result = classic_swap(sources.photos[0], image, sources.faces[0], face)
        image = result.image
        mask = (result.blend_mask > 0).astype(np.uint8)
        region = None
        if mask.any():
            x, y, width, height = cv2.boundingRect(mask)
            region = SwappedRegion((x, y, x + width, y + height), result.blend_mask[y:y + height, x:x + width])
        regions.append(region)
    return (image.copy() if image is frame else image), regions


def crop_region(mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]) -> SwappedRegion | None:
    """A crop-space mask [S, S] seen in the frame: the window the crop covers, and the mask there."""
    size = mask.shape[0]
    inverse = invert_matrix(matrix)
    corners = transform_points(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64), inverse)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x1, y1 = min(x1, shape[1]), min(y1, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    alpha = cv2.warpAffine(mask.astype(np.float32), local, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                           borderValue=0.0)
    return SwappedRegion((int(x0), int(y0), int(x1), int(y1)), alpha)

