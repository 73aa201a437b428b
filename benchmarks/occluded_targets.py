"""Swaps onto occluded targets, each measured against the same method's swap onto the same
target unoccluded: how much of what covers the target face survives the swap, and how much the
cover disturbs the rest of the face.

    python benchmarks/occluded_targets.py   # -> benchmarks/results/occluded_targets.json, 1 minute

and docs/images/occluded_targets.png: for each occluder, the pair whose fswap score is that
occluder's median, then fswap's worst pair.

There is no labelled set of real occlusions offline, so the occluders are pasted, and they are
made from nothing the occlusion segmenter was trained on (`fswap.data.occluders`): scikit-image's
horse silhouette cut from its motorcycle photo, its logo (with the logo's own transparency), and
a card of printed text from its `page` image, each turned and sized at random, over an eye, the
nose, the mouth or a cheek. Their outlines and textures are new to the segmenter; their kind (an
opaque object with a hard edge) is not, so this measures what fswap does on covers like the
ones it was trained for, not on every real occluder (the README's figures show real ones).

Each of the 47 held-out targets of `fswap eval` gets each occluder once, swapped from a held-out
source photo (141 pairs). For every method, with `clean` its swap onto the unoccluded target and
`occluded` its swap onto the occluded one:

- **occluder kept**: the share of the occluder's pixels on the face that come out within
  `KEPT_LEVELS` grey levels of the occluder, and the PSNR there against the occluded target;
- **rest of the face**: PSNR of `occluded` against `clean` on the face outside the occluder
  (grown by `EDGE` px): what the occluder changes elsewhere (colour statistics, the blend);
- **identity**: of the occluded swap, as in `fswap eval` (cosine to the source photo under the
  evaluation recogniser, top-1 among the 47 sources). It rewards pasting the source over the
  occluder, so it shows what keeping it costs.

fswap runs without its watermark here (the mark's noise would bound the PSNR), the classic swap
as it is, and fswap with occlusion off shows that the segmenter is what keeps the occluders.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from common import (
    IMAGES,
    add_checkpoint_arguments,
    fit_height,
    label_strip,
    markdown_table,
    model_name,
    portable_path,
    write_result,
)

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.errors import FswapError
from fswap.evaluation import EvaluationRecogniser, face_at, held_out_pairs, masked_psnr
from fswap.faces.masks import LANDMARK_GROUPS, region_mask
from fswap.imageio import save_image
from fswap.pipeline import FaceSwapPipeline

#: An occluder pixel counts as kept when every channel is within this many grey levels of it.
KEPT_LEVELS = 12
#: px the occluder is grown by before "the rest of the face" is measured (its blended edge).
EDGE = 3
OCCLUDERS = ("horse", "logo", "card")
PLACES = ("left_eye", "right_eye", "nose", "mouth", "cheek")
COLUMNS = ["method", "occluder_kept", "occluder_psnr_db", "rest_of_face_psnr_db", "identity_similarity",
           "identity_top1", "pairs", "failures"]


@cache
def _occluder(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 [H, W, 3] and alpha float32 [H, W] of one occluder, tightly cropped."""
    from skimage import data

    if kind == "horse":
        alpha = (~data.horse()).astype(np.float32)  # the silhouette is False on white
        motorcycle = data.stereo_motorcycle()[0]
        rgb = cv2.resize(motorcycle, alpha.shape[::-1], interpolation=cv2.INTER_AREA)
    elif kind == "logo":
        logo = data.logo()
        rgb, alpha = logo[..., :3], logo[..., 3].astype(np.float32) / 255.0
    elif kind == "card":
        page = data.page()[20:170, 20:300]
        rgb, alpha = np.repeat(page[..., None], 3, axis=2), np.ones(page.shape, np.float32)
    else:
        raise ValueError(f"unknown occluder {kind!r}")
    ys, xs = np.nonzero(alpha > 0.5)
    box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    return np.ascontiguousarray(rgb[box]), np.ascontiguousarray(alpha[box])


def occlude(photo: np.ndarray, landmarks: np.ndarray, kind: str, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """`photo` with occluder `kind` pasted on the face, and its alpha (float32, the photo's size)."""
    rgb, alpha = _occluder(kind)
    face_width = float(np.ptp(landmarks[list(LANDMARK_GROUPS["contour"])][:, 0]))
    place = PLACES[rng.integers(len(PLACES))]
    if place == "cheek":
        side = list(LANDMARK_GROUPS["contour"])[4 if rng.random() < 0.5 else 28]
        centre = (landmarks[side] + landmarks[list(LANDMARK_GROUPS["nose"])].mean(axis=0)) / 2
    else:
        centre = landmarks[list(LANDMARK_GROUPS[place])].mean(axis=0)
    scale = rng.uniform(0.35, 0.6) * face_width / max(rgb.shape[:2])
    matrix = cv2.getRotationMatrix2D((rgb.shape[1] / 2, rgb.shape[0] / 2), rng.uniform(-40, 40), scale)
    matrix[:, 2] += centre - (rgb.shape[1] / 2, rgb.shape[0] / 2)
    size = photo.shape[1], photo.shape[0]
    placed = cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_AREA)
    placed_alpha = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    occluded = photo * (1.0 - placed_alpha) + placed * placed_alpha
    return np.clip(occluded.round(), 0, 255).astype(np.uint8), placed_alpha[..., 0]


def score(clean: np.ndarray, occluded_swap: np.ndarray, occluded_target: np.ndarray, alpha: np.ndarray,
          face: np.ndarray) -> dict:
    """The occluder and rest-of-face measures of one swap onto an occluded target."""
    cover = (alpha > 0.5) & face
    grown = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8)) > 0
    rest = face & ~grown
    difference = np.abs(occluded_swap.astype(np.int16) - occluded_target).max(axis=2)
    return {
        "occluder_kept": float((difference[cover] <= KEPT_LEVELS).mean()),
        "occluder_psnr_db": masked_psnr(occluded_swap, occluded_target, cover),
        "rest_of_face_psnr_db": masked_psnr(occluded_swap, clean, rest),
    }


def figure_pairs(fswap_results: list[dict]) -> list[dict]:
    """For each occluder, the pair whose share kept is that occluder's median; then the worst pair."""
    shown = []
    for kind in OCCLUDERS:
        mine = sorted((r for r in fswap_results if r["occluder"] == kind), key=lambda r: r["occluder_kept"])
        shown.append(mine[len(mine) // 2])
    return shown + [min(fswap_results, key=lambda r: r["occluder_kept"])]


def figure(shown: list[dict], sources: list[np.ndarray], occluded_targets: dict[tuple[int, int], np.ndarray],
           methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]], height: int = 200) -> Path:
    """docs/images/occluded_targets.png: source, occluded target, then each method's swap."""
    rows = []
    for result in shown:
        source = sources[result["source"]]
        target = occluded_targets[result["target"], OCCLUDERS.index(result["occluder"])]
        tiles = [source, target, *(method(source, target) for method in methods.values())]
        rows.append(np.concatenate([fit_height(tile, height) for tile in tiles], axis=1))
    width = rows[0].shape[1] // (2 + len(methods))
    header = np.concatenate([label_strip(text, width) for text in ("source", "occluded target", *methods)], axis=1)
    return save_image(IMAGES / "occluded_targets.png", np.concatenate([header, *[r[:, : header.shape[1]] for r in rows]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="where the occluders go")
    parser.add_argument("--rendering", choices=("pasted", "relit"), default="pasted",
                        help="fswap's rendering; relit writes occluded_targets_relit.json and no figure")
    args = parser.parse_args()
    from tqdm.auto import tqdm

    sources, targets, _ = held_out_pairs(args.data, 47 * 47)  # fswap eval's photos
    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "fswap": lambda source, target: pipeline(source, target, watermark=False, rendering=args.rendering).image,
        "fswap, occlusion off": lambda source, target: pipeline(source, target, watermark=False,
                                                                rendering=args.rendering, occlusion_aware=False).image,
        "classic": lambda source, target: classic(source, target).image,
    }
    analyzer, recogniser = pipeline.face_analyzer, EvaluationRecogniser()
    source_faces = [analyzer.largest_face(image) for image in sources]
    target_faces = [analyzer.largest_face(image) for image in targets]
    gallery = np.stack([recogniser.embed(image, face.keypoints) for image, face in zip(sources, source_faces, strict=True)])
    rng = np.random.default_rng(args.seed)
    results, failures = [], dict.fromkeys(methods, 0)
    occluded_targets: dict[tuple[int, int], np.ndarray] = {}
    pairs = [(t, k) for t in range(len(targets)) for k in range(len(OCCLUDERS))]
    for t, k in tqdm(pairs, desc="occluded targets", unit="pair"):
        target, kind = targets[t], OCCLUDERS[k]
        source_index = (t + 16 * k) % len(sources)
        target_face = target_faces[t]
        occluded_target, alpha = occlude(target, target_face.landmarks, kind, rng)
        occluded_targets[t, k] = occluded_target
        face = region_mask(target_face.landmarks, target.shape, "face") > 0.5
        for name, method in methods.items():
            try:
                clean = method(sources[source_index], target)
                swapped = method(sources[source_index], occluded_target)
            except FswapError as error:  # no face found: counted, as in `fswap eval`
                failures[name] += 1
                print(f"{name} failed on target {t} with the {kind}: {error}")
                continue
            found = face_at(analyzer, swapped, target_face)
            similarities = gallery @ recogniser.embed(swapped, found.keypoints)
            results.append({"method": name, "source": source_index, "target": t, "occluder": kind,
                            **score(clean, swapped, occluded_target, alpha, face),
                            "identity_similarity": float(similarities[source_index]),
                            "retrieved": int(np.argmax(similarities))})
    rows = []
    for name in methods:
        mine = [r for r in results if r["method"] == name]
        row = {"method": name}
        for column in ("occluder_kept", "occluder_psnr_db", "rest_of_face_psnr_db", "identity_similarity"):
            row[column] = round(float(np.mean([r[column] for r in mine])), 3)
        row["identity_top1"] = round(float(np.mean([r["retrieved"] == r["source"] for r in mine])), 3)
        row["pairs"], row["failures"] = len(mine), failures[name]
        rows.append(row)
    by_kind = [{"method": name, "occluder": kind, "occluder_kept": round(float(np.mean(
        [r["occluder_kept"] for r in results if r["method"] == name and r["occluder"] == kind])), 3)}
        for name in methods for kind in OCCLUDERS]
    name = "occluded_targets" if args.rendering == "pasted" else f"occluded_targets_{args.rendering}"
    path = write_result(name, {
        "model": model_name(args.model), "data": portable_path(args.data), "seed": args.seed,
        "rendering": args.rendering,
        "kept_levels": KEPT_LEVELS, "edge_px": EDGE, "rows": rows, "by_occluder": by_kind, "results": results})
    print(markdown_table(rows, COLUMNS))
    print(markdown_table(by_kind, ["method", "occluder", "occluder_kept"]))
    print(f"wrote {path}")
    if args.rendering != "pasted":
        return
    shown = figure_pairs([r for r in results if r["method"] == "fswap"])
    print(figure(shown, sources, occluded_targets, {"classic swap": methods["classic"], "fswap": methods["fswap"]}))


if __name__ == "__main__":
    main()
