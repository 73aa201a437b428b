"""Does the shipped swap detector still catch fswap's swaps when the pipeline changes? AUC of
the detector on held-out real photos against fswap swaps made with the default rendering
(`rendering="pasted"`, the source's occluders pasted), the relit one (`rendering="relit"`, never
seen in its training) and the network's crop pasted back (`full_resolution=False`,
what the detector was first trained on), in one run.

    python benchmarks/detector_shift.py     # -> benchmarks/results/detector_shift.json

Real: all 94 held-out CelebA photos. Swaps: 94 pairs of them (47 sources x 2 targets), unmarked.
A photo's score is the largest swap probability among its faces.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import markdown_table, portable_path, write_result

from fswap.assets import default_model
from fswap.evaluation import held_out_pairs
from fswap.pipeline import FaceSwapPipeline
from fswap.swap_detection import detect_swaps, load_detector, roc_auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--detector", type=Path, default=Path("checkpoints/fswap-detector"))
    args = parser.parse_args()

    pipeline = FaceSwapPipeline.from_pretrained(default_model())
    detector = load_detector(args.detector)
    sources, targets, pairs = held_out_pairs(args.data, pairs=94)  # 47 people x 2 targets

    def score(image: np.ndarray) -> float:
        verdicts = detect_swaps(image, detector, pipeline.face_analyzer)
        return max((v.probability for v in verdicts), default=0.0)

    real = [score(photo) for photo in sources + targets]
    rows = []
    for name, options in (("pasted (the default)", {}),
                          ("relit", {"rendering": "relit"}),
                          ("crop pasted back", {"full_resolution": False})):
        swapped = [score(pipeline(sources[s], targets[t], watermark=False, **options).image) for s, t in pairs]
        rows.append({"fswap output": name, "auc": round(roc_auc([0] * len(real) + [1] * len(swapped), real + swapped), 3),
                     "mean p(swap), swaps": round(float(np.mean(swapped)), 3),
                     "mean p(swap), real": round(float(np.mean(real)), 3), "real": len(real), "swaps": len(swapped)})
    path = write_result("detector_shift", {"detector": portable_path(args.detector), "data": portable_path(args.data),
                                             "rows": rows})
    print(markdown_table(rows, list(rows[0])))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
