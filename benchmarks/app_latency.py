"""The app as a user meets it: cold start, peak memory, and /swap latency through the API.

    python benchmarks/app_latency.py                 # the default checkpoint ($FSWAP_MODEL or embedded)
    python benchmarks/app_latency.py --model PATH    # a checkpoint folder or Hub id
    python benchmarks/app_latency.py --tiny          # a small untrained pipeline (64-px crops)

Starts `python app.py` in a fresh process and measures, with `gradio_client`:
- cold start: process start -> page served (app.py loads the model before it listens), and
  process start -> the first /swap response;
- median /swap latency (uploads included) for one face and for four faces of t1.jpg, with
  yaoming.jpg as the source; the feathering changes slightly on every call, so no call is answered
  from the app's cache of recent outputs;
- peak memory: the app process's peak resident set (VmHWM) at the end.

Writes benchmarks/results/app_latency.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, markdown_table, portable_path, write_result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_served(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"app.py did not serve {url} within {timeout:.0f} s")


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size of a live process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc status")


def tiny_checkpoint(folder: Path) -> Path:
    from fswap.building import build_untrained_pipeline

    return build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8).save_pretrained(
        folder
    )


def classic_reference(repeats: int) -> dict[int, float]:
    """The classic swap on the same photos and faces, timed in this process: the baseline of the run."""
    from fswap.assets import example_image
    from fswap.baselines.classic import ClassicFaceSwapper
    from fswap.imageio import load_image

    swapper = ClassicFaceSwapper()
    source, target = load_image(example_image("yaoming.jpg")), load_image(example_image("t1.jpg"))
    swapper(source, target)  # warm-up
    return {
        count: statistics.median(
            _timed(lambda c=count: swapper(source, target, target_faces=list(range(c)))) for _ in range(repeats)
        )
        for count in (1, 4)
    }


def _timed(function) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--model", help="checkpoint folder or Hub id (default: $FSWAP_MODEL or the embedded one)"
    )
    model.add_argument("--tiny", action="store_true", help="a small untrained pipeline, for a smoke run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    from fswap.assets import default_model, example_image

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = (
            str(tiny_checkpoint(Path(scratch) / "fswap-tiny")) if args.tiny else args.model or default_model()
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        environment = os.environ | {
            "FSWAP_MODEL": checkpoint,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
        }
        log = open(Path(scratch) / "app.log", "wb")  # noqa: SIM115  (closed below, after the process)
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_served(url, process, timeout=600)
            served = time.perf_counter() - start
            client = Client(url, verbose=False)
            calls = 0

            def swap(faces: list[int]) -> float:
                nonlocal calls
                calls += 1
                began = time.perf_counter()
                client.predict(
                    consent=True,
                    sources=[handle_file(str(example_image("yaoming.jpg")))],
                    target=handle_file(str(example_image("t1.jpg"))),
                    selection="chosen",
                    chosen=faces,
                    reference=None,
                    appearance_matching=True,
                    occlusion_aware=True,
                    feather=0.04 + 0.0001 * calls,  # a new request each time: no cached answer
                    api_name="/swap",
                )
                return time.perf_counter() - began

            swap([0])
            first_response = time.perf_counter() - start
            latency = {
                count: statistics.median(swap(list(range(count))) for _ in range(args.repeats))
                for count in (1, 4)
            }
            peak = peak_rss_mib(process.pid)
            classic = classic_reference(args.repeats)  # in this process, while the app idles
        except Exception:
            log.flush()
            print((Path(scratch) / "app.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=60)
            log.close()

    rows = [
        {"measure": "cold start: process start -> page served (model loaded)", "value": f"{served:.1f} s"},
        {"measure": "cold start: process start -> first /swap response", "value": f"{first_response:.1f} s"},
        {"measure": "peak memory of the app process (RSS)", "value": f"{peak:,.0f} MiB"},
        {"measure": "/swap median, 1 face of t1.jpg (1280x886)", "value": f"{latency[1]:.2f} s"},
        {"measure": "/swap median, 4 faces of t1.jpg (1280x886)", "value": f"{latency[4]:.2f} s"},
        {"measure": "reference: classic swap in-process, 1 face (no app, no upload)", "value": f"{classic[1]:.2f} s"},
        {"measure": "reference: classic swap in-process, 4 faces (no app, no upload)", "value": f"{classic[4]:.2f} s"},
    ]
    path = write_result(
        "app_latency",
        {
            "model": "tiny untrained pipeline (64-px crops)" if args.tiny else portable_path(checkpoint),
            "repeats": args.repeats,
            "cold_start_served_seconds": round(served, 3),
            "cold_start_first_swap_seconds": round(first_response, 3),
            "peak_rss_mib": round(peak, 1),
            "swap_median_seconds": {"1_face": round(latency[1], 4), "4_faces": round(latency[4], 4)},
            "classic_in_process_median_seconds": {"1_face": round(classic[1], 4), "4_faces": round(classic[4], 4)},
        },
    )
    print(
        f"model: {'tiny untrained pipeline' if args.tiny else checkpoint}; median of {args.repeats} calls\n"
    )
    print(markdown_table(rows, ["measure", "value"]))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
