"""Live swapping: frames from a camera, swapped as they come, out to a virtual camera.

    camera (PyAV: v4l2 / avfoundation / dshow, or a file) ─ newest frame only ─ VideoSwapper
        (track, smooth, swap, watermark) ─ virtual camera (pyvirtualcam) or any callable

A video call wants the newest picture, not every picture: the camera is read in a thread that
keeps only the newest frame, so a swap slower than the camera drops frames instead of falling
behind. A file given as the camera is read frame by frame, none dropped (what the tests use).

The virtual camera is `pyvirtualcam` (`pip install "fswap[live]"`): v4l2loopback on Linux (`sudo
modprobe v4l2loopback devices=1 exclusive_caps=1`), OBS's virtual camera on Windows and macOS.
Where there is none, `open_virtual_camera` says so in one line.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fswap.errors import FswapError
from fswap.video.swapper import VideoSwapper

#: The PyAV input format of a camera device, by system.
CAMERA_FORMATS = {"Linux": "v4l2", "Darwin": "avfoundation", "Windows": "dshow"}


class LiveError(FswapError):
    """A camera or virtual camera cannot be opened, said in one line."""


def is_camera_device(camera: str) -> bool:
    """Whether `camera` names a device rather than a file: /dev/video* on Linux, a number
    (avfoundation's index) on macOS, `video=NAME` (DirectShow) on Windows."""
    return camera.startswith("/dev/") or camera.isdigit() or camera.startswith("video=")


def camera_frames(camera: str, *, size: tuple[int, int] | None = None, fps: float | None = None) -> Iterator[np.ndarray]:
    """RGB frames of `camera`: a device (newest frame only, see the module) or a video file (every
    frame, in order). `size` (width, height) and `fps` are asked of a device; it may pick others.

    Raises:
        LiveError: the camera cannot be opened, or gives no frame.
    """
    device = is_camera_device(camera)
    if not device and not Path(camera).is_file():
        raise LiveError(f"no camera or video file {camera!r} (a camera is /dev/videoN on Linux, its number on macOS, "
                        "video=NAME on Windows)")
    frames = _decoded(camera, device, size, fps)
    return newest_frames(frames) if device else frames


def _decoded(camera: str, device: bool, size, fps) -> Iterator[np.ndarray]:
    import av

    options = {}
    if device and size:
        options["video_size"] = f"{size[0]}x{size[1]}"
    if device and fps:
        options["framerate"] = f"{fps:g}"
    try:
        container = av.open(camera, format=CAMERA_FORMATS.get(platform.system()) if device else None, options=options)
    except (av.FFmpegError, OSError) as error:
        raise LiveError(f"cannot open the camera {camera!r}: {error}") from None
    if not container.streams.video:
        container.close()
        raise LiveError(f"{camera!r} has no video stream")

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as error:
            raise LiveError(f"the camera {camera!r} stopped: {error}") from None
        finally:
            container.close()

    return frames()


def newest_frames(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """`frames` read in a thread; each step yields the newest frame not yet yielded (waiting for one)."""
    newest: list = [None]  # the newest frame, or an exception the reader ended with
    ended = threading.Event()
    ready = threading.Condition()

    def read() -> None:
        try:
            for frame in frames:
                with ready:
                    newest[0] = frame
                    ready.notify()
        except Exception as error:  # noqa: BLE001  (handed to the consumer below)
            with ready:
                newest[0] = error
        finally:
            ended.set()
            with ready:
                ready.notify()

    threading.Thread(target=read, daemon=True, name="fswap-camera").start()
    while True:
        with ready:
            ready.wait_for(lambda: newest[0] is not None or ended.is_set())
            frame, newest[0] = newest[0], None
        if isinstance(frame, Exception):
            raise frame
        if frame is None:
            return
        yield frame


def open_virtual_camera(width: int, height: int, fps: float, device: str | None = None):
    """A `pyvirtualcam.Camera` taking RGB frames of `width` x `height`.

    Raises:
        LiveError: pyvirtualcam is not installed, or the system has no virtual camera.
    """
    try:
        import pyvirtualcam
    except ImportError:
        raise LiveError('the virtual camera needs pyvirtualcam: pip install "fswap[live]"') from None
    try:
        return pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device)
    except RuntimeError as error:
        hint = {"Linux": "load v4l2loopback first: sudo modprobe v4l2loopback devices=1 exclusive_caps=1",
                "Darwin": "install OBS Studio and start its virtual camera once",
                "Windows": "install OBS Studio and start its virtual camera once"}.get(platform.system(), "")
        raise LiveError(f"no virtual camera to write to ({str(error).splitlines()[0]}); {hint}".rstrip("; ")) from None


@dataclass
class LiveStats:
    """What a live run did."""

    frames: int = 0  # frames swapped and sent
    swapped: int = 0  # of those, frames with at least one face swapped
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def run_live(swapper: VideoSwapper, frames: Iterable[np.ndarray], send: Callable[[np.ndarray], None], *,
             max_frames: int | None = None, progress: bool = True) -> LiveStats:
    """Swap each of `frames` with `swapper` (tracked, smoothed, watermarked) and `send` the result,
    until the frames end, `max_frames` are sent, or Ctrl-C. The frames' times are the clock's."""
    stats = LiveStats()
    started = time.perf_counter()
    try:
        for image in frames:
            result = swapper(image)
            send(result.image)
            stats.frames += 1
            stats.swapped += result.swapped > 0
            stats.seconds = time.perf_counter() - started
            if progress and stats.frames % 10 == 0:
                print(f"\rlive: {stats.frames} frames, {stats.fps:.1f} fps, faces swapped in {stats.swapped}",
                      end="", file=sys.stderr, flush=True)
            if max_frames is not None and stats.frames >= max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if progress and stats.frames >= 10:
            print(file=sys.stderr)
    stats.seconds = time.perf_counter() - started
    return stats


def live_to_virtual_camera(swapper: VideoSwapper, camera: str, *, fps: float = 30.0, size: tuple[int, int] | None = None,
                           device: str | None = None, max_frames: int | None = None, progress: bool = True) -> LiveStats:
    """`fswap live`: `camera` swapped into a virtual camera (`device`, or the first free one),
    whose size is the camera's first frame's."""
    frames = camera_frames(camera, size=size, fps=fps)
    first = next(frames, None)
    if first is None:
        raise LiveError(f"the camera {camera!r} gave no frame")
    height, width = first.shape[:2]
    with open_virtual_camera(width, height, fps, device) as virtual:
        if progress:
            print(f"live: {camera} -> virtual camera {virtual.device} ({width}x{height}); Ctrl-C stops",
                  file=sys.stderr)

        def send(image: np.ndarray) -> None:
            virtual.send(image)
            virtual.sleep_until_next_frame()

        return run_live(swapper, _prepend(first, frames), send, max_frames=max_frames, progress=progress)


def _prepend(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


