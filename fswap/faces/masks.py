"""Region masks from insightface's 106 landmarks (2d106det): face hull, eyes, brows, mouth, nose.

Index groups were read off the model's output on a frontal face (left = image left).
"""

from __future__ import annotations

import cv2
import numpy as np

LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "contour": tuple(range(0, 33)),
    "left_eye": tuple(range(33, 43)),
    "left_brow": tuple(range(43, 52)),
    "mouth": tuple(range(52, 72)),
    "nose": tuple(range(72, 87)),
    "right_eye": tuple(range(87, 97)),
    "right_brow": tuple(range(97, 106)),
}

#: Regions a caller can ask for, each the union of the convex hulls of its groups.
REGIONS: dict[str, tuple[str, ...]] = {
    "face": ("contour", "left_brow", "right_brow"),
    "eyes": ("left_eye", "right_eye"),
    "left_eye": ("left_eye",),
    "right_eye": ("right_eye",),
    "brows": ("left_brow", "right_brow"),
    "mouth": ("mouth",),
    "nose": ("nose",),
    "inner_face": ("left_eye", "right_eye", "left_brow", "right_brow", "nose", "mouth"),
}

#: The lips' inner edge, in order round the opening: left corner, upper lip, right corner, lower lip.
INNER_LIPS: tuple[int, ...] = (65, 66, 62, 70, 69, 57, 60, 54)
#: The mouth's outer corners (left, right).
MOUTH_CORNERS: tuple[int, int] = (52, 61)
#: An occluder within this many `band`s of the face's outline reaches in from outside the face
#: (`occluders_from_outside`).
OUTLINE_REACH = 2.0


def region_mask(landmarks: np.ndarray, shape: tuple[int, int], region: str = "face") -> np.ndarray:
    """A float32 [H, W] mask (1 inside) of `region` drawn from [106, 2] landmarks.

    For "face", the hull is raised above the brows by a fifth of the face height so the
    forehead is included.
    """
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {sorted(REGIONS)}")
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (106, 2):
        raise ValueError(f"expected [106, 2] landmarks, got {landmarks.shape}")
    mask = np.zeros(shape[:2], dtype=np.uint8)
    if region == "face":
        points = np.concatenate([landmarks[list(LANDMARK_GROUPS[g])] for g in REGIONS["face"]])
        _fill_hull(mask, np.concatenate([points, _forehead(landmarks)]))
        return mask.astype(np.float32)
    if region == "inner_face":
        points = np.concatenate([landmarks[list(LANDMARK_GROUPS[g])] for g in REGIONS[region]])
        _fill_hull(mask, points)
        return mask.astype(np.float32)
    for group in REGIONS[region]:
        _fill_hull(mask, landmarks[list(LANDMARK_GROUPS[group])])
    return mask.astype(np.float32)


def mouth_opening(landmarks: np.ndarray) -> float:
    """How far the mouth is open: the area between the lips' inner edges over the squared
    width of the mouth (0 when the lips meet; about 0.15 for a broad smile showing teeth)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    inner = landmarks[list(INNER_LIPS)]
    x, y = inner[:, 0], inner[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    width = float(np.linalg.norm(landmarks[MOUTH_CORNERS[1]] - landmarks[MOUTH_CORNERS[0]]))
    return area / max(width, 1e-6) ** 2


def mouth_interior(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """bool [H, W]: inside the lips' inner edge (teeth, tongue, the dark of an open mouth)."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    points = np.round(np.asarray(landmarks, dtype=np.float64)[list(INNER_LIPS)]).astype(np.int32)
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8)
    return mask > 0


def _forehead(landmarks: np.ndarray) -> np.ndarray:
    """Brow points lifted along the face's vertical axis (chin → brows) by 20 % of its height."""
    brows = landmarks[list(LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["right_brow"])]
    chin = landmarks[0]
    up = brows.mean(axis=0) - chin
    return brows + 0.2 * up


def _fill_hull(mask: np.ndarray, points: np.ndarray) -> None:
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8)


def visible_skin(face_mask: np.ndarray, visible: np.ndarray, band: float, speck: float | None = None) -> np.ndarray:
    """The face region minus its occluders: float32 [H, W], 1 where the swap may be pasted.

    `face_mask` is the landmark face region, `visible` the segmenter's probability of visible
    face skin. Two kinds of occluded region are the segmenter's noise, not occluders:
    - slivers along the outline: it was trained to find the face's outline as well as its
      occluders, and there, where the landmarks already give the edge, its guess lands a pixel or
      two off. An occluded region counts only when it reaches more than `band` pixels inside
      the face; one that does is cut whole, up to the face's edge.
    - specks: a few dark pixels at an eye corner, a nostril or between the lips. A region of
      fewer than `speck` pixels (default: a square of side 2 x `band`) is not cut; a hole there
      would show the target's own eye or mouth through the swap.
    """
    face = np.asarray(face_mask) > 0.5
    occluded = (face & (np.asarray(visible) <= 0.5)).astype(np.uint8)
    if not occluded.any():
        return face.astype(np.float32)
    speck = (2.0 * band) ** 2 if speck is None else speck
    width = 2 * int(round(band)) + 1
    core = cv2.erode(face.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(occluded, connectivity=8)
    deep = np.zeros(count, bool)
    deep[np.unique(labels[(core > 0) & (occluded > 0)])] = True
    cut = deep & (stats[:, cv2.CC_STAT_AREA] >= speck)
    cut[0] = False  # the background label
    return (face & ~cut[labels]).astype(np.float32)


def occluded_skin(face_mask: np.ndarray, visible: np.ndarray, band: float) -> np.ndarray:
    """The face's occluders as `visible_skin` counts them: bool [H, W]."""
    return (np.asarray(face_mask) > 0.5) & (visible_skin(face_mask, visible, band) <= 0.5)


def occluders_from_outside(landmarks: np.ndarray, occluded: np.ndarray, band: float) -> np.ndarray:
    """The regions of `occluded` that reach in over the face's outline and cover no eye: bool,
    `occluded`'s shape. A fringe or a lock of hair from the side, a hat's brim, a hand or a
    microphone coming in from the edge, the photo's own edge. A region counts when it comes
    within `OUTLINE_REACH` x `band` px of the outline (the segmenter's edge falls a little
    inside the face) and touches neither eye's outline; glasses, a lock over an eye and whatever
    lies wholly inside the face do not count.

    Args:
        landmarks: [106, 2] in the coordinates of `occluded`.
        occluded: bool [H, W], the face's occluders (`occluded_skin`).
        band: px, as in `visible_skin`.
    """
    occluded = np.asarray(occluded, bool)
    if not occluded.any():
        return np.zeros_like(occluded)
    face = region_mask(landmarks, occluded.shape, "face") > 0.5
    width = 2 * int(round(OUTLINE_REACH * band)) + 1
    core = cv2.erode(face.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))) > 0
    eyes = region_mask(landmarks, occluded.shape, "eyes") > 0.5
    count, labels = cv2.connectedComponents(occluded.astype(np.uint8), connectivity=8)
    reaches_outline, on_an_eye = np.zeros(count, bool), np.zeros(count, bool)
    reaches_outline[np.unique(labels[occluded & ~core])] = True
    on_an_eye[np.unique(labels[occluded & eyes])] = True
    outside = reaches_outline & ~on_an_eye
    outside[0] = False  # the background label
    return outside[labels]


#: A pixel of a face's skin area is no skin when its hue lies this many robust spreads from the
#: face's typical skin's, or it is darker by as many spreads and at least `DARKER_THAN_SKIN`
#: (of 255 LAB lightness levels: light varies over a face far more than skin colour does).
UNLIKE_SKIN = 3.5
DARKER_THAN_SKIN = 40.0


def unlike_skin(crop: np.ndarray, landmarks: np.ndarray, band: float) -> np.ndarray:
    """bool [H, W]: where `crop`'s face (`landmarks` [106, 2] in it) shows something that is not
    its skin, on skin that should be: a fringe, a strand of hair, a frame, a dark cast shadow.

    The segmenter misses some of these (a fringe of the face's own tone of hair, a shadow); a
    colour test finds those that reach in over the face's outline. Skin is what the middle of the face shows (a robust mean and spread
    in CIE LAB); eyes, brows and lips are not tested. Regions smaller than a square
    of side 2 x `band` are dropped.
    """
    face = region_mask(landmarks, crop.shape[:2], "face") > 0.5
    features = np.maximum.reduce([region_mask(landmarks, crop.shape[:2], name) for name in ("eyes", "brows", "mouth")])
    width = 2 * int(round(band)) + 1
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))) > 0
    tested = face & ~features
    if tested.sum() < 64:
        return np.zeros(crop.shape[:2], bool)
    lab = cv2.cvtColor(np.asarray(crop, np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    # The typical skin is measured in the middle of the face (nose, inner cheeks), where least
    # hair or shadow falls; the whole skin area is tested.
    middle = (region_mask(landmarks, crop.shape[:2], "inner_face") > 0.5) & tested
    pixels = lab[middle] if middle.sum() >= 64 else lab[tested]
    centre = np.median(pixels, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(pixels - centre), axis=0), 2.0)
    hue = np.sqrt((((lab[..., 1:] - centre[1:]) / spread[1:]) ** 2).sum(axis=2))
    # Hair and frames are mostly darker than the skin, by more than the light varies over it.
    dark = centre[0] - lab[..., 0] > max(UNLIKE_SKIN * spread[0], DARKER_THAN_SKIN)
    outliers = (((hue > UNLIKE_SKIN) | dark) & tested).astype(np.uint8)
    outliers = cv2.morphologyEx(outliers, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(outliers, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= (2.0 * band) ** 2
    keep[0] = False
    # Only what reaches in over the outline (hair, a brim, a hand): inside the face a dark patch
    # is more often its own shadow or an open mouth than something covering it.
    return occluders_from_outside(landmarks, keep[labels], band)
