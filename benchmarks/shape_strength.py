"""How the default checkpoint's `shape_strength` was chosen: swaps of *training* photos scored
with the *training* recogniser, so neither the held-out photos nor the evaluation recogniser
had a say in it.

    python benchmarks/shape_strength.py --strengths 0 0.25 0.5 0.75 1     # -> benchmarks/results/shape_strength.json

Sources and targets are distinct training-split photos (seeded); each source is swapped onto two
targets. Identity is the cosine of the swap to its source under w600k_mbf (the identity encoder
the networks were trained with, via the face analyzer's ONNX copy); top-1 asks whether the
source is the swap's nearest neighbour among all sources. Pose and expression errors are
`fswap eval`'s landmark measures. Moving the features changes the landmarks those measures read,
so both rise with the strength even where the head does not turn. The classic swap runs on the
same pairs for reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import markdown_table, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.evaluation import expression_error, face_at, pose_error
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline

COLUMNS = ["method", "identity_similarity", "identity_top1", "pose_error_deg", "pose_error_median_deg",
           "expression_error", "pairs"]


def training_photos(data: Path, count: int, seed: int) -> list[np.ndarray]:
    origins = set()
    for line in (data / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("split") == "train" and record.get("origin"):
            origins.add(record["origin"])
    origins = sorted(origins)
    chosen = np.random.default_rng(seed).choice(len(origins), count, replace=False)
    return [load_image(origins[i]) for i in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: the embedded default)")
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--people", type=int, default=30, help="sources (and as many targets)")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    photos = training_photos(args.data, 2 * args.people, args.seed)
    sources, targets = photos[: args.people], photos[args.people :]
    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    analyzer = pipeline.face_analyzer
    classic = ClassicFaceSwapper(analyzer)
    source_faces = [analyzer.largest_face(photo, embeddings=True) for photo in sources]
    target_faces = [analyzer.largest_face(photo) for photo in targets]
    gallery = np.stack([face.embedding / np.linalg.norm(face.embedding) for face in source_faces])
    pairs = [(k, (k + step) % args.people) for step in range(2) for k in range(args.people)]

    methods = {f"fswap, shape_strength={strength:g}": (
        lambda source, target, strength=strength: pipeline(source, target, shape_strength=strength, watermark=False).image)
        for strength in args.strengths}
    methods["classic"] = lambda source, target: classic(source, target).image
    rows = []
    for name, method in methods.items():
        identity, top1, pose, expression = [], [], [], []
        for s, t in pairs:
            result = method(sources[s], targets[t])
            face = face_at(analyzer, result, target_faces[t])
            embedding = analyzer.largest_face(result, embeddings=True).embedding
            similarities = gallery @ (embedding / np.linalg.norm(embedding))
            identity.append(similarities[s])
            top1.append(int(np.argmax(similarities)) == s)
            pose.append(pose_error(face.landmarks, target_faces[t].landmarks, targets[t].shape))
            expression.append(expression_error(face.landmarks, target_faces[t].landmarks))
        rows.append({"method": name, "identity_similarity": round(float(np.mean(identity)), 6),
                     "identity_top1": round(float(np.mean(top1)), 6), "pose_error_deg": round(float(np.mean(pose)), 3),
                     "pose_error_median_deg": round(float(np.median(pose)), 3),
                     "expression_error": round(float(np.mean(expression)), 6), "pairs": len(pairs)})
        print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    path = write_result("shape_strength", {"model": args.model or str(default_model()), "data": str(args.data),
                                            "seed": args.seed, "recogniser": "w600k_mbf (training)", "rows": rows})
    print(markdown_table(rows, COLUMNS))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
