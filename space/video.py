"""What the Video and Webcam tabs do: list the people of a clip, swap a clip, swap camera frames live.

    /video_people (video)                                   -> people thumbnails, people JSON
    /swap_video   (consent, source, video, person,
                   appearance_matching, occlusion_aware,
                   smoothing, detect_every)                 -> result MP4, MP4 download, summary JSON
    (the webcam's stream is private: one `VideoSwapper` per browser session, in a `gr.State`)

Uploads are read as the photo tabs read theirs (`space.handlers`): events run with
`preprocess=False`, a file must lie in gradio's upload folder, and a video is judged by its content
(`fswap.video.probe_video`) within the app's bounds (`space.resources`: duration, size, frames).
The swap is `fswap.video.swap_video`: the audio is kept, every swapped face of every frame carries
the invisible watermark, the file is signed with the app's Content Credentials signer, and its
progress (frames, fps, time left) drives the page's progress bar.
"""

from __future__ import annotations

import base64
import binascii
import collections
import html
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import gradio as gr
import numpy as np

from fswap.errors import FswapError, ImageError
from fswap.imageio import load_image
from fswap.options import OptionError, SwapOptions
from fswap.video import VideoError, VideoInfo, VideoOptions, probe_video
from fswap.video.people import PEOPLE_SECONDS, Person, find_people
from space.handlers import ConsentError, FaceSwapApp, endpoint, flag, shown, uploaded_path, user_error
from space.resources import (
    LIVE_FRAME_BYTES,
    LIVE_PIXELS,
    VIDEO_MAX_FRAMES,
    VIDEO_MAX_SECONDS,
    VIDEO_MAX_SIDE,
)

#: The app's video settings: its bounds, and torch's threads left alone (the app serves photo swaps
#: beside a video's, and torch's thread count is the process's).
VIDEO_OPTIONS = VideoOptions(max_side=VIDEO_MAX_SIDE, max_seconds=VIDEO_MAX_SECONDS, torch_threads=0)
#: A live camera: the detector on every 3rd frame shown a 320-px copy (the fastest setting of
#: docs/video.md), and each face of the picture swapped: a person who leaves and comes back, or joins, is too.
LIVE_OPTIONS = VIDEO_OPTIONS.replace(detect_every=3, detection_size=320)
#: A live stream's session is forgotten this long after its last frame (`gr.State`'s time to live).
LIVE_SESSION_SECONDS = 600
#: A gap this long between two camera frames starts the smoothing afresh (a new stream).
LIVE_GAP_SECONDS = 2.0
#: The detector runs at most every this many frames (the option's slider).
MAX_DETECT_EVERY = 10
#: The listed people of this many recent uploads are kept for their swap (at most 12 people each,
#: each two crops: about 5 MB an upload at most).
PEOPLE_CACHED = 4

#: `VideoOptions` and `SwapOptions` fields the Video tab does not offer, and why; a test checks
#: that every other field is a parameter of /swap_video.
VIDEO_FIXED_OPTIONS = {
    # VideoOptions
    "crf": "18, which looks like the input; the download is the file as swapped",
    "preset": "x264's veryfast: the encoding keeps up with the swap",
    "detection_size": "the face analyzer's own: small faces of a clip are found",
    "pose_cutoff": "tuned on clips with a known motion (docs/video.md)",
    "pose_beta": "tuned on clips with a known motion (docs/video.md)",
    "shape_cutoff": "tuned on clips with a known motion (docs/video.md)",
    "shape_beta": "tuned on clips with a known motion (docs/video.md)",
    "mask_cutoff": "tuned on clips with a known motion (docs/video.md)",
    "colour_cutoff": "tuned on clips with a known motion (docs/video.md)",
    "same_person": "the tracker's own: one person keeps one number",
    "watermark": "every swapped frame of the app is marked",
    "content_credentials": "every video of the app is signed (with the Space owner's signer when it is set)",
    "keep_audio": "the sound is always kept",
    "max_side": "the app's bound, space.resources.VIDEO_MAX_SIDE",
    "max_seconds": "the app's bound, space.resources.VIDEO_MAX_SECONDS",
    "torch_threads": "left to torch: the app swaps photos beside videos",
    "queue_frames": "memory per swap, fixed",
    # SwapOptions
    "feather_fraction": "the checkpoint's setting",
    "shape_strength": "the checkpoint's setting",
    "paste_source_occluders": "as in the photo: all of it",
    "keep_open_mouths": "on, as on the Swap tab",
    "mirror_sources": "on, as on the Swap tab",
    "rendering": "pasted: the relit rendering is for photos",
    "refine": "an ablation for research, not a choice for users",
    "full_resolution": "an ablation for research, not a choice for users",
    "jaw_feather_share": "the checkpoint's setting",
}


def video_option_help(name: str) -> str:
    """A `VideoOptions` field's help, for a widget's `info` (the options are declared once)."""
    help_text = next(spec.metadata["help"] for spec in fields(VideoOptions) if spec.name == name)
    return help_text[:1].upper() + help_text[1:]


def whole_number(value, name: str, low: int, high: int) -> int:
    """A whole number from `low` to `high` from a request (a float that is whole is taken)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{name} must be a whole number from {low} to {high}, not {shown(value)}")
    if not low <= value <= high:
        raise OptionError(f"{name} must be from {low} to {high}, not {value}")
    return value


def person_caption(person: Person) -> str:
    if person.face_number == 0:
        return f"person {person.number}: the largest face"
    if person.face_number is not None:
        return f"person {person.number}"
    return f"person {person.number}: from {person.time:.1f} s"


@dataclass
class LiveSession:
    """One browser session's live swap: its swapper for the source photo it was made for, and
    when its recent frames were swapped (the rate shown)."""

    source: tuple  # the source upload's (path, size, modified) and the options: others make a new swapper
    swapper: object  # fswap.video.VideoSwapper
    frames: int = 0
    times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))

    @property
    def fps(self) -> float:
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class VideoSwapApp:
    """The Video and Webcam tabs' behaviour, on the photo app's pipeline, folders and GPU decorator.

    Args:
        app: the photo app (`space.handlers.FaceSwapApp`): its pipeline, uploads, results and readers.
        gpu: decorator for the function that swaps a clip (`spaces.GPU` on ZeroGPU).
    """

    def __init__(self, app: FaceSwapApp, *, gpu: Callable = lambda function: function):
        self.app = app
        self.pipeline = app.pipeline
        self.photos = app.photos  # `endpoint` scopes each request's photo reading
        self._swap_on_gpu = gpu(self._swap)
        self._people: OrderedDict[tuple, list[Person]] = OrderedDict()
        self._lock = threading.Lock()
        self._pruned = 0.0

    def prune_files(self) -> None:
        self.app.prune_files()

    # ------------------------------------------------------------------ reading requests
    def read_video(self, payload) -> VideoInfo | None:
        """The uploaded video's description, within the app's bounds (None when none was given)."""
        path = uploaded_path(payload, "video", VideoError)
        if path is None:
            return None
        info = probe_video(path, limits=False)  # the app's own bounds, said as the app's, below
        width, height = info.upright_size
        if max(width, height) > VIDEO_MAX_SIDE:
            raise VideoError(f"{path.name} is {width}x{height}; the app swaps videos up to {VIDEO_MAX_SIDE} px on "
                             "the longer side (downscale it first, or use the fswap command line)")
        if info.duration is not None and info.duration > VIDEO_MAX_SECONDS:
            raise VideoError(f"{path.name} lasts {info.duration:.0f} s; the app swaps videos up to "
                             f"{VIDEO_MAX_SECONDS:.0f} s (cut it first, or use the fswap command line)")
        if info.frames is not None and info.frames > VIDEO_MAX_FRAMES:
            raise VideoError(f"{path.name} has {info.frames} frames; the app swaps videos of up to "
                             f"{VIDEO_MAX_FRAMES} frames (cut it first, or use the fswap command line)")
        return info

    def people_of(self, info: VideoInfo) -> list[Person]:
        """The people of the clip's first seconds (`fswap.video.people`), kept for the recent uploads."""
        stat = info.path.stat()
        key = (str(info.path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._people:
                self._people.move_to_end(key)
                return self._people[key]
        people = find_people(self.pipeline.get().face_analyzer, info, options=VIDEO_OPTIONS)
        with self._lock:
            self._people[key] = people
            while len(self._people) > PEOPLE_CACHED:
                self._people.popitem(last=False)
        return people

    # ------------------------------------------------------------------ /video_people
    @endpoint
    def people(self, video) -> tuple[list, dict | None]:
        """Thumbnails of the people of the clip's first seconds, numbered for /swap_video's
        `person`, and the same as JSON with what the clip is."""
        info = self.read_video(video)
        if info is None:
            return [], None
        people = self.people_of(info)
        width, height = info.upright_size
        summary = {
            "width": width,
            "height": height,
            "frames": info.frames,
            "fps": None if info.frame_rate is None else round(float(info.frame_rate), 3),
            "seconds": None if info.duration is None else round(info.duration, 3),
            "audio": info.audio_codec is not None,
            "people": [
                {"index": person.number, "box": [round(float(value), 1) for value in person.face.box],
                 "time": round(person.time, 3), "frames": person.frames,
                 "in_first_frame": person.face_number is not None}
                for person in people
            ],
        }
        if not people:
            gr.Warning(f"No face in the first {PEOPLE_SECONDS:.0f} s of the video: the swap takes the largest "
                       "face of the first frame that has one.")
        return [(person.thumbnail, person_caption(person)) for person in people], summary

    # ------------------------------------------------------------------ /swap_video
    @endpoint
    def swap(self, consent, source, video, person=0, appearance_matching=True, occlusion_aware=True,
             smoothing=True, detect_every=1, progress=gr.Progress()):
        """The swapped clip (H.264 MP4 with the input's sound), the same file as a download, and
        what was swapped as JSON."""
        if consent is not True:
            raise ConsentError("tick the consent box first: swap only faces of people who agreed to it")
        person = whole_number(0 if person is None else person, "the option person", 0, 10_000)
        options = VIDEO_OPTIONS.replace(
            smoothing=flag(smoothing, "smoothing", True),
            detect_every=whole_number(1 if detect_every is None else detect_every, "the option detect_every", 1,
                                      MAX_DETECT_EVERY))
        swap_options = SwapOptions(appearance_matching=flag(appearance_matching, "appearance_matching", True),
                                   occlusion_aware=flag(occlusion_aware, "occlusion_aware", True))
        progress(0.0, desc="Reading the photo and the video")
        source_image = self.app.read_photo(source, "source photo", [])
        if source_image is None:
            raise ImageError("upload a source photo: the person whose face is put in the video")
        info = self.read_video(video)
        if info is None:
            raise VideoError("upload a video: the clip whose face is replaced")
        people = self.people_of(info)
        if person >= max(len(people), 1):
            shows = (f"shows {len(people)} people in its first {PEOPLE_SECONDS:.0f} s, numbered 0 to "
                     f"{len(people) - 1}" if people else
                     f"shows no face in its first {PEOPLE_SECONDS:.0f} s: person 0 is the largest face of the first "
                     "frame that has one")
            raise OptionError(f"the video {shows}; person {person} is not one of them")
        selector = people[person].selector if people else {"faces": 0}
        output = self.app.results.new_folder() / "fswap-video.mp4"
        result = self._swap_on_gpu(source_image, info, output, selector, options, swap_options, progress)
        for notice in result.notices:
            gr.Warning(html.escape(notice))
        summary = {
            "frames": result.frames,
            "swapped_frames": result.swapped_frames,
            "people": result.people,
            "seconds": round(result.seconds, 3),
            "fps": round(result.fps, 3),
            "audio": info.audio_codec is not None,
        }
        return str(result.path), str(result.path), summary

    def _swap(self, source_image, info, output, selector, options, swap_options, progress):
        from fswap.video import swap_video

        def report(state) -> None:
            if state.frames > VIDEO_MAX_FRAMES:
                raise VideoError(f"{info.path.name} has more than {VIDEO_MAX_FRAMES} frames; the app swaps "
                                 "videos of up to that many (the fswap command line takes longer ones)")
            eta = state.eta
            left = "" if eta is None else f", about {eta:.0f} s left"
            progress((state.frames, state.total), desc=f"Swapping: {state.fps:.1f} frames a second{left}",
                     unit="frames")

        return swap_video(self.pipeline.get(), source_image, info.path, output, options=options,
                          swap_options=swap_options, credentials=self.app.signing_credentials(), progress=report,
                          **selector)

    # ------------------------------------------------------------------ the webcam
    def live_frame(self, consent, source, occlusion_aware, frame, session: LiveSession | None):
        """One camera frame swapped with the source photo, a line on the rate, and the session.
        Not an `endpoint`: the app's folders are pruned at most every 30 s, not on every frame."""
        try:
            return self._live_frame(consent, source, occlusion_aware, frame, session)
        except FswapError as error:
            raise user_error(error) from error

    def _live_frame(self, consent, source, occlusion_aware, frame, session: LiveSession | None):
        from fswap.video import VideoSwapper

        if time.monotonic() - self._pruned > 30:
            self._pruned = time.monotonic()
            self.prune_files()
        if consent is not True:
            raise ConsentError("tick the consent box first: swap only faces of people who agreed to it")
        path = uploaded_path(source, "source photo")
        if path is None:
            raise ImageError("upload a source photo first: the person whose face is put on the camera's")
        image = camera_frame(frame)
        if image is None:
            return gr.skip(), gr.skip(), session
        swap_options = SwapOptions(occlusion_aware=flag(occlusion_aware, "occlusion_aware", True))
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, swap_options)
        if session is None or session.source != key:  # a new photo or option: a new swapper, a new stream
            photo = self.app.read_photo(source, "source photo", [])
            session = LiveSession(key, VideoSwapper(self.pipeline.get(), photo, faces="all", options=LIVE_OPTIONS,
                                                    swap_options=swap_options))
        now = time.monotonic()
        if session.times and now - session.times[-1] > LIVE_GAP_SECONDS:
            session.swapper.reset()  # a new stream: nothing smoothed across the gap
            session.times.clear()
        swapped = session.swapper(image, now)
        session.frames += 1
        session.times.append(time.monotonic())
        faces = swapped.swapped
        stats = (f'<div class="fs-live">{session.fps:.1f} frames a second swapped · {faces} face'
                 f'{"s" * (faces != 1)} in view · frame {session.frames}</div>')
        return swapped.image, stats, session


def camera_frame(payload) -> np.ndarray | None:
    """A camera frame as the browser streams it (a JPEG data URL), or as an API client uploads it,
    decoded within the live bounds (`LIVE_FRAME_BYTES`, shrunk to `LIVE_PIXELS`)."""
    if payload is None:
        return None
    url = payload.get("url") if isinstance(payload, dict) else None
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url.partition(",")
        if not header.startswith("data:image/") or not header.endswith(";base64"):
            raise ImageError("a camera frame must be an image as a base64 data URL")
        if len(data) > LIVE_FRAME_BYTES * 4 // 3 + 4:
            raise ImageError(f"a camera frame may be at most {LIVE_FRAME_BYTES // 2**20} MB")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ImageError("a camera frame's data URL is not valid base64") from error
        return load_image(raw, name="camera frame", max_bytes=LIVE_FRAME_BYTES, fit_pixels=LIVE_PIXELS)
    path = uploaded_path(payload, "camera frame")
    return load_image(Path(path), name="camera frame", max_bytes=LIVE_FRAME_BYTES, fit_pixels=LIVE_PIXELS)
