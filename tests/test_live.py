"""Live swapping (`fswap.video.live`, issue 25 item 8): a camera's frames swapped as they come and
sent on. A clip file stands in for the camera; the virtual camera itself is tried where the
system has one (v4l2loopback) and its one-line error checked where it has none."""

import glob
import threading
import time

import numpy as np
import pytest

from fswap.assets import example_image
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.imageio import load_image
from fswap.provenance import detect_watermark
from fswap.video import VideoOptions, VideoSwapper
from fswap.video.known_motion import KnownMotion, portrait, write_clip
from fswap.video.live import LiveError, camera_frames, newest_frames, open_virtual_camera, run_live

LOOPBACK = bool(glob.glob("/dev/video*"))


@pytest.fixture(scope="module")
def face_clip(analyzer, tmp_path_factory):
    """12 frames (256 x 256) of a face from t1.jpg moving slowly, as a camera would show it."""
    t1 = load_image(example_image("t1.jpg"))
    face = portrait(t1, analyzer.detect(t1)[0].box)
    path = tmp_path_factory.mktemp("camera") / "camera.mp4"
    write_clip(path, KnownMotion(frames=12, size=(256, 256)).clip(face))
    return path


def test_a_file_camera_gives_every_frame_in_order(face_clip):
    frames = list(camera_frames(str(face_clip)))
    assert len(frames) == 12 and frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8


def test_a_slow_consumer_gets_the_newest_frame_and_skips_the_rest():
    """A device's frames come faster than they are swapped: each step takes the newest one, so
    the stream never falls behind, and the last frame is not lost."""
    def camera():
        for i in range(40):
            time.sleep(0.003)
            yield np.full((4, 4, 3), i, np.uint8)

    seen = []
    for frame in newest_frames(camera()):
        seen.append(int(frame[0, 0, 0]))
        time.sleep(0.05)  # a swap much slower than the camera
    assert seen == sorted(set(seen)) and seen[-1] == 39
    assert len(seen) < 30  # frames were dropped, not queued


def test_a_camera_that_fails_is_reported_to_the_consumer():
    def camera():
        yield np.zeros((4, 4, 3), np.uint8)
        raise LiveError("the camera was unplugged")

    frames = newest_frames(camera())
    with pytest.raises(LiveError, match="unplugged"):
        for _ in frames:
            pass


def test_live_frames_are_swapped_watermarked_and_sent(face_clip, analyzer):
    """Every frame sent on; faces swapped (changed inside the face), the mark in the sent frames."""
    swapper = VideoSwapper(ClassicFaceSwapper(analyzer), example_image("yaoming.jpg"), options=VideoOptions())
    camera = list(camera_frames(str(face_clip)))
    sent = []
    stats = run_live(swapper, iter(camera), sent.append, progress=False)
    assert stats.frames == len(sent) == 12 and stats.swapped == 12 and stats.fps > 0
    face = analyzer.detect(camera[6])[0]
    x0, y0, x1, y1 = face.box.astype(int)
    change = np.abs(sent[6][y0:y1, x0:x1].astype(int) - camera[6][y0:y1, x0:x1]).mean()
    assert change > 10, change
    assert detect_watermark(sent[6], analyzer=analyzer).found
    assert not detect_watermark(camera[6], analyzer=analyzer).found


def test_run_live_stops_after_max_frames(face_clip, analyzer):
    swapper = VideoSwapper(ClassicFaceSwapper(analyzer), example_image("yaoming.jpg"),
                           options=VideoOptions(watermark=False))
    sent = []
    stats = run_live(swapper, camera_frames(str(face_clip)), sent.append, max_frames=3, progress=False)
    assert stats.frames == len(sent) == 3


def test_a_missing_camera_is_one_line():
    with pytest.raises(LiveError, match="no camera or video file 'nowhere.mp4'"):
        camera_frames("nowhere.mp4")


@pytest.mark.skipif(LOOPBACK, reason="this system has a video device; the next test uses it")
def test_without_a_virtual_camera_the_error_says_how_to_get_one():
    pytest.importorskip("pyvirtualcam")
    with pytest.raises(LiveError, match="no virtual camera to write to .*modprobe v4l2loopback") as error:
        open_virtual_camera(64, 48, 10)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(not LOOPBACK, reason="no v4l2loopback device (/dev/video*) on this system")
def test_a_virtual_camera_shows_what_was_sent():  # pragma: no cover - needs the device
    """Frames sent to the loopback device are read back from it as a camera."""
    pytest.importorskip("pyvirtualcam")
    grey = np.full((240, 320, 3), 90, np.uint8)
    with open_virtual_camera(320, 240, 10) as virtual:
        stop = threading.Event()

        def keep_sending():
            while not stop.is_set():
                virtual.send(grey)
                virtual.sleep_until_next_frame()

        sender = threading.Thread(target=keep_sending, daemon=True)
        sender.start()
        try:
            frame = next(camera_frames(virtual.device))
        finally:
            stop.set()
            sender.join()
    assert frame.shape == grey.shape and abs(frame.astype(int).mean() - 90) < 8


def test_fswap_live_without_a_virtual_camera_says_so_in_one_line(face_clip, capsys):
    """The command reads the camera (a clip here), loads the swap, and stops at the missing
    virtual camera with exit status 2 and one line; a malformed --size is refused by the parser."""
    from fswap.cli import main

    pytest.importorskip("pyvirtualcam")
    if LOOPBACK:
        pytest.skip("this system has a video device")
    with pytest.raises(SystemExit) as exit_info:
        main(["live", str(example_image("yaoming.jpg")), "--camera", str(face_clip), "--method", "classic",
              "--frames", "2"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("fswap: error: no virtual camera to write to") and "\n" not in error
    with pytest.raises(SystemExit) as exit_info:
        main(["live", str(example_image("yaoming.jpg")), "--size", "big"])
    assert exit_info.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err
