"""Cuts: where a clip jumps to another shot, and nothing of the last frame should carry over.

A cut changes both where things are and which colours the frame holds. A pan, a zoom or a turning
head moves things but keeps the colours; a slow change of light shifts the colours a little and
moves nothing. So a frame begins a new shot when, against the frame before, both its small
blurred copy (32 px) differs by more than `CUT_DIFFERENCE` grey levels on average and its colour
histogram by more than `CUT_DISTANCE` (Bhattacharyya). Measured on clips of the t1.jpg faces
(`fswap.video.known_motion`): panned, zoomed, turned and re-lit over 16 frames, consecutive frames
differ by at most 6 grey levels (histograms by up to 0.35, where the flat background crosses a
histogram bin); two different faces on the same grey ground by 16 to 36 grey levels and 0.14 to 0.51.
"""

from __future__ import annotations

import cv2
import numpy as np

CUT_DIFFERENCE = 12.0
CUT_DISTANCE = 0.1
THUMBNAIL = 32  # px, the longer side of the copy compared pixel by pixel
HISTOGRAM_THUMBNAIL = 64  # px, of the copy whose colours are counted


class CutDetector:
    """Says, frame by frame, whether this frame begins a new shot."""

    def __init__(self, difference: float = CUT_DIFFERENCE, distance: float = CUT_DISTANCE):
        self.difference, self.distance = difference, distance
        self._previous = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, image: np.ndarray) -> bool:
        current = (_thumbnail(image), frame_histogram(image))
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        difference = float(np.abs(current[0] - previous[0]).mean())
        return difference > self.difference and histogram_distance(previous[1], current[1]) > self.distance


def _small(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(_small(image, THUMBNAIL).astype(np.float32), (0, 0), 1.0)


def frame_histogram(image: np.ndarray) -> np.ndarray:
    """A normalised hue-saturation and value histogram of an RGB frame's small copy."""
    hsv = cv2.cvtColor(_small(image, HISTOGRAM_THUMBNAIL), cv2.COLOR_RGB2HSV)
    colour = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
    brightness = cv2.calcHist([hsv], [2], None, [16], [0, 256]).ravel()
    histogram = np.concatenate([colour / max(colour.sum(), 1), brightness / max(brightness.sum(), 1)]) / 2.0
    return histogram.astype(np.float32)


def histogram_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Bhattacharyya distance between two `frame_histogram`s, 0 (same) to 1."""
    return float(cv2.compareHist(first, second, cv2.HISTCMP_BHATTACHARYYA))
