"""Head pose from the 106 landmarks: a cheap yaw proxy for pairing faces, and a PnP estimate
of yaw, pitch and roll for evaluation."""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.masks import LANDMARK_GROUPS

#: 106-landmark indices for head pose: nose tip, chin, outer eye corners, mouth corners.
POSE_LANDMARKS = [86, 0, 35, 93, 52, 61]
#: A generic head (mm, y up), from OpenCV's head-pose example, matching POSE_LANDMARKS.
POSE_MODEL = np.array(
    [[0.0, 0.0, 0.0], [0.0, -330.0, -65.0], [-225.0, 170.0, -135.0], [225.0, 170.0, -135.0],
     [-150.0, -150.0, -125.0], [150.0, -150.0, -125.0]]
)

def head_pose(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from 106 landmarks, by PnP against a generic head."""
    height, width = shape[:2]
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    image_points = np.asarray(landmarks, dtype=np.float64)[POSE_LANDMARKS]
    model = POSE_MODEL * np.array([1.0, -1.0, 1.0])  # y down, as in images
    ok, rotation_vector, _ = cv2.solvePnP(model, image_points, camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return np.full(3, np.nan)
    rotation, _ = cv2.Rodrigues(rotation_vector)
    pitch = np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2]))
    yaw = np.degrees(np.arcsin(np.clip(-rotation[2, 0], -1, 1)))
    roll = np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))
    # The model's y axis is flipped to image coordinates, which reads as a half turn about the
    # camera axis: an upright face comes out at roll ±180. Wrap every angle into [-180, 180).
    return wrap_degrees(np.array([yaw, pitch, roll + 180.0]))


def wrap_degrees(angles: np.ndarray) -> np.ndarray:
    """Angles in degrees mapped into [-180, 180)."""
    return (np.asarray(angles, dtype=np.float64) + 180.0) % 360.0 - 180.0


def yaw_proxy(landmarks: np.ndarray) -> float:
    """Nose-tip position between the eye centres along the eye line, in [-1, 1] (0 = frontal)."""
    left = landmarks[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)
    right = landmarks[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0)
    nose_tip = landmarks[86]
    axis = right - left
    t = float(np.dot(nose_tip - left, axis) / max(np.dot(axis, axis), 1e-6))
    return float(np.clip(2 * t - 1, -1, 1))


#: Source faces whose `yaw_proxy` is within this of the best-matching one's (about 15 degrees of
#: head turn) count as turned as well for the texture choice (`closest_poses`).
POSE_TOLERANCE = 0.3


def closest_poses(
    source_landmarks: list[np.ndarray],
    target_landmarks: list[np.ndarray],
    covered: list[bool] | None = None,
    mirrored: list[bool] | None = None,
) -> list[int]:
    """For each target face, the index of the source face its texture is warped from, with
    several source photos: the one whose head is turned most like it (`yaw_proxy`), except that
    a largely `covered` source (sunglasses, a hat: what covers it is pasted with the texture)
    gives way to an uncovered one turned within `POSE_TOLERANCE` as well, and a `mirrored` one
    (`fswap.faces.mirror`) to a photo as given turned within `POSE_TOLERANCE` as well."""
    source_yaws = np.array([yaw_proxy(landmarks) for landmarks in source_landmarks])
    covered_sources = np.zeros(len(source_yaws), bool) if covered is None else np.asarray(covered, bool)
    mirrored_sources = np.zeros(len(source_yaws), bool) if mirrored is None else np.asarray(mirrored, bool)
    choices = []
    for landmarks in target_landmarks:
        turn = np.abs(source_yaws - yaw_proxy(landmarks))
        near = np.flatnonzero(turn <= turn.min() + POSE_TOLERANCE)
        choices.append(int(min(near, key=lambda i: (covered_sources[i], mirrored_sources[i], turn[i]))))
    return choices
