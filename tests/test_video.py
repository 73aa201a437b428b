"""Video swapping (`fswap.video`, issue 25) on short clips made here from the offline photos: a
face cut from t1.jpg moved along a known path, with a tone as sound. The classic swap stands in
where the network does not matter, and the tiny untrained two-stage pipeline where it does."""

import os
import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest

from fswap.assets import example_image
from fswap.errors import NoFaceError, OutputError
from fswap.faces import region_mask
from fswap.imageio import save_image
from fswap.options import OptionError
from fswap.video import (
    VideoError,
    VideoOptions,
    VideoSwapper,
    is_video,
    probe_video,
    swap_video,
)
from fswap.video.cuts import CutDetector
from fswap.video.decode import upright
from fswap.video.known_motion import KnownMotion, StabilityMeter, write_clip

QUIET = VideoOptions(watermark=False)


@pytest.fixture(scope="module")
def clip(people, tmp_path_factory):
    """A 320x240 clip of one face moving (20 frames at 25 fps), stored turned a quarter with the
    rotation in its metadata as a phone does, with a variable frame rate and a tone."""
    motion = KnownMotion(frames=20)
    times = np.cumsum([0.0] + [0.04 if i % 3 else 0.06 for i in range(19)])
    path = tmp_path_factory.mktemp("clip") / "phone.mp4"
    write_clip(path, motion.clip(people[0]), times=times, rotation=90)
    return path


def _frames(path):
    """(pts in seconds, stored size, rotation) of every frame of a video file."""
    with av.open(str(path)) as container:
        return [(float(frame.pts * frame.time_base), frame.width, frame.height, frame.rotation)
                for frame in container.decode(video=0)]


def _audio_seconds(path):
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return stream.codec_context.name, sum(packet.duration or 0 for packet in container.demux(stream)) * stream.time_base


def _two_person_clip(people, frames=12):
    """Two people side by side, panning together: frames (RGB) of 480x240."""
    first, second = (KnownMotion(frames=frames, size=(240, 240), roll=0, light=0).clip(photo) for photo in people[:2])
    return [np.hstack([a, b]) for a, b in zip(first, second, strict=True)]


# ---------------------------------------------------------------------------------------- the file
def test_output_keeps_timing_size_rotation_and_audio(clip, people, classic, tmp_path):
    output = tmp_path / "swapped.mp4"
    result = swap_video(classic, people[2], clip, output, options=QUIET, progress=False)
    before, after = probe_video(clip), probe_video(output)
    assert result.path == output and result.frames == 20 == result.swapped_frames and result.people == 1
    assert (after.width, after.height, after.rotation) == (before.width, before.height, before.rotation) == (240, 320, 90)
    assert after.frames == before.frames == 20 and after.codec == "h264"
    # Every frame at its own time: the variable frame rate is kept frame by frame.
    assert [time for time, *_ in _frames(output)] == pytest.approx([time for time, *_ in _frames(clip)], abs=1e-4)
    assert _audio_seconds(output) == _audio_seconds(clip)  # copied: same codec, same duration
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert not list(tmp_path.glob(".*partial"))


def test_swapped_frames_differ_only_around_the_face(clip, people, classic, analyzer, tmp_path):
    output = swap_video(classic, people[2], clip, tmp_path / "out", options=QUIET, progress=False).path
    assert output.suffix == ".mp4"
    with av.open(str(clip)) as original, av.open(str(output)) as swapped:
        first, second = (upright(next(container.decode(video=0)).to_ndarray(format="rgb24"), 90)
                         for container in (original, swapped))
    x0, y0, x1, y1 = analyzer.largest_face(first).box.round().astype(int)
    difference = np.abs(first.astype(int) - second).mean(axis=2)
    face = np.zeros(difference.shape, bool)
    face[max(y0, 0):y1, max(x0, 0):x1] = True
    assert difference[face].mean() > 8 * difference[~face].mean()  # the face swapped, the rest re-encoded


def test_frames_are_streamed_so_memory_does_not_grow_with_length(people, classic, tmp_path):
    options = QUIET.replace(queue_frames=2, detect_every=3)
    clips = {}
    for frames in (10, 40):
        clips[frames] = tmp_path / f"{frames}.mp4"
        write_clip(clips[frames], KnownMotion(frames=frames, size=(160, 120)).clip(people[0]))
    swap_video(classic, people[2], clips[10], tmp_path / "warm-up.mp4", options=options, progress=False)
    peaks = []
    for frames, clip in clips.items():
        tracemalloc.start()
        swap_video(classic, people[2], clip, tmp_path / f"{frames}-out.mp4", options=options, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # Decoded frames are numpy's own arrays, which tracemalloc counts: the 30 more frames of the
    # longer clip, held, would add 30 frames at the peak (a queue of 64 adds 26 here); streamed, none.
    assert peaks[1] - peaks[0] < 8 * 160 * 120 * 3, peaks


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_swap_leaves_no_output_and_no_partial_file(clip, people, classic, tmp_path, error):
    output = tmp_path / "out.mp4"
    output.write_bytes(b"an older result")

    def interrupt(progress):
        if progress.frames == 5:
            raise error("stopped")

    with pytest.raises(error):
        swap_video(classic, people[2], clip, output, options=QUIET, progress=interrupt)
    assert output.read_bytes() == b"an older result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.mp4"]


def test_audio_the_container_cannot_hold_is_re_encoded(people, classic, tmp_path):
    """PCM sound (from a .mkv) cannot go into mp4 as it is: it comes out AAC, as long as it was."""
    clip = tmp_path / "pcm.mkv"
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = container.add_stream("pcm_s16le", rate=16000)
        sound.layout = "mono"
        for index, image in enumerate(KnownMotion(frames=6, size=(160, 120)).clip(people[0])):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, index * 1600
            container.mux(sound.encode(chunk))
        container.mux(video.encode())
        container.mux(sound.encode())
    output = swap_video(classic, people[2], clip, tmp_path / "out.mp4", options=QUIET, progress=False).path
    codec, seconds = _audio_seconds(output)
    assert codec == "aac" and float(seconds) == pytest.approx(0.6, abs=0.07)
    assert probe_video(output).frames == 6


def test_refused_before_any_work(clip, people, classic, tmp_path):
    with pytest.raises(OutputError, match="input"):
        swap_video(classic, people[2], clip, clip, progress=False)
    with pytest.raises(OutputError, match=r"\.avi"):
        swap_video(classic, people[2], clip, tmp_path / "out.avi", progress=False)
    with pytest.raises(VideoError, match="up to 200 px"):
        swap_video(classic, people[2], clip, tmp_path / "out.mp4", options=VideoOptions(max_side=200), progress=False)
    with pytest.raises(OptionError, match="crf"):
        VideoOptions(crf=60)
    assert list(tmp_path.iterdir()) == []


def test_a_clip_without_faces_is_an_error_and_leaves_nothing(people, classic, tmp_path):
    path = tmp_path / "empty.mp4"
    write_clip(path, (np.full((120, 160, 3), 90 + i, np.uint8) for i in range(6)))
    with pytest.raises(NoFaceError, match="no face to swap in any of the 6 frames"):
        swap_video(classic, people[2], path, tmp_path / "out.mp4", options=QUIET, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4"]


# ---------------------------------------------------------------------------------------- reading
def test_is_video_by_content_not_by_name(clip, people, tmp_path):
    renamed = tmp_path / "clip.dat"
    renamed.write_bytes(clip.read_bytes())
    photo = save_image(tmp_path / "photo.png", people[0])
    disguised = tmp_path / "photo.mp4"
    disguised.write_bytes(photo.read_bytes())
    gif = tmp_path / "moving.gif"
    frames = [people[0][:96, :96]] * 3
    with av.open(str(gif), "w") as container:
        stream = container.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 96, "rgb8"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert is_video(clip) and is_video(renamed) and is_video(gif)
    assert not is_video(photo) and not is_video(disguised) and not is_video(tmp_path / "missing.mp4")
    assert probe_video(gif).frame_rate == Fraction(10)


@pytest.mark.parametrize("kind", ["empty", "text", "audio only", "truncated"])
def test_bad_videos_get_one_line_errors(clip, tmp_path, kind):
    path = tmp_path / "bad.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a video\n" * 50)
    elif kind == "audio only":
        with av.open(str(path), "w") as container:
            stream = container.add_stream("aac", rate=16000)
            stream.layout = "mono"
            for index in range(10):
                sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                sound.sample_rate, sound.pts = 16000, index * 1024
                container.mux(stream.encode(sound))
            container.mux(stream.encode())
    else:
        path.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    expected = {"empty": "empty", "text": "not a video", "audio only": "audio only", "truncated": "bad.mp4"}[kind]
    with pytest.raises(VideoError, match=expected) as raised:
        probe_video(path)
    assert "\n" not in str(raised.value)
    assert not is_video(path)


# ---------------------------------------------------------------------------------------- whose face
@pytest.mark.parametrize("detect_every", [1, 4])
def test_one_moving_face_keeps_one_track(people, classic, detect_every):
    swapper = VideoSwapper(classic, people[2], options=QUIET.replace(detect_every=detect_every))
    results = [swapper(frame, index / 25) for index, frame in enumerate(KnownMotion(frames=16).clip(people[0]))]
    assert {face.track for result in results for face in result.faces} == {0}
    assert all(result.swapped == 1 for result in results)
    assert sum(result.detected for result in results) == (16 if detect_every == 1 else 4)


@pytest.mark.parametrize("detect_every", [1, 3])
def test_a_face_that_leaves_and_comes_back_keeps_its_track(people, classic, detect_every):
    """Followed between detector runs, a face that left is not followed into the background."""
    motion = KnownMotion(frames=12)
    frames = list(motion.clip(people[0]))
    away = [np.full_like(frames[0], 110)] * 4
    swapper = VideoSwapper(classic, people[2], options=QUIET.replace(detect_every=detect_every))
    results = [swapper(frame, index / 25) for index, frame in enumerate(frames[:6] + away + frames[6:])]
    assert [len(result.faces) for result in results] == [1] * 6 + [0] * 4 + [1] * 6
    assert {face.track for result in results for face in result.faces} == {0}


def test_reference_swaps_only_that_person(people, classic):
    frames = _two_person_clip(people)
    swapper = VideoSwapper(classic, people[2], reference=people[1], options=QUIET)
    for index, frame in enumerate(frames):
        result = swapper(frame, index / 25)
        assert result.swapped == 1
        changed = np.abs(result.image.astype(int) - frame).max(axis=2) > 0
        assert not changed[:, :240].any()  # the other person, bit for bit
        assert changed[:, 240:].mean() > 0.05


def test_map_gives_each_person_their_source(people, classic, analyzer):
    source = people[2]
    frames = _two_person_clip(people)
    swapper = VideoSwapper(classic, mapping=[(people[0], source), (people[1], source[:, ::-1])], options=QUIET)
    result = swapper(frames[0], 0.0)
    left, right = sorted(result.faces, key=lambda face: face.face.box[0])
    assert (left.source, right.source) == (0, 1)
    with pytest.raises(NoFaceError, match="reference photo"):
        VideoSwapper(classic, people[2], reference=np.full((64, 64, 3), 90, np.uint8))


def test_face_number_of_the_first_frame_is_followed(people, classic):
    frames = _two_person_clip(people)
    swapper = VideoSwapper(classic, people[2], faces=1, options=QUIET)
    chosen = [next(face for face in swapper(frame, i / 25).faces if face.source == 0) for i, frame in enumerate(frames)]
    assert len({face.track for face in chosen}) == 1
    with pytest.raises(NoFaceError, match="face 5 does not exist"):
        VideoSwapper(classic, people[2], faces=5, options=QUIET)(frames[0], 0.0)


# ---------------------------------------------------------------------------------------- steadiness
def test_smoothing_lowers_temporal_error_and_flicker(people, two_stage, analyzer):
    """The smoothed video swap against the pipeline run on each frame alone, on a known-motion
    clip: the swap of frame t+1 should be the swap of frame t moved the same way."""
    photo, source = people[0], people[2]
    motion = KnownMotion(frames=14)
    face_mask = region_mask(analyzer.largest_face(photo).landmarks, photo.shape[:2], "face")
    per_frame, smoothed = (StabilityMeter(motion, photo.shape, face_mask) for _ in range(2))
    swapper = VideoSwapper(two_stage, source, options=QUIET)
    for index, frame in enumerate(motion.clip(photo)):
        per_frame.add(index, two_stage(source, frame, watermark=False).image)
        smoothed.add(index, swapper(frame, index / 25).image)
    alone, steady = per_frame.result(), smoothed.result()
    assert steady["temporal_error"] < alone["temporal_error"]
    assert steady["flicker"] < alone["flicker"]


def test_unsmoothed_frame_is_the_pipelines_own_swap(people, two_stage):
    """`fswap.video.stages` runs the pipeline's own stages: without smoothing, bit for bit."""
    frame = KnownMotion(frames=3).render(people[0], 1)
    swapper = VideoSwapper(two_stage, people[2], options=QUIET.replace(smoothing=False))
    assert np.array_equal(swapper(frame, 0.0).image, two_stage(people[2], frame, watermark=False).image)


def test_cuts_are_found_and_motion_is_not(people):
    detector = CutDetector()
    shots = list(KnownMotion(frames=16).clip(people[0])) + list(KnownMotion(frames=16).clip(people[2]))
    assert [index for index, frame in enumerate(shots) if detector(frame)] == [16]


def test_every_swapped_frame_carries_the_watermark(people, two_stage):
    from fswap.provenance.watermark import detect_watermark

    frame = KnownMotion(frames=3, size=(480, 360)).render(people[0], 1)
    result = VideoSwapper(two_stage, people[2])(frame, 0.0)
    assert detect_watermark(result.image, analyzer=two_stage.face_analyzer).found
    assert not detect_watermark(frame, analyzer=two_stage.face_analyzer).found


def test_output_path_is_checked_like_a_photo(clip, people, classic, tmp_path):
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    with pytest.raises(OutputError, match="not a regular file"):
        swap_video(classic, people[2], clip, folder, progress=False)
    assert os.listdir(folder) == []


def test_video_flags_come_from_the_options():
    import argparse

    from fswap.video import add_video_flags, video_options_from_flags

    parser = argparse.ArgumentParser()
    add_video_flags(parser)
    args = parser.parse_args(["--crf", "23", "--detect-every", "3", "--detection-size", "320", "--no-smoothing"])
    assert video_options_from_flags(args) == VideoOptions(crf=23, detect_every=3, detection_size=320, smoothing=False)
    assert video_options_from_flags(parser.parse_args([]), watermark=False) == VideoOptions(watermark=False)
    with pytest.raises(OptionError, match="crf must be from 0 to 51"):
        video_options_from_flags(parser.parse_args(["--crf", "80"]))


def test_the_command_line_swaps_a_video_chosen_by_its_content(clip, tmp_path, capsys):
    """`fswap swap SOURCE VIDEO -o OUT` takes the video path (the target is known by its content,
    here a .dat name), keeps its frame count, and refuses a photo format for the output up front."""
    import shutil

    from fswap.cli import main

    target = tmp_path / "clip.dat"
    shutil.copyfile(clip, target)
    output = tmp_path / "swapped.mp4"
    source = str(example_image("yaoming.jpg"))
    assert main(["swap", source, str(target), "-o", str(output), "--method", "classic", "--no-provenance"]) == 0
    assert "20 frames" in capsys.readouterr().out
    assert len(_frames(output)) == len(_frames(clip))
    with pytest.raises(SystemExit):
        main(["swap", source, str(target), "-o", str(tmp_path / "x.png"), "--method", "classic"])
    assert "cannot write a .png" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
