"""`VideoSwapper`: swaps a stream of frames one at a time, steadily: a clip, or a live camera.

    swap:   frame ─ cut? ─ detect (every k-th frame) or follow ─ track ─ choose whose face
                  ─ smooth landmarks (one-euro) ─ swap (pipeline stages, smoothed occlusion
                    masks, the clip's fixed identity)
    finish: ─ smooth colour against the original frame ─ watermark

Each tracked person carries their own smoothers, reset when the shot changes or they come back.
`fswap.video.swap_video` runs one over a file; an app's webcam stream calls it frame by frame.
"""

from __future__ import annotations

import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fswap.baselines.classic import ClassicFaceSwapper
from fswap.faces import Face
from fswap.imageio import ImageInput, load_image
from fswap.options import SwapOptions
from fswap.pipeline import FaceSwapPipeline
from fswap.timing import timed
from fswap.video.cuts import CutDetector
from fswap.video.marking import mark_faces
from fswap.video.options import VideoOptions
from fswap.video.selection import Selection
from fswap.video.smoothing import ColourSmoother, FaceSmoother, LowPass
from fswap.video.stages import (
    ClassicSources,
    PreparedSources,
    SwappedRegion,
    prepare_sources,
    swap_classic_faces,
    swap_pipeline_faces,
)
from fswap.video.tracking import FaceTracker, Track, find_faces

Swapper = FaceSwapPipeline | ClassicFaceSwapper
#: `mapping`: reference photo -> source photo(s), as a dict or as (reference, source) pairs.
FaceMapping = Mapping[ImageInput, ImageInput | Sequence[ImageInput]] | Sequence[tuple[ImageInput, ImageInput]]


@dataclass
class TrackedFace:
    """One face of a swapped frame."""

    track: int  # the person's id, the same through the clip
    face: Face  # as swapped: smoothed landmarks and keypoints
    source: int | None  # which source it was swapped with (None: left as it was)
    region: SwappedRegion | None = None  # where the swap landed (None: nowhere, or off the frame's edge)
    restarted: bool = False  # its smoothing starts afresh here (a new track, a cut, a return)


@dataclass
class SwappedFrame:
    """`VideoSwapper`'s result for one frame."""

    image: np.ndarray  # [H, W, 3] RGB uint8
    faces: list[TrackedFace]
    cut: bool  # this frame begins a new shot
    detected: bool  # the detector ran on it (else the faces were followed)
    time: float  # seconds
    original: np.ndarray = field(repr=False, default=None)  # the frame as it came
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def swapped(self) -> int:
        return sum(face.source is not None for face in self.faces)


class VideoSwapper:
    """Swaps faces in a stream of frames, tracking and smoothing them across frames.

    Args:
        swapper: a `FaceSwapPipeline`, or the classic landmark swap (`ClassicFaceSwapper`).
        sources: photo(s) of the person to put in (several: their identities are averaged).
            Not needed with `mapping`.
        faces: who is swapped without a reference: "all", or a face number (or a list of them)
            of the first frame that has faces (largest first; "largest" is 0), each followed
            through the stream by its track.
        reference: a photo of the person to replace: only the tracked face most like it is
            swapped (frames without that person pass untouched).
        mapping: several people at once, {reference photo: source photo(s)} or (reference,
            source) pairs: each tracked person like a reference gets that reference's source.
        options: tracking, smoothing and watermark settings (`VideoOptions`).
        swap_options: how each face is swapped (`fswap.SwapOptions`; the pipeline only).

    Example:
        >>> from fswap import FaceSwapPipeline
        >>> from fswap.video import VideoSwapper
        >>> swapper = VideoSwapper(FaceSwapPipeline.from_pretrained("checkpoints/fswap-default"), "me.jpg")  # doctest: +SKIP
        >>> for image in camera_frames():                                                   # doctest: +SKIP
        ...     show(swapper(image).image)

    Raises:
        fswap.ImageError, fswap.NoFaceError: a source or reference photo cannot be read or has no face.
    """

    def __init__(self, swapper: Swapper, sources: ImageInput | Sequence[ImageInput] | None = None, *,
                 faces: str | int | Sequence[int] = 0, reference: ImageInput | None = None, mapping: FaceMapping | None = None,
                 options: VideoOptions | None = None, swap_options: SwapOptions | None = None):
        if not isinstance(swapper, (FaceSwapPipeline, ClassicFaceSwapper)):
            raise TypeError(f"swapper must be a FaceSwapPipeline or a ClassicFaceSwapper, not {type(swapper).__name__}")
        self.swapper = swapper
        self.options = options or VideoOptions()
        self.swap_options = (swap_options or SwapOptions()).replace(watermark=False)
        self.analyzer = swapper.face_analyzer if isinstance(swapper, FaceSwapPipeline) else swapper.analyzer
        pairs = _pairs(sources, reference, mapping)
        references = None
        if pairs[0][0] is not None:
            references = [self.analyzer.largest_face(load_image(photo, name="reference photo"),
                                                     name="reference photo", embeddings=True).embedding
                          for photo, _ in pairs]
        self.selection = Selection(faces, references, self.options.same_person)
        self.sources: list[PreparedSources | ClassicSources] = [prepare_sources(swapper, source, self.swap_options)
                                               for _, source in pairs]
        self.checkpoint = (swapper.checkpoint_name or "unnamed checkpoint") if isinstance(
            swapper, FaceSwapPipeline) else "classic landmark swap"
        self.reset()

    def __call__(self, image: ImageInput, time: float | None = None) -> SwappedFrame:
        """Swap one frame, steady colours and watermark included (`swap`, then `finish`).
        `time`: its timestamp in seconds (default: the clock's, for a live stream), which the
        smoothing follows, so a variable frame rate is smoothed by the clock."""
        return self.finish(self.swap(image, time))

    def reset(self) -> None:
        """Forget every track and smoother: the next frame starts a new stream."""
        self.tracker = FaceTracker(self.analyzer, self.options.same_person)
        self.cuts = CutDetector()
        self.index = 0
        self._colours: dict[int, ColourSmoother] = {}  # per track, used by `finish` alone

    def swap(self, image: ImageInput, time: float | None = None) -> SwappedFrame:
        """Find, track, smooth and swap the faces of one frame; `finish` does the rest. A file's
        frames are finished in the encoding thread, beside the next frame's swap."""
        image = load_image(image, name="frame") if not isinstance(image, np.ndarray) else image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"a frame must be RGB uint8 [H, W, 3], got {image.dtype} {image.shape}")
        time = clock.monotonic() if time is None else float(time)
        index, options, timings = self.index, self.options, {}
        self.index += 1
        with timed(timings, "track"):
            cut = self.cuts(image)
            if cut:
                self.tracker.cut()
            tracks = None
            if not cut and index % options.detect_every:
                tracks = self.tracker.follow(image, index)
        detected = tracks is None
        if detected:
            with timed(timings, "detect"):
                faces = find_faces(self.analyzer, image, options.detection_size)
            with timed(timings, "track"):
                tracks = self.tracker.detected(image, index, faces, embeddings=self.selection.needs_embeddings)
        chosen = self.selection(tracks, index)
        with timed(timings, "smooth"):
            restarted = {track.id: cut or track.resumed for track in tracks}
            smoothed = {track.id: self._smoothed(track, time, restarted[track.id]) for track in tracks}
        result, regions = image, {}
        for source_index, prepared in enumerate(self.sources):
            group = [track for track in tracks if chosen.get(track.id) == source_index]
            if group:
                with timed(timings, "swap"):
                    result, swapped_regions = self._swap(result, prepared, group, smoothed, time)
                regions.update(zip((track.id for track in group), swapped_regions, strict=True))
        if result is image:
            result = image.copy()
        tracked = [TrackedFace(track.id, smoothed[track.id], chosen.get(track.id), regions.get(track.id),
                               restarted[track.id]) for track in tracks]
        return SwappedFrame(result, tracked, cut, detected, time, image, timings)

    def finish(self, frame: SwappedFrame) -> SwappedFrame:
        """Steady each swapped face's colour against the frame it replaced (`ColourSmoother`) and
        write the invisible watermark into it, in place; `frame` is returned. Frames must come
        in order: the colour smoothing runs through them."""
        pasted = [face for face in frame.faces if face.region is not None]
        with timed(frame.timings, "colour"):
            for face in frame.faces:
                smoother = self._colours.setdefault(
                    face.track, ColourSmoother(self.options.colour_cutoff, enabled=self.options.smoothing))
                if face.restarted:
                    smoother.reset()
                if face.region is not None:
                    smoother(frame.image, frame.original, face.region.alpha, face.region.window, frame.time)
        if self.options.watermark and pasted:
            with timed(frame.timings, "watermark"):
                mark_faces(frame.image, [face.face.box for face in pasted], self.analyzer, self.checkpoint)
        return frame

    def _smoothed(self, track: Track, time: float, restarted: bool) -> Face:
        """The track's face this frame with its landmarks smoothed, its smoothers made or reset."""
        options, state = self.options, track.state
        if not state:
            state["face"] = FaceSmoother(options.pose_cutoff, options.pose_beta, options.shape_cutoff,
                                         options.shape_beta, enabled=options.smoothing)
            state["visible"] = LowPass(options.mask_cutoff)
        elif restarted:
            for smoother in state.values():
                smoother.reset()
        return state["face"](track.last_face, time, track.detected)

    def _swap(self, image: np.ndarray, prepared: PreparedSources | ClassicSources, group: list[Track], smoothed: dict[int, Face],
              time: float):
        faces = [smoothed[track.id] for track in group]
        if isinstance(self.swapper, ClassicFaceSwapper):
            return swap_classic_faces(prepared, image, faces)
        mask_filter = None
        if self.options.smoothing:
            def mask_filter(masks: np.ndarray) -> np.ndarray:
                return np.stack([track.state["visible"](mask, time) for track, mask in zip(group, masks, strict=True)])
        return swap_pipeline_faces(self.swapper, prepared, image, faces, self.swap_options, mask_filter)


def _pairs(sources, reference, mapping) -> list[tuple]:
    """(reference photo or None, source photo(s)) per person to put in."""
    if mapping is not None:
        if sources is not None or reference is not None:
            raise ValueError("give either mapping (reference -> source pairs) or sources (with a reference), not both")
        pairs = list(mapping.items()) if isinstance(mapping, Mapping) else [tuple(pair) for pair in mapping]
        if not pairs or any(len(pair) != 2 for pair in pairs):
            raise ValueError("mapping must hold (reference photo, source photo) pairs")
        return pairs
    if sources is None:
        raise ValueError("give the source photo(s) of the person to put in")
    return [(reference, sources)]
