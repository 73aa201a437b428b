"""Decoding: a video's frames one at a time, upright, with their own timestamps.

Frames come out as RGB uint8 arrays turned the way a player shows them (a phone's portrait clip
is stored on its side with a rotation in its metadata), so faces are upright for the detector;
`fswap.video.encode` turns them back and writes the same rotation. Each frame keeps its
presentation timestamp, so a variable frame rate is kept frame by frame.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fswap.video.probe import VideoError, VideoInfo, _reason


@dataclass
class DecodedFrame:
    """One frame of the input, in display order."""

    index: int
    image: np.ndarray  # [H, W, 3] RGB uint8, upright (after the stream's rotation)
    pts: int  # presentation timestamp in `time_base` units, strictly increasing
    time_base: Fraction

    @property
    def time(self) -> float:
        """Seconds from the stream's time origin."""
        return float(self.pts * self.time_base)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """A stored frame turned as a player shows it (`rotation`: degrees counter-clockwise)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def stored(image: np.ndarray, rotation: int) -> np.ndarray:
    """The inverse of `upright`: an upright frame turned back the way the file stores it."""
    turns = (-rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def read_frames(info: VideoInfo, only: Container[int] | None = None) -> Iterator[DecodedFrame]:
    """Every frame of `info`'s first video stream, upright, in display order; with `only`, the
    frames of those indices (the others are decoded, since each may be needed for the next, but
    not converted).

    Raises:
        VideoError: the stream is damaged part-way (the frames before were yielded).
    """
    import av

    container = av.open(str(info.path), metadata_errors="ignore")
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's own decoding threads: it runs beside the swap
        time_base = info.time_base
        fallback_step = _frame_step(info)
        last_pts = None
        index = 0
        try:
            for frame in container.decode(stream):
                pts = frame.pts
                if pts is None:  # some AVI and raw streams carry none: count frames at the declared rate
                    pts = index * fallback_step
                if last_pts is not None and pts <= last_pts:  # the encoder needs strictly increasing times
                    pts = last_pts + 1
                last_pts = pts
                if only is not None and index not in only:
                    index += 1
                    continue
                # A copy of its own: FFmpeg's frame is freed at once, and the memory a queue
                # holds is numpy's, which `tracemalloc` sees.
                image = upright(np.array(frame.to_ndarray(format="rgb24")), info.rotation)
                yield DecodedFrame(index, image, int(pts), time_base)
                index += 1
        except (av.FFmpegError, ValueError) as error:
            raise VideoError(f"{info.path.name} is damaged after frame {index} ({_reason(error)})") from error
    finally:
        container.close()


def _frame_step(info: VideoInfo) -> int:
    """One frame's duration in `time_base` units, at the declared rate (25 fps when none)."""
    rate = info.frame_rate or Fraction(25)
    return max(1, round(1 / (rate * info.time_base)))
