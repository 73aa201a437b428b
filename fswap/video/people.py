"""Who is in a clip: the people tracked through its first seconds, each with a thumbnail, numbered
so that a choice among them can be handed to `swap_video` (the app's Video tab, `/video_people`).

    >>> from fswap.video.people import find_people
    >>> people = find_people(pipe.face_analyzer, "clip.mp4")                  # doctest: +SKIP
    >>> swap_video(pipe, "me.jpg", "clip.mp4", "out.mp4", **people[1].selector)  # doctest: +SKIP

The people of the first frame that has faces come first, numbered as `swap_video(faces=...)`
numbers them (largest first: person 0 is the default, the largest face); they are chosen by that
number and followed by their track. People who appear later in the first seconds follow, by when
they appear; they are chosen by a reference photo, a crop of their best view, since `faces=` only
numbers the first frame's faces. Frames are decoded, detected and tracked as `VideoSwapper` does
(the same detector size, the same tracker), so the numbers match the swap's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from fswap.faces import Face, FaceAnalyzer
from fswap.video.cuts import CutDetector
from fswap.video.decode import read_frames
from fswap.video.options import VideoOptions
from fswap.video.probe import VideoInfo, probe_video
from fswap.video.tracking import FaceTracker, find_faces

#: The clip's first seconds are looked at ...
PEOPLE_SECONDS = 3.0
#: ... on at most this many frames spread over them (every frame until the first face is found).
PEOPLE_FRAMES = 24
#: At most this many people are listed, the first frame's first.
MAX_PEOPLE = 12


@dataclass
class Person:
    """One person tracked through the first seconds of a clip."""

    number: int  # its place in the list: what a user picks
    track: int  # the tracker's id
    face: Face  # its largest view, in the frame `frame`
    frame: int  # that frame's index in the clip
    time: float  # when it was first seen, seconds from the clip's first frame
    frames: int  # the looked-at frames it was seen in
    face_number: int | None  # its number among the first face-bearing frame's faces (largest first), or None
    thumbnail: np.ndarray = field(repr=False)  # [size, size, 3] RGB: the face with some context
    reference: np.ndarray = field(repr=False)  # a larger crop around the face: a reference photo of it

    @property
    def selector(self) -> dict:
        """`swap_video`'s (and `VideoSwapper`'s) keyword arguments choosing this person: its face
        number when it is in the first frame that has faces, else its crop as a reference photo."""
        if self.face_number is not None:
            return {"faces": self.face_number}
        return {"reference": self.reference}


def find_people(analyzer: FaceAnalyzer, video: str | os.PathLike | VideoInfo, *,
                options: VideoOptions | None = None, seconds: float = PEOPLE_SECONDS,
                frames: int = PEOPLE_FRAMES, max_people: int = MAX_PEOPLE,
                thumbnail_size: int = 160) -> list[Person]:
    """The people of the first `seconds` of `video`, the first face-bearing frame's first (by
    face number), then by when they appear; at most `max_people`.

    Raises:
        fswap.video.VideoError: the video is unreadable or beyond `options`' limits.
    """
    options = options or VideoOptions()
    info = video if isinstance(video, VideoInfo) else probe_video(
        video, max_side=options.max_side, max_seconds=options.max_seconds)
    rate = float(info.frame_rate) if info.frame_rate else 25.0
    step = max(1, round(rate * seconds / max(frames, 1)))
    tracker = FaceTracker(analyzer, options.same_person)
    cuts = CutDetector()
    # track -> (area, frame index, face, thumbnail, reference): crops, not frames, are kept
    best: dict[int, tuple[float, int, Face, np.ndarray, np.ndarray]] = {}
    seen: dict[int, list[float]] = {}  # track -> times seen
    first_numbers: dict[int, int] | None = None  # track -> face number in the first face-bearing frame
    looked = 0
    start = None
    reader = read_frames(info)
    try:
        for frame in reader:
            start = frame.time if start is None else start  # an edited clip's first frame may not be at 0
            if frame.time - start > seconds or looked >= 3 * frames:
                break
            # Every frame until faces are found (the first face-bearing frame numbers them), then every `step`-th.
            if first_numbers is not None and frame.index % step:
                continue
            if cuts(frame.image):
                tracker.cut()
            faces = find_faces(analyzer, frame.image, options.detection_size)
            tracks = tracker.detected(frame.image, looked, faces, embeddings=True)
            looked += 1
            if first_numbers is None and tracks:
                ranked = sorted(tracks, key=lambda track: track.last_face.area, reverse=True)
                first_numbers = {track.id: number for number, track in enumerate(ranked)}
            for track in tracks:
                seen.setdefault(track.id, []).append(frame.time - start)
                area = track.last_face.area
                if track.id not in best or area > best[track.id][0]:
                    face = track.last_face
                    best[track.id] = (area, frame.index, face, face_crop(frame.image, face, thumbnail_size, 0.8),
                                      face_crop(frame.image, face, 2 * thumbnail_size, 1.4))
    finally:
        reader.close()
    first_numbers = first_numbers or {}
    order = sorted(best, key=lambda track: (track not in first_numbers, first_numbers.get(track, 0), seen[track][0]))
    people = []
    for number, track in enumerate(order[:max_people]):
        _, index, face, thumbnail, reference = best[track]
        people.append(Person(number=number, track=track, face=face, frame=index, time=seen[track][0],
                             frames=len(seen[track]), face_number=first_numbers.get(track), thumbnail=thumbnail,
                             reference=reference))
    return people


def face_crop(image: np.ndarray, face: Face, size: int, context: float = 0.8) -> np.ndarray:
    """A square `size`-px crop centred on `face`, `context` times its box's longer side on each side
    of the centre (the frame's edge repeated beyond it)."""
    x0, y0, x1, y1 = face.box
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    half = context * max(x1 - x0, y1 - y0, 1.0)
    scale = size / (2 * half)
    matrix = np.array([[scale, 0, (half - centre_x) * scale], [0, scale, (half - centre_y) * scale]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
