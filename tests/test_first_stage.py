"""Doc 003's first stage for a whole swap (`fswap.faces.first_stage`), on the faces of t1.jpg
with a painted occluder over one source's eyes."""

import cv2
import numpy as np
import pytest

from fswap.faces import region_mask, warp_face
from fswap.faces.first_stage import FaceCrops, FirstStage, first_stage
from fswap.faces.masks import (
    LANDMARK_GROUPS,
    mouth_interior,
    mouth_opening,
    occluded_skin,
    occluders_from_outside,
    visible_skin,
)

SIZE, MARGIN, BAND = 128, 0.25, 3.2


@pytest.fixture(scope="module")
def faces(analyzer, t1_image):
    return analyzer.detect(t1_image)


@pytest.fixture(scope="module")
def crops(faces, t1_image):
    """Sources: t1's first two people; targets: the next two."""
    sources = FaceCrops.align([t1_image] * 2, faces[:2], SIZE, MARGIN)
    targets = FaceCrops.align([t1_image] * 2, faces[2:4], SIZE, MARGIN)
    return sources, targets


def _sunglasses(points):
    """A dark band over both eyes of the face with these crop landmarks, as the segmenter's
    visible-skin map (0 on the band), and the source's occluders it makes."""
    eyes = region_mask(points, (SIZE, SIZE), "eyes").astype(np.uint8)
    band = cv2.dilate(eyes, np.ones((11, 11), np.uint8)) > 0
    visible = (~band).astype(np.float32)
    return occluded_skin(region_mask(points, (SIZE, SIZE), "face") > 0.5, visible, BAND)


def test_face_crops_hold_each_face_aligned_in_its_own_photo(crops, faces, t1_image):
    sources, _ = crops
    assert len(sources.crops) == 2 and sources.crops[0].shape == (SIZE, SIZE, 3)
    assert np.array_equal(sources.crops[1], warp_face(t1_image, sources.matrices[1], SIZE))
    # The landmarks land inside the crop, and the eyes where the template puts them (upper half).
    assert (sources.points[0] > 0).all() and (sources.points[0] < SIZE).all()
    assert sources.points[0][33:43, 1].mean() < SIZE / 2
    assert abs(sources.yaw(0)) < 45


def _hand(points):
    """A hand reaching in over the outline onto the left cheek, from the image's left, as the
    segmenter's visible-skin map: clear of the eyes and of `_sunglasses`' band."""
    eye = points[list(LANDMARK_GROUPS["left_eye"])]
    visible = np.ones((SIZE, SIZE), np.float32)
    top = int(eye[:, 1].max()) + 8
    visible[top:top + 14, : int(eye[:, 0].max())] = 0.0
    return visible


def test_occluders_from_outside_are_those_reaching_in_over_the_outline_clear_of_the_eyes(crops):
    points = crops[0].points[0]
    face = region_mask(points, (SIZE, SIZE), "face") > 0.5
    hand = occluded_skin(face, _hand(points), BAND)
    sunglasses = _sunglasses(points)
    nose = points[list(LANDMARK_GROUPS["nose"])].mean(axis=0).astype(int)
    sticker = np.zeros((SIZE, SIZE), bool)  # wholly inside the face, on the nose
    sticker[nose[1] - 3:nose[1] + 3, nose[0] - 3:nose[0] + 3] = True
    assert np.array_equal(occluders_from_outside(points, hand | sunglasses | sticker, BAND), hand)
    # The hand grown until it reaches the sunglasses: one occluder over an eye, pasted with it.
    joined = hand | sunglasses | cv2.dilate(hand.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool) & face
    assert not occluders_from_outside(points, joined, BAND).any()
    assert not occluders_from_outside(points, np.zeros((SIZE, SIZE), bool), BAND).any()


def test_the_source_occluders_are_pasted_or_cut_and_never_measured(crops):
    sources, targets = crops
    face = region_mask(sources.points[0], (SIZE, SIZE), "face") > 0.5
    sunglasses = _sunglasses(sources.points[0])
    hand = occluded_skin(face, _hand(sources.points[0]), BAND)
    assert sunglasses.sum() > 100 and hand.sum() > 30 and not (sunglasses & hand).any()
    occluders = [sunglasses | hand, np.zeros((SIZE, SIZE), bool)]
    skins = [visible_skin(region_mask(points, (SIZE, SIZE), "face"), np.ones((SIZE, SIZE), np.float32), BAND)
             for points in targets.points]

    pasted = first_stage(sources, targets, occluders, [True, False], skins, 0.0, "all", BAND)
    cut = first_stage(sources, targets, occluders, [False, False], skins, 0.0, "none", BAND)
    for stage in (pasted, cut):
        assert len(stage.crops) == 2 and stage.crops[0].dtype == np.uint8
    # Whichever face takes the sunglasses' texture: colours are never measured on them.
    covered = [k for k, j in enumerate(cut.texture_sources) if j == 0]
    assert covered, "the test needs one target face textured from the covered source"
    k = covered[0]
    assert cut.left_out[k].sum() > 100
    assert not (cut.measured[k] > 0.5)[cut.left_out[k]].any()
    assert np.array_equal(cut.skins[k], cut.measured[k])  # cut: not pasted either
    # Pasted: the skins are the target's own, nothing is left out, and the first face image
    # differs from the cut one where the sunglasses land.
    unmarked = first_stage(sources, targets, occluders, [False, False], skins, 0.0, "all", BAND)
    assert unmarked.skins[k] is skins[k] and not unmarked.left_out[k].any()
    assert not (unmarked.measured[k] > 0.5)[cut.left_out[k]].any()
    changed = np.abs(unmarked.crops[k].astype(int) - cut.crops[k].astype(int)).max(axis=-1) > 8
    assert changed[cut.left_out[k]].mean() > 0.5
    # The default, "inside": the sunglasses are pasted, the hand from the outline is not. It
    # is left out where it lands, as it is when nothing is pasted.
    inside = first_stage(sources, targets, occluders, [False, False], skins, 0.0, "inside", BAND)
    hand_only = first_stage(sources, targets, [hand, occluders[1]], [False, False], skins, 0.0, "none", BAND)
    assert inside.left_out[k].sum() > 30 and np.array_equal(inside.left_out[k], hand_only.left_out[k])
    assert (inside.left_out[k] <= cut.left_out[k]).all()
    assert np.array_equal(inside.skins[k], skins[k] * ~inside.left_out[k])
    assert np.array_equal(inside.measured[k], cut.measured[k])  # neither is measured on, either way
    with pytest.raises(ValueError, match="paste_occluders must be one of all, inside, none"):
        first_stage(sources, targets, occluders, [False, False], skins, 0.0, True, BAND)


def test_a_covered_source_gives_way_to_an_uncovered_one_turned_as_well(crops):
    sources, targets = crops
    occluders = [_sunglasses(sources.points[0]), np.zeros((SIZE, SIZE), bool)]
    skins = [region_mask(points, (SIZE, SIZE), "face") for points in targets.points]
    by_pose = first_stage(sources, targets, occluders, [False, False], skins, 0.5, "all", BAND).texture_sources
    marked = first_stage(sources, targets, occluders, [True, False], skins, 0.5, "all", BAND).texture_sources
    # By pose alone the first photo suits both targets; t1's people face the camera alike, so
    # the uncovered second photo is turned about as well and takes over once the first is covered.
    assert by_pose == [0, 0]
    assert marked == [1, 1]


def test_one_stage_checkpoints_have_no_first_stage():
    skins = [np.ones((SIZE, SIZE), np.float32)] * 3
    stage = FirstStage.none(skins, SIZE)
    assert stage.crops is None and stage.texture_sources == [0, 0, 0] and stage.shapes == [None] * 3
    assert stage.measured is skins and not any(mask.any() for mask in stage.left_out)


@pytest.fixture(scope="module")
def mouths(analyzer):
    """yaoming.jpg's open mouth, teeth showing, and the closed mouth of players.jpg's third player."""
    from fswap.assets import example_image
    from fswap.imageio import load_image

    open_photo, closed_photo = (load_image(example_image(name)) for name in ("yaoming.jpg", "players.jpg"))
    open_face = analyzer.largest_face(open_photo, name="yaoming.jpg")
    closed_face = analyzer.detect(closed_photo)[2]
    return (FaceCrops.align([open_photo], [open_face], SIZE, MARGIN),
            FaceCrops.align([closed_photo], [closed_face], SIZE, MARGIN))


def test_mouth_opening_tells_teeth_from_closed_lips(mouths):
    from fswap.faces.first_stage import OPEN_MOUTH

    open_mouth, closed_mouth = mouths
    assert mouth_opening(open_mouth.points[0]) > 2 * OPEN_MOUTH
    assert mouth_opening(closed_mouth.points[0]) < OPEN_MOUTH / 4
    # The opening is a shape measure: the same in the photo as in the crop.
    assert mouth_opening(open_mouth.faces[0].landmarks) == pytest.approx(mouth_opening(open_mouth.points[0]), rel=1e-6)
    inside = mouth_interior(open_mouth.points[0], (SIZE, SIZE))
    lips = region_mask(open_mouth.points[0], (SIZE, SIZE), "mouth") > 0.5
    assert inside.sum() > 30 and not (inside & ~lips).any()


def test_an_open_target_mouth_keeps_its_teeth_under_a_closed_source_mouth(mouths):
    open_mouth, closed_mouth = mouths
    skins = [region_mask(open_mouth.points[0], (SIZE, SIZE), "face")]
    no_occluders = [np.zeros((SIZE, SIZE), bool)]
    stage = first_stage(closed_mouth, open_mouth, no_occluders, [False], skins, 0.5, "all", BAND)
    teeth = mouth_interior(open_mouth.points[0], (SIZE, SIZE))
    # Neither pasted nor measured on, and the first face image shows the target's own teeth there.
    assert not (stage.skins[0] > 0.5)[teeth].any() and not (stage.measured[0] > 0.5)[teeth].any()
    core = cv2.erode(teeth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert core.sum() > 10
    assert np.array_equal(stage.crops[0][core], open_mouth.crops[0][core])
    # The rest of the face is still swapped, most of the lips included (the opening also follows
    # the source's mouth where the source's proportions move it).
    lips = (region_mask(open_mouth.points[0], (SIZE, SIZE), "mouth") > 0.5) & ~teeth
    assert (stage.skins[0] > 0.5)[lips].mean() > 0.8
    face = (skins[0] > 0.5) & ~(region_mask(open_mouth.points[0], (SIZE, SIZE), "mouth") > 0.5)
    assert (stage.skins[0] > 0.5)[face].all()
    # The other way round nothing is stretched: an open source mouth is pasted onto a closed one whole.
    skins = [region_mask(closed_mouth.points[0], (SIZE, SIZE), "face")]
    reverse = first_stage(open_mouth, closed_mouth, no_occluders, [False], skins, 0.5, "all", BAND)
    assert np.array_equal(reverse.skins[0], skins[0])
