"""Where two methods' identity top-1 differ, pair by pair and photo by photo, from saved results.

    python benchmarks/top1_breakdown.py                     # checkpoints/fswap-default/eval.json
    python benchmarks/top1_breakdown.py --results benchmarks/results/identity_ablation.json \\
        --method fswap --reference "fswap, closed mouths stretched over open ones"
    python benchmarks/top1_breakdown.py --reference fswap --reference-results old_eval.json
    python benchmarks/top1_breakdown.py --by-cause   # -> benchmarks/results/top1_by_cause.json

Reads the per-pair results that `fswap eval` (eval.json) or `identity_ablation.py` wrote (in the
`*_pairs.jsonl.gz` file beside the summary, `fswap.evaluation.read_pair_results`), so it swaps nothing. For `--method` against `--reference` (default: fswap against classic): the paired
comparison `fswap eval` prints (`fswap.evaluation.paired_comparison`: McNemar's test on top-1,
bootstrapped intervals on identity and pose), the pairs each gets wrong, and the pairs only one
of them gets right grouped by source photo and by target photo, named by file (the held-out order of `fswap.evaluation.held_out_photos`, seed 0 as
in `fswap eval`). Against another fswap row of the ablation, it shows which photos a change of
setting moved. With `--reference-results`, the reference is read from another results file on
the same pairs (an earlier eval.json, say, from before a change to the code), and is named
"<reference> (before)".

With `--by-cause`, the pairs are also split by what fswap keeps of the target on purpose, and
each group gets its own paired comparison: pairs where the target's open mouth keeps its teeth
under a closed source mouth (`fswap.faces.first_stage.keeps_target_mouth`, the pipeline's rule,
from both photos' landmarks), pairs whose target has an eye hidden by what covers it
(`fswap.faces.shape.hidden_features` on the segmenter's mask, as the pipeline reads the source's;
sunglasses, tinted glasses), and the rest. It loads the checkpoint's face analyzer and
occlusion segmenter for that (a few seconds), and writes the groups' comparisons to
benchmarks/results/top1_by_cause.json.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from common import face_cover, portable_path, write_result

from fswap.evaluation import (
    Evaluation,
    PairResult,
    comparison_text,
    held_out_photos,
    paired_comparison,
    read_pair_results,
)


def right_pairs(results: list[dict], method: str) -> dict[tuple[int, int], bool]:
    """(source, target) -> whether `method` retrieved the right source there."""
    scored = {(r["source"], r["target"]): r.get("retrieved") == r["source"] for r in results if r["method"] == method}
    if not scored:
        raise SystemExit(f"no results for method {method!r}; have {sorted({r['method'] for r in results})}")
    return scored


def by_photo(pairs: list[tuple[int, int]], source_names: list[str], target_names: list[str],
             top: int) -> tuple[str, str]:
    """The photos that most of `pairs` share, as sources and as targets: 'name count, ...'."""
    sources = Counter(source_names[source] for source, _ in pairs).most_common(top)
    targets = Counter(target_names[target] for _, target in pairs).most_common(top)
    return (", ".join(f"{name} {count}" for name, count in sources),
            ", ".join(f"{name} {count}" for name, count in targets))


def photo_names(data: Path, pairs: list[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """The file names of the sources and targets `pairs` index, in `fswap eval`'s layout (as many
    sources as targets, the held-out photos in order); other layouts (the other-photo benchmark's
    14 sources) are named by index."""
    sources, targets = max(s for s, _ in pairs) + 1, max(t for _, t in pairs) + 1
    if sources != targets:
        return [f"source #{k}" for k in range(sources)], [f"target #{k}" for k in range(targets)]
    names = [path.name for path in held_out_photos(data, 2 * sources, seed=0)]
    return names[:sources], names[sources:]


def photo_facts(model: str | None, photos: list[Path]) -> list[dict]:
    """Per photo: its face's landmarks in the photo and whether what covers it hides an eye, as
    the pipeline of checkpoint `model` reads them."""
    from fswap.assets import default_model
    from fswap.faces.shape import hidden_features
    from fswap.imageio import load_image
    from fswap.pipeline import FaceSwapPipeline

    pipe = FaceSwapPipeline.from_pretrained(model or default_model())
    facts = []
    for path in photos:
        landmarks, points, occluded = face_cover(pipe, load_image(path), path.name)
        facts.append({"landmarks": landmarks, "eye_hidden": bool(hidden_features(points, occluded) & {"left_eye", "right_eye"})})
    return facts


def cause_groups(pairs: list[tuple[int, int]], facts: list[dict], people: int) -> dict[str, list[tuple[int, int]]]:
    """`pairs` split by what fswap keeps of the target on purpose (a pair with both goes by its teeth)."""
    from fswap.faces.first_stage import keeps_target_mouth

    groups = {"target's teeth kept": [], "target's eye hidden": [], "the rest": []}
    for source, target in pairs:
        source_facts, target_facts = facts[source], facts[people + target]
        if keeps_target_mouth(source_facts["landmarks"], target_facts["landmarks"]):
            groups["target's teeth kept"].append((source, target))
        elif target_facts["eye_hidden"]:
            groups["target's eye hidden"].append((source, target))
        else:
            groups["the rest"].append((source, target))
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("checkpoints/fswap-default/eval.json"))
    parser.add_argument("--method", default="fswap")
    parser.add_argument("--reference", default="classic")
    parser.add_argument("--reference-results", type=Path,
                        help="read --reference from this results file instead (an earlier run on the same pairs)")
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--by-cause", action="store_true",
                        help="also compare within the pairs where fswap keeps the target's teeth or hidden eye, and the rest")
    parser.add_argument("--model", help="--by-cause: the checkpoint whose analyzer and segmenter read the photos "
                        "(default: the embedded default)")
    args = parser.parse_args()

    results = read_pair_results(args.results)
    if args.reference_results:
        earlier = read_pair_results(args.reference_results)
        args.reference = f"{args.reference} (before)"
        results += [{**r, "method": f"{r['method']} (before)"} for r in earlier]
    evaluation = Evaluation(results=[PairResult(**result) for result in results])
    print(comparison_text(paired_comparison(evaluation, args.method, args.reference)))
    method = right_pairs(results, args.method)
    people = max(source for source, _ in method) + 1
    source_names, target_names = photo_names(args.data, list(method))
    reference = right_pairs(results, args.reference)
    only_method = sorted(pair for pair, right in method.items() if right and not reference[pair])
    only_reference = sorted(pair for pair, right in reference.items() if right and not method[pair])
    print(f"{len(method)} pairs; wrong: {args.method} {sum(not r for r in method.values())}, "
          f"{args.reference} {sum(not r for r in reference.values())}")
    for label, pairs in ((f"right only for {args.method}", only_method), (f"right only for {args.reference}", only_reference)):
        sources, targets = by_photo(pairs, source_names, target_names, args.top)
        print(f"{label}: {len(pairs)}\n  by source: {sources}\n  by target: {targets}")
    if args.by_cause:
        facts = photo_facts(args.model, held_out_photos(args.data, 2 * people, seed=0))
        comparisons = {}
        for cause, pairs in cause_groups(sorted(method), facts, people).items():
            chosen = set(pairs)
            subset = Evaluation(results=[r for r in evaluation.results if (r.source, r.target) in chosen])
            comparisons[cause] = paired_comparison(subset, args.method, args.reference)
            print(f"{cause}: {comparison_text(comparisons[cause])}")
        path = write_result("top1_by_cause", {"results": portable_path(args.results), "groups": comparisons})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
