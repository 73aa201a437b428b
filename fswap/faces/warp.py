"""Piecewise-affine face warping over the 106 landmarks: the source face's texture moved onto
the target face's shape. The classic swap and fswap's first stage (doc 003) both use it."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from fswap.faces.masks import LANDMARK_GROUPS

#: Brows are lifted along the chin → brows axis by this fraction of the face height, as in
#: `region_mask(..., "face")`, so that the triangulation covers the forehead of the blend mask.
FOREHEAD_LIFT = 0.2
#: The outer ring of points is pushed this much further from the face centre, so the warped
#: face covers the blend mask with a margin and Poisson blending never sees unwarped pixels.
RING_GROWTH = 0.1
_CONTOUR = list(LANDMARK_GROUPS["contour"])
_BROWS = list(LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["right_brow"])


def face_points(landmarks: np.ndarray) -> np.ndarray:
    """The [106, 2] landmarks followed by an outer ring around cheeks and forehead ([106 + 33 + 18, 2]).

    The ring is built the same way on every face, so source and target points correspond.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    centre = landmarks.mean(axis=0)
    up = landmarks[_BROWS].mean(axis=0) - landmarks[0]  # landmark 0 is the chin
    forehead = landmarks[_BROWS] + FOREHEAD_LIFT * up
    ring = np.concatenate([landmarks[_CONTOUR], forehead])
    return np.concatenate([landmarks, centre + (1.0 + RING_GROWTH) * (ring - centre)])


def face_rectangle(points: np.ndarray, shape: tuple[int, ...], margin: int = 2) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) around `points` [N, 2], grown by `margin` and clipped to `shape`."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + margin + 1
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles [T, 3] (indices into `points`) covering the convex hull of `points` [N, 2]."""
    return Delaunay(points).simplices


def warp_triangles(
    source_image: np.ndarray,
    source_points: np.ndarray,
    target_points: np.ndarray,
    triangles: np.ndarray,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine warp: each triangle of `source_points` onto the same triangle of `target_points`.

    Args:
        source_image: [H, W, C] image the source points live in.
        source_points, target_points: [N, 2] corresponding points; target points are in the
            coordinates of the output.
        triangles: [T, 3] vertex indices.
        size: (height, width) of the output.

    Returns:
        The warped image [height, width, C] and its coverage mask [height, width] (bool).
    """
    target_triangles = target_points[triangles]  # [T, 3, 2]
    source_triangles = source_points[triangles]  # [T, 3, 2]
    # One affine map per triangle, from output pixels back to source pixels: [x y 1] @ A = source.
    homogeneous = np.concatenate([target_triangles, np.ones((len(triangles), 3, 1))], axis=2)  # [T, 3, 3]
    keep = np.abs(np.linalg.det(homogeneous)) > 1e-6  # drop degenerate (zero-area) triangles
    affines = np.linalg.solve(homogeneous[keep], source_triangles[keep])  # [T', 3, 2]

    labels = triangle_labels(target_triangles[keep], size)
    coverage = labels >= 0
    labels = np.maximum(labels, 0)

    ys, xs = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    affines = affines.astype(np.float32)
    map_x = affines[labels, 0, 0] * xs + affines[labels, 1, 0] * ys + affines[labels, 2, 0]
    map_y = affines[labels, 0, 1] * xs + affines[labels, 1, 1] * ys + affines[labels, 2, 1]
    warped = cv2.remap(source_image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    warped[~coverage] = 0
    return warped, coverage


def triangle_labels(triangles: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """int32 [height, width]: the index of the triangle of `triangles` [T, 3, 2] each pixel lies
    in, -1 outside them all. Shared edges get a neighbour's label (whose affine map agrees there)."""
    labels = np.full(size, -1, dtype=np.int32)
    subpixel = 16
    for index, triangle in enumerate(triangles):
        cv2.fillConvexPoly(labels, np.round(triangle * subpixel).astype(np.int32), index, cv2.LINE_8, 4)
    return labels


def warp_face_onto(
    source_image: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The source face's texture on the target face's shape: [*size, 3] image and coverage mask."""
    source_points, target_points = face_points(source_landmarks), face_points(target_landmarks)
    return warp_triangles(source_image, source_points, target_points, triangulate(target_points), size)


def carried_occluders(
    source_occluders: np.ndarray,
    source_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    size: tuple[int, int],
    margin: float = 0.0,
) -> np.ndarray:
    """Where the source's occluders (a microphone, a hat's brim, a hand) land when its face is
    warped onto the target's shape: bool [*size]. The swap must not paste them there: what the
    source photo shows in those places is not its face. `margin` grows them by that many pixels,
    as the segmenter's edge may fall a little inside the occluder (a sunglasses frame)."""
    occluders = np.asarray(source_occluders, np.float32)
    if not (occluders > 0.5).any():
        return np.zeros(size, bool)
    warped, _ = warp_face_onto(occluders, source_landmarks, target_landmarks, size)
    carried = (warped > 0.5).astype(np.uint8)
    if margin > 0:
        width = 2 * int(round(margin)) + 1
        carried = cv2.dilate(carried, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    return carried > 0


def first_stage_composite(
    target_crop: np.ndarray,
    target_landmarks: np.ndarray,
    source_crop: np.ndarray,
    source_landmarks: np.ndarray,
    visible_mask: np.ndarray,
    shape_landmarks: np.ndarray | None = None,
    *,
    measured: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Doc 003's first face image: the source's face texture warped onto the target's landmarks,
    recoloured to the target's skin, and put in the target crop where the target's face is
    visible (occluders stay). Returns the composite (uint8) and the mask where it was put.

    All arrays are aligned crops of one size; landmarks are [106, 2] in crop coordinates and
    `visible_mask` is 1 on visible face skin of the target. `shape_landmarks` (default: the
    target's) is where the texture is warped to (`fswap.faces.shape.identity_shape`); the
    target's landmarks still bound where it is put. `measured` (default: where it is put) is
    where the two skins' colours are compared: not where the source's sunglasses land.
    """
    from fswap.faces.color import match_appearance
    from fswap.faces.masks import region_mask

    size = target_crop.shape[:2]
    destination = target_landmarks if shape_landmarks is None else shape_landmarks
    warped, coverage = warp_face_onto(source_crop, source_landmarks, destination, size)
    pasted = region_mask(target_landmarks, size, "face") * coverage * (np.asarray(visible_mask) > 0.5)
    compared = pasted if measured is None else pasted * (np.asarray(measured) > 0.5)
    warped = match_appearance(warped, target_crop, compared)
    alpha = cv2.GaussianBlur(pasted.astype(np.float32), (0, 0), max(size) / 128)[..., None] * pasted[..., None]
    composite = target_crop * (1.0 - alpha) + warped * alpha
    return np.clip(composite.round(), 0, 255).astype(np.uint8), pasted.astype(np.float32)
