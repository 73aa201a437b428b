"""Swap data sets for training and testing swap detectors, in a FaceForensics++-like layout.

    output_dir/
        dataset.json                          settings (crop size, margin, seed, model) and counts
        metadata.jsonl                        one line per crop: file, label, method, source, target,
                                              split, mask, licence, the photos it came from
        skipped.jsonl                         pairs that gave no crop, with the reason
        real/<target>.png                     the target's own face, unswapped
        fake/<method>/<target>_<source>.png   the same face after a swap by `method`
        masks/<method>/<target>_<source>.png  the swap's blend mask (what was pasted), 8-bit

Every crop, real or fake, is cut the way a detector sees a user's photo: the face is detected
in the (swapped) photo and aligned to the ArcFace template with `margin`; the blend mask is
warped with the same matrix. Pairs never cross splits: a "val" target gets "val" sources only,
so the people of a held-out split appear in none of the training swaps. Every method swaps the
same (target, source) pairs. The run resumes like `fswap data prepare`: crops are written
atomically, the logs line by line, and a crop already logged is not made again.

Under `accelerate launch --num_processes N` each process swaps its share of the same work list
(`fswap.processes`) and logs it to its own shard (`.metadata.jsonl.<process>`); the main process
folds the shards into the logs when all are done, or at the start of the next run after an
interruption.

    fswap data swaps data/celeba -o data/swaps
    accelerate launch --config_file fswap/training/configs/cpu_2.yaml -m fswap.data.swaps data/celeba -o data/swaps
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from fswap import processes

# TODO(#26): these three log helpers become public (prepare.py or fswap.fileio); swaps.py then imports those.
from fswap.data.prepare import _read_jsonl, _truncate_jsonl, _write_if_changed
from fswap.errors import FswapError
from fswap.faces import FaceAnalyzer, alignment_matrix, warp_face
from fswap.imageio import load_image, save_image
from fswap.swap_dataset_options import DESCRIPTION, METHODS, add_swap_dataset_arguments

REAL = "real"
DATASET_FILE = "dataset.json"
METADATA_FILE = "metadata.jsonl"
SKIPPED_FILE = "skipped.jsonl"
FORMAT = "fswap-swap-crops"
#: Settings that decide what a crop is; a later run on the same folder must repeat them.
SETTINGS = ("size", "margin", "seed", "model")

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class _Photo:
    name: str  # safe for a file name
    path: Path
    split: str
    identity: str | None
    licence: str


def generate_swap_dataset(
    data_dir: str | Path,
    output_dir: str | Path,
    methods: tuple[str, ...] = METHODS,
    *,
    pipeline=None,
    model: str | Path | None = None,
    size: int = 128,
    margin: float = 0.25,
    pairs_per_target: int = 1,
    splits: tuple[str, ...] = ("train", "val"),
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Swap faces of a prepared data set with fswap and the classic swap; save aligned crops.

    Args:
        data_dir: a folder written by `fswap data prepare`; its manifest's `origin` photos are
            the real faces (one face each: the largest).
        output_dir: the swap data set; created if needed, resumed if it holds one.
        methods: any of "fswap" (the pipeline), "relit" (the pipeline's relit rendering) and
            "classic" (`ClassicFaceSwapper`).
        pipeline: a loaded `FaceSwapPipeline`; by default `model` is loaded.
        model: checkpoint folder or Hub id for the pipeline (default: `fswap.assets.default_model()`).
        size: side of the saved crops in pixels.
        margin: context around the ArcFace template (0.25 = 25 % more than the 112-px crop).
        pairs_per_target: swaps per target photo and method, each from another source photo of
            the same split. Raising it later adds pairs and keeps the earlier ones.
        splits: which splits of the manifest to use.
        limit: use at most this many target photos per split (the first by name).
        seed: picks the sources.
        progress: show a tqdm progress bar.

    Returns:
        The folder's `dataset.json`: settings and crop counts per split and method.
    """
    from fswap.assets import default_model
    from fswap.pipeline import FaceSwapPipeline

    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {methods}")
    if size < 32 or pairs_per_target < 1 or (limit is not None and limit < 2):
        raise ValueError(f"need size >= 32, pairs_per_target >= 1 and limit >= 2; got {size}, {pairs_per_target}, {limit}")
    state = processes.launched_processes()  # under `accelerate launch`: this process's share only
    if pipeline is None:
        model = str(model or default_model())
        pipeline = FaceSwapPipeline.from_pretrained(model, device=state and state.device)
    else:
        model = str(model) if model is not None else "a FaceSwapPipeline passed in"
    model = _portable(model)
    output_dir = Path(output_dir)
    settings = {"size": size, "margin": margin, "seed": seed, "model": model}
    metadata_path, skipped_path = output_dir / METADATA_FILE, output_dir / SKIPPED_FILE
    if processes.is_main(state):
        _claim_folder(output_dir, settings)
        for log in (metadata_path, skipped_path):  # what an interrupted run logged is kept
            _truncate_jsonl(log, _read_jsonl(log)[0])
            processes.fold_shards(log)
        lines, rows = _read_jsonl(metadata_path)  # a crop whose file is gone is made again, and logged once
        _truncate_jsonl(metadata_path, [line for line, row in zip(lines, rows, strict=True)
                                        if (output_dir / row["file"]).is_file()])
    processes.wait_for_everyone(state)

    photos = _read_photos(Path(data_dir), splits, limit)
    work = []  # (target, source or None, method), the same list on every process
    for split in splits:
        in_split = [p for p in photos if p.split == split]
        for target in in_split:
            work.append((target, None, REAL))
            for source in _pick_sources(target, in_split, pairs_per_target, seed):
                work.extend((target, source, method) for method in methods)
    rows, skips = _read_jsonl(metadata_path)[1], _read_jsonl(skipped_path)[1]
    done = {row["file"] for row in rows if (output_dir / row["file"]).is_file()} | {s["file"] for s in skips}
    todo = processes.share([item for item in work if _crop_file(*item) not in done], state)

    started = time.perf_counter()
    rank = processes.rank(state)
    with processes.shard_path(metadata_path, rank).open("a", encoding="utf-8") as metadata, \
            processes.shard_path(skipped_path, rank).open("a", encoding="utf-8") as skipped:
        _swap_crops(pipeline, methods, todo, output_dir, size, margin, metadata, skipped, rank,
                    progress and processes.is_main(state))
    processes.wait_for_everyone(state)
    if processes.is_main(state):
        for log in (metadata_path, skipped_path):
            processes.fold_shards(log)
        _write_summary(output_dir, settings, data_dir, seconds=time.perf_counter() - started)
    processes.wait_for_everyone(state)
    return json.loads((output_dir / DATASET_FILE).read_text(encoding="utf-8"))


def _swap_crops(pipeline, methods: tuple[str, ...], todo: list, output_dir: Path, size: int, margin: float,
                metadata, skipped, rank: int, progress: bool) -> None:
    """Make the crops of `todo`, logging each to `metadata` (or `skipped`, with the reason) as it is written."""
    from fswap.baselines.classic import ClassicFaceSwapper

    analyzer: FaceAnalyzer = pipeline.face_analyzer
    classic = ClassicFaceSwapper(analyzer) if "classic" in methods else None
    swappers = {
        "fswap": lambda source, target: _fswap(pipeline, source, target),
        "relit": lambda source, target: _fswap(pipeline, source, target, rendering="relit"),
        "classic": lambda source, target: _classic(classic, source, target),
    }
    photo_cache: dict[Path, np.ndarray] = {}

    def photo(path: Path) -> np.ndarray:
        if path not in photo_cache:
            if len(photo_cache) > 64:
                photo_cache.clear()
            photo_cache[path] = load_image(path)
        return photo_cache[path]

    for target, source, method in tqdm(todo, desc="swapping faces", unit="crop", disable=not progress,
                                       dynamic_ncols=True):
        file = _crop_file(target, source, method)
        try:
            if method == REAL:
                image, blend_mask = photo(target.path), None
            else:
                image, blend_mask = swappers[method](photo(source.path), photo(target.path))
            faces = analyzer.detect(image, landmarks=False, max_faces=1)
            if not faces:
                raise _NoCrop("no face found in the result")
        except (FswapError, _NoCrop) as error:
            skipped.write(json.dumps({"file": file, "method": method, "target": target.name,
                                      "source": source and source.name, "reason": str(error)}) + "\n")
            skipped.flush()
            continue
        matrix = alignment_matrix(faces[0].keypoints, size, margin)
        save_image(output_dir / file, warp_face(image, matrix, size))
        mask_file = None
        if blend_mask is not None:
            mask_file = _mask_file(target, source, method)
            mask_crop = warp_face(blend_mask.astype(np.float32), matrix, size)
            save_image(output_dir / mask_file, np.clip(mask_crop * 255 + 0.5, 0, 255).astype(np.uint8))
        row = {
            "file": file, "label": int(method != REAL), "method": method, "target": target.name,
            "source": source and source.name, "split": target.split, "mask": mask_file,
            "target_photo": str(target.path), "source_photo": source and str(source.path),
            "licence": target.licence, "box": np.round(faces[0].box, 1).tolist(), "process": rank,
        }
        metadata.write(json.dumps(row) + "\n")
        metadata.flush()


def _write_summary(output_dir: Path, settings: dict, data_dir, seconds: float) -> None:
    metadata_path, skipped_path = output_dir / METADATA_FILE, output_dir / SKIPPED_FILE
    _, rows = _read_jsonl(metadata_path)
    counts = Counter((row["split"], row["method"]) for row in rows)
    summary = {
        "format": FORMAT, "version": 1, **settings, "methods": sorted({row["method"] for row in rows} - {REAL}),
        "data": str(data_dir), "licence": sorted({row["licence"] for row in rows}),
        "counts": {split: {m: counts[(split, m)] for m in (REAL, *METHODS) if counts[(split, m)]}
                   for split in sorted({s for s, _ in counts})},
        "skipped": sum(1 for _ in _read_jsonl(skipped_path)[1]),
        "seconds_this_run": round(seconds, 1),
    }
    _write_if_changed(output_dir / DATASET_FILE, json.dumps(summary, indent=2) + "\n")


class _NoCrop(Exception):
    pass


def _fswap(pipeline, source_image: np.ndarray, target_image: np.ndarray, rendering: str = "pasted",
           ) -> tuple[np.ndarray, np.ndarray]:
    # No provenance watermark: a detector must learn the swap's own traces, not fswap's signature.
    output = pipeline(source_image, target_image, watermark=False, rendering=rendering)
    return output.image, output.blend_mask()


def _classic(swapper, source_image: np.ndarray, target_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    result = swapper(source_image, target_image)
    return result.image, result.blend_mask


def _crop_file(target: _Photo, source: _Photo | None, method: str) -> str:
    return f"{REAL}/{target.name}.png" if method == REAL else f"fake/{method}/{target.name}_{source.name}.png"


def _mask_file(target: _Photo, source: _Photo, method: str) -> str:
    return f"masks/{method}/{target.name}_{source.name}.png"


def _pick_sources(target: _Photo, photos: list[_Photo], count: int, seed: int) -> list[_Photo]:
    """`count` other people of the target's split; the first k picks do not depend on `count`."""
    others = [p for p in photos if p.name != target.name and (p.identity is None or p.identity != target.identity)]
    if len(others) < count:
        raise FswapError(f"split {target.split!r} has {len(others)} other people; {count} sources per target are needed")
    order = np.random.default_rng([seed, zlib.crc32(target.name.encode())]).permutation(len(others))
    return [others[i] for i in order[:count]]


def _portable(model: str) -> str:
    """A checkpoint inside this checkout by its path from the checkout's root (the same in every clone)."""
    root = Path(__file__).resolve().parents[2]
    path = Path(model).resolve()
    return path.relative_to(root).as_posix() if path.exists() and path.is_relative_to(root) else model


def _safe_name(text: str) -> str:
    """A file-name-safe id: kept when it already is one, else cleaned and tagged with a checksum."""
    if _SAFE_NAME.fullmatch(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[:40] or "photo"
    return f"{cleaned}-{zlib.crc32(text.encode()):08x}"


def _read_photos(data_dir: Path, splits: tuple[str, ...], limit: int | None) -> list[_Photo]:
    manifest = data_dir / "manifest.jsonl"
    if not manifest.is_file():
        raise FswapError(f"{data_dir} has no manifest.jsonl: run `fswap data prepare ... -o {data_dir}` first")
    photos: dict[str, _Photo] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        origin = record.get("origin")
        if record.get("split") not in splits or not origin or not Path(origin).is_file():
            continue
        name = _safe_name(str(record.get("image_id") or Path(origin).stem))
        photos.setdefault(name, _Photo(name, Path(origin), record["split"], record.get("identity"),
                                       record.get("licence", "unknown")))
    chosen = []
    for split in splits:
        in_split = sorted((p for p in photos.values() if p.split == split), key=lambda p: p.name)
        if len(in_split) < 2:
            raise FswapError(f"{data_dir} has {len(in_split)} {split} photos with an original (`origin`); need 2 or more")
        chosen += in_split[:limit]
    return chosen


def _claim_folder(output_dir: Path, settings: dict) -> None:
    path = output_dir / DATASET_FILE
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing.get("format") != FORMAT:
            raise FswapError(f"{output_dir} holds something else than a swap data set ({path})")
        changed = {k: (existing.get(k), v) for k, v in settings.items() if existing.get(k) != v}
        if changed:
            listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise FswapError(f"{output_dir} was made with other settings ({listed}); use another folder")
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_if_changed(path, json.dumps({"format": FORMAT, "version": 1, **settings}, indent=2) + "\n")


# ------------------------------------------------------------------------------------ reading
@dataclass
class SwapCrops:
    """The crops of one split, in memory: what training and evaluation read.

    images [N, S, S, 3] uint8; masks [N, S, S] uint8 (255 = pasted; zeros for real crops);
    labels [N] (1 = swapped); methods [N] ("real", "fswap", ...); rows: the metadata lines.
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    methods: np.ndarray
    rows: list[dict]
    margin: float

    def __len__(self) -> int:
        return len(self.rows)

    def indices(self, method: str) -> np.ndarray:
        return np.flatnonzero(self.methods == method)


def load_swap_crops(
    roots: str | Path | list, split: str, methods: tuple[str, ...] | None = None, size: int | None = None
) -> SwapCrops:
    """Real crops and the fakes of `methods` (all when None) of one split, resized to `size`."""
    roots = [Path(r) for r in (roots if isinstance(roots, (list, tuple)) else [roots])]
    images, masks, rows, margins = [], [], [], set()
    for root in roots:
        settings_path = root / DATASET_FILE
        if not (root / METADATA_FILE).is_file() or not settings_path.is_file():
            raise FswapError(f"{root} is not a swap data set (no {METADATA_FILE}): run generate_swap_dataset first")
        settings = json.loads(settings_path.read_text(encoding="utf-8"))
        margins.add(settings["margin"])
        for row in _read_jsonl(root / METADATA_FILE)[1]:
            if row["split"] != split or (methods is not None and row["method"] not in (REAL, *methods)):
                continue
            image = load_image(root / row["file"])
            mask = np.zeros(image.shape[:2], np.uint8)
            if row["mask"]:
                mask = cv2.imread(str(root / row["mask"]), cv2.IMREAD_GRAYSCALE)
            if size is not None and image.shape[0] != size:
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
            images.append(image)
            masks.append(mask)
            rows.append(row)
    if len(margins) > 1:
        raise FswapError(f"{', '.join(map(str, roots))} were cropped with different margins {sorted(margins)}")
    labels = np.array([row["label"] for row in rows], dtype=np.int64)
    if not rows or labels.min() == labels.max():
        raise FswapError(f"{split} split of {', '.join(map(str, roots))} needs real and fake crops; found {Counter(r['method'] for r in rows)}")
    return SwapCrops(np.stack(images), np.stack(masks), labels, np.array([row["method"] for row in rows]),
                     rows, margins.pop())


# ------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> dict:
    """`python -m fswap.data.swaps DATA OUT`, or under `accelerate launch ... -m fswap.data.swaps`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fswap.data.swaps", description=DESCRIPTION)
    add_swap_dataset_arguments(parser)
    return swap_dataset_from_arguments(parser.parse_args(argv))


def swap_dataset_from_arguments(args) -> dict:
    summary = generate_swap_dataset(args.data, args.output, tuple(args.methods), model=args.model, size=args.size,
                                    pairs_per_target=args.pairs_per_target, limit=args.limit, seed=args.seed)
    if processes.is_main(processes.launched_processes()):
        print(json.dumps(summary["counts"]), f"skipped {summary['skipped']}")
    return summary


if __name__ == "__main__":
    try:
        main()
    except FswapError as error:
        raise SystemExit(f"fswap: {error}") from None
