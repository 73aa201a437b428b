"""The app's Video and Webcam tabs: `/video_people` and `/swap_video` driven through the launched
app's API with `gradio_client`, and the webcam's frame handler called as the stream calls it.

The pipeline is `test_app.py`'s small untrained one; the clips are made here from the faces of
insightface's t1.jpg (two people, the second joining half-way), 320x240 at 25 fps, with a tone as
sound. The segmenter is untrained, so occlusion-aware blending is turned off where a swap is judged.
"""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from test_app import launched_app, tiny_checkpoint  # noqa: F401  (the same launched app as the API tests)

from fswap.assets import example_image
from fswap.provenance import read_video_manifest
from fswap.video.known_motion import portrait, write_clip

SIZE = (320, 240)
FRAMES = 16
JOINS = 8  # the second person's first frame


# ---------------------------------------------------------------------- clips
def two_people_frames(t1_image, analyzer, *, frames: int = FRAMES, joins: int = JOINS,
                      size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Two people of t1.jpg on a grey ground, drifting right a pixel a frame: the first large from
    the start, the second smaller from frame `joins` on."""
    faces = analyzer.detect(t1_image)
    width, height = size
    first = _fit(portrait(t1_image, faces[0].box), int(0.75 * height))
    second = _fit(portrait(t1_image, faces[1].box), int(0.5 * height))
    clip = []
    for index in range(frames):
        frame = np.full((height, width, 3), 110, np.uint8)
        left = 12 + index
        _paste(frame, first, left, (height - first.shape[0]) // 2)
        if index >= joins:
            _paste(frame, second, left + first.shape[1] + 16, (height - second.shape[0]) // 2)
        clip.append(frame)
    return clip


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    return cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height), interpolation=cv2.INTER_AREA)


def _paste(frame: np.ndarray, image: np.ndarray, left: int, top: int) -> None:
    frame[top : top + image.shape[0], left : left + image.shape[1]] = image[:, : frame.shape[1] - left]


def decoded(path) -> tuple[list[np.ndarray], str | None]:
    """A video's frames (RGB) and its first audio stream's codec, read with PyAV."""
    import av

    with av.open(str(path)) as container:
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return frames, audio


def face_change(before: np.ndarray, after: np.ndarray, box) -> float:
    """Mean absolute difference inside the middle of a face's box."""
    x0, y0, x1, y1 = box
    inset_x, inset_y = 0.2 * (x1 - x0), 0.2 * (y1 - y0)
    window = (slice(int(y0 + inset_y), int(y1 - inset_y)), slice(int(x0 + inset_x), int(x1 - inset_x)))
    return float(np.abs(after[window].astype(int) - before[window]).mean())


@pytest.fixture(scope="module")
def clip(tmp_path_factory, t1_image, analyzer) -> Path:
    path = tmp_path_factory.mktemp("clips") / "two people.mp4"
    write_clip(path, two_people_frames(t1_image, analyzer), fps=25)
    return path


# ---------------------------------------------------------------------- the launched app
@pytest.fixture(scope="module")
def client(tiny_checkpoint, tmp_path_factory) -> Client:  # noqa: F811
    with launched_app(tiny_checkpoint, tmp_path_factory.mktemp("c2pa")) as (url, _):
        yield Client(url, verbose=False)


def swap_video_arguments(clip: Path, person=0, **changes) -> dict:
    return {
        "consent": True,
        "source": handle_file(str(example_image("yaoming.jpg"))),
        "video": handle_file(str(clip)),
        "person": person,
        "appearance_matching": True,
        "occlusion_aware": False,
        "smoothing": True,
        "detect_every": 1,
    } | changes


def error_of(client, api_name: str, **arguments) -> AppError:
    with pytest.raises(AppError) as caught:
        client.predict(**arguments, api_name=api_name)
    assert "\n" not in caught.value.message and "Traceback" not in caught.value.message
    return caught.value


def test_the_video_endpoints_are_named(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/video_people"]["parameters"]] == ["video"]
    assert [p["parameter_name"] for p in endpoints["/swap_video"]["parameters"]] == [
        "consent", "source", "video", "person", "appearance_matching", "occlusion_aware", "smoothing", "detect_every",
    ]


def test_the_people_of_a_clip_are_listed_the_first_frames_first_then_by_when_they_join(client, clip):
    gallery, summary = client.predict(handle_file(str(clip)), api_name="/video_people")
    assert (summary["width"], summary["height"], summary["frames"], summary["audio"]) == (*SIZE, FRAMES, True)
    people = summary["people"]
    assert [person["index"] for person in people] == [0, 1]
    assert people[0]["in_first_frame"] and people[0]["time"] == 0.0
    # Found on the first frame looked at after it joins (every 3rd frame, once faces are found).
    assert not people[1]["in_first_frame"] and JOINS / 25 <= people[1]["time"] <= (JOINS + 3) / 25
    first, second = (np.asarray(Image.open(item["image"])) for item in gallery)
    assert first.shape[:2] == second.shape[:2] and first.std() > 10  # a face, not a blank
    assert [item["caption"] for item in gallery] == ["person 0: the largest face",
                                                     f"person 1: from {people[1]['time']:.1f} s"]


@pytest.mark.parametrize("person", [0, 1])
def test_a_swapped_clip_keeps_its_frames_and_sound_and_only_the_chosen_person_changes(client, clip, analyzer, person):
    """Person 0 is chosen by its number in the first frame, person 1 (who joins later) by its
    picture: each is swapped wherever it is, the other is left as it was."""
    result, download, summary = client.predict(**swap_video_arguments(clip, person), api_name="/swap_video")
    result = result if isinstance(result, str) else result["video"]
    assert Path(result).suffix == ".mp4" and Path(download).name == "fswap-video.mp4"
    before, before_audio = decoded(clip)
    after, after_audio = decoded(download)
    assert len(after) == len(before) == FRAMES == summary["frames"]
    assert after_audio == before_audio == "aac" and summary["audio"]
    assert summary["swapped_frames"] == (FRAMES if person == 0 else FRAMES - JOINS)
    manifest = read_video_manifest(download, format="video/mp4")  # signed as the photos are
    assert manifest.status == "valid" and manifest.checkpoint == "fswap-tiny"
    for index in (JOINS, FRAMES - 1):  # both people in view
        faces = sorted(analyzer.detect(before[index]), key=lambda face: face.box[0])  # left: person 0
        assert len(faces) == 2
        changes = [face_change(before[index], after[index], face.box) for face in faces]
        assert changes[person] > 8, changes  # swapped
        assert changes[1 - person] < 4, changes  # kept: only the re-encoding's loss


def test_bad_videos_and_requests_are_one_line_errors(client, clip, tmp_path, t1_image, analyzer):
    text = tmp_path / "holiday.mp4"
    text.write_text("these are my holiday notes, not a video\n" * 20)
    for api_name, arguments in (("/video_people", {"video": handle_file(str(text))}),
                                ("/swap_video", swap_video_arguments(text))):
        error = error_of(client, api_name, **arguments)
        assert error.title == "Cannot use this video" and "is not a video FFmpeg can read" in error.message

    still = tmp_path / "photo.mp4"
    shutil.copy(example_image("t1.jpg"), still)
    error = error_of(client, "/video_people", video=handle_file(str(still)))
    assert "still picture" in error.message

    long = tmp_path / "long.mp4"  # two frames a minute apart: a long clip, cheap to make
    write_clip(long, two_people_frames(t1_image, analyzer, frames=2), times=[0.0, 61.0], tone=None)
    error = error_of(client, "/video_people", video=handle_file(str(long)))
    assert error.title == "Cannot use this video" and "the app swaps videos up to 60 s" in error.message

    wide = tmp_path / "wide.mp4"
    write_clip(wide, [np.full((32, 2048, 3), 90, np.uint8)] * 2, tone=None)
    error = error_of(client, "/video_people", video=handle_file(str(wide)))
    assert "2048x32" in error.message and "up to 1920 px" in error.message

    faceless = tmp_path / "faceless.mp4"
    write_clip(faceless, [np.full((*SIZE[::-1], 3), 90 + index, np.uint8) for index in range(6)])
    error = error_of(client, "/swap_video", **swap_video_arguments(faceless))
    assert error.title == "No face found" and "No face to swap in any of the 6 frames" in error.message

    error = error_of(client, "/swap_video", **swap_video_arguments(clip, consent=False))
    assert error.title == "Consent needed"
    error = error_of(client, "/swap_video", **swap_video_arguments(clip, person=5))
    assert error.title == "Option not valid" and "person 5 is not one of them" in error.message
    error = error_of(client, "/swap_video", **swap_video_arguments(clip, detect_every=0))
    assert error.title == "Option not valid" and "detect_every" in error.message
    error = error_of(client, "/swap_video", **swap_video_arguments(clip, source=None))
    assert error.title == "Cannot use this photo" and "upload a source photo" in error.message.lower()


# ---------------------------------------------------------------------- pieces without the server
def test_every_video_option_is_offered_or_said_why_not():
    import dataclasses
    import inspect

    from fswap import SwapOptions
    from fswap.video import VideoOptions
    from space.video import VIDEO_FIXED_OPTIONS, VideoSwapApp

    parameters = set(inspect.signature(VideoSwapApp.swap).parameters)
    names = {spec.name for options in (VideoOptions, SwapOptions) for spec in dataclasses.fields(options)}
    offered = names & parameters
    assert offered == {"appearance_matching", "occlusion_aware", "smoothing", "detect_every"}
    assert offered | set(VIDEO_FIXED_OPTIONS) == names and not offered & set(VIDEO_FIXED_OPTIONS)


def data_url(image: np.ndarray) -> dict:
    """A camera frame as the browser streams it: a JPEG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return {"url": "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()}


def test_camera_frames_are_swapped_with_one_swapper_per_source(tiny_checkpoint, tmp_path, monkeypatch, t1_image,  # noqa: F811
                                                                analyzer):
    from fswap import FaceSwapPipeline
    from space.handlers import FaceSwapApp
    from space.video import VideoSwapApp

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    sources = []
    for name in ("yaoming.jpg", "Tom_Hanks_54745.png"):
        shutil.copy(example_image(name), uploads / name)
        sources.append({"path": str(uploads / name), "meta": {"_type": "gradio.FileData"}})
    live = VideoSwapApp(FaceSwapApp(FaceSwapPipeline.from_pretrained(tiny_checkpoint), detector=lambda: None))
    frame = two_people_frames(t1_image, analyzer, frames=1)[0]
    face = analyzer.detect(frame)[0]

    shown, stats, session = live.live_frame(True, sources[0], False, data_url(frame), None)
    assert shown.shape == frame.shape and face_change(frame, shown, face.box) > 8
    assert "1 face in view" in stats
    swapper = session.swapper
    _, _, again = live.live_frame(True, sources[0], False, data_url(frame), session)
    assert again is session and again.swapper is swapper and again.frames == 2
    _, _, other = live.live_frame(True, sources[1], False, data_url(frame), session)
    assert other.swapper is not swapper  # a new source photo: a new swapper

    with pytest.raises(gr.Error, match="consent box"):
        live.live_frame(False, sources[0], False, data_url(frame), None)
    with pytest.raises(gr.Error, match="not valid base64"):
        live.live_frame(True, sources[0], False, {"url": "data:image/jpeg;base64,@@@"}, None)
    with pytest.raises(gr.Error, match="not uploaded to this app"):
        live.live_frame(True, sources[0], False, {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}, None)
    big = np.zeros((960, 1280, 3), np.uint8)
    shown, _, _ = live.live_frame(True, sources[0], False, data_url(big), None)
    assert shown.shape[0] * shown.shape[1] <= 640 * 480  # shrunk to the live size


def test_a_video_swap_reports_its_frames_and_time_left_as_it_goes(tiny_checkpoint, clip, tmp_path):  # noqa: F811
    """What the page's progress bar is given: every frame, out of the clip's, with the rate."""
    from fswap import FaceSwapPipeline, SwapOptions
    from fswap.video import probe_video
    from space.handlers import FaceSwapApp
    from space.video import VIDEO_OPTIONS, VideoSwapApp

    live = VideoSwapApp(FaceSwapApp(FaceSwapPipeline.from_pretrained(tiny_checkpoint), detector=lambda: None))
    updates = []

    def progress(value, desc=None, unit="steps"):
        updates.append((value, desc, unit))

    source = np.asarray(Image.open(example_image("yaoming.jpg")).convert("RGB"))
    result = live._swap(source, probe_video(clip), tmp_path / "out.mp4", {"faces": 0}, VIDEO_OPTIONS,
                        SwapOptions(occlusion_aware=False), progress)
    assert result.frames == FRAMES
    assert [value for value, _, _ in updates] == [(count, FRAMES) for count in range(1, FRAMES + 1)]
    assert all(unit == "frames" and desc.startswith("Swapping: ") for _, desc, unit in updates)
    assert "s left" in updates[0][1]
