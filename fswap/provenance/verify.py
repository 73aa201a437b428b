"""`verify` and `verify_video`: read both provenance signals of a file, the C2PA manifest and the
face watermark (in a video, frame by frame)."""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fswap.faces import FaceAnalyzer
from fswap.imageio import load_image
from fswap.provenance.c2pa_manifest import (
    VIDEO_INGREDIENT_TYPES,
    ManifestReport,
    read_manifest,
    read_video_manifest,
)
from fswap.provenance.watermark import (
    DEFAULT_THRESHOLD,
    SCHEME,
    WatermarkReport,
    default_analyzer,
    detect_watermark,
    format_p,
    payload_tag,
)
from fswap.video.options import VERIFY_FRAMES


@dataclass
class VerifyReport:
    """The manifest (valid, tampered or absent) and the watermark (found or absent) of one image."""

    manifest: ManifestReport
    watermark: WatermarkReport
    checkpoint: str | None = None  # the checkpoint the caller asked about, if any

    @property
    def tag_matches_manifest(self) -> bool | None:
        """Whether the watermark's tag is the one fswap writes for the manifest's version and
        checkpoint; None when either side is missing."""
        best = self.watermark.best
        return _tag_matches_manifest(best.tag if self.watermark.found and best is not None else None, self.manifest)

    def summary(self) -> str:
        best = self.watermark.best
        tag = best.tag if self.watermark.found and best is not None else None
        return "\n".join([self.manifest.summary(), self.watermark.summary(),
                          *_tag_lines(tag, self.manifest, self.checkpoint)])


def verify(
    source: bytes | str | os.PathLike | np.ndarray,
    *,
    analyzer: FaceAnalyzer | None = None,
    trust_anchors: bytes | str | None = None,
    checkpoint: str | None = None,
) -> VerifyReport:
    """Check an image for fswap's Content Credentials and its face watermark, offline.

    Args:
        source: the file (path or bytes), or decoded RGB pixels (which carry no manifest).
        analyzer: the face analyzer for the watermark (default: the registry-shipped models).
        trust_anchors: PEM root certificate(s) whose signers count as trusted (see `read_manifest`).
        checkpoint: also say whether the watermark's tag matches this checkpoint name.

    Raises:
        fswap.ImageError: `source` cannot be read as an image.
        fswap.provenance.ProvenanceError: `trust_anchors` holds no PEM certificate.
    """
    if isinstance(source, np.ndarray):
        manifest = ManifestReport(status="absent")
        pixels = load_image(source)
    else:
        pixels = load_image(source)  # first: a file that is not a readable image is refused here
        manifest = read_manifest(source, trust_anchors=trust_anchors)
    return VerifyReport(manifest, detect_watermark(pixels, analyzer=analyzer), checkpoint)


@dataclass
class FrameCheck:
    """The watermark in one checked frame of a video."""

    index: int  # the frame's number in the clip, from 0
    time: float  # seconds
    faces: int  # faces read
    log10_p: float | None  # the frame's false-alarm bound (`WatermarkReport.log10_p`); None: no face
    found: bool
    tag: int | None  # the best face's payload tag, when found and whole


@dataclass
class VideoVerifyReport:
    """The manifest of a video file (valid, tampered or absent) and the watermark frame by frame.

    The watermark's figure is the share of the checked frames with a face in which it is found
    (each frame on its own, at the same false-alarm bound as a photo). `log10_p` bounds the
    chance that an unmarked clip shows a frame as marked as its best one: the best frame's bound
    times the frames read.
    """

    manifest: ManifestReport
    frames: list[FrameCheck]  # the frames checked, in order
    total_frames: int  # frames in the clip (as its container declares them, else counted)
    threshold: float = DEFAULT_THRESHOLD
    checkpoint: str | None = None  # the checkpoint the caller asked about, if any
    note: str = ""  # why the file cannot carry a manifest, when it cannot

    @property
    def frames_with_face(self) -> int:
        return sum(check.log10_p is not None for check in self.frames)

    @property
    def frames_marked(self) -> int:
        return sum(check.found for check in self.frames)

    @property
    def share(self) -> float | None:
        """The share of the checked frames with a face in which the watermark is found."""
        return self.frames_marked / self.frames_with_face if self.frames_with_face else None

    @property
    def log10_p(self) -> float | None:
        bounds = [check.log10_p for check in self.frames if check.log10_p is not None]
        return min(0.0, min(bounds) + math.log10(len(bounds))) if bounds else None  # a union bound over the frames

    @property
    def found(self) -> bool:
        return self.log10_p is not None and self.log10_p < math.log10(self.threshold)

    @property
    def tag(self) -> int | None:
        """The payload tag read in most of the marked frames."""
        tags = Counter(check.tag for check in self.frames if check.found and check.tag is not None)
        return tags.most_common(1)[0][0] if tags else None

    @property
    def tag_matches_manifest(self) -> bool | None:
        """As `VerifyReport.tag_matches_manifest`, for the clip's most common tag."""
        return _tag_matches_manifest(self.tag, self.manifest)

    def summary(self) -> str:
        manifest = self.manifest.summary()
        if self.note and self.manifest.status == "absent":
            manifest = f"Content Credentials: none ({self.note})"
        checked = len(self.frames)
        sampled = ("every frame" if checked >= self.total_frames
                   else f"{checked} of {self.total_frames} frames, evenly spaced")
        if not self.frames_with_face:
            watermark = f"Watermark: absent (no face in the frames checked: {sampled})"
        elif not self.found:
            watermark = (f"Watermark: absent (in 0 of {self.frames_with_face} frames with a face; {sampled}; "
                         f"best {format_p(self.log10_p)})")
        else:
            tag = f"; payload tag {self.tag:04x}" if self.tag is not None else ""
            watermark = (f"Watermark: FOUND in {self.frames_marked} of {self.frames_with_face} frames with a face "
                         f"({self.share:.0%}; {sampled}; {SCHEME}{tag}; {format_p(self.log10_p)})")
        return "\n".join([manifest, watermark, *_tag_lines(self.tag if self.found else None, self.manifest,
                                                            self.checkpoint)])


def verify_video(
    path: str | os.PathLike,
    *,
    frames: int | None = VERIFY_FRAMES,
    analyzer: FaceAnalyzer | None = None,
    trust_anchors: bytes | str | None = None,
    checkpoint: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool | Callable[[int, int], None] = False,
) -> VideoVerifyReport:
    """Check a video file for fswap's Content Credentials and, frame by frame, its face watermark, offline.

    Args:
        path: the video (any FFmpeg reads; by its content).
        frames: read at most this many frames, evenly spaced through a longer clip (None: every
            frame). Each costs a face detection and a watermark read (about 0.1 s at 720p here).
        analyzer, trust_anchors, checkpoint: as in `verify`.
        threshold: a frame is marked when its false-alarm bound is below this.
        progress: True shows a progress bar on stderr; a callable gets (frames read, frames to read).

    Raises:
        fswap.video.VideoError: `path` is not a video FFmpeg can read (missing, empty, damaged,
            audio only, a still picture).
        fswap.provenance.ProvenanceError: `trust_anchors` holds no PEM certificate.

    Example:
        >>> from fswap.provenance import verify_video
        >>> report = verify_video("swapped.mp4")                              # doctest: +SKIP
        >>> report.manifest.status, f"{report.share:.0%}"                     # doctest: +SKIP
        ('valid', '100%')
    """
    from fswap.video.decode import read_frames
    from fswap.video.probe import frame_count, probe_video

    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise ValueError(f"frames must be a whole number of 1 or more (or None: every frame), not {frames!r}")
    info = probe_video(path, limits=False)
    note = ""
    if info.mime_type in VIDEO_INGREDIENT_TYPES:
        manifest = read_video_manifest(path, format=info.mime_type, trust_anchors=trust_anchors)
    else:
        manifest = ManifestReport(status="absent")
        note = f"{info.mime_type} files cannot carry a C2PA manifest"
    total = frame_count(info)
    chosen = range(total) if frames is None or total <= frames else set(
        np.linspace(0, total - 1, frames).round().astype(int).tolist())
    report = _frames_reporter(progress, len(chosen), info.path.name)
    analyzer = analyzer or default_analyzer()
    checks = []
    try:
        for frame in read_frames(info, only=chosen):
            found = detect_watermark(frame.image, analyzer=analyzer, threshold=threshold)
            best = found.best
            log10_p = None if found.log10_p is None else float(found.log10_p)
            checks.append(FrameCheck(frame.index, frame.time, len(found.faces), log10_p, bool(found.found),
                                     best.tag if found.found and best is not None else None))
            report(len(checks))
    finally:
        report(None)
    return VideoVerifyReport(manifest, checks, total, threshold, checkpoint, note)


def _frames_reporter(progress, total: int, name: str) -> Callable[[int | None], None]:
    """A function taking the frames read so far (None: the end) to the bar or the callback."""
    if callable(progress):
        return lambda done: None if done is None else progress(done, total)
    if not progress:
        return lambda done: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="frame", desc=f"checking {name}", file=sys.stderr, dynamic_ncols=True)
    return lambda done: bar.close() if done is None else bar.update(done - bar.n)


def _tag_matches_manifest(tag: int | None, manifest: ManifestReport) -> bool | None:
    """Whether `tag` is the one fswap writes for the manifest's version and checkpoint; None when
    either side is missing."""
    agent = manifest.software_agent or ""
    if tag is None or not agent.startswith("fswap "):
        return None
    return tag == payload_tag(manifest.checkpoint, agent.removeprefix("fswap "))


def _tag_lines(tag: int | None, manifest: ManifestReport, checkpoint: str | None) -> list[str]:
    """What the watermark's tag says about the manifest and the checkpoint asked about."""
    lines = []
    matches = _tag_matches_manifest(tag, manifest)
    if matches is not None:
        lines.append("  the watermark's tag " + ("matches" if matches else "does NOT match")
                     + " the manifest's fswap version and checkpoint")
    if checkpoint is not None and tag is not None:
        verdict = "matches" if tag == payload_tag(checkpoint) else "does not match"
        lines.append(f"  the watermark's tag {verdict} checkpoint {checkpoint!r} with this fswap version")
    return lines
