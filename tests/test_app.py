"""The app (`app.py`) launched on 127.0.0.1 and driven through its API with `gradio_client`.

The pipeline is small and real: the registry's face models and ArcFace with randomly initialised
swap networks (64-px crops), saved and named by `FSWAP_MODEL` as a checkpoint would be.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from fswap import SwapOptions
from fswap.assets import example_image
from fswap.errors import ImageError
from fswap.faces import region_mask
from fswap.imageio import MAX_PIXELS, load_image, load_rgba

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- the launched app
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from fswap.building import build_untrained_pipeline

    pipeline = build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8, seed=0)
    return pipeline.save_pretrained(tmp_path_factory.mktemp("checkpoint") / "fswap-tiny")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def outbound_connections_refused():
    """Refuse and record every connection to a non-loopback address while the block runs."""
    attempts: list = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                local = ipaddress.ip_address(address[0]).is_loopback
            except ValueError:
                local = address[0] == "localhost"
            if not local:
                attempts.append(address)
                raise OSError(f"test refused an outbound connection to {address}")

    def guarded_connect(sock, address):
        check(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        check(sock, address)
        return connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex


@contextlib.contextmanager
def launched_app(checkpoint: Path, c2pa_folder: Path):
    """`app.py`'s demo with `FSWAP_MODEL=checkpoint`, served on a free local port; yields its URL and
    the outbound connections attempted meanwhile. Its uploads go to a temporary folder of its own
    (`$GRADIO_TEMP_DIR` while it runs), removed after it."""
    with (pytest.MonkeyPatch.context() as patch, outbound_connections_refused() as attempts,
          tempfile.TemporaryDirectory(prefix="fswap-test-uploads-") as uploads):
        patch.setenv("FSWAP_MODEL", str(checkpoint))
        patch.setenv("FSWAP_C2PA_DIR", str(c2pa_folder))  # the local test certificate, not in ~/.cache
        patch.setenv("GRADIO_TEMP_DIR", uploads)
        sys.modules.pop("app", None)
        app = importlib.import_module("app")
        from space.ui import launch_options

        _, url, _ = app.demo.launch(
            **launch_options(
                server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
            )
        )
        try:
            yield url, attempts
        finally:
            app.demo.close()
            sys.modules.pop("app", None)


@pytest.fixture(scope="module")
def served(tiny_checkpoint, tmp_path_factory):
    with launched_app(tiny_checkpoint, tmp_path_factory.mktemp("c2pa")) as (url, attempts):
        yield url, attempts


@pytest.fixture(scope="module")
def client(served) -> Client:
    return Client(served[0], verbose=False)


def photo(name: str):
    return handle_file(str(example_image(name)))


def swap_arguments(sources, target, selection="largest", chosen=(), occlusion_aware=False) -> dict:
    # The segmenter is untrained here, so its occlusion masks are noise around 0.5 that would cut
    # most of the face out of the blend mask: judge the swap itself with occlusion-aware off.
    return {
        "consent": True,
        "sources": [photo(name) if isinstance(name, str) else name for name in sources],
        "target": photo(target) if isinstance(target, str) else target,
        "selection": selection,
        "chosen": list(chosen),
        "reference": None,
        "appearance_matching": True,
        "occlusion_aware": occlusion_aware,
        "feather": 0.04,
        "shape_strength": 0.0,
        "paste_source_occluders": "all",
        "source_faces": "",
        "keep_open_mouths": True,
        "mirror_sources": True,
    }


# ---------------------------------------------------------------------- the API
def test_the_four_endpoints_are_named(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/detect", "/swap", "/masks", "/check"} <= set(endpoints)
    parameters = [parameter["parameter_name"] for parameter in endpoints["/swap"]["parameters"]]
    assert parameters == [
        "consent",
        "sources",
        "target",
        "selection",
        "chosen",
        "reference",
        "appearance_matching",
        "occlusion_aware",
        "feather",
        "shape_strength",
        "paste_source_occluders",
        "source_faces",
        "keep_open_mouths",
        "mirror_sources",
        "rendering",
    ]


def test_detect_finds_the_six_faces_of_t1(client, t1_image):
    picture, summary = client.predict(photo("t1.jpg"), api_name="/detect")
    assert len(summary["faces"]) == 6
    assert (summary["width"], summary["height"]) == (t1_image.shape[1], t1_image.shape[0])
    assert [face["index"] for face in summary["faces"]] == list(range(6))
    areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in (face["box"] for face in summary["faces"])]
    assert areas == sorted(areas, reverse=True)
    annotated = load_image(picture)
    assert annotated.shape == t1_image.shape and not np.array_equal(annotated, t1_image)  # boxes drawn


def test_swap_changes_the_face_and_nothing_outside_it(client, t1_image, analyzer):
    result, (before, after), download, timings = client.predict(
        **swap_arguments(["yaoming.jpg"], "t1.jpg"), api_name="/swap"
    )
    assert Path(result).suffix == ".png" and Path(result).name == Path(download).name == "fswap-result.png"
    swapped = load_image(result)
    assert swapped.shape == t1_image.shape
    assert np.array_equal(load_image(download), swapped)
    face = analyzer.detect(t1_image)[0]
    inside = region_mask(face.landmarks, t1_image.shape, "face") > 0
    assert np.abs(swapped[inside].astype(int) - t1_image[inside]).mean() > 3
    x0, y0, x1, y1 = face.box
    pad_x, pad_y = 0.5 * (x1 - x0), 0.5 * (y1 - y0)
    outside = np.ones(t1_image.shape[:2], bool)
    outside[max(int(y0 - pad_y), 0) : int(y1 + pad_y), max(int(x0 - pad_x), 0) : int(x1 + pad_x)] = False
    assert np.array_equal(swapped[outside], t1_image[outside])
    assert load_image(before).shape == load_image(after).shape == t1_image.shape
    assert {"detect", "align", "occlusion", "identity", "generate", "blend", "total"} <= set(timings)
    assert all(seconds >= 0 for seconds in timings.values())


def test_a_cut_out_target_keeps_its_transparency(client, tmp_path, t1_image, analyzer):
    """Gradio turned an uploaded transparent target into RGB before fswap read it: the colours
    under its clear pixels showed, and the result had lost its transparency."""
    face = analyzer.detect(t1_image)[0]
    x0, y0, x1, y1 = (int(round(value)) for value in face.box)
    pad = (x1 - x0) // 2
    alpha = np.zeros(t1_image.shape[:2], np.uint8)
    alpha[max(y0 - pad, 0) : y1 + pad, max(x0 - pad, 0) : x1 + pad] = 255
    cut_out = np.dstack([t1_image, alpha])
    cut_out[alpha == 0, :3] = (0, 90, 0)  # what editors leave under clear pixels
    target = tmp_path / "cut_out.png"
    Image.fromarray(cut_out).save(target)
    result, _, download, _ = client.predict(
        **swap_arguments(["yaoming.jpg"], handle_file(str(target))), api_name="/swap"
    )
    swapped = load_rgba(result)
    assert swapped is not None and np.array_equal(load_rgba(download), swapped)
    assert np.array_equal(swapped[alpha == 0], cut_out[alpha == 0])
    inside = region_mask(face.landmarks, t1_image.shape, "face") > 0
    assert (alpha[inside] == 255).all()
    assert np.abs(swapped[inside][:, :3].astype(int) - t1_image[inside]).mean() > 3


# Two source photos (of different people here) exercise the identity averaging; /masks with the same
# arguments as /swap is answered from the app's recent outputs, as in the UI, where it follows /swap.
TWO_FACES = swap_arguments(["yaoming.jpg", "Tom_Hanks_54745.png"], "t1.jpg", "chosen", [3, "1"])


def test_chosen_faces_are_swapped_and_the_others_kept(client, t1_image, analyzer):
    result, *_ = client.predict(**TWO_FACES, api_name="/swap")
    swapped = load_image(result)
    changes = [
        np.abs(swapped[hull].astype(int) - t1_image[hull]).mean()
        for hull in (
            region_mask(face.landmarks, t1_image.shape, "face") > 0 for face in analyzer.detect(t1_image)
        )
    ]
    assert changes[1] > 3 and changes[3] > 3
    assert changes[0] == changes[2] == changes[4] == changes[5] == 0


def test_masks_explain_every_swapped_face(client):
    overlays, sources, blending, control = client.predict(**TWO_FACES, api_name="/masks")
    captions = [item["caption"] for item in overlays]
    assert len(overlays) == 4  # faces found, blend mask, occlusion mask, face region
    assert captions[0] == "Faces found (6); swapped: 3, 1"
    assert all(load_image(item["image"]).std() > 10 for item in overlays)  # pictures, not blanks
    # Grids: a row per source photo or swapped face; the control grid has a column per generator
    # scale (8 to 64 px) after the target and generated crops, six in all, as many as the blending
    # grid (target, visible skin, face region, source's occluders, blend mask, generated).
    sources, blending, control = load_image(sources), load_image(blending), load_image(control)
    assert sources.shape[0] == blending.shape[0] == control.shape[0]  # two rows each
    assert control.shape[1] == blending.shape[1] > sources.shape[1]


def error_of(client, api_name: str, **arguments) -> AppError:
    with pytest.raises(AppError) as caught:
        client.predict(**arguments, api_name=api_name)
    return caught.value


@pytest.fixture(scope="module")
def no_face_photo():
    import skimage

    return Path(skimage.__file__).parent / "data" / "coffee.png"  # a real photo: a cup of coffee


def test_a_photo_without_a_face_is_a_clear_error(client, no_face_photo):
    _, summary = client.predict(handle_file(str(no_face_photo)), api_name="/detect")
    assert summary["faces"] == []
    error = error_of(client, "/swap", **swap_arguments(["yaoming.jpg"], handle_file(str(no_face_photo))))
    assert error.title == "No face found"
    assert error.message.startswith("No face found in target photo")
    error = error_of(client, "/swap", **swap_arguments([handle_file(str(no_face_photo))], "t1.jpg"))
    assert error.message.startswith("No face found in source photo 1")


def test_unreadable_and_oversized_photos_are_clear_errors(client, tmp_path):
    text = tmp_path / "holiday.jpg"
    text.write_text("not a photo")
    error = error_of(client, "/detect", target=handle_file(str(text)))
    assert error.title == "Cannot use this photo" and "not an image fswap can read" in error.message
    huge = tmp_path / "huge.png"
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("L", (side, side)).save(huge)  # a small file that decodes to too many pixels
    error = error_of(client, "/detect", target=handle_file(str(huge)))
    assert "megapixels" in error.message and "limit" in error.message


def test_check_reads_the_credentials_and_watermark_of_a_result_and_finds_none_on_a_photo(client):
    result, *_ = client.predict(**swap_arguments(["yaoming.jpg"], "t1.jpg"), api_name="/swap")
    verdict, picture, summary = client.predict(handle_file(result), api_name="/check")
    assert summary["manifest"]["status"] == "valid" and summary["manifest"]["software_agent"].startswith("fswap")
    assert summary["manifest"]["checkpoint"] == "fswap-tiny"
    assert summary["watermark"]["found"] and summary["watermark"]["bit_accuracy"] > 0.9
    assert "VALID" in verdict and "FOUND" in verdict
    verdict, picture, summary = client.predict(photo("t1.jpg"), api_name="/check")
    assert summary["manifest"]["status"] == "absent" and not summary["watermark"]["found"]
    assert load_image(picture).shape[:2] == (886, 1280)
    if summary["faces"] is not None:  # the shipped detector judges every face
        assert len(summary["faces"]) == 6
        assert all(0.0 <= face["swap_probability"] <= 1.0 for face in summary["faces"])


def test_check_refuses_what_is_not_an_image(client, tmp_path):
    text = tmp_path / "note.png"
    text.write_text("not a photo")
    error = error_of(client, "/check", upload=handle_file(str(text)))
    assert error.title == "Cannot use this photo"


def test_no_swap_and_no_masks_before_consent(client):
    for api_name in ("/swap", "/masks"):
        error = error_of(client, api_name, **(swap_arguments(["yaoming.jpg"], "t1.jpg") | {"consent": False}))
        assert error.title == "Consent needed" and "consent box" in error.message


def test_too_many_faces_is_a_clear_error(client):
    error = error_of(client, "/swap", **swap_arguments(["yaoming.jpg"], "players.jpg", "all"))  # 22 faces
    assert error.title == "Too many faces" and "at most 20" in error.message


def test_options_out_of_range_are_clear_errors(client):
    for option, value in (("shape_strength", 1.5), ("feather", 0.9)):
        error = error_of(client, "/swap", **(swap_arguments(["yaoming.jpg"], "t1.jpg") | {option: value}))
        assert error.title == "Option not valid" and "between 0 and" in error.message


def test_the_api_takes_the_source_cover_choice_by_name_or_as_the_old_checkbox(client):
    """The served /swap takes "all", "inside" or "none", and the booleans of the checkbox it was
    until 2026-12-01 (older clients); anything else is a clear error naming the choices."""
    arguments = swap_arguments(["yaoming.jpg"], "t1.jpg")
    for value in ("inside", True):
        assert Path(client.predict(**(arguments | {"paste_source_occluders": value}), api_name="/swap")[0]).is_file()
    error = error_of(client, "/swap", **(arguments | {"paste_source_occluders": "half"}))
    assert error.title == "Option not valid" and "must be one of all, inside, none" in error.message


def test_no_outbound_connection_was_attempted(served, client):
    client.predict(photo("yaoming.jpg"), api_name="/detect")
    assert served[1] == []


# ---------------------------------------------------------------------- pieces without the server
@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """Gradio's upload folder, a temporary one, for `FaceSwapApp`s made in the test."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_paths_outside_the_upload_folder_are_refused():
    from space.handlers import uploaded_path

    assert uploaded_path(None, "target photo") is None
    for payload in (
        {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}},
        {"path": ""},
        "/etc/hostname",
    ):
        with pytest.raises(ImageError, match="upload"):
            uploaded_path(payload, "target photo")


def test_the_face_used_from_a_group_photo_can_be_chosen(client, t1_image):
    largest, *_ = client.predict(**swap_arguments(["t1.jpg"], "yaoming.jpg"), api_name="/swap")
    chosen, *_ = client.predict(**{**swap_arguments(["t1.jpg"], "yaoming.jpg"), "source_faces": "3"}, api_name="/swap")
    assert not np.array_equal(load_image(largest), load_image(chosen))
    for wrong, message in (("3,1", "1 face number"), ("third", "1 face number"), ("9", "face 9 does not exist")):
        with pytest.raises(AppError, match=message):
            client.predict(**{**swap_arguments(["t1.jpg"], "yaoming.jpg"), "source_faces": wrong}, api_name="/swap")


def test_clicking_a_source_face_takes_the_next_face_of_that_photo(tiny_checkpoint, t1_image, uploads):
    from gradio.utils import get_upload_folder

    from fswap import FaceSwapPipeline
    from space.handlers import FaceSwapApp

    app = FaceSwapApp(FaceSwapPipeline.from_pretrained(tiny_checkpoint))
    folder = Path(get_upload_folder()) / "test-source-choice"
    folder.mkdir(parents=True, exist_ok=True)
    uploads = []
    for name in ("yaoming.jpg", "t1.jpg"):
        shutil.copy(example_image(name), folder / name)
        uploads.append({"path": str(folder / name), "meta": {"_type": "gradio.FileData"}})
    pictures, choice = app.preview_sources(uploads)
    assert choice == "" and [caption for _, caption in pictures] == [
        "photo 1", "photo 2 · face 0 (6 found): click for the next"]
    pictures, choice = app.preview_sources(uploads, choice, next_face_of=1)
    assert choice == ",1" and pictures[1][1].startswith("photo 2 · face 1 (6 found)")
    assert not np.array_equal(pictures[1][0], app.preview_sources(uploads)[0][1][0])  # another face shown
    assert app.preview_sources(uploads, ",5", next_face_of=1)[1] == ""  # past the last face: the largest again
    assert app.preview_sources(uploads, ",1", next_face_of=0)[1] == ",1"  # one face: nothing to move to


def test_clicking_a_face_toggles_it():
    from space.handlers import face_at, toggle

    summary = {
        "width": 3200,
        "height": 1000,
        "faces": [
            {"index": 0, "box": [0, 0, 1000, 1000]},
            {"index": 1, "box": [400, 400, 600, 600]},
        ],
    }
    # The picture is shown at half size (3200 px > 1600): display (250, 250) is image (500, 500).
    assert (
        face_at(summary, 250, 250) == 1
        and face_at(summary, 50, 50) == 0
        and face_at(summary, 1500, 10) is None
    )
    assert toggle([0], 1) == [0, 1] and toggle([0, 1], 0) == [1]


def test_the_proportions_slider_follows_a_two_stage_checkpoint_and_reaches_the_pipeline(tiny_checkpoint, t1_image):
    from fswap import FaceSwapPipeline
    from space.handlers import FaceSwapApp, SliderSettings, SwapRequest, slider_settings

    one_stage = FaceSwapPipeline.from_pretrained(tiny_checkpoint)
    # nothing to move: the slider is greyed out
    assert slider_settings(one_stage) == SliderSettings(False, 0.0, one_stage.feather_fraction)
    two_stage = FaceSwapPipeline(
        one_stage.face_analyzer, one_stage.identity_encoder, one_stage.attribute_encoder, one_stage.generator,
        one_stage.occlusion_segmenter, attribute_input="warped_source", shape_strength=0.5,
    )
    app = FaceSwapApp(two_stage)
    assert slider_settings(app.pipeline).shape_strength == 0.5 and slider_settings(app.pipeline).two_stage
    _, slider, paste_box, mouth_box, mirror_box, rendering_radio = app.checkpoint_options()
    assert slider.value == 0.5 and slider.interactive and paste_box.interactive and mouth_box.interactive
    assert mirror_box.interactive and rendering_radio.interactive
    assert not any(box.interactive for box in FaceSwapApp(one_stage).checkpoint_options()[1:])

    source = load_image(example_image("players.jpg"))

    def request(strength):
        return SwapRequest([source], t1_image, Path("t1.jpg"), "largest",
                           SwapOptions(occlusion_aware=False, feather_fraction=0.04, shape_strength=strength))

    assert request(None).key() != request(0.5).key() != request(1.0).key()
    results = {strength: app._run_pipeline(request(strength)).image for strength in (None, 0.5, 0.0)}
    assert np.array_equal(results[None], results[0.5])  # None: the checkpoint's own setting
    assert not np.array_equal(results[0.0], results[0.5])


def test_the_source_cover_choice_takes_the_pipelines_settings_and_the_old_checkbox_values():
    from space.handlers import SOURCE_OCCLUDER_CHOICES, OptionError, source_occluders_setting

    assert [value for _, value in SOURCE_OCCLUDER_CHOICES] == ["all", "inside", "none"]
    assert source_occluders_setting(None) == "all"  # an API call without it: the default
    assert [source_occluders_setting(value) for value in ("all", "inside", "none")] == ["all", "inside", "none"]
    assert (source_occluders_setting(True), source_occluders_setting(False)) == ("all", "none")  # the checkbox it was
    with pytest.raises(OptionError, match="paste_source_occluders must be one of all, inside, none"):
        source_occluders_setting("half")


def test_the_feathering_slider_starts_at_the_checkpoints_width_and_an_api_call_without_it_uses_it(tiny_checkpoint,
                                                                                                 uploads):
    """A checkpoint with its own feather width: the slider starts there (it started at the package's
    default), and /swap without the option swaps with it rather than with the package's default."""
    from fswap import FaceSwapPipeline
    from fswap.pipeline import PIPELINE_SETTINGS
    from space.handlers import FaceSwapApp, slider_settings

    tiny = FaceSwapPipeline.from_pretrained(tiny_checkpoint)
    wide = FaceSwapPipeline(tiny.face_analyzer, tiny.identity_encoder, tiny.attribute_encoder, tiny.generator,
                            tiny.occlusion_segmenter, feather_fraction=0.1)
    assert PIPELINE_SETTINGS["feather_fraction"] != 0.1
    app = FaceSwapApp(wide)
    assert slider_settings(app.pipeline).feather_fraction == 0.1
    assert app.checkpoint_options()[0].value == 0.1

    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / "test-feather-setting"
    folder.mkdir(parents=True, exist_ok=True)
    source, target = ({"path": str(shutil.copy(example_image(name), folder / name)),
                       "meta": {"_type": "gradio.FileData"}} for name in ("players.jpg", "t1.jpg"))

    def swapped(feather):
        request = app.read_request(True, [source], target, "largest", None, None, True, False, feather)
        return request, app._run_pipeline(request).image

    unset, unset_image = swapped(None)
    assert unset.options.feather_fraction is None and unset.key() != swapped(0.1)[0].key()
    assert np.array_equal(unset_image, swapped(0.1)[1])
    assert not np.array_equal(unset_image, swapped(PIPELINE_SETTINGS["feather_fraction"])[1])


def test_the_slider_starts_at_the_default_checkpoints_setting_without_loading_it(tmp_path):
    from fswap.assets import DEFAULT_CHECKPOINT
    from fswap.errors import ModelNotFoundError
    from fswap.pipeline import checkpoint_settings
    from space.handlers import SliderSettings, slider_settings
    from space.model import LazyPipeline

    settings = checkpoint_settings(DEFAULT_CHECKPOINT)
    assert settings["attribute_input"] == "warped_source" and 0.0 < settings["shape_strength"] <= 1.0

    def never():
        raise AssertionError("the slider's start must not load the model")

    # `$FSWAP_MODEL` (this module's served app sets it to the tiny checkpoint) or the embedded default.
    from fswap.assets import default_model

    expected = checkpoint_settings(default_model())
    lazy = LazyPipeline(never)
    assert slider_settings(lazy) == SliderSettings(expected["attribute_input"] == "warped_source",
                                                   expected["shape_strength"], expected["feather_fraction"])
    assert not lazy.loaded
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        checkpoint_settings(tmp_path / "nowhere")
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        checkpoint_settings(tmp_path)


def test_the_open_mouth_box_reaches_the_pipeline(tiny_checkpoint):
    """A closed source mouth onto yaoming's teeth: kept by default, stretched with the box off, and
    the two are cached apart."""
    from fswap import FaceSwapPipeline
    from fswap.faces.masks import mouth_interior
    from space.handlers import FaceSwapApp, SwapRequest

    one_stage = FaceSwapPipeline.from_pretrained(tiny_checkpoint)
    app = FaceSwapApp(FaceSwapPipeline(
        one_stage.face_analyzer, one_stage.identity_encoder, one_stage.attribute_encoder, one_stage.generator,
        one_stage.occlusion_segmenter, attribute_input="warped_source",
    ))
    closed_mouth = load_image(example_image("players.jpg"))
    target = load_image(example_image("yaoming.jpg"))

    def request(keep):
        return SwapRequest([closed_mouth], target, Path("yaoming.jpg"), "largest",
                           SwapOptions(occlusion_aware=False, feather_fraction=0.04, keep_open_mouths=keep),
                           source_faces=[2])

    assert request(True).key() != request(False).key()
    mirrored = SwapRequest([closed_mouth], target, Path("yaoming.jpg"), "largest",
                           SwapOptions(occlusion_aware=False, feather_fraction=0.04, mirror_sources=False),
                           source_faces=[2])
    assert mirrored.key() != request(True).key()  # the mirror box is cached apart too
    outputs = {keep: app._run_pipeline(request(keep)) for keep in (True, False)}
    teeth = mouth_interior(outputs[True].swapped[0].face.landmarks, target.shape)
    assert (outputs[True].blend_mask()[teeth] < 0.5).mean() > 0.5
    assert (outputs[False].blend_mask()[teeth] > 0.5).all()


# ---------------------------------------------------------------------- bounded memory and files
def test_a_photo_larger_than_the_working_size_is_swapped_downscaled_and_said_so(tiny_checkpoint, uploads):
    from fswap import FaceSwapPipeline
    from space.handlers import FaceSwapApp

    app = FaceSwapApp(FaceSwapPipeline.from_pretrained(tiny_checkpoint), working_pixels=500_000)
    source, target = ({"path": str(shutil.copy(example_image(name), uploads / name)),
                       "meta": {"_type": "gradio.FileData"}} for name in ("yaoming.jpg", "t1.jpg"))
    picture, summary = app.detect(target)
    assert (summary["width"], summary["height"]) == (849, 588) and len(summary["faces"]) == 6
    assert summary["notice"] == ("target photo is 1280x886 (1.1 megapixels); the app works on it at 849x588 "
                                 "(0.5 megapixels), the size of its result. The fswap command line swaps at full size.")
    request = app.read_request(True, [source], target, "largest", None, None, True, False, 0.04)
    assert request.target.shape == (588, 849, 3) and request.notices == (summary["notice"],)
    assert request.sources[0].shape[0] * request.sources[0].shape[1] <= 500_000  # yaoming.jpg: 0.6 megapixels
    result = app._save_result(app.run(request).image, request.target_path)
    assert load_image(result).shape == (588, 849, 3)
    assert result.is_relative_to(app.results.path)


def test_requests_on_large_photos_run_one_at_a_time():
    """The second request on a photo larger than the working size waits until the first one has
    ended, not only its decoding; a photo within the working size does not wait."""
    import threading

    from space.resources import PhotoReader

    reader = PhotoReader(working_pixels=1_000_000)  # t1.jpg (1.1 megapixels) is large here
    first_read, first_may_end, second_read = threading.Event(), threading.Event(), threading.Event()

    def first():
        with reader.request():
            reader.read(example_image("t1.jpg"), "target photo")
            first_read.set()
            first_may_end.wait(30)

    def second():
        with reader.request():
            reader.read(example_image("t1.jpg"), "target photo")
            second_read.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_read.wait(30)
    threads[1].start()
    with reader.request():  # a small photo is read meanwhile
        assert reader.read(example_image("yaoming.jpg"), "source photo")[1] is None
    assert not second_read.wait(1.0)  # the first request still holds the large photos' slot
    first_may_end.set()
    assert second_read.wait(30)
    for thread in threads:
        thread.join(30)


def test_memory_freed_by_a_request_goes_back_to_the_system():
    """`release_memory` (glibc's malloc_trim) returns the free pages inside the heap, which free()
    keeps: 128 MB of freed 64-KB buffers under one still in use."""
    import platform
    import subprocess

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    script = """
from space.resources import release_memory
def rss():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024
buffers = [bytearray(65536) for _ in range(2000)]
kept = bytearray(65536)  # above them in the heap: free() cannot shrink it
del buffers
held = rss()
assert release_memory()
print(held - rss())
"""
    released = float(subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                                     check=True).stdout)
    assert released > 100  # MiB


def test_temporary_folders_are_kept_under_their_size_and_age_and_removed_with_the_app(tmp_path):
    import gc
    import os
    import time

    from space.resources import TemporaryFolder

    folder = TemporaryFolder(tmp_path / "results", max_bytes=3000, max_age=3600, min_age=0)
    now = time.time()
    for number, age in enumerate((7200, 3540, 3480, 3420, 3360)):  # five results of 1000 bytes
        entry = folder.path / f"result-{number}"
        entry.mkdir()
        (entry / "fswap-result.png").write_bytes(b"x" * 1000)
        os.utime(entry, (now - age, now - age))
    folder.prune()  # the two-hour-old one by age, the next oldest by size
    assert sorted(path.name for path in folder.path.iterdir()) == ["result-2", "result-3", "result-4"]
    assert folder.size() == 3000
    young = TemporaryFolder(tmp_path / "young", max_bytes=10, min_age=600)
    (young.path / "upload.jpg").write_bytes(b"x" * 100)
    young.prune()  # over its size, but too young to go: a request may still need it
    assert (young.path / "upload.jpg").exists()

    from space.handlers import FaceSwapApp

    app = FaceSwapApp(lambda: None)
    results = app.results.new_folder().parent
    assert results.name.startswith("fswap-results-")
    del app, folder
    gc.collect()
    assert not results.exists() and not (tmp_path / "results").exists()


def test_the_app_removes_its_temporary_folders_when_it_is_stopped(tiny_checkpoint, tmp_path):
    """`python app.py` stopped by SIGTERM (as a container is) leaves none of its uploads, gradio's
    copies of its answers or its results in the temporary folder."""
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if name != "GRADIO_TEMP_DIR"} | {
        "TMPDIR": str(temporary), "FSWAP_MODEL": str(tiny_checkpoint), "FSWAP_C2PA_DIR": str(tmp_path / "c2pa"),
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
    }
    log = tmp_path / "app.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            **swap_arguments(["yaoming.jpg"], "t1.jpg"), api_name="/swap")
        made = {folder.name.split("-")[1]: folder for folder in temporary.glob("fswap-*")}
        assert set(made) == {"uploads", "results"}
        assert all(any(path.is_file() for path in folder.rglob("*")) for folder in made.values())
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert list(temporary.glob("fswap-*")) == [], log.read_text()


def test_recent_outputs_are_kept_under_their_size(tiny_checkpoint, t1_image, monkeypatch):
    """A swap at the working size would keep three 46-MB outputs: the recent outputs keep the
    newest always, and as many more as fit in their bytes."""
    from fswap import FaceSwapPipeline
    from space import handlers
    from space.handlers import FaceSwapApp, SwapRequest

    app = FaceSwapApp(FaceSwapPipeline.from_pretrained(tiny_checkpoint))
    source = load_image(example_image("yaoming.jpg"))

    def swap(feather):
        app.run(SwapRequest([source], t1_image, Path("t1.jpg"), "largest",
                            SwapOptions(occlusion_aware=False, feather_fraction=feather)))

    for feather in (0.02, 0.03, 0.04, 0.05):
        swap(feather)
    assert len(app._recent) == 3  # t1.jpg's outputs, 3.4 MB each: the count bounds them
    monkeypatch.setattr(handlers, "RECENT_MAX_BYTES", 2 * t1_image.nbytes + 1)
    swap(0.06)
    assert len(app._recent) == 2
    monkeypatch.setattr(handlers, "RECENT_MAX_BYTES", 1)
    swap(0.07)
    assert len(app._recent) == 1


def test_a_shrunk_photo_is_upright_and_its_transparency_fits_it(tmp_path, t1_image):
    """The working copy of a photo turned by its EXIF orientation stands as the full photo does, and
    the transparency a result is given back matches the working copy's size."""
    import cv2

    from space.resources import PhotoReader

    reader = PhotoReader(working_pixels=300_000)
    for orientation in range(1, 9):
        turned = Image.fromarray(t1_image)
        exif = turned.getexif()
        exif[0x0112] = orientation
        turned.save(tmp_path / "turned.jpg", quality=95, exif=exif)
        full = load_image(tmp_path / "turned.jpg")
        small, notice = reader.read(tmp_path / "turned.jpg", "target photo")
        expected = cv2.resize(full, small.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert small.shape[0] * small.shape[1] <= 300_000 and np.abs(small.astype(int) - expected).mean() < 4
        assert f"is {full.shape[1]}x{full.shape[0]} " in notice
    cut_out = np.dstack([t1_image, np.full(t1_image.shape[:2], 255, np.uint8)])
    cut_out[:200, :300, 3] = 0
    Image.fromarray(cut_out).save(tmp_path / "cut_out.png")
    photo, _ = reader.read(tmp_path / "cut_out.png", "target photo")
    rgba = reader.read_rgba(tmp_path / "cut_out.png", "target photo")
    assert rgba.shape == (*photo.shape[:2], 4) and rgba[:40, :60, 3].max() == 0 and rgba[-40:, -60:, 3].min() == 255


def test_the_relit_rendering_is_offered_and_shows_its_trust_map(two_stage, uploads):
    """The rendering radio reaches the pipeline: a relit swap differs from the pasted one, carries
    its trust map (which the Masks tab's compositing grid draws), and a bad value is one line."""
    from space.handlers import FaceSwapApp, OptionError
    from space.render import compositing_grid

    app = FaceSwapApp(two_stage)
    source, target = ({"path": str(shutil.copy(example_image(name), uploads / name)),
                       "meta": {"_type": "gradio.FileData"}} for name in ("yaoming.jpg", "t1.jpg"))

    def request(rendering):
        return app.read_request(True, [source], target, "largest", None, None, True, True, None, rendering=rendering)

    pasted, relit = (app._run_pipeline(request(name)) for name in ("pasted", "relit"))
    assert request("relit").key() != request("pasted").key()
    assert not np.array_equal(pasted.image, relit.image)
    assert relit.swapped[0].trust_map is not None and pasted.swapped[0].trust_map is None
    assert compositing_grid(relit).shape[1] > compositing_grid(pasted).shape[1]  # the trust column
    with pytest.raises(OptionError, match="rendering must be one of pasted, relit"):
        request("painted")
