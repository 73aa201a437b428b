"""Parameters and FLOPs of each network, and per-stage latency of one- and four-face swaps on a
large photo at 128 and 256 px, side by side with the classic swap in the same run.

    python benchmarks/networks.py [--repeats 3]

Latency does not depend on the weights, so untrained networks of the shipped configurations
are timed; the 128-px row uses the architecture of the default checkpoint. Writes
benchmarks/results/networks.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import large_photo, markdown_table, write_result
from torch.utils.flop_counter import FlopCounterMode

from fswap.assets import DEFAULT_CHECKPOINT, example_image
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.building import build_untrained_pipeline
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline


def flops(module, *inputs) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() / 1e9


def network_table(pipeline, size: int) -> list[dict]:
    image = torch.zeros(1, 3, size, size)
    mask = torch.ones(1, 1, size, size)
    embedding = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    features = pipeline.attribute_encoder(image, mask).attribute_features
    measured = {
        "identity_encoder": flops(pipeline.identity_encoder, torch.zeros(1, 3, 112, 112)),
        "attribute_encoder": flops(pipeline.attribute_encoder, image, mask),
        "generator": flops(pipeline.generator, embedding, features),
        "occlusion_segmenter": flops(pipeline.occlusion_segmenter, image),
    }
    return [
        {"crop": size, "network": name, "parameters (M)": f"{sum(p.numel() for p in getattr(pipeline, name).parameters()) / 1e6:.2f}",
         "GFLOPs per face": f"{gflops:.2f}"}
        for name, gflops in measured.items()
    ]


def timed_runs(function, repeats: int) -> tuple[float, dict]:
    function()  # warm-up
    totals, stage_runs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        timings = function()
        totals.append(time.perf_counter() - start)
        stage_runs.append(timings)
    stages = {k: statistics.median(run[k] for run in stage_runs) for k in stage_runs[0]}
    return statistics.median(totals), stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    photo = large_photo()
    source = load_image(example_image("yaoming.jpg"))
    classic = ClassicFaceSwapper()

    network_rows, latency_rows, raw = [], [], {}
    for faces, selector in ((1, "largest"), (4, [0, 1, 2, 3])):
        seconds, stages = timed_runs(lambda s=selector: classic(source, photo, target_faces=s).timings, args.repeats)
        latency_rows.append({"method": "classic", "crop": "-", "faces": faces, "end to end (s)": f"{seconds:.2f}",
                             "ratio to classic": "1.00", "stages (s)": _stages(stages)})
        raw[f"classic_{faces}"] = {"seconds": seconds, "stages": stages}
        classic_seconds = seconds
        candidates = [(f"untrained {size}", size, build_untrained_pipeline(size, base_channels=16 if size == 128 else 32))
                      for size in (128, 256)]
        if (DEFAULT_CHECKPOINT / "model_index.json").is_file():
            candidates.append(("shipped checkpoint (two-stage)", 128, FaceSwapPipeline.from_pretrained(DEFAULT_CHECKPOINT)))
        for label, size, pipeline in candidates:
            if faces == 1 and label.startswith("untrained"):
                network_rows += network_table(pipeline, size)
            seconds, stages = timed_runs(lambda p=pipeline, s=selector: p(source, photo, target_faces=s).timings,
                                         args.repeats)
            latency_rows.append({"method": f"fswap, {label}", "crop": size, "faces": faces, "end to end (s)": f"{seconds:.2f}",
                                 "ratio to classic": f"{seconds / classic_seconds:.2f}", "stages (s)": _stages(stages)})
            raw[f"fswap_{label}_{faces}"] = {"seconds": seconds, "stages": stages}

    shape = f"{photo.shape[1]}x{photo.shape[0]}"
    path = write_result("networks", {"photo": shape, "repeats": args.repeats, "networks": network_rows, "latency": raw})
    print(markdown_table(network_rows, ["crop", "network", "parameters (M)", "GFLOPs per face"]))
    print(f"\nphoto {shape}; median of {args.repeats} runs after a warm-up\n")
    print(markdown_table(latency_rows, ["method", "crop", "faces", "end to end (s)", "ratio to classic", "stages (s)"]))
    print(f"\nwritten: {path}")


def _stages(stages: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in stages.items())


if __name__ == "__main__":
    main()
