"""Where identity is won and lost: fswap's stages switched off one at a time, next to the classic
swap with and without its Poisson blend, on the same held-out pairs as `fswap eval`.

    python benchmarks/identity_ablation.py --pairs 2209         # the default checkpoint, every held-out pair
    python benchmarks/identity_ablation.py --model runs/swap/pipeline --pairs 40

Rows (all scored by the evaluation recogniser, which never enters training):
- fswap: the checkpoint as shipped;
- fswap, target's proportions: the source's texture warped onto the target's landmarks as they
  are, without the source's feature proportions (`shape_strength=0`, `fswap.faces.shape`);
- fswap, only what covers the source's eyes pasted: what reaches in over the source face's
  outline (a fringe, a hat's brim, a hand) is not pasted, the target's face shows there
  (`paste_source_occluders="inside"`; the default pastes all of it, as in the photo);
- fswap, source's occluders cut: the target's face kept wherever what covers the source face
  lands, its glasses too (`paste_source_occluders="none"`, the default until 2026-11-30);
- fswap, closed mouths stretched over open ones: an open target mouth does not keep its teeth
  under a closed source mouth (`keep_open_mouths=False`, the default until 2026-11-30);
- fswap, a source turned the other way stretched: a source face turned the other way from the
  target face is warped as it is, not taken in its mirror image (`mirror_sources=False`, the
  default until 2026-12-01; `fswap.faces.mirror`);
- fswap, the outline's feather along the jaw too: the face's outline fades over 0.04 of the
  crop all round, as it did until 2026-12-01, not over the classic swap's width below the nose
  (`jaw_feather_share=1`, `fswap.faces.align.blend_mask`);
- fswap, classic's outline feather: the face's outline fades over 0.0234 of the crop all round
  (`feather_fraction`; about 0.04 of the face's size, the classic swap's), the forehead and
  temples too: more of the source's face, and its seams (`benchmarks/swap_settings.py`);
- fswap, no watermark: without fswap's invisible watermark (`watermark=False`), which changes the
  face by a few grey levels;
- fswap, crop resolution: the network's 128-px face pasted back as it is (no full-resolution finish);
- fswap, occlusion off: occluders are not kept, the swapped face is pasted over them;
- first stage only: doc 003's first face image (source texture warped onto the target), no network;
- first stage only, occlusion off;
- classic (Poisson) and classic without Poisson: the landmark baseline;
- no swap: the unchanged target.

Writes benchmarks/results/identity_ablation.json (the table) and identity_ablation_pairs.jsonl.gz
beside it (every pair, for `top1_breakdown.py`), and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse

from common import RESULTS, add_checkpoint_arguments, markdown_table, model_name, portable_path, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.evaluation import EvaluationRecogniser, Journal, evaluate, held_out_pairs
from fswap.pipeline import FaceSwapPipeline

#: The classic swap feathers its outline over 0.04 of the face's size (`fswap.baselines.classic`);
#: the face spans about 75 px of the 128-px crop, so that is 0.0234 of the crop.
CLASSIC_FEATHER = 0.0234
COLUMNS = ["method", "identity_similarity", "identity_top1", "pose_error_deg", "expression_error",
           "background_psnr_db", "seconds_per_swap", "pairs", "failures"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--pairs", type=int, default=141, help="pairs; beyond half the held-out photos, several targets per source")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sources, targets, pairs = held_out_pairs(args.data, args.pairs, args.seed)
    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)

    def fswap(**options):
        return lambda source, target: pipeline(source, target, **options).image

    methods = {
        "fswap": fswap(),
        "fswap, target's proportions": fswap(shape_strength=0.0),
        "fswap, only what covers the source's eyes pasted": fswap(paste_source_occluders="inside"),
        "fswap, source's occluders cut": fswap(paste_source_occluders="none"),
        "fswap, closed mouths stretched over open ones": fswap(keep_open_mouths=False),
        "fswap, a source turned the other way stretched": fswap(mirror_sources=False),
        "fswap, the outline's feather along the jaw too": fswap(jaw_feather_share=1.0),
        "fswap, classic's outline feather": fswap(feather_fraction=CLASSIC_FEATHER, jaw_feather_share=1.0),
        "fswap, no watermark": fswap(watermark=False),
        "fswap, crop resolution": fswap(full_resolution=False),
        "fswap, occlusion off": fswap(occlusion_aware=False),
        "first stage only": fswap(refine=False),
        "first stage only, occlusion off": fswap(refine=False, occlusion_aware=False),
        "classic": lambda source, target: classic(source, target).image,
        "classic without Poisson": lambda source, target: classic(source, target, poisson=False).image,
        "no swap": lambda source, target: target,
    }
    # Journalled pair by pair: a run stopped part-way resumes when started again with the same options.
    run = {"model": args.model or str(default_model()), "data": str(args.data.resolve()), "pairs": args.pairs,
           "seed": args.seed, "methods": list(methods)}
    journal = Journal(RESULTS / "identity_ablation_journal.jsonl", run)
    evaluation, _ = evaluate(methods, sources, targets, pairs,
                             pipeline.face_analyzer, EvaluationRecogniser(), journal=journal)
    rows = evaluation.rows()
    path = write_result("identity_ablation", {"model": model_name(args.model), "data": portable_path(args.data),
                                               "seed": args.seed, "people": len(sources), "rows": rows},
                        pair_results=[vars(r) for r in evaluation.results])
    journal.path.unlink()
    print(markdown_table(rows, COLUMNS))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
