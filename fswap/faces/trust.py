"""A trust map for the warped source: where the source photo's pixels may be used.

A landmark warp moves only the pixels the photo has. Where it stretches a triangle of the source
face far beyond the face's overall scale (the far side of a turned head, squeezed into a few
pixels, pulled across the near side of a frontal target), or folds it over (a side the source
photo does not show), the warped texture is a smear; where the source face is covered (a fringe,
a hand, a frame), it is the cover, not the face. Trust is 1 where the source shows the face well,
0 where its pixels must not be used, smooth in between:

    stretch trust (area change per triangle, folds) x (1 - the source's occluders, warped)

`fswap.faces.render` fills what the source is not trusted with from its mirror image, where that
is trusted more, and leaves the target's own face where neither is.
"""

from __future__ import annotations

import cv2
import numpy as np

from fswap.faces.warp import triangle_labels

#: A triangle stretched up to this many times its share of the face's area is fully trusted
#: (head turns of ~20° stretch the far cheek about this much)...
FULL_TRUST_STRETCH = 1.6
#: ... and not at all from this many times on (the far cheek of a face turned ~45° or more).
NO_TRUST_STRETCH = 4.0
#: The trust map's transitions are smoothed over this fraction of the face's size.
TRUST_SMOOTHING = 0.02


def stretch_trust(
    source_points: np.ndarray, target_points: np.ndarray, triangles: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """float32 [height, width] in [0, 1]: how far the warp of `source_points` onto
    `target_points` (output coordinates) keeps each triangle's share of the face's area.

    A triangle's stretch is its area ratio (target over source) divided by the whole mesh's
    (the face's overall scale change is no stretch). Trust falls from 1 at `FULL_TRUST_STRETCH`
    to 0 at `NO_TRUST_STRETCH`, on a log scale; a triangle turned over (folded: the source shows
    its back) has none. Outside the mesh trust is 0.
    """
    source_area = _signed_areas(np.asarray(source_points, np.float64)[triangles])
    target_area = _signed_areas(np.asarray(target_points, np.float64)[triangles])
    scale = np.abs(target_area).sum() / max(np.abs(source_area).sum(), 1e-9)
    stretch = np.abs(target_area) / np.maximum(np.abs(source_area), 1e-9) / max(scale, 1e-9)
    falling = np.log(NO_TRUST_STRETCH) - np.log(np.maximum(stretch, 1e-9))
    trust = np.clip(falling / (np.log(NO_TRUST_STRETCH) - np.log(FULL_TRUST_STRETCH)), 0.0, 1.0)
    trust[np.sign(source_area) != np.sign(target_area)] = 0.0  # folded over
    trust[np.abs(target_area) < 1e-6] = 0.0
    labels = triangle_labels(np.asarray(target_points, np.float64)[triangles], size)
    per_pixel = np.where(labels >= 0, trust[np.maximum(labels, 0)], 0.0).astype(np.float32)
    return smooth(per_pixel, face_size(target_points))


def face_size(points: np.ndarray) -> float:
    """The longer side of the box around `points` [N, 2], px."""
    return float(np.ptp(np.asarray(points, np.float64), axis=0).max())


def smooth(mask: np.ndarray, size: float, fraction: float = TRUST_SMOOTHING) -> np.ndarray:
    """`mask` blurred over `fraction` of a face `size` px across (float32)."""
    sigma = fraction * size
    mask = np.asarray(mask, np.float32)
    return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0.3 else mask


def _signed_areas(triangles: np.ndarray) -> np.ndarray:
    """[T] signed areas of [T, 3, 2] triangles (positive counter-clockwise in image axes)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
