"""The invisible watermark in every swapped frame (`fswap.provenance.watermark`, scheme v1).

A photo swap finds its faces again in the result to mark them where `fswap verify` will read them
(`embed_watermark`), which runs the detector on every frame a second time. A video knows where each
swapped face is: the landmark model reads the swapped face in its tracked box (a quarter of the
detector's cost), and the mark is written in the frame those landmarks give, at twice a photo's
strength (`VIDEO_STEP`): a frame's mark changes with its face from frame to frame, and a platform's
re-encode drops what changes faster than the picture; at a photo's strength a 720p clip re-encoded at
CRF 28 and half size lost it in some frames (benchmarks/video_watermark.py).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from fswap.faces import FaceAnalyzer
from fswap.provenance.watermark import (
    FRAME_SIZE,
    GRID,
    MIN_CELL_PIXELS,
    VIDEO_STEP,
    frame_matrix,
    mark_face,
    matrix_scale,
    payload_bits,
    payload_tag,
)
from fswap.video.tracking import landmarks_in_box


@functools.cache
def _bits(checkpoint: str | None) -> np.ndarray:
    return payload_bits(payload_tag(checkpoint))


def mark_faces(image: np.ndarray, boxes: list[np.ndarray], analyzer: FaceAnalyzer, checkpoint: str | None,
               step: float = VIDEO_STEP) -> int:
    """Write the watermark, in place, into the face in each of `boxes` of the swapped frame
    `image` (on the lattice of `step`, one of `fswap.provenance.watermark.STEPS`); return how many
    faces were large enough (about 20 px) to carry it."""
    if not boxes:
        return 0
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    marked = 0
    for box in boxes:
        matrix = frame_matrix(landmarks_in_box(analyzer, bgr, box))
        if (FRAME_SIZE / GRID) / matrix_scale(matrix) >= MIN_CELL_PIXELS:
            mark_face(image, matrix, _bits(checkpoint), step=step)
            marked += 1
    return marked
