"""A source face turned the other way from the target face, taken in its mirror image.

A landmark warp can only move the pixels a photo has. A source face turned 30° to its left
shows its left cheek squeezed and its right cheek wide; warped onto a target face turned 30° to
its right, the squeezed cheek is stretched across the near side of the target face, and the wide
one is squeezed out of sight. The photo's mirror image is the same face turned 30° the other way,
with each side's pixels where the target face shows that side. Faces are nearly symmetric, so
the mirror image reads as the same person (to people and to face recognisers alike). What is on
one side only, a parting or a mole, changes sides.

The first stage (`fswap.faces.first_stage`) takes the mirror image as a texture only when it is
turned like the target face and every photo given is not: closer in pose by more than
`fswap.faces.pose.POSE_TOLERANCE` (about 15° of head turn).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fswap.faces.analyzer import Face, FaceAnalyzer, box_iou
from fswap.faces.pose import POSE_TOLERANCE, yaw_proxy

#: A face found in the mirror image is the mirrored source face when their boxes overlap this much.
SAME_FACE_IOU = 0.5

#: For each of the 106 landmarks (2d106det), the landmark at its mirror place on the face (the
#: left eye's outer corner for the right eye's): read off 30 held-out photos and their mirror
#: images (each landmark of the mirror image matched to the nearest of the photo's, the majority
#: kept; two eye-corner pairs that lie on one another were made symmetric).
MIRRORED_LANDMARKS = (
    0, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    13, 14, 15, 16, 87, 88, 93, 91, 90, 92, 89, 94, 96, 95, 101, 100, 99, 97, 98, 105, 104, 102, 103, 61, 53,
    57, 58, 59, 54, 55, 56, 60, 52, 62, 67, 68, 69, 70, 63, 64, 65, 66, 71, 72, 73, 74, 81, 82, 83, 84, 85,
    80, 75, 76, 77, 78, 79, 86, 33, 34, 39, 37, 36, 38, 35, 40, 42, 41, 46, 47, 45, 44, 43, 50, 51, 49, 48,
)


def mirror_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """[106, 2] landmarks of a face as they lie in its photo's mirror image (`width` px wide),
    in the analyzer's order: no face detection needed."""
    mirrored = np.asarray(landmarks, np.float64).copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    return mirrored[list(MIRRORED_LANDMARKS)]


def mirrors_wanted(source_landmarks: Sequence[np.ndarray], target_landmarks: Sequence[np.ndarray]) -> list[int]:
    """The source faces whose mirror image is turned more like some target face than every source
    face is, by more than `POSE_TOLERANCE` (`yaw_proxy`; a mirror image's is the face's, negated)."""
    source_yaws = np.array([yaw_proxy(landmarks) for landmarks in source_landmarks])
    wanted = set()
    for landmarks in target_landmarks:
        target_yaw = yaw_proxy(landmarks)
        best_turn = np.abs(source_yaws - target_yaw).min()
        mirror_turns = np.abs(-source_yaws - target_yaw)
        wanted.update(int(j) for j in np.flatnonzero(mirror_turns + POSE_TOLERANCE < best_turn))
    return sorted(wanted)


def mirrored_face(photo: np.ndarray, face: Face, analyzer: FaceAnalyzer) -> tuple[np.ndarray, Face] | None:
    """`photo` mirrored left to right, and `face` found again in it (with the landmarks the
    analyzer reads on the mirrored face); None when the analyzer does not find it there."""
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    x0, y0, x1, y1 = np.asarray(face.box, np.float64)
    width = photo.shape[1]
    box = np.array([width - x1, y0, width - x0, y1])
    found = analyzer.detect(mirrored, near=[box])  # landmarks for that face alone
    if not found or box_iou(found[0].box, box) < SAME_FACE_IOU:
        return None
    return mirrored, found[0]
