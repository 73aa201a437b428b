"""Clips with a known motion, and how steady a swap of them is (issue 25, item 4).

A still photo moved along a smooth path (pan, zoom, a small roll, a slow change of light) makes a
clip in which frame t+1 is exactly frame t moved by a known transform and brightened by a known
gain. A steady swap keeps that: the swap of frame t+1 should be the swap of frame t moved and
brightened the same way. `StabilityMeter` measures how far it is, inside the face:

- **temporal error**: the mean absolute difference (grey levels, RGB) between the swap of frame
  t+1 and the swap of frame t moved on, inside the face: jitter, shimmer and colour flicker all
  count. The input clip's own figure is the floor resampling alone leaves.
- **flicker**: the mean absolute change of the face's mean brightness (luma, grey levels) from
  frame to frame beyond the known change of light: the shimmer a viewer sees first.

Tests and benchmarks make their clips here (`KnownMotion`, `write_clip`), with a tone as sound, and
re-encode them as a platform would (`reencode`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class KnownMotion:
    """A smooth path of a still photo through a clip of `frames` frames of `size` (width, height).

    Over the clip the photo's centre travels `pan` of the clip's width (left to right), its scale
    grows by `zoom`, it turns by `roll` degrees and its brightness changes by `light` (a share),
    each eased in and out; at the start the photo is `fill` of the clip's height high.
    """

    frames: int = 48
    size: tuple[int, int] = (320, 240)
    pan: float = 0.2
    zoom: float = 0.15
    roll: float = 6.0
    light: float = -0.2
    fill: float = 0.9

    def _progress(self, index: int) -> float:
        return 0.5 - 0.5 * math.cos(math.pi * index / max(self.frames - 1, 1))

    def matrix(self, photo_shape: tuple[int, ...], index: int) -> np.ndarray:
        """The 2x3 similarity taking the photo to frame `index`."""
        width, height = self.size
        progress = self._progress(index)
        scale = self.fill * height / photo_shape[0] * (1.0 + self.zoom * progress)
        angle = math.radians(self.roll * progress)
        centre = np.array([width * (0.5 - self.pan / 2 + self.pan * progress), height / 2.0])
        rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        photo_centre = np.array([photo_shape[1] / 2.0, photo_shape[0] / 2.0])
        return np.hstack([rotation, (centre - rotation @ photo_centre)[:, None]])

    def gain(self, index: int) -> float:
        """The brightness factor of frame `index` (1 at the start)."""
        return 1.0 + self.light * self._progress(index)

    def render(self, photo: np.ndarray, index: int) -> np.ndarray:
        """Frame `index`: the photo moved and lit (RGB uint8, `size`), on a mid-grey ground."""
        moved = cv2.warpAffine(photo, self.matrix(photo.shape, index), self.size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(110, 110, 110))
        return np.clip(moved.astype(np.float32) * self.gain(index), 0, 255).round().astype(np.uint8)

    def clip(self, photo: np.ndarray) -> Iterable[np.ndarray]:
        return (self.render(photo, index) for index in range(self.frames))

    def step(self, photo_shape: tuple[int, ...], index: int) -> np.ndarray:
        """The 2x3 transform taking frame `index` to frame `index + 1`."""
        later = np.vstack([self.matrix(photo_shape, index + 1), [0, 0, 1]])
        earlier = np.vstack([self.matrix(photo_shape, index), [0, 0, 1]])
        return (later @ np.linalg.inv(earlier))[:2]


class StabilityMeter:
    """Temporal error and flicker of a swap of a `KnownMotion` clip, frame pair by frame pair.

    Args:
        motion: the clip's path.
        photo_shape: the moved photo's shape.
        face_mask: float [H, W] in the photo, 1 on the face (`fswap.faces.region_mask`), where
            the swap is measured; eroded by `margin` px in each frame, so that what the blend
            mask's edge does is left out.
    """

    def __init__(self, motion: KnownMotion, photo_shape: tuple[int, ...], face_mask: np.ndarray, margin: int = 2):
        self.motion, self.photo_shape, self.face_mask, self.margin = motion, photo_shape, face_mask, margin
        self._previous: tuple[int, np.ndarray] | None = None
        self.errors: list[float] = []
        self.flickers: list[float] = []

    def add(self, index: int, image: np.ndarray) -> None:
        """The swap of frame `index` (frames come in order)."""
        if self._previous is not None and self._previous[0] == index - 1:
            self._compare(index - 1, self._previous[1], image)
        self._previous = (index, image)

    def _compare(self, index: int, earlier: np.ndarray, later: np.ndarray) -> None:
        motion, size = self.motion, self.motion.size
        step = motion.step(self.photo_shape, index)
        ratio = motion.gain(index + 1) / motion.gain(index)
        expected = cv2.warpAffine(earlier.astype(np.float32), step, size, flags=cv2.INTER_LINEAR) * ratio
        inside = cv2.warpAffine(np.ones(earlier.shape[:2], np.uint8), step, size, flags=cv2.INTER_NEAREST) > 0
        face = cv2.warpAffine(self.face_mask.astype(np.float32), motion.matrix(self.photo_shape, index + 1), size,
                              flags=cv2.INTER_LINEAR) > 0.5
        mask = (face & inside).astype(np.uint8)
        if self.margin:
            mask = cv2.erode(mask, np.ones((2 * self.margin + 1,) * 2, np.uint8))
        mask = mask.astype(bool)
        if mask.sum() < 16:
            return
        actual = later.astype(np.float32)
        self.errors.append(float(np.abs(actual[mask] - np.clip(expected[mask], 0, 255)).mean()))
        self.flickers.append(abs(float((actual[mask] @ _LUMA).mean() - (np.clip(expected[mask], 0, 255) @ _LUMA).mean())))

    def result(self) -> dict[str, float]:
        """{"temporal_error", "flicker"} in grey levels, means over the frame pairs."""
        return {"temporal_error": float(np.mean(self.errors)) if self.errors else float("nan"),
                "flicker": float(np.mean(self.flickers)) if self.flickers else float("nan"),
                "pairs": len(self.errors)}


def write_clip(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps: int = 25,
               times: Sequence[float] | None = None, rotation: int = 0, tone: float | None = 440.0,
               crf: int = 12) -> None:
    """Write RGB frames as an H.264 mp4/mkv/mov with a sine `tone` as AAC sound lasting as long.

    `times` (seconds, increasing) gives each frame its own time: a variable frame rate. `rotation`
    (degrees counter-clockwise, a quarter turn) stores the frames turned back and says so in the
    metadata, as a phone does: players, and fswap, show them as given.
    """
    import av

    from fswap.video.decode import stored

    time_base = Fraction(1, 90000)
    with av.open(str(path), "w") as container:
        video = None
        audio = container.add_stream("aac", rate=16000) if tone else None
        if audio is not None:
            audio.layout = "mono"
        samples = 0
        for index, image in enumerate(frames):
            image = stored(image, rotation)
            if video is None:
                video = container.add_stream("libx264", rate=fps)
                video.height, video.width = image.shape[:2]
                video.pix_fmt = "yuv420p"
                video.time_base = video.codec_context.time_base = time_base
                video.options = {"crf": str(crf), "preset": "veryfast"}
                if rotation:
                    video.set_display_rotation(rotation)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            seconds = times[index] if times is not None else index / fps
            frame.pts, frame.time_base = round(seconds * 90000), time_base
            container.mux(video.encode(frame))
            next_seconds = times[index + 1] if times is not None and index + 1 < len(times) else seconds + 1 / fps
            while audio is not None and samples < next_seconds * 16000:
                chunk = (samples + np.arange(1024)) / 16000.0
                wave = (0.2 * np.sin(2 * np.pi * tone * chunk)).astype(np.float32)[None]
                sound = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                sound.sample_rate, sound.pts = 16000, samples
                samples += 1024
                container.mux(audio.encode(sound))
        container.mux(video.encode())
        if audio is not None:
            container.mux(audio.encode())


def reencode(path: str | os.PathLike, output: str | os.PathLike, *, crf: int = 23, scale: float = 1.0,
             preset: str = "medium") -> None:
    """Re-encode a clip's frames as H.264 at `crf`, resized by `scale` (FFmpeg's bicubic scaler, as
    `ffmpeg -vf scale=iw/2:ih/2` does), as a platform re-encodes an upload; the sound and any
    metadata (Content Credentials included) are left behind."""
    import av

    with av.open(str(path)) as source, av.open(str(output), "w") as container:
        stream = source.streams.video[0]
        rate = stream.average_rate or Fraction(25)
        width, height = (2 * max(1, round(side * scale / 2)) for side in (stream.width, stream.height))
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf), "preset": preset}
        for index, frame in enumerate(source.decode(stream)):
            frame = frame.reformat(width=width, height=height, format="yuv420p", interpolation="BICUBIC")
            frame.pts, frame.time_base = index, 1 / Fraction(rate)
            container.mux(video.encode(frame))
        container.mux(video.encode())


def portrait(photo: np.ndarray, box: np.ndarray, margin: float = 0.5) -> np.ndarray:
    """The part of `photo` around a face's box [x0, y0, x1, y1], `margin` of its size added on
    each side (clipped to the photo): a one-face photo cut from a group photo, to move in a clip."""
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    left, top = max(0, int(x0 - pad_x)), max(0, int(y0 - pad_y))
    right, bottom = min(photo.shape[1], int(math.ceil(x1 + pad_x))), min(photo.shape[0], int(math.ceil(y1 + pad_y)))
    return np.ascontiguousarray(photo[top:bottom, left:right])
