"""The swapped face rendered at the photo's resolution from what the source photo shows well.

    source face ─ warp onto the target's shape ─ trust map ┐
    its mirror image ─ warp ──────────────── trust map ────┴ each place from the side trusted more
        ─ relit to the target's light ─ the photo's grain ─ multi-band blend into the photo

Where the source photo's pixels are not the face (its hair, a hand, a frame) or are stretched
from a few (the far side of a turned head), the warped texture would carry dirt or a smear into
the swap. The same place on the other side of the source face, seen in the photo's mirror image,
is often clean and seen well: it takes over there (`fswap.faces.trust`). Where neither side is
clean the target's own face stays. The mirror image needs no face detection: its landmarks are
the source's, mirrored (`fswap.faces.mirror.mirror_landmarks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fswap.faces.align import invert_matrix
from fswap.faces.mirror import mirror_landmarks
from fswap.faces.trust import face_size, smooth, stretch_trust
from fswap.faces.warp import face_points, face_rectangle, triangulate, warp_triangles

#: The mirror image takes over a place only where it is trusted this much more than the source
#: as given: what is on one side of a face only (a parting, a mole) should rarely change sides.
MIRROR_MARGIN = 0.25
#: What covers the source face is grown by this fraction of the face's size.
COVER_MARGIN = 0.025


@dataclass
class SourceFace:
    """A source face cut out of its photo (its rectangle only), with what covers it."""

    image: np.ndarray  # uint8 [h, w, 3]
    landmarks: np.ndarray  # [106, 2] in `image`
    occluders: np.ndarray  # uint8 [h, w], 1 where the photo shows no face to use (hair, hands, frames)

    @classmethod
    def cut(cls, photo: np.ndarray, landmarks: np.ndarray, occluders: np.ndarray, matrix: np.ndarray) -> SourceFace:
        """The face of `photo` with `landmarks` [106, 2]; `occluders` is a bool mask in its
        aligned crop (`matrix`: photo -> crop), or all-False for nothing to avoid."""
        x0, y0, x1, y1 = face_rectangle(face_points(landmarks), photo.shape, margin=4)
        local = invert_matrix(matrix)
        local[:, 2] -= (x0, y0)
        region = (int(x1 - x0), int(y1 - y0))
        covered = cv2.warpAffine(np.asarray(occluders, np.uint8), local, region, flags=cv2.INTER_NEAREST,
                                 borderValue=0)
        # The crop's mask is coarser than the photo: grown, so that no edge of the cover slips through.
        width = 2 * int(round(COVER_MARGIN * face_size(landmarks))) + 1
        covered = cv2.dilate(covered, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
        return cls(photo[y0:y1, x0:x1], np.asarray(landmarks, np.float64) - (x0, y0), covered)

    def mirrored(self) -> SourceFace:
        """The same face in its photo's mirror image."""
        width = self.image.shape[1]
        return SourceFace(np.ascontiguousarray(self.image[:, ::-1]), mirror_landmarks(self.landmarks, width),
                          np.ascontiguousarray(self.occluders[:, ::-1]))


@dataclass
class WarpedFace:
    """A source face warped onto a target shape, in the target's frame."""

    texture: np.ndarray  # uint8 [H, W, 3]
    coverage: np.ndarray  # bool [H, W], where the warp lands
    trust: np.ndarray  # float32 [H, W], how far its pixels may be used (`fswap.faces.trust`)
    covered: np.ndarray  # float32 [H, W], where the source's occluders land


def warp_source(source: SourceFace, target_points: np.ndarray, triangles: np.ndarray,
                size: tuple[int, int]) -> WarpedFace:
    """`source` warped onto `target_points` (`face_points` of the destination landmarks, split
    into `triangles`) in a frame of `size`."""
    source_points = face_points(source.landmarks)
    both = np.dstack([source.image, source.occluders * np.uint8(255)])
    warped, coverage = warp_triangles(both, source_points, target_points, triangles, size)
    covered = smooth(warped[..., 3].astype(np.float32) / 255.0, face_size(target_points))
    trust = stretch_trust(source_points, target_points, triangles, size) * (1.0 - covered) * coverage
    return WarpedFace(np.ascontiguousarray(warped[..., :3]), coverage, trust.astype(np.float32), covered)


@dataclass
class RenderedFace:
    """The face to put into the target, in the target's frame."""

    texture: np.ndarray  # uint8 [H, W, 3], before relighting
    coverage: np.ndarray  # bool [H, W]
    trust: np.ndarray  # float32 [H, W], trust in the texture used at each place
    mirrored: np.ndarray  # float32 [H, W], where the mirror image's texture is used
    uncovered: np.ndarray  # float32 [H, W], where neither side shows the face: the target's stays


def fill_from_mirror(source: SourceFace, destination: np.ndarray, size: tuple[int, int],
                     use_mirror: bool = True) -> RenderedFace:
    """The source's texture on `destination`, each place taken from the source as given or from
    its mirror image, whichever is trusted more (by `MIRROR_MARGIN`, for the mirror)."""
    # The destination's mesh serves the source as given and its mirror image alike.
    target_points = face_points(destination)
    triangles = triangulate(target_points)
    given = warp_source(source, target_points, triangles, size)
    if not use_mirror:
        return RenderedFace(given.texture, given.coverage, given.trust, np.zeros(size, np.float32),
                            _uncovered(given.covered))
    mirror = warp_source(source.mirrored(), target_points, triangles, size)
    prefer = ((mirror.trust > given.trust + MIRROR_MARGIN) & mirror.coverage).astype(np.uint8)
    # Whole regions, not single pixels: a speck of the other side would show as a blotch.
    prefer = cv2.morphologyEx(prefer, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    taken = smooth(prefer.astype(np.float32), face_size(destination), fraction=0.015)
    texture = given.texture * (1.0 - taken[..., None]) + mirror.texture * taken[..., None]
    trust = given.trust * (1.0 - taken) + mirror.trust * taken
    covered = given.covered * (1.0 - taken) + mirror.covered * taken
    coverage = given.coverage & (mirror.coverage | (taken < 0.5))
    return RenderedFace(np.clip(texture.round(), 0, 255).astype(np.uint8), coverage, trust.astype(np.float32),
                        taken, _uncovered(covered))


def _uncovered(covered: np.ndarray) -> np.ndarray:
    """Where the face is not shown because something covers it on the side used (not where it
    is only stretched: a stretched face is still that face): float32 in [0, 1], smooth."""
    return np.clip((covered - 0.5) * 4.0, 0.0, 1.0)
