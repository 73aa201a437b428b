"""What a video file is, read from its content: `is_video` and `probe_video`.

A file is a video when FFmpeg (through PyAV) opens it as a container with a video stream that is
not a single still picture: mp4, mov, mkv, webm, avi, an animated GIF. Its suffix plays no part,
so `clip.dat` is a video and `photo.mp4` holding a PNG is not. Every reason a file cannot be
swapped (corrupt, truncated, audio only, no decodable picture, beyond the configured limits)
becomes one `VideoError` whose message says what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from fswap.errors import FswapError

#: FFmpeg demuxers of still pictures: a file they open is a photo, not a video.
_STILL_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "jpegls_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe",
                  "gif_pipe", "j2k_pipe", "pam_pipe", "pgm_pipe", "ppm_pipe", "qoi_pipe", "svg_pipe",
                  "dpx_pipe", "exr_pipe", "psd_pipe", "xbm_pipe", "xpm_pipe", "pcx_pipe", "sgi_pipe",
                  "sunrast_pipe", "photocd_pipe", "pictor_pipe", "hdr_pipe", "dds_pipe")
#: Suffixes of video files: one so named that FFmpeg cannot read is reported as a broken video,
#: not tried as a photo (unless it is one).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".ts", ".mts", ".flv", ".wmv", ".mpg",
                  ".mpeg", ".ogv")
#: FFmpeg demuxer names -> MIME types (the first of a file's names that is here wins).
_MIME_TYPES = {"mp4": "video/mp4", "mov": "video/mp4", "matroska": "video/x-matroska", "avi": "video/x-msvideo",
               "gif": "image/gif", "mpegts": "video/mp2t", "flv": "video/x-flv", "ogg": "video/ogg"}
#: Demuxers whose one video stream may be a single picture (a one-frame GIF or APNG is a photo).
_MAYBE_STILL = ("gif", "apng")


class VideoError(FswapError):
    """A video cannot be read or swapped (corrupt, audio only, too large, ...), said in one line."""


@dataclass(frozen=True)
class VideoInfo:
    """What the output must keep of a video, as its container declares it."""

    path: Path
    format: str  # FFmpeg's demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "gif", ...)
    width: int  # as stored (before `rotation`)
    height: int
    rotation: int  # degrees counter-clockwise a player turns each frame by (0, 90, 180, -90)
    frame_rate: Fraction | None  # the average rate; None when the container does not say
    frames: int | None  # the declared frame count; None when the container does not say
    duration: float | None  # seconds
    time_base: Fraction
    codec: str
    audio_codec: str | None  # the first audio stream's codec; None without audio

    @property
    def mime_type(self) -> str:
        """The container's MIME type, as c2pa names it (any ISO BMFF file, mp4, mov or m4v, is "video/mp4")."""
        names = self.format.split(",")
        for name, mime in _MIME_TYPES.items():
            if name in names:
                return "video/webm" if name == "matroska" and self.path.suffix.lower() == ".webm" else mime
        return f"video/x-{names[0]}"

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as a player shows the video, after its rotation."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


def is_video(path: str | os.PathLike) -> bool:
    """Whether FFmpeg reads `path` as a video (a moving picture), judged by its content, not its
    name: False for photos (an animated GIF with one frame included), audio, text and missing files."""
    try:
        probe_video(path, limits=False)
    except VideoError:
        return False
    return True


def probe_video(path: str | os.PathLike, *, max_side: int | None = None, max_seconds: float | None = None,
                limits: bool = True) -> VideoInfo:
    """Open `path` and describe its first video stream, or raise `VideoError` saying why it is not
    a video fswap can swap: missing, empty, not a container FFmpeg reads, audio only, a still
    picture, no frame that decodes, larger than `max_side` pixels or longer than `max_seconds`."""
    import av

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise VideoError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{name} is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise VideoError(f"{name} is not a video FFmpeg can read ({_reason(error)})") from error
    with container:
        format_name = container.format.name
        if not container.streams.video:
            kind = "audio only" if container.streams.audio else "no video stream"
            raise VideoError(f"{name} has no video to swap ({kind})")
        if any(part in _STILL_FORMATS for part in format_name.split(",")):
            raise VideoError(f"{name} is a still picture, not a video; swap it as a photo")
        stream = container.streams.video[0]
        first = _first_frames(container, stream, name, 2 if format_name in _MAYBE_STILL else 1)
        if format_name in _MAYBE_STILL and len(first) < 2:
            raise VideoError(f"{name} is a still picture (one frame), not a video; swap it as a photo")
        frame = first[0]
        duration = _duration(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        info = VideoInfo(
            path=path, format=format_name, width=frame.width, height=frame.height,
            rotation=_quarter_turn(frame.rotation), frame_rate=Fraction(rate) if rate else None,
            frames=stream.frames or None, duration=duration, time_base=Fraction(stream.time_base or Fraction(1, 90000)),
            codec=stream.codec_context.name,
            audio_codec=container.streams.audio[0].codec_context.name if container.streams.audio else None,
        )
    if limits:
        check_limits(info, max_side, max_seconds)
    return info


def frame_count(info: VideoInfo) -> int:
    """The frames of `info`'s video: as its container declares them, else its packets counted
    (read, not decoded)."""
    if info.frames:
        return info.frames
    import av

    with av.open(str(info.path), metadata_errors="ignore") as container:
        try:
            return sum(packet.size > 0 for packet in container.demux(video=0))
        except (av.FFmpegError, ValueError) as error:
            raise VideoError(f"{info.path.name} is damaged ({_reason(error)})") from error


def check_limits(info: VideoInfo, max_side: int | None, max_seconds: float | None) -> None:
    """`VideoError` when `info` is beyond the configured limits."""
    side = max(info.width, info.height)
    if max_side is not None and side > max_side:
        raise VideoError(f"{info.path.name} is {info.width}x{info.height}; fswap swaps videos up to {max_side} px "
                         "on the longer side (raise the limit with max_side / --max-side, or downscale it first)")
    if max_seconds is not None and info.duration is not None and info.duration > max_seconds:
        raise VideoError(f"{info.path.name} lasts {info.duration:.0f} s; fswap swaps videos up to {max_seconds:.0f} s "
                         "(raise the limit with max_seconds / --max-seconds, or cut it first)")


def _first_frames(container, stream, name: str, count: int) -> list:
    """Up to `count` decoded frames of `stream`, or `VideoError` when none decodes."""
    import av

    frames = []
    try:
        for frame in container.decode(stream):
            frames.append(frame)
            if len(frames) >= count:
                break
    except (av.FFmpegError, ValueError) as error:
        if not frames:
            raise VideoError(f"{name} is damaged: its video does not decode ({_reason(error)})") from error
    if not frames:
        raise VideoError(f"{name} has a video stream but no frame in it decodes (empty or truncated)")
    return frames


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _quarter_turn(rotation) -> int:
    """A display rotation rounded to a quarter turn, in (-180, 180]."""
    turn = int(round((rotation or 0) / 90.0)) % 4
    return {0: 0, 1: 90, 2: 180, 3: -90}[turn]


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.split(":")[-1].strip() or type(error).__name__
