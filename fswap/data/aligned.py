"""Reading aligned faces for training: a folder written by `fswap data prepare` (manifest.jsonl +
crops), or Hugging Face `datasets`: that folder as an imagefolder, pushed to the Hub, or any set
of photos on the Hub, streamed and aligned as they come.

    open_faces(["data/celeba"], "train", 128)                 # AlignedFaces: the folder itself
    open_faces(["hf://datasets/me/faces"], "train", 128)      # DatasetFaces: fswap's columns, from the Hub
    stream_rows(["hf://datasets/me/photos"], "train")          # rows one by one, for FaceRows to align
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fswap.assets import is_hub_repo_id
from fswap.errors import FswapError
from fswap.faces.pose import yaw_proxy
from fswap.imageio import load_image


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # [S, S, 3] uint8
    landmarks: np.ndarray  # [106, 2] in crop coordinates
    identity: str | None
    file: str


class AlignedFaces:
    """The crops of one split, resized to `size`, with their landmarks in crop coordinates.

    Args:
        root: a folder written by `fswap data prepare` (or several, merged in order).
        split: "train", "val" or None for both.
        size: resize crops to this side (the data set may have been prepared larger).
        cache: keep decoded crops in memory (a 128-px crop is 48 KB; 1000 crops ~ 50 MB).
    """

    def __init__(
        self, root: str | Path | list, split: str | None = "train", size: int = 128, cache: bool = True
    ):
        roots = [Path(r) for r in (root if isinstance(root, (list, tuple)) else [root])]
        self.records = []
        for folder in roots:
            manifest = folder / "manifest.jsonl"
            if not manifest.is_file():
                raise FswapError(
                    f"{folder} has no manifest.jsonl: run `fswap data prepare ... -o {folder}` first"
                )
            for line in manifest.read_text().splitlines():
                record = json.loads(line)
                if record.get("file") and (split is None or record.get("split") == split):
                    self.records.append((folder, record))
        if not self.records:
            raise FswapError(f"no {split or ''} crops in {', '.join(map(str, roots))}")
        self.size = size
        self._cache: dict[int, AlignedFace] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> AlignedFace:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        folder, record = self.records[index]
        image = load_image(folder / record["file"])
        scale = self.size / image.shape[0]
        if image.shape[0] != self.size:
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        landmarks = np.asarray(record["crop_landmarks"], dtype=np.float64) * scale
        face = AlignedFace(image, landmarks, record.get("identity"), record["file"])
        if self._cache is not None:
            self._cache[index] = face
        return face

    def yaw_proxies(self) -> np.ndarray:
        """Per face, where the nose tip sits between the eyes: -1 (turned one way) .. 1 (the other).
        Cheap, from the stored landmarks, good enough to pair faces of similar pose."""
        values = []
        for _, record in self.records:
            landmarks = np.asarray(record["crop_landmarks"], dtype=np.float64)
            values.append(yaw_proxy(landmarks))
        return np.asarray(values)

    def identities(self) -> list[str | None]:
        return [record.get("identity") for _, record in self.records]

    def keys(self) -> list[str]:
        """A name per face, the same in every run on the same data (caches key on them)."""
        return [record["file"] for _, record in self.records]


# ------------------------------------------------------------------------ Hugging Face datasets
HUB_PREFIX = "hf://datasets/"
#: Held-out share of a set that names no split of its own, by a hash of the row's position.
VAL_FRACTION = 0.05
#: Faces aligned on the fly get the margin of every fswap data set (the pipeline's).
MARGIN = 0.25


def open_faces(data: str | Path | list, split: str | None = "train", size: int = 128) -> AlignedFaces | DatasetFaces:
    """The faces of `data` for training.

    Args:
        data: folders written by `fswap data prepare` (read directly), or Hugging Face datasets
            with fswap's columns: such a folder loaded as an imagefolder, `hf://datasets/<id>` or
            `<owner>/<name>` on the Hub. A set of plain photos has no landmarks: stream it
            (`stream_rows` + `FaceRows` align each photo as it comes) or prepare it first.
        split: "train" or "val".
        size: side the crops are resized to.
    """
    entries = [data] if isinstance(data, (str, Path)) else list(data)
    if all((Path(entry) / "manifest.jsonl").is_file() for entry in entries):
        return AlignedFaces(entries, split, size)
    from datasets import concatenate_datasets

    rows = [load_rows(entry, split) for entry in entries]
    missing = [str(entry) for entry, part in zip(entries, rows, strict=True) if "crop_landmarks" not in part.column_names]
    if missing:
        raise FswapError(f"{', '.join(missing)} has no crop_landmarks column (not a set from `fswap data prepare`, "
                         "or one prepared before it wrote metadata.jsonl): train with --streaming, which aligns each "
                         "photo as it comes, or run `fswap data prepare` on it")
    return DatasetFaces(rows[0] if len(rows) == 1 else concatenate_datasets(rows), size)


def load_rows(name: str | Path, split: str | None, *, streaming: bool = False):
    """One split of a Hugging Face data set: a local folder (imagefolder), `hf://datasets/<id>` or a
    Hub id. Rows of a set from `fswap data prepare` are chosen by its "split" column; other sets
    give their "train" split for "train" and "validation", "val" or "test" for "val", or, with no
    such split, a hashed `VAL_FRACTION` of the rows."""
    from datasets import load_dataset

    name = str(name)
    if name.startswith(HUB_PREFIX):
        dataset = load_dataset(name[len(HUB_PREFIX):], streaming=streaming)
    elif Path(name).is_dir():
        dataset = load_dataset("imagefolder", data_dir=name, streaming=streaming)
    elif is_hub_repo_id(name):
        dataset = load_dataset(name, streaming=streaming)
    else:
        raise FswapError(f"--data {name}: no such folder, and not a Hub data set (owner/name or {HUB_PREFIX}owner/name)")
    first = dataset["train"] if "train" in dataset else dataset[next(iter(dataset))]
    if split is None:
        return first
    if "split" in (first.column_names or []):
        return first.filter(lambda value: value == split, input_columns="split")
    if split == "train" and any(held in dataset for held in ("validation", "val", "test")):
        return first
    for held in ("validation", "val", "test"):
        if split == "val" and held in dataset:
            return dataset[held]
    return first.filter(lambda _, index: (_hashed(index) < VAL_FRACTION) == (split == "val"), with_indices=True)


def _hashed(index: int) -> float:
    return int.from_bytes(hashlib.sha256(f"row:{index}".encode()).digest()[:8], "big") / 2**64


class DatasetFaces:
    """`AlignedFaces`' interface over the rows of a Hugging Face data set with fswap's columns
    ("image", "crop_landmarks"; "identity", "source" and "image_id" when there)."""

    def __init__(self, rows, size: int = 128):
        self.rows, self.size = rows, size
        if not len(rows):
            raise FswapError("no faces in this split of the data set")
        self.to_face = FaceRows(size)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> AlignedFace:
        return self.to_face(self.rows[index], str(index))

    def yaw_proxies(self) -> np.ndarray:
        return np.asarray([yaw_proxy(np.asarray(landmarks, np.float64)) for landmarks in self.rows["crop_landmarks"]])

    def identities(self) -> list[str | None]:
        return list(self.rows["identity"]) if "identity" in self.rows.column_names else [None] * len(self)

    def keys(self) -> list[str]:
        if {"source", "image_id", "face_index"} <= set(self.rows.column_names):
            columns = zip(self.rows["source"], self.rows["image_id"], self.rows["face_index"], strict=True)
            return [f"{source}/{image_id}_{face}" for source, image_id, face in columns]
        return [str(index) for index in range(len(self))]


class FaceList(list):
    """Faces held in memory with `AlignedFaces`' interface: the held-out faces read from a stream."""

    def yaw_proxies(self) -> np.ndarray:
        return np.asarray([yaw_proxy(face.landmarks) for face in self])

    def identities(self) -> list[str | None]:
        return [face.identity for face in self]

    def keys(self) -> list[str]:
        return [face.file for face in self]


def first_faces(rows, to_face: FaceRows, count: int) -> FaceList:
    """The first `count` usable faces of a stream of rows."""
    faces = FaceList()
    for index, row in enumerate(rows):
        face = to_face(row, str(index))
        if face is not None:
            faces.append(face)
        if len(faces) == count:
            break
    if not faces:
        raise FswapError("the stream gave no usable face")
    return faces


class FaceRows:
    """A row of a Hugging Face data set -> `AlignedFace` at `size`: a row from `fswap data prepare`
    by its landmarks; any other photo aligned as it comes, like `fswap data prepare` aligns it (its
    largest face; None when it has none). The face models load on first use, in the process using them."""

    def __init__(self, size: int, min_face: int = 32):
        self.size, self.min_face = size, min_face
        self._analyzer = None

    def __call__(self, row: dict, key: str) -> AlignedFace | None:
        image = _rgb(row["image"])
        landmarks = row.get("crop_landmarks")
        if landmarks is None:
            from fswap.data.prepare import align_faces
            from fswap.faces import FaceAnalyzer

            self._analyzer = self._analyzer or FaceAnalyzer.from_pretrained(threads=1)
            crops = align_faces(image, self._analyzer, size=self.size, margin=MARGIN, min_face=self.min_face)
            if not isinstance(crops, list):
                return None
            image, landmarks = crops[0].image, crops[0].fields["crop_landmarks"]
        landmarks = np.asarray(landmarks, dtype=np.float64) * (self.size / image.shape[0])
        if image.shape[0] != self.size:
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return AlignedFace(image, landmarks, row.get("identity"), key)


def _rgb(image) -> np.ndarray:
    """A `datasets` Image value (decoded, or {"bytes", "path"} when not) as RGB uint8 [H, W, 3]."""
    from PIL import Image

    if isinstance(image, dict):
        image = Image.open(io.BytesIO(image["bytes"])) if image.get("bytes") else Image.open(image["path"])
    return np.asarray(image.convert("RGB"))


def stream_rows(data: str | Path | list, split: str = "train"):
    """The rows of `data`'s split as one `datasets.IterableDataset`, images left encoded (a row that
    is skipped costs no decoding): for sets that do not fit the disk."""
    from datasets import Image, concatenate_datasets

    entries = [data] if isinstance(data, (str, Path)) else list(data)
    parts = [load_rows(entry, split, streaming=True) for entry in entries]
    rows = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    return rows.cast_column("image", Image(decode=False))


def data_record(data: str | Path | list, streamed_samples: int | None = None) -> list[dict]:
    """What a training record says of each training data set: name, licence(s), faces in its train
    split and, for the Hub, its id. A streamed set is not counted: it records `streamed_samples`,
    the faces drawn from it."""
    entries = [data] if isinstance(data, (str, Path)) else list(data)
    record = []
    for entry in entries:
        text = str(entry)
        hub_id = text[len(HUB_PREFIX):] if text.startswith(HUB_PREFIX) else text if is_hub_repo_id(text) else None
        name = text if hub_id else Path(entry).name  # a local folder by its name: records travel to the Hub
        if (Path(entry) / "manifest.jsonl").is_file():
            faces = AlignedFaces(entry, "train", cache=False)
            licences = {folder_record.get("licence") for _, folder_record in faces.records}
            images = len(faces)
        elif streamed_samples is not None:
            licences, images = set(), streamed_samples
            name = f"{name} (streamed; faces drawn)"
        else:
            rows = load_rows(entry, "train")
            licences = set(rows["licence"]) if "licence" in rows.column_names else set()
            images = len(rows)
        licences.discard(None)
        use = {"name": name, "licence": "; ".join(sorted(licences)) or "unknown: see the data set's own terms",
               "images": images}
        record.append(use if hub_id is None else {**use, "hub_id": hub_id})
    return record
