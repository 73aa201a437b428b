"""One frame's face swaps through the photo pipeline's own stages, with the video's faces.

A video swaps the same source photos into every frame, onto faces it has tracked and smoothed, so
the work is split the way `FaceSwapPipeline.__call__` cannot split it yet:

- `prepare_sources`, once per clip: the source photos' faces, their mirror images, aligned crops,
  occlusion masks and occluders, and the **identity embedding**: fixed for the whole clip;
- `swap_pipeline_faces`, per frame: the target side of the pipeline's stages (align, occlusion,
  first stage, generate, blend) on the given faces, their occlusion masks passed through a filter
  first (`fswap.video.smoothing.LowPass` per track) so the blend mask built from them is steady.

The stages are the pipeline's methods (`_first_stage`, `_generate`, `_relit_sources`, `_blend`)
and records (`_Crops`, `_Occlusion`, `_FoundFaces`): this module is the one place outside
`fswap/pipeline.py` that touches them, and `tests/test_video.py` checks that a frame swapped here,
unsmoothed, is the pipeline's own swap of that frame bit for bit. When the pipeline offers
`prepare_sources` / `swap_faces` publicly (docs/video.md, "Hooks wanted in the pipeline"), this
module shrinks to those calls.

The classic landmark swap (`fswap.baselines.classic`) needs no such split: `classic_swap` takes
the faces as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from fswap.baselines.classic import ClassicFaceSwapper, classic_swap
from fswap.faces import Face, region_mask
from fswap.faces.align import invert_matrix, transform_points
from fswap.faces.analyzer import face_numbered
from fswap.faces.first_stage import FaceCrops, FirstStage
from fswap.faces.masks import occluded_skin, visible_skin
from fswap.faces.mirror import mirrored_face
from fswap.imageio import ImageInput, load_image
from fswap.models.identity import mean_identity
from fswap.options import SwapOptions
from fswap.pipeline import (
    OUTLINE_BAND,
    FaceSwapPipeline,
    _Crops,
    _FoundFaces,
    _is_single_image,
    _name,
    _Occlusion,
    identity_view,
)

#: A filter of one frame's occlusion masks [N, S, S] (one per face, in the faces' order).
MaskFilter = Callable[[np.ndarray], np.ndarray]


@dataclass
class PreparedSources:
    """One person's source photos, analysed once for a whole clip."""

    photos: list[np.ndarray]
    names: list[str]
    faces: list[Face]  # the person's face in each photo
    per_photo: list[list[Face]]  # every face of each photo
    # The pipeline only (None for the classic swap):
    crops: FaceCrops | None = None  # the photos' faces, then their mirror images'
    texture_photo: list[int] | None = None  # per source face: the photo it is (or mirrors)
    batch: torch.Tensor | None = None
    visible: torch.Tensor | None = None  # [N, 1, S, S] the segmenter's masks
    masks: list[np.ndarray] | None = None
    occluders: list[np.ndarray] | None = None
    covered_shares: list[float] | None = None
    outside_shares: list[float] | None = None
    identity_embedding: torch.Tensor | None = None  # [1, D], the photos' mean identity

    @property
    def photo_count(self) -> int:
        return len(self.photos)


def prepare_sources(swapper: FaceSwapPipeline | ClassicFaceSwapper, images: ImageInput | Sequence[ImageInput],
                    options: SwapOptions) -> PreparedSources:
    """Read and analyse one person's source photos for `swapper`.

    Raises:
        fswap.ImageError: a photo cannot be read.
        fswap.NoFaceError: a photo has no face.
    """
    images = [images] if _is_single_image(images) else list(images)
    if not images:
        raise ValueError("give at least one source photo")
    names = [_name(image, f"source photo {i + 1}") for i, image in enumerate(images)]
    photos = [load_image(image, name=name) for image, name in zip(images, names, strict=True)]
    analyzer = swapper.face_analyzer if isinstance(swapper, FaceSwapPipeline) else swapper.analyzer
    per_photo = [analyzer.detect(photo) for photo in photos]
    faces = [face_numbered(found, None, name) for found, name in zip(per_photo, names, strict=True)]
    prepared = PreparedSources(photos, names, faces, per_photo)
    if isinstance(swapper, FaceSwapPipeline):
        _prepare_for_pipeline(swapper, prepared, options)
    return prepared


def _prepare_for_pipeline(pipeline: FaceSwapPipeline, prepared: PreparedSources, options: SwapOptions) -> None:
    """The source side of the pipeline's align, occlusion and identity stages. Every mirror image
    is made up front: over a clip the head turns, and the first stage takes a mirror image only
    for the frames where it is turned like the target face (`fswap.faces.pose.closest_poses`)."""
    size, margin = pipeline.crop_size, pipeline.crop_margin
    mirrors = []
    if pipeline.attribute_input == "warped_source" and options.mirror_sources:
        for j, (photo, face) in enumerate(zip(prepared.photos, prepared.faces, strict=True)):
            found = mirrored_face(photo, face, pipeline.face_analyzer)
            if found is not None:
                mirrors.append((j, *found))
    crops = FaceCrops.align(prepared.photos + [photo for _, photo, _ in mirrors],
                            prepared.faces + [face for _, _, face in mirrors], size, margin)
    batch = pipeline.as_batch(crops.crops)
    count = prepared.photo_count
    with torch.no_grad():
        if options.occlusion_aware:
            # The photos apart from their mirror images: the networks give the same masks, and so the
            # same identity, as `FaceSwapPipeline.__call__` does on a photo that needs no mirror.
            visible = torch.cat([pipeline.occlusion_segmenter.predict_mask(part)
                                 for part in (batch[:count], batch[count:]) if len(part)])
        else:
            visible = batch.new_ones(len(crops.crops), 1, size, size)
        masks = list(visible.float().cpu().numpy()[:, 0])
        # As `FaceSwapPipeline._occlusion` does for the source faces.
        band = OUTLINE_BAND * size
        regions = [region_mask(points, (size, size), "face") > 0.5 for points in crops.points]
        cut_off = [region & crops.outside(j) for j, region in enumerate(regions)]
        occluders = [occluded_skin(region, mask, band) | outside
                     for region, mask, outside in zip(regions, masks, cut_off, strict=True)]
        areas = [max(region.sum(), 1) for region in regions]
        view, visible_view = identity_view(batch[:count], visible[:count], margin)
        identity = mean_identity(pipeline.identity_encoder.encode(view, visible_view))
    prepared.crops, prepared.batch, prepared.visible, prepared.masks = crops, batch, visible, masks
    prepared.texture_photo = list(range(count)) + [j for j, _, _ in mirrors]
    prepared.occluders = occluders
    prepared.covered_shares = [o.sum() / area for o, area in zip(occluders, areas, strict=True)]
    prepared.outside_shares = [o.sum() / area for o, area in zip(cut_off, areas, strict=True)]
    prepared.identity_embedding = identity


@dataclass
class SwappedRegion:
    """Where one face of a frame was pasted: a window of the frame and the blend mask in it
    (None in its place: the face lay outside the frame)."""

    window: tuple[int, int, int, int]  # x0, y0, x1, y1
    alpha: np.ndarray  # float32 [y1 - y0, x1 - x0]


@torch.no_grad()
def swap_pipeline_faces(pipeline: FaceSwapPipeline, sources: PreparedSources, frame: np.ndarray,
                        faces: list[Face], options: SwapOptions,
                        mask_filter: MaskFilter | None = None) -> tuple[np.ndarray, list[SwappedRegion | None]]:
    """`frame` with each of `faces` swapped for `sources`' person by the pipeline's stages (no
    watermark: the video marks each frame itself). `mask_filter` smooths the target faces'
    occlusion masks before the skins and blend masks are built from them."""
    count, size, margin = len(faces), pipeline.crop_size, pipeline.crop_margin
    two_stage = pipeline.attribute_input == "warped_source"
    targets = FaceCrops.align([frame] * count, faces, size, margin)
    face_masks = [region_mask(points, (size, size), "face") for points in targets.points]
    crops = _Crops(sources.crops, targets, face_masks, sources.texture_photo, sources.photo_count)
    target_batch = pipeline.as_batch(targets.crops)
    if options.occlusion_aware:
        target_visible = pipeline.occlusion_segmenter.predict_mask(target_batch)
    else:
        target_visible = target_batch.new_ones(count, 1, size, size)
    visible = target_visible.float().cpu().numpy()[:, 0]
    if mask_filter is not None:
        visible = mask_filter(visible)
        target_visible = torch.from_numpy(np.ascontiguousarray(visible, np.float32))[:, None].to(
            target_batch.device, target_batch.dtype)
    band = OUTLINE_BAND * size
    skins = [visible_skin(mask, v, band) for mask, v in zip(face_masks, visible, strict=True)]
    occlusion = _Occlusion(sources.batch, target_batch, sources.visible, target_visible, sources.masks, list(visible),
                           skins, sources.occluders, sources.covered_shares, sources.outside_shares, band)
    stage = pipeline._first_stage(crops, occlusion, options) if two_stage else FirstStage.none(skins, size)
    relit = two_stage and options.full_resolution and options.rendering == "relit"
    relit_sources = None
    if relit:
        swapped_crops, control_masks = stage.crops, []
        relit_sources = pipeline._relit_sources(crops, stage, options.source_occluders)
    else:
        identity = sources.identity_embedding.expand(count, -1)
        swapped_crops, control_masks = pipeline._generate(identity, stage, occlusion, options.refine, two_stage)
    found = _FoundFaces(sources.per_photo, [None] * sources.photo_count, sources.faces, list(faces),
                        list(range(count)))
    image, results = pipeline._blend(frame, found, crops, occlusion, stage, swapped_crops, control_masks,
                                     relit_sources, options)
    return image, [crop_region(result.blend_mask, result.matrix, frame.shape) for result in results]


def swap_classic_faces(sources: PreparedSources, frame: np.ndarray,
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

