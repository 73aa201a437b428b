"""Does the shipped swap detector still catch fswap's swaps when the pipeline changes? AUC of
the detector on held-out real photos against fswap swaps made with the default rendering
(`rendering="pasted"`, the source's occluders pasted), the relit one (`rendering="relit"`, never
seen in the shipped detector's training), the network's crop pasted back (`full_resolution=False`,
what the detector was first trained on) and the classic swap, in one run; several detectors score
the same photos and swaps.

    python benchmarks/detector_shift.py     # -> benchmarks/results/detector_shift.json
    python benchmarks/detector_shift.py --detectors checkpoints/fswap-detector runs/detector-relit/swap_detector

Real: all 94 held-out CelebA photos. Swaps: 94 pairs of them (47 sources x 2 targets), unmarked.
A photo's score is the largest swap probability among its faces.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import markdown_table, portable_path, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.evaluation import held_out_pairs
from fswap.pipeline import FaceSwapPipeline
from fswap.swap_detection import detect_swaps, load_detector, roc_auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--detectors", type=Path, nargs="+", default=[Path("checkpoints/fswap-detector")],
                        help="detector folders, each scoring the same photos and swaps")
    args = parser.parse_args()

    pipeline = FaceSwapPipeline.from_pretrained(default_model())
    detectors = [load_detector(folder) for folder in args.detectors]
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    sources, targets, pairs = held_out_pairs(args.data, pairs=94)  # 47 people x 2 targets

    def scores(image: np.ndarray) -> list[float]:
        """Per detector: the largest swap probability among the photo's faces."""
        return [max((v.probability for v in detect_swaps(image, detector, pipeline.face_analyzer)), default=0.0)
                for detector in detectors]

    real = np.array([scores(photo) for photo in sources + targets])
    outputs = {
        "pasted (the default)": lambda s, t: pipeline(s, t, watermark=False).image,
        "relit": lambda s, t: pipeline(s, t, watermark=False, rendering="relit").image,
        "crop pasted back": lambda s, t: pipeline(s, t, watermark=False, full_resolution=False).image,
        "classic": lambda s, t: classic(s, t).image,
    }
    rows = []
    for name, swap in outputs.items():
        swapped = np.array([scores(swap(sources[s], targets[t])) for s, t in pairs])
        for k, folder in enumerate(args.detectors):
            labels = [0] * len(real) + [1] * len(swapped)
            rows.append({"detector": portable_path(folder), "trained on": _trained_on(folder), "swaps": name,
                         "auc": round(roc_auc(labels, list(real[:, k]) + list(swapped[:, k])), 3),
                         "mean p(swap), swaps": round(float(swapped[:, k].mean()), 3),
                         "mean p(swap), real": round(float(real[:, k].mean()), 3),
                         "real photos": len(real), "swapped photos": len(swapped)})
    path = write_result("detector_shift", {"data": portable_path(args.data), "rows": rows})
    print(markdown_table(rows, list(rows[0])))
    print(f"wrote {path}")


def _trained_on(folder: Path) -> str:
    record = folder / "training_record.json"
    return ", ".join(json.loads(record.read_text())["swap_methods"]) if record.is_file() else "?"


if __name__ == "__main__":
    main()
