"""`swap_video`: a file in, a swapped file out, as three overlapping stages.

    decode thread ─▶ [queue] ─▶ swap (this thread) ─▶ [queue] ─▶ encode thread (+ audio)

The queues are bounded (`VideoOptions.queue_frames`), so a slow stage holds the others back and
memory stays flat however long the clip is; FFmpeg, onnxruntime, torch and OpenCV release the GIL,
so the stages run at once on several cores. Any error, or Ctrl-C, in any stage stops all three and
removes the partial output (`fswap.video.encode.VideoWriter`). The finished file is signed (Content
Credentials, `fswap.provenance.sign_video`) before it is moved into place.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fswap.baselines.classic import ClassicFaceSwapper
from fswap.errors import NoFaceError
from fswap.fileio import check_output
from fswap.imageio import ImageInput
from fswap.options import SwapOptions
from fswap.provenance.c2pa_manifest import (
    COMPOSITE_SOURCE_TYPE,
    DIGITAL_SOURCE_TYPE,
    VIDEO_MIME_TYPES,
    C2paCredentials,
    local_test_credentials,
    sign_video,
)
from fswap.timing import timed
from fswap.video.decode import read_frames
from fswap.video.encode import CONTAINERS, VideoWriter
from fswap.video.options import VideoOptions
from fswap.video.probe import VideoInfo, probe_video
from fswap.video.swapper import FaceMapping, Swapper, VideoSwapper

_END = object()  # the end of a queue's frames


@dataclass
class VideoProgress:
    """Where a running `swap_video` stands, given to a progress callback after every frame."""

    frames: int  # swapped so far
    total: int | None  # the clip's frames, when its container says
    seconds: float  # since decoding began

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far."""
        if self.total is None or self.fps == 0:
            return None
        return max(self.total - self.frames, 0) / self.fps


@dataclass
class VideoSwapResult:
    """What `swap_video` wrote."""

    path: Path
    frames: int
    swapped_frames: int  # frames in which at least one face was swapped
    people: int  # tracks seen (one per person, who keeps it through turns and absences)
    seconds: float  # wall time, end to end
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, summed over frames
    notices: list[str] = field(default_factory=list)  # what the user should know, in plain words

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def swap_video(
    swapper: Swapper,
    sources: ImageInput | Sequence[ImageInput] | None,
    video: str | os.PathLike,
    output: str | os.PathLike,
    *,
    faces: str | int | Sequence[int] = 0,
    reference: ImageInput | None = None,
    mapping: FaceMapping | None = None,
    options: VideoOptions | None = None,
    swap_options: SwapOptions | None = None,
    credentials: C2paCredentials | None = None,
    progress: bool | Callable[[VideoProgress], None] = True,
) -> VideoSwapResult:
    """Swap faces through a whole video file and write the result, with its sound.

    Args:
        swapper: a `FaceSwapPipeline` (`from_pretrained`) or the classic `ClassicFaceSwapper`.
        sources: photo(s) of the person to put in (None with `mapping`).
        video: any video FFmpeg reads (mp4, mov, mkv, webm, avi, an animated GIF), by content.
        output: the file to write: .mp4 (default when it has no suffix), .m4v, .mov or .mkv,
            H.264 in yuv420p with the input's frame timing, size, rotation and audio.
        faces: "all", or a face number (or a list of them) of the first frame with faces
            (largest first; default 0, the largest), each followed through the clip.
        reference: a photo of the one person to replace (`faces` is then ignored).
        mapping: {reference photo: source photo(s)}, or pairs: several people at once.
        options: encoding, speed, smoothing, limits and provenance (`VideoOptions`).
        swap_options: how each face is swapped (`fswap.SwapOptions`; its `watermark` is
            `options.watermark` here).
        credentials: who signs the file's Content Credentials (`options.content_credentials`);
            None: the local test certificate, as for a photo (`fswap.provenance.local_test_credentials`).
        progress: True shows a progress bar (frames, fps, ETA) on stderr; a callable gets a
            `VideoProgress` after every frame (raising in it stops the swap cleanly).

    Returns:
        `VideoSwapResult`: the path, frame counts, people tracked, wall time, per-stage timings and
        notices (an mkv cannot carry Content Credentials).

    Raises:
        fswap.video.VideoError: the video is unreadable, damaged, audio only or beyond the limits.
        fswap.errors.OutputError: the output cannot be written there (or is one of the inputs).
        fswap.NoFaceError: a source or reference has no face, or no frame had a face to swap.
        fswap.provenance.ProvenanceError: the credentials were rejected when the file was signed.

    Example:
        >>> from fswap import FaceSwapPipeline
        >>> from fswap.video import swap_video
        >>> pipe = FaceSwapPipeline.from_pretrained("checkpoints/fswap-default")   # doctest: +SKIP
        >>> swap_video(pipe, "me.jpg", "clip.mov", "swapped.mp4").fps                 # doctest: +SKIP
    """
    start = time.perf_counter()
    options = options or VideoOptions()
    info = probe_video(video, max_side=options.max_side, max_seconds=options.max_seconds)
    inputs = [video, *_paths(sources), *_paths(reference), *_paths(mapping)]
    output = check_output(output, inputs=inputs, suffixes=CONTAINERS, default_suffix=".mp4")
    frame_swapper = VideoSwapper(swapper, sources, faces=faces, reference=reference, mapping=mapping,
                                 options=options, swap_options=swap_options)
    notices: list[str] = []
    seal = _content_credentials(frame_swapper, info, output, credentials, notices)
    report = _progress_reporter(progress, info.frames, output.name)
    decoded: queue.Queue = queue.Queue(options.queue_frames)
    encoded: queue.Queue = queue.Queue(options.queue_frames)
    stop = threading.Event()
    errors: list[BaseException] = []
    timings: dict[str, float] = {}
    writer: VideoWriter | None = None

    def decode() -> None:
        try:
            reader = read_frames(info)
            while True:
                with timed(timings, "decode"):
                    frame = next(reader, None)
                if frame is None or not _put(decoded, frame, stop):
                    return
        except BaseException as error:  # handed to the swapping thread, which raises it
            errors.append(error)
        finally:
            _put(decoded, _END, stop)

    def encode() -> None:
        try:
            while (item := _get(encoded, stop)) is not _END and item is not None:
                swapped, pts = item
                frame_swapper.finish(swapped)  # colour and watermark, beside the next frame's swap
                for stage, seconds in swapped.timings.items():
                    timings[stage] = timings.get(stage, 0.0) + seconds
                with timed(timings, "encode"):
                    writer.write(swapped.image, pts)
        except BaseException as error:
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=decode, name="fswap-decode", daemon=True),
               threading.Thread(target=encode, name="fswap-encode", daemon=True)]
    count = swapped = 0
    threads_before = torch.get_num_threads()
    try:
        writer = VideoWriter(output, info, crf=options.crf, preset=options.preset, keep_audio=options.keep_audio)
        if options.torch_threads:
            torch.set_num_threads(options.torch_threads)
        for thread in threads:
            thread.start()
        while (frame := _get(decoded, stop)) is not _END:
            if frame is None or errors:
                break
            result = frame_swapper.swap(frame.image, frame.time)
            if not _put(encoded, (result, frame.pts), stop):
                break
            count += 1
            swapped += result.swapped > 0
            report(VideoProgress(count, info.frames, time.perf_counter() - start))
        _put(encoded, _END, stop)
        threads[1].join()
        if errors:
            raise errors[0]
        if not swapped:
            raise NoFaceError(f"no face to swap in any of the {count} frames of {info.path.name}"
                              + ("; the reference person never appears" if reference is not None or mapping else ""))
        path = writer.finish(seal)
    except BaseException:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=10)
        if writer is not None:
            writer.abort()
        raise
    finally:
        torch.set_num_threads(threads_before)
        report(None)
    people = len(frame_swapper.tracker.tracks)
    return VideoSwapResult(path, count, swapped, people, time.perf_counter() - start, timings, notices)


def _content_credentials(frame_swapper: VideoSwapper, info: VideoInfo, output: Path,
                         credentials: C2paCredentials | None, notices: list[str]) -> Callable[[Path, Path], None] | None:
    """How `VideoWriter.finish` signs the finished file, or None: Content Credentials are off, or
    the container cannot carry them (`notices` says so)."""
    if not frame_swapper.options.content_credentials:
        return None
    if output.suffix.lower() not in VIDEO_MIME_TYPES:
        marked = "the watermark in its frames is all that says" if frame_swapper.options.watermark else "nothing says"
        notices.append(f"{output.name} carries no Content Credentials: c2pa signs {', '.join(VIDEO_MIME_TYPES)} "
                       f"files, not {output.suffix}, so {marked} it was swapped; write an .mp4 to have it signed")
        return None
    credentials = credentials or local_test_credentials()  # made now, not after the whole swap
    classic = isinstance(frame_swapper.swapper, ClassicFaceSwapper)

    def seal(written: Path, sealed: Path) -> None:
        sign_video(written, sealed, format=output.suffix, checkpoint=frame_swapper.checkpoint, credentials=credentials,
                   parent=info.path, parent_format=info.mime_type,
                   digital_source_type=COMPOSITE_SOURCE_TYPE if classic else DIGITAL_SOURCE_TYPE)

    return seal


def _put(channel: queue.Queue, item, stop: threading.Event) -> bool:
    """Put `item`, waiting while the queue is full; False when the run was stopped meanwhile."""
    while not stop.is_set():
        try:
            channel.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _get(channel: queue.Queue, stop: threading.Event):
    """The next item, waiting while the queue is empty; None when the run was stopped meanwhile."""
    while not stop.is_set():
        try:
            return channel.get(timeout=0.05)
        except queue.Empty:
            continue
    return None


def _progress_reporter(progress, total: int | None, name: str) -> Callable[[VideoProgress | None], None]:
    """A function taking each `VideoProgress` (None: the end) to the bar or the callback."""
    if callable(progress):
        return lambda state: None if state is None else progress(state)
    if not progress:
        return lambda state: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="frame", desc=f"swapping into {name}", file=sys.stderr, dynamic_ncols=True)

    def report(state: VideoProgress | None) -> None:
        if state is None:
            bar.close()
        else:
            bar.update(state.frames - bar.n)

    return report


def _paths(value) -> list:
    """The file paths among swap inputs (photos given as arrays or bytes are no files to guard)."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, dict):
        return [path for pair in value.items() for item in pair for path in _paths(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in _paths(item)]
    return []
