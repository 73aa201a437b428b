"""How the default checkpoint's `shape_strength`, `feather_fraction` and `jaw_feather_share`, and
the pipeline's `paste_source_occluders` and `mirror_sources`, were chosen: swaps of *training*
photos scored with the *training* recogniser, so neither the held-out photos nor the evaluation
recogniser had a say in them.

    python benchmarks/swap_settings.py --strengths 0 0.25 0.5 0.75 1 --feathers 0.04 0.03 0.0234 0.016 \
        --jaw-shares 1   # 300 pairs, 7 min here -> benchmarks/results/swap_settings.json
    python benchmarks/swap_settings.py --strengths 0.5 --feathers 0.04 --jaw-shares 1 0.75 0.585 0.4 \
        --output swap_settings_jaw   # 3 min -> benchmarks/results/swap_settings_jaw.json
    python benchmarks/swap_settings.py --strengths 0.5 --feathers 0.04 --source-occluders all inside none \
        --output swap_settings_occluders   # 3 min -> benchmarks/results/swap_settings_occluders.json
    python benchmarks/swap_settings.py --strengths 0.5 --feathers 0.04 --mirror-sources on off \
        --output swap_settings_mirror   # 3 min -> benchmarks/results/swap_settings_mirror.json

Every strength is run with every feather, every jaw share, every source-occluder setting and
every mirror setting (`FaceSwapPipeline(shape_strength=, feather_fraction=, jaw_feather_share=)`,
`pipe(..., paste_source_occluders=, mirror_sources=)`; without `--jaw-shares`, `--source-occluders`
or `--mirror-sources`, the checkpoint's own and the defaults). Each fswap row after the first is
also compared with the first, pair by pair, and with `--mirror-sources`, also on the pairs where a
mirrored source is turned more like the target than the source as it is
(`fswap.faces.mirror.mirrors_wanted`); the classic swap then also runs on the mirror image there.

Sources and targets are distinct training-split photos (seeded); each source is swapped onto two
targets. Identity is the cosine of the swap to its source under w600k_mbf (the identity encoder
the networks were trained with, via the face analyzer's ONNX copy), through the same
`fswap.evaluation.evaluate` as `fswap eval`; top-1 asks whether the source is the swap's
nearest neighbour among all sources. Pose and expression errors are `fswap eval`'s landmark
measures. Moving the features changes the landmarks those measures read,
so both rise with the strength even where the head does not turn. The classic swap runs on the
same pairs for reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import markdown_table, model_name, portable_path, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.evaluation import Evaluation, comparison_text, evaluate, paired_comparison
from fswap.faces.analyzer import Face
from fswap.faces.first_stage import PASTE_OCCLUDERS
from fswap.faces.mirror import mirrors_wanted
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline

COLUMNS = ["method", "identity_similarity", "identity_top1", "pose_error_deg", "pose_error_median_deg",
           "expression_error", "pairs"]


def training_photo_paths(data: Path, count: int, seed: int) -> list[str]:
    """`count` distinct original photos of the training split, in a seeded random order."""
    origins = set()
    for line in (data / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("split") == "train" and record.get("origin"):
            origins.add(record["origin"])
    origins = sorted(origins)
    chosen = np.random.default_rng(seed).choice(len(origins), count, replace=False)
    return [origins[i] for i in chosen]


def training_photos(data: Path, count: int, seed: int) -> list[np.ndarray]:
    return [load_image(path) for path in training_photo_paths(data, count, seed)]


class TrainingRecogniser:
    """w600k_mbf, the recogniser the networks were trained with (the face analyzer's ONNX copy),
    behind the evaluation recogniser's interface, so `evaluate` scores with it instead."""

    def __init__(self, analyzer):
        self.analyzer = analyzer

    def embed(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        return self.analyzer.embed(image, Face(box=np.zeros(4), score=1.0, keypoints=keypoints))


def with_median_pose(evaluation: Evaluation) -> list[dict]:
    """`evaluation.rows()`, each with its median pose error too."""
    rows = evaluation.rows()
    for row in rows:
        poses = [r.pose_error_deg for r in evaluation.results if r.method == row["method"]]
        row["pose_error_median_deg"] = round(float(np.nanmedian(poses)), 3)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: the embedded default)")
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--people", type=int, default=150, help="sources (and as many targets)")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--feathers", type=float, nargs="+", default=[0.04],
                        help="outline feathering, as a fraction of the crop size")
    parser.add_argument("--jaw-shares", type=float, nargs="+", default=[None],
                        help="the outline's feather below the nose, as a share of the feather (default: the checkpoint's)")
    parser.add_argument("--source-occluders", nargs="+", default=[None], choices=PASTE_OCCLUDERS,
                        help="what of what covers the source face is pasted (default: the pipeline's default)")
    parser.add_argument("--mirror-sources", nargs="+", default=[None], choices=["on", "off"],
                        help="a source turned the other way from the target gives its mirror image (default: on)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--output", default="swap_settings", help="results file name in benchmarks/results/")
    args = parser.parse_args()

    photos = training_photos(args.data, 2 * args.people, args.seed)
    sources, targets = photos[: args.people], photos[args.people :]
    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    pairs = [(k, (k + step) % args.people) for step in range(2) for k in range(args.people)]
    methods = {
        f"fswap, shape_strength={strength:g}, feather={feather:g}" + ("" if jaw is None else f", jaw share={jaw:g}")
        + ("" if covers is None else f", source occluders={covers}")
        + ("" if mirror is None else f", mirrored sources {mirror}"): (
            lambda source, target, strength=strength, feather=feather, jaw=jaw, covers=covers, mirror=mirror: pipeline(
                source, target, shape_strength=strength, feather_fraction=feather, jaw_feather_share=jaw,
                watermark=False, **({} if covers is None else {"paste_source_occluders": covers}),
                **({} if mirror is None else {"mirror_sources": mirror == "on"})).image)
        for strength in args.strengths for feather in args.feathers for jaw in args.jaw_shares
        for covers in args.source_occluders for mirror in args.mirror_sources
    }
    fswap_rows = list(methods)
    methods["classic"] = lambda source, target: classic(source, target).image
    if args.mirror_sources != [None]:
        # The pairs whose source is turned the other way (each photo's face found once), and the
        # classic swap given the same mirror image there: is the gain the networks' or the photo's?
        analyzer = pipeline.face_analyzer
        source_points = [analyzer.largest_face(photo).landmarks for photo in sources]
        target_points = [analyzer.largest_face(photo).landmarks for photo in targets]
        turned = {(s, t) for s, t in pairs if mirrors_wanted([source_points[s]], [target_points[t]])}
        turned_photos = {(id(sources[s]), id(targets[t])) for s, t in turned}

        def classic_mirrored(source, target):
            if (id(source), id(target)) in turned_photos:
                source = np.ascontiguousarray(source[:, ::-1])
            return classic(source, target).image

        methods["classic, mirrored when turned the other way"] = classic_mirrored
    evaluation, _ = evaluate(methods, sources, targets, pairs, pipeline.face_analyzer,
                             TrainingRecogniser(pipeline.face_analyzer))
    rows = with_median_pose(evaluation)
    comparisons = [paired_comparison(evaluation, method, fswap_rows[0]) for method in fswap_rows[1:]]
    if args.mirror_sources != [None]:
        subset = Evaluation(results=[r for r in evaluation.results if (r.source, r.target) in turned])
        comparisons += [paired_comparison(subset, method, fswap_rows[0]) for method in fswap_rows[1:]]
        rows += [{**row, "method": f"{row['method']} (the {len(turned)} pairs turned the other way)"}
                 for row in with_median_pose(subset)]
    path = write_result(args.output, {"model": model_name(args.model), "data": portable_path(args.data),
                                            "seed": args.seed, "recogniser": "w600k_mbf (training)", "rows": rows,
                                            "comparisons": comparisons})
    print(markdown_table(rows, COLUMNS))
    for comparison in comparisons:
        print(comparison_text(comparison))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
