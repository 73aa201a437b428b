"""Where a training photo may be occluded already: its own fringe, hat brim, sunglasses.

The segmenter's label is the landmark face region minus the occluders we paste
(`fswap.data.occluders`). A CelebA photo's *own* occluders lie inside that region too, so the
label calls them visible skin: the segmenter was taught that a real fringe is skin and a pasted
one is not, and it missed real fringes, brims and sunglasses on photos.

This marks those pixels as unknown, so they carry no label at all (`OccludedFace.known`). It
is a colour test against the photo's own skin, measured on the cheeks (between the eyes and the
mouth, away from the eyes, nose and mouth), applied where a photo's own occluders hang: above
the nose tip, outside the eyes, brows, nose and mouth. A beard or a moustache is below that
line and keeps its label. An eye is unknown when the whole of it, lashes and white included, is
darker than half the skin: it is behind a dark lens. The test flags some bare skin as well (a
highlight, a mole); that only withholds a label there, it never teaches a wrong one.
"""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.masks import LANDMARK_GROUPS, region_mask

#: A pixel is not the photo's skin when its CIE LAB colour lies further than this many robust
#: standard deviations from the cheeks' median (per channel, floored by `SPREAD_FLOOR`).
COLOUR_DISTANCE = 3.0
#: The least spread assumed per LAB channel (8-bit OpenCV LAB), so an evenly lit face does not
#: flag every pore.
SPREAD_FLOOR = np.array([6.0, 3.0, 3.0], np.float32)
#: An eye is behind a dark lens when even the brightest tenth of its surroundings is darker than
#: this share of the skin's lightness (a bare eye's white and lids are about as light as the skin).
LENS_DARKNESS = 0.5
_FEATURES = ("eyes", "brows", "nose", "mouth")


def own_occluders(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """bool [S, S]: pixels of the face region of an aligned crop that may be the photo's own occluders.

    Args:
        image: [S, S, 3] uint8 RGB aligned crop.
        landmarks: [106, 2] landmarks in crop coordinates.
    """
    size = image.shape[0]
    shape = (size, size)
    face = region_mask(landmarks, shape, "face") > 0.5
    features = np.zeros(shape, np.uint8)
    for region in _FEATURES:
        features |= (region_mask(landmarks, shape, region) > 0.5).astype(np.uint8)
    features = cv2.dilate(features, _square(size, 0.03)) > 0

    rows = np.arange(size, dtype=np.float64)[:, None]
    eyes = landmarks[list(LANDMARK_GROUPS["left_eye"] + LANDMARK_GROUPS["right_eye"])]
    mouth = landmarks[list(LANDMARK_GROUPS["mouth"])]
    nose_tip = landmarks[list(LANDMARK_GROUPS["nose"])][:, 1].max()
    cheeks = face & ~features & (rows > eyes[:, 1].max()) & (rows < mouth[:, 1].min())
    if cheeks.sum() < 20:  # a face too turned or too small to measure its skin
        return np.zeros(shape, bool)

    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    skin = lab[cheeks]
    median = np.median(skin, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(skin - median), axis=0), SPREAD_FLOOR)
    distance = np.sqrt((((lab - median) / spread) ** 2).sum(axis=-1))
    unknown = (face & ~features & (rows < nose_tip) & (distance > COLOUR_DISTANCE)).astype(np.uint8)
    unknown = cv2.morphologyEx(unknown, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0

    lightness = lab[..., 0]
    for eye in ("left_eye", "right_eye"):
        hull = region_mask(landmarks, shape, eye).astype(np.uint8)
        around = cv2.dilate(hull, _square(size, 0.05)) > 0
        if np.percentile(lightness[around], 90) < LENS_DARKNESS * median[0]:
            unknown |= face & (cv2.dilate(hull, _square(size, 0.08)) > 0)
    return unknown


def _square(size: int, fraction: float) -> np.ndarray:
    """A square structuring element `fraction` of the crop wide (odd, at least 3 px)."""
    side = max(3, 2 * int(round(fraction * size / 2)) + 1)
    return np.ones((side, side), np.uint8)
