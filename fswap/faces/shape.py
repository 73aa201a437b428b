"""The source's face proportions on the target's pose and expression.

Doc 004 names what identity is made of: eye shape, the distance between the eyes, nose size,
brow shape, the face's contour; pose and expression are the target's attributes. A landmark
swap warps the source's texture onto the target's landmarks, so it keeps the source's skin and
features but gives them the *target's* proportions: eyes as far apart as the target's, the
target's nose length and mouth width. Part of the identity is lost on the way.

`identity_shape` moves each feature of the target's landmarks (eyes, brows, nose, mouth) to
where the source has it, relative to the whole face, and gives it the source's size, while the
feature keeps its own shape: an eye stays as open, a smile as wide relative to the mouth, as in
the target. The outline is left as the target's, because it bounds what is pasted, and so is
a feature the source photo hides (`hidden_features`). The source is first brought onto the
target by the similarity transform that best fits all 106 landmarks, so the head's size,
position and roll are the target's. Proportions read off a head turned
differently from the target's are foreshortened, so the change fades out as the two poses
differ (`yaw_proxy`).

In one photo, some moves are the head's pose as much as the person's proportions, and those
are left out (`_without_pose`): the nose keeps the target's place, because it stands out of the
face and where it sits between the eyes and the mouth is how far the head is tilted or turned;
and no feature moves to one side, only the eyes and brows apart or together. With the nose
moved, a face mesh read the swapped heads as turned 0.1° further from the target's (the
README's pose measures).
"""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.masks import LANDMARK_GROUPS
from fswap.faces.pose import yaw_proxy

#: The features that move; the contour (the face's outline) stays.
FEATURES = ("left_eye", "right_eye", "left_brow", "right_brow", "nose", "mouth")
#: Past this difference of `yaw_proxy` (-1 .. 1) between source and target, nothing changes;
#: below it, the change fades in linearly to full strength at equal poses.
POSE_TOLERANCE = 0.5


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) that maps `source` [N, 2] points
    onto `target` [N, 2] with the least squared error (Umeyama)."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(b.T @ a / len(a))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / max((a**2).sum() / len(a), 1e-12)
    return np.concatenate([scale * rotation, (target_mean - scale * rotation @ source_mean)[:, None]], axis=1)


def hidden_features(landmarks: np.ndarray, occluded: np.ndarray, share: float = 0.3) -> frozenset[str]:
    """The features of a face whose landmarks lie on occluded pixels (eyes behind sunglasses,
    brows under a fringe) for more than `share` of their points: where they are cannot be read.

    Args:
        landmarks: [106, 2] in the coordinates of `occluded`.
        occluded: bool [H, W], True on the face's occluders (`fswap.faces.masks.occluded_skin`).
    """
    on_occluder = _values_at(np.asarray(occluded, bool), landmarks, outside=False)
    return frozenset(f for f in FEATURES if on_occluder[list(LANDMARK_GROUPS[f])].mean() > share)


def hidden_regions(landmarks: np.ndarray, occluded: np.ndarray, features: frozenset[str]) -> np.ndarray:
    """`occluded` with the occluder over each hidden eye filled out, near the eye, to its convex
    hull: bool, `occluded`'s shape.

    A dark lens that reflects the light is found only in patches, and what shows through the gaps
    is the lens, not the source's skin: filled, the lens's last fragments stay out of the swap. Only
    within an eye's width of the eye: a lock of hair or a brim that reaches across the face is
    left as the segmenter found it (its hull would cover half the face). Other features are left.
    """
    occluded = np.asarray(occluded, bool)
    filled = occluded.copy()
    eyes = [feature for feature in ("left_eye", "right_eye") if feature in features]
    if not eyes:
        return filled
    _, labels = cv2.connectedComponents(occluded.astype(np.uint8), connectivity=8)
    for eye in eyes:
        points = np.asarray(landmarks)[list(LANDMARK_GROUPS[eye])]
        hull = np.zeros(occluded.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points).astype(np.int32)), 1)
        side = 2 * int(round(np.ptp(points[:, 0]))) + 1  # an eye's width around the eye
        near = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))) > 0
        for label in set(_values_at(labels, points, outside=0).tolist()) - {0}:
            ys, xs = np.nonzero((labels == label) & near)
            lens = np.zeros(occluded.shape, np.uint8)
            cv2.fillConvexPoly(lens, cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32)), 1)
            filled |= (lens > 0) & near
    return filled


def identity_shape(
    source_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    strength: float = 1.0,
    keep: frozenset[str] = frozenset(),
) -> np.ndarray:
    """The target's [106, 2] landmarks with the source's feature placement and sizes.

    Args:
        source_landmarks, target_landmarks: [106, 2] landmarks, each in its own photo's coordinates.
        strength: 0 gives the target's landmarks back; 1 scales every feature all the way to
            the source's size and moves it to the source's place, but for the moves a head's pose
            would make (`_without_pose`), at equal poses; less as the poses differ.
        keep: features left as the target's, e.g. the source's `hidden_features`: landmarks
            guessed under sunglasses or a fringe would move a feature to a wrong place.

    Returns:
        [106, 2] landmarks in the target's coordinates: where to warp the source's texture.
    """
    source = np.asarray(source_landmarks, np.float64)
    target = np.asarray(target_landmarks, np.float64)
    strength = float(strength) * max(0.0, 1.0 - abs(yaw_proxy(source) - yaw_proxy(target)) / POSE_TOLERANCE)
    if strength <= 0.0:
        return target.copy()
    matrix = similarity_fit(source, target)
    aligned = source @ matrix[:, :2].T + matrix[:, 2]

    # The target face's own axes: x along its eye line, y down its face.
    across = target[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0) - target[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)
    across /= max(np.linalg.norm(across), 1e-9)
    axes = np.stack([across, np.array([-across[1], across[0]])])  # rows: x, y

    moving = [feature for feature in FEATURES if feature not in keep]
    mine = {f: target[list(LANDMARK_GROUPS[f])] @ axes.T for f in moving}  # in face axes
    theirs = {f: aligned[list(LANDMARK_GROUPS[f])] @ axes.T for f in moving}
    moves = _without_pose({f: strength * (_anchor(theirs[f], f) - _anchor(mine[f], f)) for f in moving})
    shaped = target.copy()
    for feature in moving:
        width = _extent(theirs[feature][:, 0]) / max(_extent(mine[feature][:, 0]), 1e-6)
        # Eyes, brows and mouth scale evenly by their width, so an eye stays as open and a mouth
        # as wide open as the target's; the nose takes the source's length as well.
        height = (_extent(theirs[feature][:, 1]) / max(_extent(mine[feature][:, 1]), 1e-6)
                  if feature == "nose" else width)
        scale = 1.0 + strength * (np.array([width, height]) - 1.0)
        anchor = _anchor(mine[feature], feature)
        moved = anchor + moves[feature] + (mine[feature] - anchor) * scale
        shaped[list(LANDMARK_GROUPS[feature])] = moved @ axes  # back to image coordinates
    return shaped


def _without_pose(moves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each feature's move (x across the face, y down it) less the part a head's turn would
    make as well: the nose does not move (it stands out of the face, so where it sits between
    the eyes and the mouth is the head's pitch and yaw as much as the person's), the mouth does
    not move sideways, and the eyes and brows move sideways only apart or together, each pair by
    the same amount (a pair shifted to one side is a turned head). One of a pair held still
    (`keep`) holds the other's sideways move too: the spacing cannot be read."""
    moves = {feature: move.copy() for feature, move in moves.items()}
    if "nose" in moves:
        moves["nose"][:] = 0.0
    if "mouth" in moves:
        moves["mouth"][0] = 0.0
    for left, right in (("left_eye", "right_eye"), ("left_brow", "right_brow")):
        if left in moves and right in moves:
            apart = (moves[right][0] - moves[left][0]) / 2.0
            moves[left][0], moves[right][0] = -apart, apart
        elif left in moves or right in moves:
            moves[left if left in moves else right][0] = 0.0
    return moves


def _values_at(array: np.ndarray, points: np.ndarray, outside):
    """`array`'s values at the pixels nearest to `points` [N, 2] (x, y); `outside` for points off it."""
    pixels = np.round(np.asarray(points)).astype(int)
    height, width = array.shape[:2]
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    values = np.full(len(pixels), outside, dtype=array.dtype)
    values[inside] = array[pixels[inside, 1], pixels[inside, 0]]
    return values


def _extent(values: np.ndarray) -> float:
    return float(values.max() - values.min())


def _anchor(points: np.ndarray, feature: str) -> np.ndarray:
    """Where a feature is: the middle of its extent; for the mouth, between its corners (the
    leftmost and rightmost points), which an open mouth does not move."""
    if feature == "mouth":
        return (points[points[:, 0].argmin()] + points[points[:, 0].argmax()]) / 2.0
    return (points.min(axis=0) + points.max(axis=0)) / 2.0
