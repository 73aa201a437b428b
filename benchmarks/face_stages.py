"""Time each face stage, the classic swap and fswap's default on a large real photo.

    python benchmarks/face_stages.py [--repeats 5]

Writes benchmarks/results/face_stages.json and prints a Markdown table for the README.
Times are medians of several runs on whatever machine runs this; compare rows of one run.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import large_photo, markdown_table, median_seconds, write_result

from fswap.assets import default_model, example_image
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.faces import (
    FaceAnalyzer,
    alignment_matrix,
    feather,
    paste_back,
    region_mask,
    transform_points,
    warp_face,
)
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    analyzer = FaceAnalyzer.from_pretrained()
    image = large_photo()
    source = load_image(example_image("yaoming.jpg"))
    faces = analyzer.detect(image)
    face = faces[0]
    size = 256
    matrix = alignment_matrix(face.keypoints, size, 0.25)
    crop = warp_face(image, matrix, size)
    blend_mask = feather(region_mask(transform_points(face.landmarks, matrix), (size, size), "face"), 4)
    swapper = ClassicFaceSwapper(analyzer)
    pipeline = FaceSwapPipeline.from_pretrained(default_model())

    detect_only = median_seconds(lambda: analyzer.detect(image, landmarks=False), args.repeats)
    detect_landmarks = median_seconds(lambda: analyzer.detect(image), args.repeats)
    stages = {
        "detect (SCRFD, all 6 faces)": detect_only,
        "landmarks (2d106det, 6 faces)": detect_landmarks - detect_only,
        "embed (w600k_mbf, 1 face)": median_seconds(lambda: analyzer.embed(image, face), args.repeats),
        "align (256-px crop, 1 face)": median_seconds(lambda: warp_face(image, matrix, size), args.repeats),
        "paste-back (1 face)": median_seconds(lambda: paste_back(image, crop, matrix, blend_mask), args.repeats),
        "classic swap, 1 face, end to end": median_seconds(lambda: swapper(source, image), args.repeats),
        # The default checkpoint, unwatermarked like the classic swap, in both renderings.
        "fswap swap, pasted (default), 1 face, end to end": median_seconds(
            lambda: pipeline(source, image, watermark=False), args.repeats),
        "fswap swap, relit, 1 face, end to end": median_seconds(
            lambda: pipeline(source, image, watermark=False, rendering="relit"), args.repeats),
    }
    classic_time = stages["classic swap, 1 face, end to end"]
    ratios = {"pasted": stages["fswap swap, pasted (default), 1 face, end to end"] / classic_time,
              "relit": stages["fswap swap, relit, 1 face, end to end"] / classic_time}
    rows = [{"stage": name, "median ms": f"{seconds * 1000:.1f}"} for name, seconds in stages.items()]
    photo = f"{image.shape[1]}x{image.shape[0]} ({image.shape[0] * image.shape[1] / 1e6:.1f} MP), {len(faces)} faces"
    path = write_result("face_stages", {"photo": photo, "repeats": args.repeats,
                                         "seconds": {k: round(v, 5) for k, v in stages.items()},
                                         "over_classic": {k: round(v, 2) for k, v in ratios.items()}})
    print(f"photo: {photo}; median of {args.repeats} runs\n")
    print("fswap takes " + ", ".join(f"{v:.2f}x ({k})" for k, v in ratios.items()) + " the classic swap's time\n")
    print(markdown_table(rows, ["stage", "median ms"]))
    print(f"\nwritten: {path}")
    assert np.isfinite(list(stages.values())).all()


if __name__ == "__main__":
    main()
