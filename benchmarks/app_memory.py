"""The app's memory under a large declared-size image and under concurrent swaps (issue #28, item 6).

    python benchmarks/app_memory.py                 # the default checkpoint ($FSWAP_MODEL or embedded)
    python benchmarks/app_memory.py --model PATH    # a checkpoint folder or Hub id
    python benchmarks/app_memory.py --tiny          # a small untrained pipeline (64-px crops)

Starts `python app.py` in a fresh process, calls it with `gradio_client`, and reads the app
process's resident set from Linux's /proc/PID/status:
- idle: VmRSS once every endpoint has answered one call on a normal photo (t1.jpg), so that what
  is loaded on first use (the swap detector, gradio's routes) counts as idle, not as retained;
- for each workload, peak: the process's peak resident set during it (VmHWM, reset before it by
  writing 5 to /proc/PID/clear_refs, and VmRSS sampled every 10 ms in a thread: the larger);
  retained: VmRSS 3 s after its last answer.

The workloads: one /detect of a PNG of about 250 KB that declares 8,900 x 8,900 pixels (one
grey colour, under the 80-megapixel limit of `fswap.imageio`); /check and 6 /detect of it at
once; 10 /swap of normal photos at once (yaoming.jpg onto t1.jpg, 1280x886, each with its own
feathering, so none is answered from the app's recent outputs); one /swap onto an 18-megapixel
photo with faces (t1.jpg upscaled 4x, `common.large_photo`), larger than the app's working size.

Writes benchmarks/results/app_memory.json and prints the Markdown table of docs/app_memory.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app_latency import free_port, tiny_checkpoint, wait_until_served
from common import ROOT, large_photo, markdown_table, portable_path, write_result
from PIL import Image

#: The acceptance of issue #28: peak at most 1.5 GB, and back within 200 MB of idle afterwards.
PEAK_LIMIT_MIB = 1.5e9 / 2**20
RETAINED_LIMIT_MIB = 200e6 / 2**20
SETTLE_SECONDS = 3.0


def status_mib(pid: int, field: str) -> float:
    """A memory field of a live process's /proc/PID/status (VmRSS, VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


@contextlib.contextmanager
def peak_rss(pid: int, interval: float = 0.01):
    """Yields a dict whose "peak_mib" is, once the block ends, the process's peak resident set
    during the block: VmHWM reset at its start where the kernel allows, and VmRSS sampled."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        high_water_reset = True
    except OSError:
        high_water_reset = False
    sampled = [status_mib(pid, "VmRSS")]
    done = threading.Event()

    def sample():
        while not done.wait(interval):
            sampled.append(status_mib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    figures: dict = {}
    try:
        yield figures
    finally:
        done.set()
        sampler.join()
        peak = max(sampled)
        if high_water_reset:
            peak = max(peak, status_mib(pid, "VmHWM"))
        figures["peak_mib"] = peak


def large_declared_png(path: Path, side: int) -> Path:
    Image.new("RGB", (side, side), (128, 128, 128)).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", help="checkpoint folder or Hub id (default: $FSWAP_MODEL or the embedded one)")
    model.add_argument("--tiny", action="store_true", help="a small untrained pipeline, for a smoke run")
    parser.add_argument("--side", type=int, default=8900, help="the large PNG's declared width and height")
    parser.add_argument("--detects", type=int, default=6, help="/detect calls at once with /check")
    parser.add_argument("--swaps", type=int, default=10, help="/swap calls at once")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    from fswap.assets import default_model, example_image

    def swap_arguments(number: int, target: Path = example_image("t1.jpg")) -> dict:
        return {
            "consent": True,
            "sources": [handle_file(str(example_image("yaoming.jpg")))],
            "target": handle_file(str(target)),
            "selection": "largest",
            "chosen": [],
            "reference": None,
            "appearance_matching": True,
            "occlusion_aware": True,
            "feather": 0.04 + 0.0001 * number,  # a new request each time: no answer from the app's cache
            "api_name": "/swap",
        }

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        checkpoint = str(tiny_checkpoint(scratch / "fswap-tiny")) if args.tiny else args.model or default_model()
        large = large_declared_png(scratch / "large.png", args.side)
        large_bytes = large.stat().st_size
        photo_18mp = scratch / "t1-4x.jpg"
        photo = large_photo()
        photo_size = [photo.shape[1], photo.shape[0]]
        Image.fromarray(photo).save(photo_18mp, quality=95)
        del photo
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        environment = os.environ | {
            "FSWAP_MODEL": checkpoint,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
        }
        log = open(scratch / "app.log", "wb")  # noqa: SIM115  (closed below, after the process)
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_served(url, process, timeout=600)
            started = status_mib(process.pid, "VmRSS")
            client = Client(url, verbose=False)
            # Warm-up: every endpoint once on a normal photo.
            client.predict(handle_file(str(example_image("t1.jpg"))), api_name="/detect")
            client.predict(handle_file(str(example_image("t1.jpg"))), api_name="/check")
            client.predict(**swap_arguments(0))
            time.sleep(SETTLE_SECONDS)
            idle = status_mib(process.pid, "VmRSS")

            def measured(calls: list) -> dict:
                """Runs `calls` (functions of no argument) at once; the peak and retained RSS."""
                with peak_rss(process.pid) as figures, ThreadPoolExecutor(len(calls)) as pool:
                    answers = [future.result() for future in [pool.submit(call) for call in calls]]
                time.sleep(SETTLE_SECONDS)
                figures["retained_mib"] = status_mib(process.pid, "VmRSS")
                figures["answers"] = answers
                return figures

            def detect_large():
                return client.predict(handle_file(str(large)), api_name="/detect")[1]

            def check_large():
                return client.predict(handle_file(str(large)), api_name="/check")[2]

            one_detect = measured([detect_large])
            check_and_detects = measured([check_large] + [detect_large] * args.detects)
            swaps = measured([lambda number=number: client.predict(**swap_arguments(number))
                              for number in range(1, args.swaps + 1)])
            large_swap = measured([lambda: client.predict(**swap_arguments(0, photo_18mp))])
        except Exception:
            log.flush()
            print((scratch / "app.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=60)
            log.close()

    working = one_detect["answers"][0]
    with Image.open(large_swap["answers"][0][0]) as result:
        swapped_at = list(result.size)
    workloads = {
        f"one /detect of a {args.side}x{args.side} PNG": one_detect,
        f"/check + {args.detects} /detect of it at once": check_and_detects,
        f"{args.swaps} /swap of t1.jpg at once": swaps,
        "one /swap onto an 18-megapixel photo": large_swap,
    }
    rows = [
        {
            "workload": name,
            "peak RSS": f"{figures['peak_mib']:,.0f} MiB",
            "retained RSS": f"{figures['retained_mib']:,.0f} MiB",
            "retained - idle": f"{figures['retained_mib'] - idle:+,.0f} MiB",
        }
        for name, figures in workloads.items()
    ]
    path = write_result(
        "app_memory",
        {
            "model": "tiny untrained pipeline (64-px crops)" if args.tiny else portable_path(checkpoint),
            "large_png": {"declared_side": args.side, "file_bytes": large_bytes,
                          "detected_at": [working["width"], working["height"]], "notice": working.get("notice")},
            "photo_18mp": {"size": photo_size, "swapped_at": swapped_at},
            "started_rss_mib": round(started, 1),
            "idle_rss_mib": round(idle, 1),
            "workloads": {
                name: {"peak_rss_mib": round(figures["peak_mib"], 1),
                       "retained_rss_mib": round(figures["retained_mib"], 1),
                       "retained_over_idle_mib": round(figures["retained_mib"] - idle, 1)}
                for name, figures in workloads.items()
            },
            "acceptance": {
                "peak_limit_mib": round(PEAK_LIMIT_MIB, 1),
                "retained_over_idle_limit_mib": round(RETAINED_LIMIT_MIB, 1),
                "met": all(figures["peak_mib"] <= PEAK_LIMIT_MIB
                           and figures["retained_mib"] - idle <= RETAINED_LIMIT_MIB
                           for figures in workloads.values()),
            },
        },
    )
    print(f"model: {'tiny untrained pipeline' if args.tiny else portable_path(checkpoint)}; "
          f"app started at {started:,.0f} MiB, idle after warm-up {idle:,.0f} MiB\n")
    print(markdown_table(rows, ["workload", "peak RSS", "retained RSS", "retained - idle"]))
    print(f"\nwritten: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
