"""The Video and Webcam tabs in a real browser: Debian's Chromium driven by `playwright`.

- **Webcam.** Chromium's fake camera plays a clip written here as Y4M (a face of t1.jpg moving:
  `--use-file-for-fake-video-capture`); the Webcam tab streams it to the app, and the frames that
  come back must be swapped: against the nearest camera frame, the face changed and the ground
  did not. The rate they come back at (frames a second, round trip in the page) is printed, and
  written to `$FSWAP_WEBCAM_FPS` (a JSON file) when that is set.
- **Video.** A short clip with sound is uploaded in the Video tab, its people listed, swapped, and
  the download read back with PyAV: as many frames, and the sound.

The figures and screenshots of docs/app.md come from the shipped checkpoint:

    FSWAP_SCREENSHOTS=docs/screenshots FSWAP_BROWSER_MODEL=checkpoints/fswap-default \
        FSWAP_WEBCAM_FPS=benchmarks/results/webcam_fps.json python -m pytest tests/test_browser_video.py -s

otherwise the tests drive `test_app.py`'s small untrained pipeline.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_app import launched_app, tiny_checkpoint  # noqa: F401  (the same launched app as the API tests)
from test_app_video import FRAMES, decoded, face_change, two_people_frames
from test_browser import CHROMIUM, wait_for_pictures, wait_until_done

from fswap.assets import example_image
from fswap.imageio import load_image
from fswap.video.known_motion import KnownMotion, portrait, write_clip

pytestmark = pytest.mark.browser

#: How long the webcam's frames are counted for.
MEASURE_SECONDS = 12.0


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """RGB frames as a YUV4MPEG2 file (planar 4:2:0), what Chromium's fake camera plays."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            file.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("FSWAP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def camera_clip(t1_image, analyzer) -> list[np.ndarray]:
    """A face of t1.jpg moving slowly (two seconds, looped by the fake camera), 320x240."""
    photo = portrait(t1_image, analyzer.detect(t1_image)[0].box)
    motion = KnownMotion(frames=50, size=(320, 240), pan=0.1, zoom=0.05, roll=2.0, light=0.0, fill=0.8)
    return list(motion.clip(photo))


@pytest.fixture(scope="module")
def browser(camera_clip, tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    y4m = write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m", camera_clip)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={y4m}"],
        )
        yield browser
        browser.close()


@contextlib.contextmanager
def app_page(browser, checkpoint: Path, c2pa_folder: Path):
    with launched_app(checkpoint, c2pa_folder) as (url, _):
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"],
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(url)
        try:
            yield page
        finally:
            context.close()


@pytest.fixture(scope="module")
def page(browser, tiny_checkpoint, tmp_path_factory):  # noqa: F811
    checkpoint = Path(os.environ.get("FSWAP_BROWSER_MODEL") or tiny_checkpoint)
    with app_page(browser, checkpoint, tmp_path_factory.mktemp("c2pa")) as page:
        yield page


def test_the_webcam_comes_back_swapped(page, camera_clip, analyzer, screenshots):
    page.get_by_role("tab", name="Webcam").click()
    page.locator("#live-source input[type=file]").set_input_files(str(example_image("yaoming.jpg")))
    wait_for_pictures(page, "#live-source")
    page.locator("#live-consent input[type=checkbox]").check()
    if not os.environ.get("FSWAP_BROWSER_MODEL"):  # the untrained segmenter's masks would cut the face away
        page.locator("#live-occlusion-aware input[type=checkbox]").uncheck()
    start_camera(page)

    # Count the swapped frames as they arrive: each is a new picture in #live-result.
    page.wait_for_function("() => { const p = document.querySelector('#live-result img'); return p && p.complete; }")
    page.evaluate("""() => {
        window.fswapFrames = [];
        let last = null;
        window.fswapWatch = setInterval(() => {
            const picture = document.querySelector('#live-result img');
            if (picture && picture.src !== last && picture.complete && picture.naturalWidth > 0) {
                last = picture.src;
                window.fswapFrames.push([performance.now(), picture.src]);
            }
        }, 5);
    }""")
    page.wait_for_timeout(MEASURE_SECONDS * 1000)
    frames = page.evaluate("() => { clearInterval(window.fswapWatch); return window.fswapFrames; }")
    page.screenshot(path=screenshots / "webcam.png", full_page=True)
    assert len(frames) >= 3, f"{len(frames)} swapped frames came back in {MEASURE_SECONDS:.0f} s"
    fps = (len(frames) - 1) / ((frames[-1][0] - frames[0][0]) / 1000)
    stats = page.locator("#live-stats .fs-live").inner_text()
    print(f"\nwebcam: {len(frames)} swapped frames back in {(frames[-1][0] - frames[0][0]) / 1000:.1f} s, "
          f"{fps:.2f} frames a second round trip; the server says: {stats}")
    if os.environ.get("FSWAP_WEBCAM_FPS"):
        Path(os.environ["FSWAP_WEBCAM_FPS"]).write_text(json.dumps({
            "command": "FSWAP_BROWSER_MODEL=checkpoints/fswap-default FSWAP_WEBCAM_FPS=benchmarks/results/webcam_fps.json "
                       "python -m pytest tests/test_browser_video.py -s",
            "fps_round_trip": round(fps, 2), "frames": len(frames), "seconds": round((frames[-1][0] - frames[0][0]) / 1000, 2),
            "server": stats, "camera": "Chromium fake camera, 320x240 Y4M at 25 fps", "stream_every": 0.1,
            "checkpoint": os.environ.get("FSWAP_BROWSER_MODEL") or "tiny untrained", "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }, indent=2) + "\n")

    # The last frame back, against the camera frame it most resembles (the stream may be mirrored):
    # the ground matches, the face does not.
    shown = load_image(page.request.get(frames[-1][1]).body())
    candidates = [frame for clip_frame in camera_clip for frame in (clip_frame, clip_frame[:, ::-1])]
    if shown.shape != candidates[0].shape:
        shown = cv2.resize(shown, candidates[0].shape[1::-1], interpolation=cv2.INTER_AREA)
    faces = analyzer.detect(shown)
    assert faces, "no face in the frame that came back"
    box = faces[0].box
    outside = np.ones(shown.shape[:2], bool)
    x0, y0, x1, y1 = box
    pad = 0.4 * max(x1 - x0, y1 - y0)
    outside[max(int(y0 - pad), 0) : int(y1 + pad), max(int(x0 - pad), 0) : int(x1 + pad)] = False
    ground = [float(np.abs(shown[outside].astype(int) - frame[outside]).mean()) for frame in candidates]
    camera = candidates[int(np.argmin(ground))]
    assert min(ground) < 6, f"the frame that came back is none of the camera's ({min(ground):.1f})"
    assert face_change(camera, shown, box) > 8  # swapped
    assert not page.locator(".toast-body.error").count()


def start_camera(page) -> None:
    """Open the camera in the Webcam tab and start streaming it (gradio's Webcam component: a
    button grants access to the camera, then the record button starts the stream)."""
    page.locator('#camera [title="grant webcam access"] button').click()
    page.wait_for_function("() => document.querySelector('#camera video')?.videoWidth > 0")
    page.locator("#camera .button-wrap button").first.click()


def test_a_clip_is_uploaded_swapped_and_downloaded_with_its_sound(page, t1_image, analyzer, tmp_path, screenshots):
    clip = tmp_path / "two people.mp4"
    write_clip(clip, two_people_frames(t1_image, analyzer), fps=25)
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-source input[type=file]").set_input_files(str(example_image("yaoming.jpg")))
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    wait_for_pictures(page, "#people", count=2)
    wait_until_done(page, "#people")
    assert page.locator("#people img").count() == 2
    page.locator("#people img").nth(1).click()  # the person who joins half-way
    page.wait_for_function("() => document.querySelector('#video-person input').value === '1'")
    if not os.environ.get("FSWAP_BROWSER_MODEL"):
        page.locator("#video-options .label-wrap").click()
        page.locator("#video-occlusion-aware input[type=checkbox]").uncheck()
    page.locator("#video-consent input[type=checkbox]").check()
    page.click("#video-swap-button")
    page.wait_for_function("() => document.querySelector('#video-result video')?.src")
    wait_until_done(page, "#video-result", "#video-download")
    page.evaluate("() => { document.querySelector('#video-result video').currentTime = 0.6; }")  # both in view
    page.wait_for_timeout(500)
    page.screenshot(path=screenshots / "video.png", full_page=True)

    with page.expect_download() as download:
        page.click("#video-download")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "fswap-video.mp4"
    frames, audio = decoded(path)
    assert len(frames) == FRAMES and audio == "aac"
    before, _ = decoded(clip)
    faces = sorted(analyzer.detect(before[-1]), key=lambda face: face.box[0])
    assert face_change(before[-1], frames[-1], faces[1].box) > 8  # person 1, picked by its thumbnail
    assert face_change(before[-1], frames[-1], faces[0].box) < 4
    assert not page.locator(".toast-body.error").count()
