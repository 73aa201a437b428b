"""Aligned face crops and the way back: the ArcFace 5-point template at any size, the
similarity warp into the crop, its inverse, and paste-back with a feathered blend mask."""

from __future__ import annotations

import cv2
import numpy as np

#: insightface's ArcFace template for a 112x112 crop: left eye, right eye, nose, mouth corners.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def face_template(size: int, margin: float = 0.0) -> np.ndarray:
    """The 5 template points for a `size` crop; `margin` widens the view (0.25 = 25 % more context)."""
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if margin <= -0.5:
        raise ValueError(f"margin must be greater than -0.5, got {margin}")
    unit = ARCFACE_TEMPLATE_112 / 112.0
    return (0.5 + (unit - 0.5) / (1.0 + margin)) * size


def alignment_matrix(keypoints: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """The 2x3 similarity transform taking image coordinates to crop coordinates."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(5, 2)
    return similarity_transform(keypoints, face_template(size, margin))


def invert_matrix(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 inverse of a 2x3 affine transform (crop → image)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine transform to [N, 2] points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the aligned `size` x `size` crop out of `image` (any dtype, 2 or 3 dims)."""
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Soften a [H, W] mask in [0, 1] so it fades to 0 *inside* its edge over about `radius` px."""
    mask = np.asarray(mask, dtype=np.float32)
    if radius <= 0:
        return mask.copy()
    kernel = int(2 * round(radius) + 1)
    # Erode, blur with a tail shorter than the erosion, and clip to the original region, so the
    # mask is exactly 0 outside it and reaches 1 about `radius` px inside its edge.
    eroded = cv2.erode(mask, np.ones((kernel, kernel), np.uint8))
    blurred = cv2.GaussianBlur(eroded, (0, 0), sigmaX=radius / 3.0)
    return np.clip(blurred, 0.0, 1.0) * mask


def jaw_rows(size: int, margin: float = 0.0) -> tuple[float, float]:
    """Where, in a crop aligned by `alignment_matrix`, the lower face begins: the rows halfway
    between the eyes and the nose tip, and halfway between the nose tip and the mouth (the
    template's). `blend_mask` turns from the outline's feather to the jaw's between them."""
    template = face_template(size, margin)
    eyes, nose, mouth = template[:2, 1].mean(), template[2, 1], template[3:, 1].mean()
    return float((eyes + nose) / 2), float((nose + mouth) / 2)


def blend_mask(
    face_mask: np.ndarray,
    skin: np.ndarray,
    outline_radius: float,
    occluder_radius: float,
    jaw_radius: float | None = None,
    jaw_rows: tuple[float, float] | None = None,
) -> np.ndarray:
    """What is pasted: float32 [H, W] in [0, 1], 0 outside the face and on its occluders.

    The face's outline fades over `outline_radius` px, where the swapped skin has to melt into
    the target's. Below the nose, in an aligned crop, it may fade over a narrower `jaw_radius`:
    the two feathers are mixed row by row, the outline's above `jaw_rows[0]` and the jaw's below
    `jaw_rows[1]` (`jaw_rows`). A hairline and strands of hair, whose seams a narrow feather
    shows, sit above; along the cheeks and the jaw the face meets the neck or the background,
    and there a narrow feather carries more of the source's face. An occluder's edge (a hand, a
    microphone, the rim of a pair of glasses) is a real edge in the photo, so the fade around it
    is only `occluder_radius` px: feathering it as widely as the outline would show a halo of the
    target's skin around every occluder and blow a speck the segmenter missed up into a hole the
    size of the feather.
    """
    face = (np.asarray(face_mask) > 0.5).astype(np.float32)
    outline = feather(face, outline_radius)
    if jaw_radius is not None and jaw_radius != outline_radius:
        if jaw_rows is None:
            raise ValueError("a jaw_radius needs the jaw_rows it applies below")
        top, bottom = jaw_rows
        rows = np.arange(face.shape[0], dtype=np.float32)[:, None]
        below = np.clip((rows - top) / max(bottom - top, 1e-6), 0.0, 1.0)
        outline = outline * (1.0 - below) + feather(face, jaw_radius) * below
    occluders = (face > 0) & (np.asarray(skin) <= 0.5)
    if not occluders.any():
        return outline
    return outline * feather((~occluders).astype(np.float32), occluder_radius)


def paste_back(
    image: np.ndarray, crop: np.ndarray, matrix: np.ndarray, blend_mask: np.ndarray, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Warp `crop` back into `image` through the inverse of `matrix` and blend with `blend_mask`.

    `blend_mask` is a [size, size] float mask in crop coordinates (1 = take the crop). Only the
    face's bounding rectangle is touched, so this costs the same on a 40-megapixel photo as on
    a small one, and pixels where the mask is 0 are returned unchanged. The result is a new
    copy, or `out` (a copy of `image`, or `image` itself to paste in place) when given.
    """
    result = image.copy() if out is None else out
    window = _crop_window(matrix, crop.shape[0], image.shape[:2])
    if window is None:
        return result
    (x0, y0, x1, y1), local = window
    region = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop, local, region, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(blend_mask.astype(np.float32), local, region, flags=cv2.INTER_LINEAR, borderValue=0.0)
    patch = result[y0:y1, x0:x1]
    if patch.ndim == 3:
        alpha, warped = alpha[..., None], warped.reshape(patch.shape)
    blended = patch.astype(np.float32) * (1.0 - alpha) + warped.astype(np.float32) * alpha
    if np.issubdtype(image.dtype, np.integer):
        blended = np.clip(blended.round(), np.iinfo(image.dtype).min, np.iinfo(image.dtype).max)
    # Where alpha is exactly 0 keep the original values, so untouched pixels stay bit-identical.
    result[y0:y1, x0:x1] = np.where(alpha > 0, blended, patch).astype(image.dtype)
    return result


def composite(target_image: np.ndarray, face_image: np.ndarray, blend_mask: np.ndarray) -> np.ndarray:
    """`target_image` with `face_image` alpha-blended by `blend_mask`; where it is 0, the bytes are the target's."""
    alpha = blend_mask[..., None]
    blended = target_image.astype(np.float32) * (1.0 - alpha) + face_image.astype(np.float32) * alpha
    return np.where(alpha > 0, np.clip(blended.round(), 0, 255), target_image).astype(np.uint8)


def mask_to_image(mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A crop-space [size, size] mask warped into a zero [H, W] float32 image of `shape`."""
    full = np.zeros(shape[:2], np.float32)
    window = _crop_window(matrix, mask.shape[0], shape[:2])
    if window is not None:
        (x0, y0, x1, y1), local = window
        full[y0:y1, x0:x1] = cv2.warpAffine(
            mask.astype(np.float32), local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0.0
        )
    return full


def _crop_window(matrix: np.ndarray, size: int, shape: tuple[int, int]):
    """The image rectangle covered by a `size` crop and the crop → rectangle transform, or None."""
    inverse = invert_matrix(matrix)
    corners = transform_points(np.array([[0, 0], [size, 0], [0, size], [size, size]]), inverse)
    height, width = shape
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    return (x0, y0, x1, y1), local


def similarity_transform(source: np.ndarray, destination: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) source → destination."""
    source_mean, destination_mean = source.mean(axis=0), destination.mean(axis=0)
    source_centred, destination_centred = source - source_mean, destination - destination_mean
    covariance = destination_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rotation = u @ np.diag(sign) @ vt
    variance = (source_centred**2).sum() / len(source)
    scale = (singular * sign).sum() / variance
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = destination_mean - scale * rotation @ source_mean
    return matrix
