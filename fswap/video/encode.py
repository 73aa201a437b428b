"""Encoding: swapped frames into a widely playable file, with the input's timing, rotation and sound.

H.264 in yuv420p (what every browser, phone and editor plays), at a constant quality (CRF). Each
frame keeps the input's timestamp in the input's time base, so the frame rate, variable or not,
and the frame count are the input's; the display rotation is written back. The audio stream is
copied packet by packet where the output container takes its codec and players read it there (AAC,
MP3, Opus into mp4), else re-encoded to AAC; it is muxed as the frames go, so nothing of the clip piles up in memory.

The file is written to a hidden file beside the destination (`.NAME.fswap-PID-THREAD.partial`, the
names `fswap.fileio` writes and sweeps) and renamed over the destination only when it is complete:
an exception or Ctrl-C at any moment leaves no output and no partial file behind. A file that is
signed (Content Credentials) is signed from that hidden file into a second one, which is what is
moved into place.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from fswap.errors import OutputError
from fswap.fileio import sweep_partials
from fswap.video.decode import stored
from fswap.video.probe import VideoInfo

#: Output suffixes and the FFmpeg muxer each is written with.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
VIDEO_CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
#: Audio that cannot be copied into the output container is re-encoded to this.
AUDIO_CODEC = "aac"
#: The usual channel layout for a number of channels (FFmpeg's names).
_USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
#: Audio codecs copied into mp4 and mov as they are (FFmpeg's decoder names): what players read there.
PLAYABLE_IN_MP4 = ("aac", "mp3", "mp3float", "ac3", "eac3", "alac", "opus")


class VideoWriter:
    """Writes swapped frames of the video `info` describes to `path`, whole or not at all.

    Example:
        >>> with VideoWriter("out.mp4", info, crf=18) as writer:   # doctest: +SKIP
        ...     for frame in read_frames(info):
        ...         writer.write(frame.image, frame.pts)
        ...     writer.finish()   # leaving the block without finish() removes everything
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo, *, crf: int = 18, preset: str = "veryfast",
                 keep_audio: bool = True):
        import av

        self.path = Path(path)
        self.info = info
        muxer = CONTAINERS.get(self.path.suffix.lower())
        if muxer is None:
            raise OutputError(f"cannot write a {self.path.suffix} video ({self.path}); use one of "
                              f"{', '.join(CONTAINERS)}")
        self.partial = self.path.with_name(f".{self.path.name}.fswap-{os.getpid()}-{threading.get_ident()}.partial")
        # What `finish`'s seal (the Content Credentials) writes the finished file into.
        self.sealed = self.path.with_name(f".{self.path.name}.sealed.fswap-{os.getpid()}-{threading.get_ident()}.partial")
        self.frames_written = 0
        self._finished = False
        self._audio_input = None
        self._pending_audio = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sweep_partials(self.path.parent)
            self.container = av.open(str(self.partial), "w", format=muxer)
        except OSError as error:
            raise OutputError(f"cannot write {self.path}: {error.strerror or error}") from error
        try:
            self._add_video(crf, preset)
            if keep_audio and info.audio_codec is not None:
                self._add_audio(muxer)
            self.container.start_encoding()
        except BaseException:
            self.abort()
            raise

    # ------------------------------------------------------------------ set-up
    def _add_video(self, crf: int, preset: str) -> None:
        info = self.info
        rate = info.frame_rate if info.frame_rate else Fraction(25)
        stream = self.container.add_stream(VIDEO_CODEC, rate=rate)
        # yuv420p halves the colour resolution, so its sides must be even: an odd side gets one
        # column or row repeated.
        stream.width, stream.height = info.width + info.width % 2, info.height + info.height % 2
        stream.pix_fmt = PIXEL_FORMAT
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.options = {"crf": str(crf), "preset": preset}
        stream.thread_type = "AUTO"
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        self.video = stream

    def _add_audio(self, muxer: str) -> None:
        import av

        self._audio_input = av.open(str(self.info.path), metadata_errors="ignore")
        source = self._audio_input.streams.audio[0]
        self._copy_audio = _can_copy(source, muxer)
        if self._copy_audio:
            self.audio = self.container.add_stream_from_template(source)
        else:
            rate = source.codec_context.sample_rate or 48000
            self.audio = self.container.add_stream(AUDIO_CODEC, rate=rate)
            # A layout of unnamed channels ("1 channels", from some mkv files) becomes the usual one
            # for that many channels, which the AAC encoder takes.
            channels = source.codec_context.channels
            self.audio.layout = _USUAL_LAYOUTS.get(channels, "stereo")
        self._audio_packets = self._audio_input.demux(source)

    # ------------------------------------------------------------------ writing
    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one upright RGB frame shown at `pts` (in the input's time base), with the
        audio up to that time."""
        import av

        image = stored(image, self.info.rotation)
        height, width = image.shape[:2]
        if (width, height) != (self.video.width, self.video.height):
            image = np.pad(image, ((0, self.video.height - height), (0, self.video.width - width), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self.info.time_base
        packets = self.video.encode(frame)
        self._write_audio_until(float(pts * self.info.time_base))
        self.container.mux(packets)
        self.frames_written += 1

    def _write_audio_until(self, seconds: float | None) -> None:
        """Mux the input's audio up to `seconds` (all of it when None)."""
        if self._audio_input is None:
            return
        while True:
            packet = self._pending_audio or next(self._audio_packets, None)
            self._pending_audio = None
            if packet is None:
                return
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending_audio = packet
                return
            if self._copy_audio:
                packet.stream = self.audio
                self.container.mux(packet)
            else:
                for frame in packet.decode():
                    self.container.mux(self.audio.encode(frame))

    def finish(self, seal: Callable[[Path, Path], None] | None = None) -> Path:
        """Flush the encoders, close the file and move it into place; return its path.

        `seal(written, sealed)`, given, writes the file that goes into place from the finished one
        (`fswap.provenance.sign_video` signs it), before anything is moved: an error or Ctrl-C
        while it runs still leaves no output.
        """
        try:
            self.container.mux(self.video.encode())
            self._write_audio_until(None)
            if self._audio_input is not None and not self._copy_audio:
                self.container.mux(self.audio.encode())
            self.container.close()
            self._close_input()
            if seal is not None:
                seal(self.partial, self.sealed)
                os.replace(self.sealed, self.path)
                self.partial.unlink()
            else:
                os.replace(self.partial, self.path)
        except BaseException:
            self.abort()
            raise
        self._finished = True
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file; the destination is left as it was."""
        for close in (self.container.close, self._close_input):
            with contextlib.suppress(Exception):  # closing a half-written container may fail; it goes anyway
                close()
        self.partial.unlink(missing_ok=True)
        self.sealed.unlink(missing_ok=True)

    def _close_input(self) -> None:
        if self._audio_input is not None:
            self._audio_input.close()
            self._audio_input = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._finished:
            self.abort()


def _can_copy(source, muxer: str) -> bool:
    """Whether `source`'s packets go into the `muxer`'s container as they are, and play there: in
    mp4 and mov only `PLAYABLE_IN_MP4` (FFmpeg writes PCM into mp4 too, which few players read);
    elsewhere whatever the muxer takes, tried on a header in memory."""
    import av

    if muxer in ("mp4", "mov") and source.codec_context.name not in PLAYABLE_IN_MP4:
        return False
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as probe:
            probe.add_stream_from_template(source)
            probe.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True
