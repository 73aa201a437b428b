"""Synthetic occluders for aligned faces: the training data for the occlusion segmenter.

No occlusion data set can be had offline, so we make one (doc 000): hands, glasses,
sunglasses, hair strands, fringes and locks of real hair (the photo's own, from above the face),
hat brims, microphones, cut-outs of non-face photos and random textured shapes are pasted on
aligned face crops. The label is the face-skin region from the 106
landmarks minus the occluder; where the photo may have occluders of its own, it is unknown
(`fswap.data.own_occluders`). Shadows and blur are added too, but they are *not*
occlusions: the label keeps those pixels visible, so the segmenter learns the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from fswap.data.own_occluders import own_occluders
from fswap.faces.masks import LANDMARK_GROUPS, region_mask

Rng = np.random.Generator


@dataclass
class OccludedFace:
    image: np.ndarray  # [S, S, 3] uint8, the crop with occluders pasted
    visible_mask: np.ndarray  # [S, S] float32, 1 = visible face skin (the label)
    occluder_mask: np.ndarray  # [S, S] float32, 1 = occluder pixel
    kinds: list[str]
    original: np.ndarray  # [S, S, 3] uint8, the crop before pasting
    landmarks: np.ndarray  # [106, 2] in crop coordinates

    @cached_property
    def known(self) -> np.ndarray:
        """[S, S] float32, 1 = the label is trusted; 0 = the photo's own occluder may be there
        (`fswap.data.own_occluders`), under none of ours, so it is neither skin nor occluder.
        Worked out when first asked for: only the segmenter's training reads it."""
        return 1.0 - own_occluders(self.original, self.landmarks) * (1.0 - self.occluder_mask)


@lru_cache(maxsize=1)
def _texture_photos() -> tuple[np.ndarray, ...]:
    """Non-face photos shipped with scikit-image (public domain / CC0), for cut-outs and textures."""
    from skimage import data

    photos = []
    for name in (
        "coffee",
        "chelsea",
        "rocket",
        "coins",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "brick",
        "grass",
        "gravel",
        "rough_wall",
        "moon",
    ):
        try:
            image = getattr(data, name)()
        except Exception:  # noqa: BLE001 - some sample images need optional downloads; skip those
            continue
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return tuple(photos)


def _texture(rng: Rng, size: int) -> np.ndarray:
    photos = _texture_photos()
    if not photos or rng.random() < 0.3:
        colour = rng.integers(0, 256, 3)
        noise = rng.normal(0, rng.uniform(2, 30), (size, size, 1))
        return np.clip(colour + noise, 0, 255).astype(np.uint8)
    photo = photos[rng.integers(len(photos))]
    scale = rng.uniform(0.3, 1.0) * size / min(photo.shape[:2]) * 2
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    photo = _pad_to(photo, size)
    y = rng.integers(0, photo.shape[0] - size + 1)
    x = rng.integers(0, photo.shape[1] - size + 1)
    return photo[y : y + size, x : x + size].copy()


def _pad_to(image: np.ndarray, size: int) -> np.ndarray:
    pad_y, pad_x = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    return cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101) if pad_y or pad_x else image


def _skin_colour(rng: Rng, image: np.ndarray, face: np.ndarray) -> np.ndarray:
    """A skin tone: this face's own (a hand of the same person) or a random one."""
    if rng.random() < 0.5 and face.sum() > 10:
        colour = image[face > 0].mean(axis=0)
    else:
        colour = np.array([rng.uniform(60, 240), 0, 0])
        colour[1] = colour[0] * rng.uniform(0.6, 0.85)
        colour[2] = colour[1] * rng.uniform(0.7, 0.9)
    return np.clip(colour * rng.uniform(0.85, 1.15), 0, 255)


def _shade(rng: Rng, alpha: np.ndarray, colour: np.ndarray, size: int) -> np.ndarray:
    """A flat colour with a soft light gradient, so pasted shapes are not cartoon-flat."""
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-6
    ys, xs = np.mgrid[0:size, 0:size] / size - 0.5
    light = 1.0 + rng.uniform(0.1, 0.4) * (xs * direction[0] + ys * direction[1])
    return np.clip(colour[None, None] * light[..., None], 0, 255)


def hand(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    size = image.shape[0]
    alpha = np.zeros((size, size), np.float32)
    anchor = landmarks[rng.choice([0, 52, 61, 72, 16, 32])] + rng.normal(0, size * 0.05, 2)
    angle = rng.uniform(0, 2 * np.pi)
    palm = (size * rng.uniform(0.12, 0.2), size * rng.uniform(0.15, 0.25))
    centre = anchor + np.array([np.cos(angle), np.sin(angle)]) * size * 0.2
    cv2.ellipse(alpha, tuple(np.int32(centre)), tuple(np.int32(palm)), np.degrees(angle), 0, 360, 1.0, -1)
    for finger in range(rng.integers(2, 6)):
        spread = angle + np.pi + (finger - 2) * rng.uniform(0.2, 0.35)
        start = centre + np.array([np.cos(spread), np.sin(spread)]) * palm[0] * 0.8
        end = start + np.array([np.cos(spread), np.sin(spread)]) * size * rng.uniform(0.12, 0.25)
        cv2.line(
            alpha,
            tuple(np.int32(start)),
            tuple(np.int32(end)),
            1.0,
            max(2, int(size * rng.uniform(0.04, 0.06))),
        )
    return alpha, _shade(rng, alpha, _skin_colour(rng, image, face), size)


def _spectacles(rng: Rng, landmarks: np.ndarray, size: int, lenses: bool) -> tuple[np.ndarray, np.ndarray]:
    """A frame around both eyes (bridge and temples included), and the lenses' area: two [S, S] masks."""
    frame = np.zeros((size, size), np.float32)
    lens = np.zeros((size, size), np.float32)
    thickness = max(1, int(size * rng.uniform(0.01, 0.03)))
    eyes = [landmarks[list(LANDMARK_GROUPS[name])].mean(axis=0) for name in ("left_eye", "right_eye")]
    distance = np.linalg.norm(eyes[1] - eyes[0])
    tilt = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    wide, tall = (rng.uniform(0.45, 0.62), rng.uniform(0.3, 0.5)) if lenses else (rng.uniform(0.38, 0.5), rng.uniform(0.25, 0.38))
    axes = (int(distance * wide), int(distance * tall))
    drop = np.array([0.0, distance * rng.uniform(0.0, 0.12)]) if lenses else np.zeros(2)  # aviators hang low
    for eye in eyes:
        centre = tuple(np.int32(eye + drop))
        cv2.ellipse(lens, centre, axes, tilt, 0, 360, 1.0, -1)
        cv2.ellipse(frame, centre, axes, tilt, 0, 360, 1.0, thickness)
    inner = [eye + (eyes[1 - i] - eye) * (axes[0] / distance) for i, eye in enumerate(eyes)]
    cv2.line(frame, tuple(np.int32(inner[0])), tuple(np.int32(inner[1])), 1.0, thickness)
    for eye, side in zip(eyes, (-1, 1), strict=True):
        outer = eye + side * (eyes[1] - eyes[0]) / distance * axes[0]
        temple = outer + side * (eyes[1] - eyes[0]) / distance * distance * 0.6
        cv2.line(frame, tuple(np.int32(outer)), tuple(np.int32(temple)), 1.0, thickness)
    return frame, lens


def glasses(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    """Clear glasses: only the frame hides the face."""
    size = image.shape[0]
    frame, _ = _spectacles(rng, landmarks, size, lenses=False)
    colour = rng.integers(0, 80, 3) if rng.random() < 0.7 else rng.integers(0, 256, 3)
    return frame, _shade(rng, frame, colour.astype(np.float64), size)


def sunglasses(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    """Dark or tinted lenses, darker at the top, with a reflection, in a frame."""
    size = image.shape[0]
    frame, lens = _spectacles(rng, landmarks, size, lenses=True)
    alpha = np.maximum(frame, lens)
    tint = rng.integers(0, 50, 3) if rng.random() < 0.75 else rng.integers(0, 200, 3)
    ys = np.linspace(-1, 1, size)[:, None, None]
    colour = tint[None, None].astype(np.float64) * (1.0 + rng.uniform(0.0, 0.6) * ys)
    if rng.random() < 0.7:  # a soft reflection of the sky or a window
        glint = np.zeros((size, size), np.float32)
        centre = tuple(np.int32(landmarks[rng.choice([35, 89])] + rng.normal(0, size * 0.02, 2)))
        cv2.ellipse(glint, centre, (int(size * 0.05), int(size * 0.02)), rng.uniform(0, 180), 0, 360, 1.0, -1)
        glint = cv2.GaussianBlur(glint, (0, 0), size * 0.01) * lens
        colour = colour + rng.uniform(60, 180) * glint[..., None]
    colour = np.where(frame[..., None] > 0, rng.integers(0, 60, 3), colour)
    return alpha, np.clip(colour, 0, 255)


def hair(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    size = image.shape[0]
    alpha = np.zeros((size, size), np.float32)
    start_side = rng.uniform(0, size, 2)
    brow = landmarks[list(LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["right_brow"])].mean(axis=0)
    for _ in range(rng.integers(8, 40)):
        points = [start_side + rng.normal(0, size * 0.1, 2)]
        target = brow + rng.normal(0, size * 0.15, 2)
        for step in range(1, 6):
            points.append(points[0] + (target - points[0]) * step / 5 + rng.normal(0, size * 0.03, 2))
        cv2.polylines(alpha, [np.int32(points)], False, 1.0, max(1, int(size * rng.uniform(0.004, 0.015))))
    alpha = np.clip(cv2.GaussianBlur(alpha, (3, 3), 0) * 1.3, 0, 1)
    colour = np.array([rng.uniform(10, 200)] * 3) * np.array(
        [1.0, rng.uniform(0.7, 0.95), rng.uniform(0.5, 0.85)]
    )
    return alpha, _shade(rng, alpha, colour, size)


def microphone(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    size = image.shape[0]
    alpha = np.zeros((size, size), np.float32)
    mouth = landmarks[list(LANDMARK_GROUPS["mouth"])].mean(axis=0) + rng.normal(0, size * 0.04, 2)
    radius = int(size * rng.uniform(0.07, 0.12))
    angle = rng.uniform(np.pi * 0.3, np.pi * 0.7)
    handle_end = mouth + np.array([np.cos(angle), np.sin(angle)]) * size * 0.6
    cv2.line(alpha, tuple(np.int32(mouth)), tuple(np.int32(handle_end)), 1.0, int(radius * 0.8))
    cv2.circle(alpha, tuple(np.int32(mouth)), radius, 1.0, -1)
    colour = _shade(rng, alpha, rng.integers(10, 90, 3).astype(np.float64), size)
    mesh = (np.indices((size, size)).sum(axis=0) % 4 < 2)[..., None] * rng.uniform(20, 60)
    return alpha, np.clip(colour + mesh, 0, 255)


def cutout(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    size = image.shape[0]
    alpha = np.zeros((size, size), np.float32)
    centre = landmarks[rng.integers(len(landmarks))] + rng.normal(0, size * 0.1, 2)
    count = rng.integers(3, 9)
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = size * rng.uniform(0.08, 0.3, count)
    polygon = centre + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    if rng.random() < 0.5:
        cv2.fillPoly(alpha, [np.int32(polygon)], 1.0)
    else:
        axes = (int(radii.max()), int(radii.min()))
        cv2.ellipse(alpha, tuple(np.int32(centre)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    return alpha, _texture(rng, size).astype(np.float64)


def _hair_texture(rng: Rng, image: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Real hair for fringes and locks: the crop's own rows above the face, where its hair
    usually is, stretched over the whole crop; a hair colour when there is no room above.
    A vertical grain is laid over either, as strands would give it."""
    size = image.shape[0]
    rows, columns = np.nonzero(face.any(axis=1))[0], np.nonzero(face.any(axis=0))[0]
    top = int(rows.min()) if len(rows) else 0
    if top >= 6 and rng.random() < 0.8:
        strip = image[: top - 2, columns.min() : columns.max() + 1]
        texture = cv2.resize(strip, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    else:
        level = rng.uniform(10, 220)
        colour = np.array([level, level * rng.uniform(0.7, 0.95), level * rng.uniform(0.5, 0.85)])
        texture = np.broadcast_to(colour, (size, size, 3)).astype(np.float64)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (1, size)).astype(np.float32), (0, 0), sigmaX=0.8)
    return np.clip(texture * (1.0 + rng.uniform(0.05, 0.25) * grain[..., None]), 0, 255)


def _brow_line(landmarks: np.ndarray) -> float:
    return float(landmarks[list(LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["right_brow"])][:, 1].mean())


def fringe(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    """Bangs: hair hanging from above the face to about the brows, straight or swept to one side,
    with a ragged lower edge."""
    size = image.shape[0]
    columns = np.nonzero(face.any(axis=0))[0]
    left, right = (columns.min(), columns.max()) if len(columns) else (0, size - 1)
    xs = np.linspace(left - 0.05 * size, right + 0.05 * size, 24)
    depth = _brow_line(landmarks) + size * rng.uniform(-0.1, 0.06)
    slope = rng.uniform(-0.5, 0.5) if rng.random() < 0.5 else 0.0
    ragged = size * rng.uniform(0.0, 0.03) * np.sin(xs / size * rng.uniform(20, 60) + rng.uniform(0, 6))
    edge = depth + slope * (xs - xs.mean()) + ragged + rng.normal(0, size * 0.006, len(xs))
    polygon = np.concatenate([np.stack([xs, edge], axis=1), [[xs[-1], 0.0], [xs[0], 0.0]]])
    alpha = np.zeros((size, size), np.float32)
    cv2.fillPoly(alpha, [np.int32(np.round(polygon))], 1.0)
    return alpha, _hair_texture(rng, image, face)


def lock(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    """A thick lock of hair falling from the top of the head across one eye or cheek."""
    size = image.shape[0]
    side = rng.choice(["left_eye", "right_eye"])
    eye = landmarks[list(LANDMARK_GROUPS[side])].mean(axis=0)
    start = np.array([eye[0] + rng.normal(0, size * 0.1), 0.0])
    end = eye + np.array([rng.normal(0, size * 0.08), size * rng.uniform(0.0, 0.3)])
    points = [start + (end - start) * t + rng.normal(0, size * 0.025, 2) for t in np.linspace(0, 1, 6)]
    alpha = np.zeros((size, size), np.float32)
    cv2.polylines(alpha, [np.int32(points)], False, 1.0, max(3, int(size * rng.uniform(0.05, 0.16))))
    return alpha, _hair_texture(rng, image, face)


def brim(rng: Rng, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray):
    """A hat's brim or a cap's peak across the forehead, its lower edge curved."""
    size = image.shape[0]
    centre_x = landmarks[:, 0].mean() + rng.normal(0, size * 0.03)
    lower = _brow_line(landmarks) - size * rng.uniform(-0.05, 0.08)
    axes = (int(size * rng.uniform(0.35, 0.6)), int(size * rng.uniform(0.05, 0.2)))
    alpha = np.zeros((size, size), np.float32)
    cv2.ellipse(alpha, (int(centre_x), int(lower - axes[1])), axes, rng.uniform(-10, 10), 0, 360, 1.0, -1)
    alpha[: max(0, int(lower - axes[1]))] = 1.0  # the crown above the brim
    if rng.random() < 0.5:
        colour = _shade(rng, alpha, rng.integers(0, 256, 3).astype(np.float64), size)
    else:
        colour = _texture(rng, size).astype(np.float64)
    return alpha, colour


OCCLUDERS: dict[str, Callable] = {
    "hand": hand,
    "glasses": glasses,
    "sunglasses": sunglasses,
    "hair": hair,
    "microphone": microphone,
    "cutout": cutout,
    "fringe": fringe,
    "lock": lock,
    "brim": brim,
}


def add_shadow(rng: Rng, image: np.ndarray) -> np.ndarray:
    """Darken a soft random region: a lighting change, not an occlusion."""
    size = image.shape[0]
    shadow = np.zeros((size, size), np.float32)
    centre = rng.uniform(0, size, 2)
    cv2.ellipse(
        shadow,
        tuple(np.int32(centre)),
        (int(size * rng.uniform(0.2, 0.6)), int(size * rng.uniform(0.2, 0.6))),
        rng.uniform(0, 180),
        0,
        360,
        1.0,
        -1,
    )
    shadow = cv2.GaussianBlur(shadow, (0, 0), size * 0.08)
    return np.clip(image * (1 - rng.uniform(0.2, 0.6) * shadow[..., None]), 0, 255)


def occlude(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: Rng,
    *,
    max_occluders: int = 3,
    p_none: float = 0.2,
    kinds: list[str] | None = None,
) -> OccludedFace:
    """Paste 0..`max_occluders` random occluders on an aligned face crop and return it with its label.

    Args:
        image: [S, S, 3] uint8 aligned crop.
        landmarks: [106, 2] landmarks in crop coordinates.
        rng: a numpy Generator (seeded for a reproducible validation set).
        kinds: draw occluders from these `OCCLUDERS` only (default: all of them).
    """
    choices = list(OCCLUDERS) if kinds is None else list(kinds)
    unknown = set(choices) - set(OCCLUDERS)
    if unknown or not choices:
        raise ValueError(f"unknown occluder kinds {sorted(unknown)}; choose from {sorted(OCCLUDERS)}")
    size = image.shape[0]
    face = region_mask(landmarks, (size, size), "face")
    canvas = image.astype(np.float64)
    occluder = np.zeros((size, size), np.float32)
    kinds = []
    count = 0 if rng.random() < p_none else int(rng.integers(1, max_occluders + 1))
    for _ in range(count):
        kind = str(rng.choice(choices))
        alpha, colours = OCCLUDERS[kind](rng, image, landmarks, face)
        if rng.random() < 0.5:  # soft edges, as a lens would see them
            alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 1.5))
        canvas = canvas * (1 - alpha[..., None]) + colours * alpha[..., None]
        occluder = np.maximum(occluder, alpha)
        kinds.append(kind)
    if rng.random() < 0.3:
        canvas = add_shadow(rng, canvas)
    if rng.random() < 0.2:
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 1.5))
    occluder_mask = (occluder > 0.5).astype(np.float32)
    return OccludedFace(
        image=np.clip(canvas, 0, 255).round().astype(np.uint8),
        visible_mask=face * (1 - occluder_mask),
        occluder_mask=occluder_mask,
        kinds=kinds,
        original=image,
        landmarks=landmarks,
    )
