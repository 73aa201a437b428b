"""Swap detection: was a face in this photo swapped? Run a `SwapDetector` on every face, and measure detectors.

    from fswap.swap_detection import detect_swaps, load_detector
    verdicts = detect_swaps("photo.jpg", load_detector())
    for verdict in verdicts:
        print(verdict.face.box, verdict.probability)   # probability that this face was swapped
        verdict.heatmap                                # [H, W] where it was pasted, or None

Each face is aligned exactly as the detector's training crops were (`fswap.data.swaps`): the
ArcFace 5-point alignment at the detector's `sample_size` with its `crop_margin`.

Not to be confused with face detection (`fswap.faces`, which finds the faces this module then
judges) nor with the network itself (`fswap.models.detector.SwapDetector`). A detector's card
and Hub upload are made by `fswap.hub.cards`, and `fswap.hub.push_detector` publishes it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fswap.errors import FswapError
from fswap.faces import Face, FaceAnalyzer, alignment_matrix, mask_to_image, warp_face
from fswap.imageio import ImageInput, load_image
from fswap.models.detector import SwapDetector

#: The detector committed with the repository.
DEFAULT_DETECTOR = Path(__file__).resolve().parent.parent / "checkpoints" / "fswap-detector"
HEAT_COLOUR = np.array([255, 40, 40], dtype=np.float32)


def load_detector(folder: str | Path | None = None, **kwargs) -> SwapDetector:
    """A `SwapDetector` loaded strictly (`fswap.models.load_component`); the shipped one by default."""
    from fswap.models.loading import load_component

    return load_component(SwapDetector, folder or DEFAULT_DETECTOR, **kwargs).eval()


@dataclass(frozen=True)
class FaceVerdict:
    """The detector's verdict on one face of a photo.

    Args:
        face: the detected face (image coordinates).
        probability: probability that the face was swapped, in [0, 1].
        matrix: the 2x3 image -> crop alignment the detector saw the face through.
        crop_heatmap: [S, S] float32 blend-mask probability in crop coordinates, or None when
            the detector has no mask head.
        image_shape: (H, W) of the photo.
    """

    face: Face
    probability: float
    matrix: np.ndarray
    crop_heatmap: np.ndarray | None
    image_shape: tuple[int, int]

    @property
    def heatmap(self) -> np.ndarray | None:
        """[H, W] float32 in [0, 1]: where the detector believes this face was pasted (0 outside the crop)."""
        if self.crop_heatmap is None:
            return None
        return mask_to_image(self.crop_heatmap, self.matrix, self.image_shape)


def crops_to_tensor(crops: np.ndarray | list[np.ndarray], device=None, dtype=torch.float32) -> torch.Tensor:
    """[B, S, S, 3] uint8 RGB crops -> [B, 3, S, S] in [-1, 1], the detector's input."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(list(crops)))).to(device=device)
    return batch.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0


def align_faces(image: np.ndarray, faces: list[Face], size: int, margin: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """The aligned [N, size, size, 3] crops of `faces` and their 2x3 image -> crop matrices."""
    matrices = [alignment_matrix(face.keypoints, size, margin) for face in faces]
    crops = np.stack([warp_face(image, matrix, size) for matrix in matrices]) if faces else np.zeros((0, size, size, 3), np.uint8)
    return crops, matrices


@torch.no_grad()
def score_crops(detector: SwapDetector, crops: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
    """Swap probabilities [N] and blend-mask probabilities [N, h, w] (or None) of aligned uint8 crops."""
    probabilities, masks = [], []
    for first in range(0, len(crops), batch_size):
        images = crops_to_tensor(crops[first : first + batch_size], detector.device, detector.dtype)
        probability, mask = detector.predict(images)
        probabilities.append(probability.float().cpu().numpy())
        if mask is not None:
            masks.append(mask[:, 0].float().cpu().numpy())
    if not probabilities:
        return np.zeros(0, np.float32), None
    return np.concatenate(probabilities), np.concatenate(masks) if masks else None


def detect_swaps(
    image: ImageInput,
    detector: SwapDetector | None = None,
    analyzer: FaceAnalyzer | None = None,
    *,
    max_faces: int | None = None,
) -> list[FaceVerdict]:
    """Was each face of `image` swapped? One verdict per detected face, largest face first.

    Args:
        image: a path, bytes, PIL image or RGB uint8 array.
        detector: a `SwapDetector` (default: `load_detector()`, the shipped checkpoint).
        analyzer: the face analyzer (default: the registry models, `FaceAnalyzer.from_pretrained()`).
        max_faces: judge only the largest `max_faces` faces.

    Returns:
        A list of `FaceVerdict` (empty when the photo has no face): the face, the probability
        that it was swapped, and a heat map of where it was pasted (`verdict.heatmap`).

    Example:
        >>> from fswap.assets import example_image
        >>> verdicts = detect_swaps(example_image("t1.jpg"))
        >>> len(verdicts), all(0 <= v.probability <= 1 for v in verdicts)
        (6, True)
    """
    image = load_image(image)
    detector = detector if detector is not None else load_detector()
    analyzer = analyzer if analyzer is not None else FaceAnalyzer.from_pretrained()
    faces = analyzer.detect(image, landmarks=False, max_faces=max_faces)
    size = detector.config.sample_size
    crops, matrices = align_faces(image, faces, size, detector.config.crop_margin)
    probabilities, masks = score_crops(detector, crops)
    verdicts = []
    for k, face in enumerate(faces):
        crop_heatmap = None
        if masks is not None:
            mask = torch.from_numpy(masks[k])[None, None]
            crop_heatmap = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
        verdicts.append(FaceVerdict(face, float(probabilities[k]), matrices[k], crop_heatmap, image.shape[:2]))
    return verdicts


def draw_verdicts(image: ImageInput, verdicts: list[FaceVerdict]) -> np.ndarray:
    """A copy of the RGB photo with each heat map tinted red and each face boxed with its probability."""
    canvas = load_image(image).astype(np.float32)
    for verdict in verdicts:
        heat = verdict.heatmap
        if heat is not None:
            alpha = 0.6 * np.clip(heat, 0, 1)[..., None]
            canvas = canvas * (1 - alpha) + HEAT_COLOUR * alpha
    canvas = np.clip(canvas.round(), 0, 255).astype(np.uint8)
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    for verdict in verdicts:
        x0, y0, x1, y1 = np.round(verdict.face.box).astype(int)
        colour = (255, 60, 60) if verdict.probability >= 0.5 else (60, 220, 120)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        cv2.putText(canvas, f"swap {verdict.probability:.0%}", (x0, max(y0 - 4 * thickness, 12)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, colour, thickness, cv2.LINE_AA)
    return canvas


# ------------------------------------------------------------------------------------ measuring
def roc_auc(labels, scores) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting half (the Mann-Whitney U statistic, from average ranks)."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.size} vs {scores.size}")
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"ROC AUC needs both classes; got {positives} positives and {negatives} negatives")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average rank (1-based) for each run of tied scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def jpeg(crops: np.ndarray, quality: int) -> np.ndarray:
    """Every uint8 RGB crop saved as JPEG at `quality` and decoded again."""
    from PIL import Image

    out = np.empty_like(crops)
    for k, crop in enumerate(crops):
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="JPEG", quality=int(quality))
        out[k] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


def evaluate_detector(
    detector: SwapDetector,
    dataset_dir: str | Path | list,
    split: str = "val",
    *,
    methods: tuple[str, ...] | None = None,
    jpeg_quality: int | None = None,
    batch_size: int = 64,
) -> dict[str, dict]:
    """ROC AUC of `detector` on the real crops against each method's swaps in one split.

    Args:
        detector: the detector to measure.
        dataset_dir: a swap data set (`fswap.data.swaps.generate_swap_dataset`), or several.
        split: which split; "val" holds people the training split never shows.
        methods: the swap methods to test (default: every method in the split).
        jpeg_quality: re-save every crop as JPEG at this quality first (robustness check).
        batch_size: crops per forward pass.

    Returns:
        Per method ("fswap", "classic", ... and "all" for every swap together): `auc`,
        `balanced_accuracy` at probability 0.5, `mask_iou` (blend mask vs prediction > 0.5,
        over the swaps; None without a mask head), and the numbers of `real` and `fake` crops.
    """
    from fswap.data.swaps import REAL, load_swap_crops

    size = detector.config.sample_size
    data = load_swap_crops(dataset_dir, split, methods, size=size)
    if abs(data.margin - detector.config.crop_margin) > 1e-6:
        raise FswapError(
            f"the data set's crops have margin {data.margin}, the detector was trained with {detector.config.crop_margin}"
        )
    crops = data.images if jpeg_quality is None else jpeg(data.images, jpeg_quality)
    probabilities, masks = score_crops(detector, crops, batch_size)
    real = data.methods == REAL
    results = {}
    for method in [*sorted(set(data.methods) - {REAL}), "all"]:
        fake = ~real if method == "all" else data.methods == method
        chosen = real | fake
        labels, scores = fake[chosen], probabilities[chosen]
        predicted = scores >= 0.5
        mask_iou = None
        if masks is not None:
            truth = torch.from_numpy(data.masks[fake]).float()[:, None] / 255
            truth = F.interpolate(truth, size=masks.shape[-2:], mode="area")[:, 0].numpy() > 0.5
            guess = masks[fake] > 0.5
            mask_iou = float((truth & guess).sum() / max((truth | guess).sum(), 1))
        results[method] = {
            "auc": roc_auc(labels, scores),
            "balanced_accuracy": float((predicted[labels].mean() + (~predicted[~labels]).mean()) / 2),
            "mask_iou": mask_iou,
            "real": int(real.sum()),
            "fake": int(fake.sum()),
        }
    return results
