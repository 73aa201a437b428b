"""Temporal smoothing: what should not jump from frame to frame, filtered by its own timestamps.

- `OneEuroFilter` (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cut-off rises with
  the signal's speed, steady when a face is still and quick when it moves.
- `FaceSmoother`: a face's landmarks split into its head pose (a similarity: position, size,
  roll, fitted to all 73 inner landmarks) and its shape in the head's own frame (expression), each
  one-euro filtered. A pan moves the pose fast while the shape stays put, so the shape's jitter is
  filtered hard even while the head moves, and the pose's, measured on 73 points, is small anyway.
- `LowPass`: an exponential moving average by the clock, for masks in the face's aligned crop.
- `ColourSmoother`: the swapped face's colour statistics (YCbCr mean and spread inside its blend
  mask) filtered over time, and the face re-coloured to them.

Every filter takes the frame's time in seconds, so a variable frame rate is smoothed by the clock,
not by the frame count, and `reset` starts it afresh (a cut, a face that comes back).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fswap.faces import Face
from fswap.faces.align import invert_matrix, similarity_transform, transform_points
from fswap.provenance.landmark_template import MEAN_SHAPE_106

#: The landmarks the head pose is fitted to: brows, eyes, nose and mouth (the jaw line slides
#: along the cheek as the head turns), as the watermark's frame is.
INNER_LANDMARKS = slice(33, 106)


def smoothing_factor(cutoff: float | np.ndarray, elapsed: float) -> float | np.ndarray:
    """The exponential smoothing weight of a first-order low-pass at `cutoff` Hz over `elapsed` s."""
    time_constant = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + time_constant / max(elapsed, 1e-6))


class OneEuroFilter:
    """One-euro filter of an array signal (any shape), element by element.

    Args:
        min_cutoff: Hz, the cut-off when the signal stands still (lower: steadier, more lag).
        beta: how fast the cut-off rises with the signal's speed (per unit of `scale` per second).
        derivative_cutoff: Hz, the cut-off of the speed estimate itself.
    """

    def __init__(self, min_cutoff: float, beta: float, derivative_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.derivative_cutoff = min_cutoff, beta, derivative_cutoff
        self.reset()

    def reset(self) -> None:
        self._value = self._speed = self._time = None

    def __call__(self, value: np.ndarray, time: float, scale: float | np.ndarray = 1.0) -> np.ndarray:
        """The filtered `value` at `time` s. `scale` divides the speed before it raises the
        cut-off, so that one `beta` serves any unit (pixels of a face of any size)."""
        value = np.asarray(value, np.float64)
        if self._value is None or time <= self._time:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time
            return value.copy()
        elapsed = time - self._time
        speed = (value - self._value) / elapsed
        self._speed = self._speed + smoothing_factor(self.derivative_cutoff, elapsed) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed) / scale
        self._value = self._value + smoothing_factor(cutoff, elapsed) * (value - self._value)
        self._time = time
        return self._value.copy()


class LowPass:
    """Exponential moving average by the clock: `cutoff` Hz, whatever the frame rate."""

    def __init__(self, cutoff: float):
        self.cutoff = cutoff
        self.reset()

    def reset(self) -> None:
        self._value = self._time = None

    def __call__(self, value: np.ndarray, time: float) -> np.ndarray:
        value = np.asarray(value, np.float32)
        if self._value is None or time <= self._time or self._value.shape != value.shape:
            self._value = value.copy()
        else:
            weight = float(smoothing_factor(self.cutoff, time - self._time))
            self._value = self._value + weight * (value - self._value)
        self._time = time
        return self._value.copy()


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """The 2x3 similarity taking a face's landmarks [106, 2] to the mean face shape (unit frame)."""
    points = np.asarray(landmarks, np.float64)
    return similarity_transform(points[INNER_LANDMARKS], MEAN_SHAPE_106[INNER_LANDMARKS])


def pose_parameters(pose: np.ndarray) -> np.ndarray:
    """[x, y, log scale, angle] of the face frame's centre in the image, from an image -> face
    frame similarity: a vector whose parts move smoothly as the head does."""
    face_to_image = invert_matrix(pose)
    scale = math.hypot(face_to_image[0, 0], face_to_image[1, 0])
    angle = math.atan2(face_to_image[1, 0], face_to_image[0, 0])
    centre = transform_points(np.array([[0.5, 0.5]]), face_to_image)[0]
    return np.array([centre[0], centre[1], math.log(scale), angle])


def pose_matrix(parameters: np.ndarray) -> np.ndarray:
    """The face frame -> image similarity of `pose_parameters`."""
    x, y, log_scale, angle = parameters
    scale = math.exp(log_scale)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = np.empty((2, 3))
    matrix[:, :2] = rotation
    matrix[:, 2] = np.array([x, y]) - rotation @ np.array([0.5, 0.5])
    return matrix


class FaceSmoother:
    """A tracked face's landmarks and keypoints, smoothed as head pose and shape (module docstring).

    The detector's 5 keypoints, which align the crops the networks see, come only when the
    detector ran; between its runs they follow the head pose from where they last sat on the face.
    """

    def __init__(self, pose_cutoff: float, pose_beta: float, shape_cutoff: float, shape_beta: float,
                 enabled: bool = True):
        self.enabled = enabled
        self._pose = OneEuroFilter(pose_cutoff, pose_beta)
        self._shape = OneEuroFilter(shape_cutoff, shape_beta)
        self._keypoints = OneEuroFilter(shape_cutoff, shape_beta)
        self._keypoint_shape = None  # [5, 2] in the face frame

    def reset(self) -> None:
        for smoother in (self._pose, self._shape, self._keypoints):
            smoother.reset()
        self._keypoint_shape = None

    def __call__(self, face: Face, time: float, detected: bool) -> Face:
        """`face` (raw landmarks, and keypoints when `detected`) with smoothed landmarks and keypoints."""
        pose = head_pose(face.landmarks)
        shape = transform_points(face.landmarks, pose)  # [106, 2] in the face frame
        if detected or self._keypoint_shape is None:
            keypoint_shape = transform_points(face.keypoints, pose)
            self._keypoint_shape = (self._keypoints(keypoint_shape, time) if self.enabled else keypoint_shape)
            if not self.enabled:  # as detected, bit for bit
                return face
        if self.enabled:
            parameters = pose_parameters(pose)
            scale = math.exp(parameters[2])
            # Speeds in face sizes per second (position), and as they are for log-size and roll.
            parameters = self._pose(parameters, time, scale=np.array([scale, scale, 1.0, 1.0]))
            face_to_image = pose_matrix(parameters)
            shape = self._shape(shape, time)
        else:
            face_to_image = invert_matrix(pose)
        landmarks = transform_points(shape, face_to_image)
        keypoints = transform_points(self._keypoint_shape, face_to_image)
        return Face(box=face.box, score=face.score, keypoints=keypoints, landmarks=landmarks, embedding=face.embedding)


#: RGB -> YCbCr (full range, without the offsets): a linear colour space, so a change of each
#: channel's mean and spread there is one affine map of RGB, applied in a single pass.
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_RGB = np.linalg.inv(_YCBCR)


class ColourSmoother:
    """The swapped face's colour relative to the target face it replaces, low-passed over time.

    Per frame, the appearance matching gives the swapped face the target skin's colour
    statistics, measured where the landmarks and the occlusion mask say the skin is: both move a
    little from frame to frame, and the face's tone shimmers. Here the swapped face's YCbCr mean
    and spread inside its blend mask are compared with the original frame's in the same place;
    that *difference* (an offset of the mean, a ratio of the spread) is low-passed, and the face
    re-coloured to the original's statistics with the smoothed difference. The frame's own light
    passes through at once (a lamp switched on, a cloud), only the swap's jitter is smoothed.
    """

    def __init__(self, cutoff: float, enabled: bool = True):
        self.enabled = enabled
        self._filter = LowPass(cutoff)

    def reset(self) -> None:
        self._filter.reset()

    def __call__(self, image: np.ndarray, original: np.ndarray, alpha: np.ndarray, window: tuple[int, int, int, int],
                 time: float) -> None:
        """Re-colour the swapped `image[y0:y1, x0:x1]` in place where `alpha` (float [y1-y0, x1-x0])
        is > 0; `original` is the frame before the swap."""
        if not self.enabled:
            return
        x0, y0, x1, y1 = window
        patch = image[y0:y1, x0:x1]
        # The statistics on every other pixel each way: a quarter of the work, the same figures.
        inside = (alpha[::2, ::2] > 0.5).astype(np.uint8)
        if cv2.countNonZero(inside) < 16:
            return
        mean, spread = _statistics(patch[::2, ::2], inside)
        target_mean, target_spread = _statistics(original[y0:y1:2, x0:x1:2], inside)
        smoothed = self._filter(np.concatenate([mean - target_mean, np.log(spread / target_spread)]), time)
        wanted_mean = target_mean + smoothed[:3]
        wanted_spread = target_spread * np.exp(smoothed[3:])
        gain = wanted_spread / spread
        # rgb' = RGB (diag(gain) (YCbCr rgb - mean) + wanted mean), as one 3x4 affine map.
        affine = np.hstack([_RGB @ np.diag(gain) @ _YCBCR, (_RGB @ (wanted_mean - gain * mean))[:, None]])
        # Only where the face was pasted: (1 - alpha) patch + alpha recoloured; where alpha is 0 the
        # pixel stays as it was, bit for bit.
        left, top, width, height = cv2.boundingRect((alpha > 0).astype(np.uint8))
        pasted = patch[top:top + height, left:left + width]
        recoloured = cv2.transform(pasted, affine.astype(np.float32))  # uint8: rounded and clipped
        weight = alpha[top:top + height, left:left + width, None]
        change = weight * (recoloured.astype(np.float32) - pasted)
        pasted[...] = np.where(weight > 0, pasted + change.round(), pasted).astype(np.uint8)


def _statistics(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YCbCr mean and spread [3] of an RGB uint8 image where `mask` (uint8) is set."""
    colours = cv2.transform(np.ascontiguousarray(image, np.float32), _YCBCR.astype(np.float32))
    mean, spread = cv2.meanStdDev(colours, mask=mask)
    return mean.ravel(), np.maximum(spread.ravel(), 1e-3)
