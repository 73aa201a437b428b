"""Pictures of what the analyzer found: boxes, indices, keypoints and landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.analyzer import Face

BOX_COLOUR = (40, 220, 120)
KEYPOINT_COLOUR = (255, 80, 60)
LANDMARK_COLOUR = (250, 220, 40)


def annotate_faces(image: np.ndarray, faces: list[Face], *, landmarks: bool = True) -> np.ndarray:
    """A copy of the RGB `image` with each face's box, index, keypoints and landmarks drawn."""
    canvas = image.copy()
    scale = max(image.shape[:2]) / 1000.0
    thickness = max(1, round(2 * scale))
    for index, face in enumerate(faces):
        x0, y0, x1, y1 = np.round(face.box).astype(int)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), BOX_COLOUR, thickness, cv2.LINE_AA)
        if landmarks and face.landmarks is not None:
            for x, y in np.round(face.landmarks).astype(int):
                cv2.circle(canvas, (x, y), max(1, thickness - 1), LANDMARK_COLOUR, -1, cv2.LINE_AA)
        for x, y in np.round(face.keypoints).astype(int):
            cv2.circle(canvas, (x, y), thickness + 1, KEYPOINT_COLOUR, -1, cv2.LINE_AA)
        _label(canvas, str(index), (x0, y0), max(0.5, 0.9 * scale), thickness)
    return canvas


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], font_scale: float, thickness: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, height), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    x, y = corner
    y = max(y, height + baseline + 2)
    cv2.rectangle(canvas, (x, y - height - baseline - 2), (x + width + 4, y), BOX_COLOUR, -1)
    cv2.putText(canvas, text, (x + 2, y - baseline), font, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
