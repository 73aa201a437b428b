"""Video and live swapping: decode → track → swap → encode, steady from frame to frame.

    >>> from fswap import FaceSwapPipeline
    >>> from fswap.video import is_video, swap_video
    >>> pipe = FaceSwapPipeline.from_pretrained("checkpoints/fswap-default")   # doctest: +SKIP
    >>> is_video("clip.mov") and swap_video(pipe, "me.jpg", "clip.mov", "swapped.mp4")  # doctest: +SKIP

Modules, one job each: `probe` (is it a video, what must be kept), `decode` and `encode` (PyAV,
timestamps, rotation, audio, the partial file), `tracking` (one id per person), `selection` (whose
face), `smoothing` and `cuts` (what must not jump, and when to forget), `stages` (one frame's swap
through the pipeline's stages), `marking` (the watermark), `swapper` (`VideoSwapper`, frame by
frame: a clip or a camera), `stream` (`swap_video`, the threaded file pipeline) and `options`.
See docs/video.md.
"""

from fswap.video.options import VideoOptions, add_video_flags, video_options_from_flags
from fswap.video.probe import VideoError, VideoInfo, is_video, probe_video


def __getattr__(name: str):
    # The swapping half pulls in torch and the pipeline: import it only when asked for.
    if name in ("VideoSwapper", "SwappedFrame", "TrackedFace"):
        from fswap.video import swapper

        return getattr(swapper, name)
    if name in ("swap_video", "VideoSwapResult", "VideoProgress"):
        from fswap.video import stream

        return getattr(stream, name)
    raise AttributeError(f"module 'fswap.video' has no attribute {name!r}")


__all__ = [
    "SwappedFrame",
    "TrackedFace",
    "VideoError",
    "VideoInfo",
    "VideoOptions",
    "VideoProgress",
    "VideoSwapResult",
    "VideoSwapper",
    "add_video_flags",
    "is_video",
    "probe_video",
    "swap_video",
    "video_options_from_flags",
]
