"""Helpers shared by the benchmark scripts: timing, the large test photo, result files.

Result files are small summaries that name no machine: paths in them are relative to the
checkout (`portable_path`), and per-pair results go beside them compressed (`write_result`).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

#: The checkout the benchmarks belong to; paths in result files are relative to it.
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: Where the README's figures are written.
IMAGES = ROOT / "docs" / "images"


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `function` over `repeats` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def face_cover(pipeline, image: np.ndarray, name: str = "photo") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The largest face of `image` as `pipeline` reads a source face: its landmarks in the photo,
    and in its aligned crop its landmarks and what covers it (bool, `fswap.faces.masks.occluded_skin`)."""
    from fswap.faces.first_stage import FaceCrops
    from fswap.faces.masks import occluded_skin, region_mask
    from fswap.pipeline import OUTLINE_BAND

    size = pipeline.crop_size
    face = pipeline.face_analyzer.largest_face(image, name=name)
    crops = FaceCrops.align([image], [face], size, pipeline.crop_margin)
    visible = pipeline.occlusion_segmenter.predict_mask(pipeline.as_batch(crops.crops)).float().cpu().numpy()[0, 0]
    region = region_mask(crops.points[0], (size, size), "face")
    return face.landmarks, crops.points[0], occluded_skin(region, visible, OUTLINE_BAND * size)


def large_photo(scale: float = 4.0) -> np.ndarray:
    """insightface's t1.jpg (6 faces, 1280x886) upscaled: a 5120x3544, 18-megapixel real photo."""
    from fswap.assets import example_image
    from fswap.imageio import load_image

    image = load_image(example_image("t1.jpg"))
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def machine() -> dict:
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def portable_path(path: str | Path) -> str:
    """`path` as a result file records it, naming no machine: relative to the checkout, else to
    the temporary folder or the home folder, whichever holds it (`/tmp/first/checkpoints` ->
    `first/checkpoints`, an older checkout's worktree); its name alone anywhere else. A relative
    path (or a Hub id) stays as given."""
    if not Path(path).is_absolute():
        return str(path)
    for folder in (ROOT, Path(tempfile.gettempdir()).resolve(), Path.home().resolve()):
        for absolute in (Path(path), Path(path).resolve()):
            if absolute.is_relative_to(folder) and absolute != folder:
                return absolute.relative_to(folder).as_posix()
    return Path(path).name


def portable_command(argv: list[str]) -> str:
    """The command line `argv` with every path in it, alone or after `NAME=`, made portable."""
    words = []
    for word in argv:
        key, equals, value = word.rpartition("=")  # ("", "", word) when there is no "="
        words.append(key + equals + portable_path(value) if Path(value).is_absolute() else word)
    return "python " + " ".join(words)


def model_name(model: str | None) -> str:
    """The checkpoint a benchmark swapped with, for its result: `--model`, else the default one."""
    from fswap.assets import default_model

    return portable_path(model or default_model())


def write_result(name: str, payload: dict, pair_results: list[dict] | None = None) -> Path:
    """Write benchmarks/results/NAME.json: the command that made it, the machine, then `payload`.

    `pair_results` (one dict per pair, for re-analysis) go beside it gzipped, in the file its
    "results_file" names (`fswap.evaluation.write_pair_results`; `read_pair_results` reads it back).
    """
    from fswap.evaluation import write_pair_results

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"command": portable_command(sys.argv), "machine": machine(), **payload}
    if pair_results is not None:
        payload["results_file"] = write_pair_results(path, pair_results)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """`image` resized to `height` px high, its aspect kept (for figure rows)."""
    return cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height), interpolation=cv2.INTER_AREA)


def label_strip(text: str, width: int) -> np.ndarray:
    """A white strip `width` px wide with `text` on it: a figure's column heading."""
    canvas = np.full((26, width, 3), 255, np.uint8)
    cv2.putText(canvas, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return canvas


def add_checkpoint_arguments(parser) -> None:
    """The `--model` and `--data` options of the benchmarks that swap held-out photos."""
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: the embedded default)")
    parser.add_argument("--data", type=Path, default=Path("data/celeba"), help="prepared data set (fswap data prepare)")
