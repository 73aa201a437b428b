"""Pictures of what the analyzer found: boxes, indices, keypoints and landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.analyzer import Face

BOX_COLOUR = (40, 220, 120)
KEYPOINT_COLOUR = (255, 80, 60)
LANDMARK_COLOUR = (250, 220, 40)
#: The smallest font scale a face's number is drawn at (about 10 px tall): still readable.
MIN_FONT_SCALE = 0.35
#: A one-digit label is about this many pixels wide per unit of font scale, plus its margin.
LABEL_WIDTH_PER_SCALE = 30.0


def annotate_faces(image: np.ndarray, faces: list[Face], *, landmarks: bool = True) -> np.ndarray:
    """A copy of the RGB `image` with each face's box, index, keypoints and landmarks drawn."""
    canvas = image.copy()
    scale = max(image.shape[:2]) / 1000.0
    for index, face in enumerate(faces):
        x0, y0, x1, y1 = np.round(face.box).astype(int)
        # Sized for the photo, but never larger than the face: small faces in a crowd keep
        # their keypoints apart and their numbers out of each other's way.
        width = max(x1 - x0, 1)
        thickness = max(1, min(round(2 * scale), width // 24))
        cv2.rectangle(canvas, (x0, y0), (x1, y1), BOX_COLOUR, thickness, cv2.LINE_AA)
        if landmarks and face.landmarks is not None:
            for x, y in np.round(face.landmarks).astype(int):
                cv2.circle(canvas, (x, y), max(1, thickness - 1), LANDMARK_COLOUR, -1, cv2.LINE_AA)
        for x, y in np.round(face.keypoints).astype(int):
            cv2.circle(canvas, (x, y), max(1, min(thickness + 1, width // 16)), KEYPOINT_COLOUR, -1, cv2.LINE_AA)
        font_scale = max(MIN_FONT_SCALE, min(0.9 * scale, width / LABEL_WIDTH_PER_SCALE))
        _label(canvas, str(index), (x0, y0), font_scale, thickness)
    return canvas


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], font_scale: float, thickness: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, height), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    x, y = corner
    y = max(y, height + baseline + 2)
    cv2.rectangle(canvas, (x, y - height - baseline - 2), (x + width + 4, y), BOX_COLOUR, -1)
    cv2.putText(canvas, text, (x + 2, y - baseline), font, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
