"""Reading an aligned-face data set written by `fswap data prepare` (manifest.jsonl + crops)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

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
