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
