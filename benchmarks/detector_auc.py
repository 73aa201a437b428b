"""Swap-detector ROC AUC on held-out people, per swap method, and across methods.

    python benchmarks/detector_auc.py --data data/swaps \
        --detector checkpoints/fswap-detector --fswap-only runs/detector-fswap-only/swap_detector \
        --write-checkpoint

Two detectors on the validation split of a swap data set (`fswap.data.swaps`), whose people are
in no training pair: the shipped one (trained on fswap and classic swaps) and one trained on
fswap swaps only, whose classic row is the cross-method number. Each is also scored after every
crop is re-saved as JPEG (`--jpeg-quality`). Writes benchmarks/results/detector_auc.json and,
with --write-checkpoint, the shipped detector's eval.json, model card (README.md) and LICENSE.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import torch
from common import markdown_table, portable_path, write_result

from fswap.hub.cards import write_detector_cards
from fswap.swap_detection import evaluate_detector, load_detector


def _trained_on(folder: Path) -> list[str]:
    record = folder / "training_record.json"
    return json.loads(record.read_text())["swap_methods"] if record.is_file() else ["?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/swaps"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--detector", type=Path, default=Path("checkpoints/fswap-detector"))
    parser.add_argument("--fswap-only", type=Path, help="a detector trained without classic swaps (cross-method)")
    parser.add_argument("--jpeg-quality", type=int, default=75)
    parser.add_argument("--write-checkpoint", action="store_true",
                        help="also write eval.json, README.md and LICENSE.md into --detector")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))

    variants = {"shipped": args.detector}
    if args.fswap_only:
        variants["fswap only"] = args.fswap_only
    rows = []
    for variant, folder in variants.items():
        detector = load_detector(folder)
        clean = evaluate_detector(detector, args.data, args.split)
        compressed = evaluate_detector(detector, args.data, args.split, jpeg_quality=args.jpeg_quality)
        for method, scores in clean.items():
            rows.append({
                "variant": variant, "detector": portable_path(folder), "trained_on": _trained_on(folder), "method": method,
                "auc": round(scores["auc"], 4), "auc_jpeg": round(compressed[method]["auc"], 4),
                "balanced_accuracy": round(scores["balanced_accuracy"], 4),
                "mask_iou": None if scores["mask_iou"] is None else round(scores["mask_iou"], 4),
                "real": scores["real"], "fake": scores["fake"],
            })
    payload = {"date": datetime.date.today().isoformat(), "data": portable_path(args.data), "split": args.split,
               "jpeg_quality": args.jpeg_quality, "rows": rows}
    path = write_result("detector_auc", payload)
    table = [{**row, "trained_on": " + ".join(row["trained_on"])} for row in rows]
    print(markdown_table(table, ["variant", "trained_on", "method", "auc", "auc_jpeg", "balanced_accuracy",
                                 "mask_iou", "real", "fake"]))
    print(f"\nwritten: {path}")
    if args.write_checkpoint:
        result = json.loads(path.read_text())
        (args.detector / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
        written = [args.detector / "eval.json", *write_detector_cards(args.detector)]
        print("written: " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
