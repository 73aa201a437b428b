"""Batch swapping on one process and on two, over the same targets, in the same run.

    python benchmarks/batch_processes.py                 # 200 held-out photos, fswap and classic
    python benchmarks/batch_processes.py --count 40      # a quick look

Runs `accelerate launch --config_file fswap/training/configs/cpu.yaml|cpu_2.yaml -m fswap.cli swap
SOURCE FOLDER -o OUT` on the same `--count` held-out CelebA photos (the offline photos when the
CelebA set is not prepared), each into a fresh folder, and reports photos per second end to end
(start-up and model loading included, as a user waits for them) and per process from the
manifest's own timings. On this 2-core machine two processes share two cores: the figure says what
splitting costs or gains here; on N GPUs each process has its own device.

Writes benchmarks/results/batch_processes.json.
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

from batch_startup import held_out_photos
from common import ROOT, model_name, write_result

CONFIGS = {1: "cpu.yaml", 2: "cpu_2.yaml"}


def run(processes: int, source: str, folder: Path, output: Path, options: list[str]) -> float:
    config = ROOT / "fswap" / "training" / "configs" / CONFIGS[processes]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "-m", "fswap.cli",
               "swap", source, str(folder), "-o", str(output), *options]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // processes))}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--methods", nargs="+", choices=["fswap", "classic"], default=["fswap", "classic"])
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: the shipped one)")
    args = parser.parse_args()

    from fswap.assets import example_image

    source = str(example_image("yaoming.jpg"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "targets"
        folder.mkdir()
        for i, photo in enumerate(held_out_photos(args.count)):
            shutil.copyfile(photo, folder / f"{i:04d}{photo.suffix}")
        for method, processes in [(method, processes) for method in args.methods for processes in (1, 2)]:
            options = ["--method", method, "--no-provenance",
                       *(["--model", args.model] if args.model and method == "fswap" else [])]
            output = Path(scratch) / f"{method}{processes}"
            load = round(os.getloadavg()[0], 2)
            seconds = run(processes, source, folder, output, options)
            manifest = [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]
            written = sum(row["status"] == "written" for row in manifest)
            busy = {}
            for row in manifest:
                busy[row["process"]] = busy.get(row["process"], 0.0) + row.get("seconds", 0.0)
            rows.append({"method": method, "processes": processes, "load_before": load, "photos": len(manifest), "written": written,
                         "wall_s": round(seconds, 1), "photos_per_s": round(len(manifest) / seconds, 2),
                         "swap_s_per_process": {str(k): round(v, 1) for k, v in sorted(busy.items())}})
    speed = {(row["method"], row["processes"]): row["photos_per_s"] for row in rows}
    result = {"model": model_name(args.model), "count": args.count, "runs": rows,
              "two_over_one": {method: round(speed[method, 2] / speed[method, 1], 2) for method in args.methods},
              "note": "load_before: the 1-minute load average before the run; on 2 cores a load above ~0.5 slows it"}
    path = write_result("batch_processes", result)
    for row in rows:
        print(f"{row['method']}, {row['processes']} process(es): {row['photos']} photos in {row['wall_s']} s, "
              f"{row['photos_per_s']} photos/s")
    print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
