"""Doc 003's first stage for a whole swap: for each target face, the source photo its texture
comes from, where that texture goes (the target's landmarks moved towards the source's
proportions), what of the source's occluders comes with it, and the first face image that a
two-stage checkpoint's networks refine.

    sources, targets (FaceCrops) ─ closest pose ─ identity shape ─ carried occluders
        ─ first_stage_composite ─ FirstStage
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fswap.faces.align import alignment_matrix, transform_points, warp_face
from fswap.faces.analyzer import Face
from fswap.faces.masks import mouth_interior, mouth_opening, occluders_from_outside
from fswap.faces.pose import closest_poses, head_pose
from fswap.faces.shape import hidden_features, hidden_regions, identity_shape
from fswap.faces.warp import carried_occluders, first_stage_composite
from fswap.options import PASTE_OCCLUDERS  # noqa: F401  (re-exported: its old home)

#: A target mouth at least this open (`fswap.faces.masks.mouth_opening`: teeth show from about
#: 0.06) keeps its own inside when the source's mouth is less than half as open: the source's
#: lips, warped apart, would smear over its teeth.
OPEN_MOUTH = 0.06
MOUTH_STRETCH = 2.0

#: Grey levels by which a black-and-white photo's channels may still differ (`FaceCrops.colourless`).
COLOURLESS_SPREAD = 4.0

#: What of the source face's occluders a swap pastes with it (`first_stage`'s `paste_occluders`):
#: - "all": everything, as in the photo (the default);
#: - "inside": what covers its eyes or lies inside it (glasses, a lock over an eye); what reaches
#:   in over its outline (a fringe, a hat's brim, a hand from the side, the photo's edge) is not
#:   pasted, and the target's own face shows there (`fswap.faces.masks.occluders_from_outside`).
#:   On a turned source face the segmenter also takes some of the far cheek for an occluder from
#:   the edge, and the target's own mouth or cheek shows through (the README's evaluation);
#: - "none": nothing; the target's own face shows wherever they land.


def paste_occluders_setting(value: str | bool) -> str:
    """`value` as one of `PASTE_OCCLUDERS`: True is "all" and False "none" (the on/off setting it
    was until 2026-12-01). Raises ValueError for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return "all" if value else "none"
    if value not in PASTE_OCCLUDERS:
        raise ValueError(f"paste_source_occluders must be one of {', '.join(PASTE_OCCLUDERS)} (or True / False), "
                         f"not {value!r}")
    return value


@dataclass
class FaceCrops:
    """Faces cut out of their photos into aligned crops, with what aligning them gave."""

    photos: list[np.ndarray]  # the photo each face is in
    faces: list[Face]
    matrices: list[np.ndarray]  # 2x3, photo -> crop
    crops: list[np.ndarray]  # [S, S, 3] uint8
    points: list[np.ndarray]  # [106, 2] landmarks in the crop

    @classmethod
    def align(cls, photos: Sequence[np.ndarray], faces: Sequence[Face], size: int, margin: float) -> FaceCrops:
        """Crop each face of `faces` out of the photo at the same place in `photos`."""
        matrices = [alignment_matrix(face.keypoints, size, margin) for face in faces]
        return cls(
            photos=list(photos), faces=list(faces), matrices=matrices,
            crops=[warp_face(photo, m, size) for photo, m in zip(photos, matrices, strict=True)],
            points=[transform_points(face.landmarks, m) for face, m in zip(faces, matrices, strict=True)],
        )

    def outside(self, index: int) -> np.ndarray:
        """bool [S, S]: where face `index`'s crop lies outside its photo (the crop reflects the
        photo there, and the photo-resolution swap has no pixels of it)."""
        size = self.crops[index].shape[:2]
        inside = np.ones(self.photos[index].shape[:2], np.uint8)
        return cv2.warpAffine(inside, self.matrices[index], size[::-1], flags=cv2.INTER_NEAREST, borderValue=0) == 0

    def size(self, index: int) -> float:
        """How large face `index` is in its photo: the longer side of its landmarks' box, in px."""
        return float(np.ptp(self.faces[index].landmarks, axis=0).max())

    def colourless(self, index: int) -> bool:
        """Whether face `index` is black and white: its crop's three channels agree within a few
        grey levels (`COLOURLESS_SPREAD`, what JPEG leaves of a greyscale photo) almost everywhere."""
        crop = self.crops[index].astype(np.int16)
        spread = np.abs(crop - crop.mean(axis=2, keepdims=True)).max(axis=2)
        return float(np.percentile(spread, 99)) <= COLOURLESS_SPREAD

    def yaw(self, index: int) -> float:
        """How far face `index` is turned, in degrees (`fswap.faces.pose.head_pose`)."""
        return float(head_pose(self.faces[index].landmarks, self.photos[index].shape)[0])


@dataclass
class FirstStage:
    """What the first stage decided for each target face; masks are [S, S] in its crop."""

    texture_sources: list[int]  # the source photo whose texture it takes
    shapes: list[np.ndarray | None]  # [106, 2] where that texture goes, in the target photo (None: its landmarks)
    skins: list[np.ndarray]  # where the swap is pasted: visible skin, less the source's occluders when cut
    measured: list[np.ndarray]  # where the swap's and the target's skin colours are compared
    left_out: list[np.ndarray]  # bool, where the source's occluders land and are not pasted
    crops: list[np.ndarray] | None  # the first face images, uint8 [S, S, 3]; None without a first stage
    visible: list[np.ndarray] | None = None  # `skins` before the source's left-out occluders are cut
    unpasted: list[np.ndarray] | None = None  # per source face, bool in its crop: its occluders not to paste

    @classmethod
    def none(cls, skins: list[np.ndarray], size: int) -> FirstStage:
        """One-stage checkpoints: the texture is generated, so only the target's skins count."""
        return cls(texture_sources=[0] * len(skins), shapes=[None] * len(skins), skins=skins, measured=skins,
                   left_out=[np.zeros((size, size), bool) for _ in skins], crops=None, visible=skins)


def first_stage(
    sources: FaceCrops,
    targets: FaceCrops,
    source_occluders: list[np.ndarray],
    covered: list[bool],
    skins: list[np.ndarray],
    strength: float,
    paste_occluders: str,
    band: float,
    keep_open_mouths: bool = True,
    mirrored: list[bool] | None = None,
) -> FirstStage:
    """Doc 003's first face image for each target face, and the masks the later stages need.

    Args:
        sources, targets: the source photos' faces and the target faces to swap, aligned.
        source_occluders: bool [S, S] per source, what covers its face (`fswap.faces.masks.occluded_skin`).
        covered: per source, whether its face is largely covered: an uncovered photo turned about
            as well gives the texture instead (`fswap.faces.pose.closest_poses`).
        skins: per target face, its visible skin (`fswap.faces.masks.visible_skin`).
        strength: how far the texture takes the source's proportions (`fswap.faces.shape.identity_shape`).
        paste_occluders: what of what covers the source face is pasted with it (`PASTE_OCCLUDERS`);
            where the rest lands the target keeps its own face.
        band: px, the source's occluders are grown by this much where they land (a frame's edge).
        keep_open_mouths: an open target mouth keeps its teeth under a closed source mouth (`kept_mouth`).
        mirrored: per source, whether it is a photo's mirror image (`fswap.faces.mirror`): taken
            only where no photo as given is turned about as well.
    """
    if paste_occluders not in PASTE_OCCLUDERS:
        raise ValueError(f"paste_occluders must be one of {', '.join(PASTE_OCCLUDERS)}, not {paste_occluders!r}")
    size = sources.crops[0].shape[:2]
    texture_sources = closest_poses(sources.points, targets.points, covered, mirrored)
    hidden = [hidden_features(points, occluders)
              for points, occluders in zip(sources.points, source_occluders, strict=True)]
    # Where each target face takes its source's texture: its own landmarks, with the source's
    # proportions by `strength` (but for features the source hides); in the photo and in the crop.
    shapes = [identity_shape(sources.faces[j].landmarks, targets.faces[k].landmarks, strength, keep=hidden[j])
              for k, j in enumerate(texture_sources)]
    shape_points = [transform_points(points, m) for points, m in zip(shapes, targets.matrices, strict=True)]
    # Where the source's occluders land on each target face; the occluder over a hidden eye is
    # filled out near it (a lens's reflections too). Pasted or not, they are no skin to measure
    # colours on.
    filled = [hidden_regions(points, occluders, features)
              for points, occluders, features in zip(sources.points, source_occluders, hidden, strict=True)]
    carried = [carried_occluders(filled[j], sources.points[j], shape_points[k], size, band)
               for k, j in enumerate(texture_sources)]
    # An open target mouth that the source's would be stretched over keeps its teeth: not pasted
    # and not measured on (teeth are no skin).
    if keep_open_mouths:
        kept = [kept_mouth(sources.points[j], targets.points[k], shape_points[k], size)
                for k, j in enumerate(texture_sources)]
        skins = [skin * ~mouth if mouth.any() else skin for skin, mouth in zip(skins, kept, strict=True)]
    measured = [skin * ~occluders for skin, occluders in zip(skins, carried, strict=True)]
    if paste_occluders == "all":
        unpasted = [np.zeros(size, bool) for _ in filled]
    elif paste_occluders == "none":
        unpasted = filled
    else:
        unpasted = [occluders_from_outside(points, occluders, band)
                    for points, occluders in zip(sources.points, filled, strict=True)]
    left_out = carried if paste_occluders == "none" else [
        carried_occluders(unpasted[j], sources.points[j], shape_points[k], size, band)
        for k, j in enumerate(texture_sources)
    ]
    pasted = [skin * ~cut if cut.any() else skin for skin, cut in zip(skins, left_out, strict=True)]
    crops = [
        first_stage_composite(targets.crops[k], targets.points[k], sources.crops[j], sources.points[j], pasted[k],
                              shape_points[k], measured=measured[k])[0]
        for k, j in enumerate(texture_sources)
    ]
    return FirstStage(texture_sources, shapes, pasted, measured, left_out, crops, visible=skins, unpasted=unpasted)


def kept_mouth(source_points: np.ndarray, target_points: np.ndarray, shape_points: np.ndarray,
               size: tuple[int, int]) -> np.ndarray:
    """bool `size`: where the target's open mouth is kept rather than swapped.

    Warping a closed mouth onto an open one stretches the line between the lips over the teeth:
    the target's grin becomes a wide closed mouth, or a red smear when it is wide open. When the
    target's mouth is open (`OPEN_MOUTH`) and the source's less than 1/`MOUTH_STRETCH` as much,
    the inside of the target's lips (teeth, tongue) stays its own, both where its lips part and
    where the source's parted lips land (`shape_points`). The source's lips frame it.
    """
    if not keeps_target_mouth(source_points, target_points):
        return np.zeros(size, bool)
    return mouth_interior(target_points, size) | mouth_interior(shape_points, size)


def keeps_target_mouth(source_points: np.ndarray, target_points: np.ndarray) -> bool:
    """Whether the target's open mouth keeps its teeth under the source's (`kept_mouth`): it is at
    least `OPEN_MOUTH` open and the source's less than 1/`MOUTH_STRETCH` as much. Landmarks of
    either face in any frame (the opening is a ratio)."""
    target_opening = mouth_opening(target_points)
    return target_opening >= OPEN_MOUTH and mouth_opening(source_points) * MOUTH_STRETCH <= target_opening
