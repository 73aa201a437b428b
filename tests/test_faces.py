"""The face toolkit on real photos: detection, landmarks, alignment, paste-back, selection."""

import json

import cv2
import numpy as np
import pytest

from fswap.errors import ModelNotFoundError, NoFaceError
from fswap.faces import (
    FaceAnalyzer,
    alignment_matrix,
    face_template,
    feather,
    match_appearance,
    paste_back,
    region_mask,
    select_faces,
    transform_points,
    warp_face,
)
from fswap.faces.align import ARCFACE_TEMPLATE_112
from fswap.faces.analyzer import box_iou
from fswap.faces.draw import annotate_faces

# Face centres of the 16 people in the front rows of players.jpg (players and staff), read
# off an annotated render; the crowd behind them is not counted.
PLAYERS_FRONT_ROW = [
    (508, 465), (1065, 249), (1181, 282), (743, 167), (679, 466), (192, 445), (344, 441), (887, 190),
    (888, 458), (139, 275), (1000, 230), (470, 224), (594, 199), (249, 248), (355, 228), (35, 307),
]


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_t1_has_six_faces_with_keypoints_inside_their_boxes(analyzer, t1_image):
    faces = analyzer.detect(t1_image)
    assert len(faces) == 6
    areas = [face.area for face in faces]
    assert areas == sorted(areas, reverse=True)
    for face in faces:
        x0, y0, x1, y1 = face.box
        for points in (face.keypoints, face.landmarks):
            inside = (points[:, 0] >= x0 - 2) & (points[:, 0] <= x1 + 2)
            inside &= (points[:, 1] >= y0 - 2) & (points[:, 1] <= y1 + 2)
            assert inside.mean() > (0.999 if points is face.keypoints else 0.9)
        assert face.landmarks.shape == (106, 2) and 0.5 <= face.score <= 1.0


def test_players_front_row_all_found(analyzer, players_image):
    faces = analyzer.detect(players_image, landmarks=False)
    assert len(faces) >= 16
    for x, y in PLAYERS_FRONT_ROW:
        hits = [f for f in faces if f.box[0] <= x <= f.box[2] and f.box[1] <= y <= f.box[3]]
        assert len(hits) == 1, f"front-row face at {(x, y)} found {len(hits)} times"


def test_large_photo_is_analysed_downscaled_but_reported_at_full_resolution(analyzer, t1_image):
    big = cv2.resize(t1_image, None, fx=3.5, fy=3.5, interpolation=cv2.INTER_CUBIC)  # 4480 px wide
    small_faces = analyzer.detect(t1_image)
    big_faces = analyzer.detect(big)
    assert len(big_faces) == 6
    for small, large in zip(small_faces, big_faces, strict=True):
        assert np.abs(large.keypoints / 3.5 - small.keypoints).max() < 3.0


def test_near_keeps_only_the_faces_overlapping_the_boxes_with_their_own_landmarks(analyzer, t1_image):
    faces = analyzer.detect(t1_image)
    picked = analyzer.detect(t1_image, near=[faces[3].box, faces[1].box, np.array([0.0, 0.0, 20.0, 20.0])])
    assert len(picked) == 2  # the empty corner matches nothing
    for face, expected in zip(picked, (faces[3], faces[1]), strict=True):
        assert np.array_equal(face.box, expected.box) and np.array_equal(face.landmarks, expected.landmarks)


@pytest.mark.parametrize("scale", [1.0, 3.5], ids=["small", "downscaled"])
def test_grey_border_leaves_faces_where_they_are(analyzer, t1_image, scale):
    photo = cv2.resize(t1_image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale != 1 else t1_image
    plain, framed = analyzer.detect(photo), analyzer.detect(photo, border=0.1)
    assert len(framed) == len(plain) == 6
    for face in plain:
        # A wrong border offset would move every face by a tenth of the photo, off its own box.
        twin = max(framed, key=lambda other: box_iou(face.box, other.box))
        assert box_iou(face.box, twin.box) > 0.85
        width = face.box[2] - face.box[0]
        assert np.abs(face.landmarks - twin.landmarks).mean() < 0.01 * width


def test_small_faces_in_a_large_photo_are_found_in_tiles(analyzer, t1_image, monkeypatch):
    import fswap.faces.analyzer as analyzer_module

    # t1's six people at a quarter size (faces ~28 px) in a 3200 x 2400 photo: shrunk whole to
    # the detector's 640 px they are ~6 px, too small to see.
    small = cv2.resize(t1_image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    photo = np.full((2400, 3200, 3), 90, np.uint8)
    photo[1300 : 1300 + small.shape[0], 1700 : 1700 + small.shape[1]] = small
    faces = analyzer.detect(photo)
    assert len(faces) == 6
    for face in analyzer.detect(t1_image):
        expected = face.keypoints / 4 + (1700, 1300)
        assert min(np.abs(other.keypoints - expected).max() for other in faces) < 6.0  # each one, once, in place
    assert len({tuple(face.box.round()) for face in faces}) == 6  # the tiles overlap; no face twice

    monkeypatch.setattr(analyzer_module, "TILING_FACTOR", float("inf"))
    assert analyzer.detect(photo) == []  # the whole-photo pass alone misses them all


def test_a_large_texture_is_no_face_in_tiles_either(analyzer):
    from skimage import data

    gravel = cv2.resize(data.gravel(), (2048, 2048), interpolation=cv2.INTER_LINEAR)
    assert analyzer.detect(np.repeat(gravel[..., None], 3, axis=2)) == []  # 0.55 in one tile: not sure enough


def test_tile_starts_cover_the_side_with_the_last_tile_flush():
    from fswap.faces.analyzer import _tile_starts

    assert _tile_starts(500, 640, 480) == [0]
    assert _tile_starts(2048, 640, 480) == [0, 480, 960, 1408]
    assert _tile_starts(1120, 640, 480) == [0, 480]


def test_an_upside_down_face_gets_its_own_landmarks_the_right_way_round(analyzer):
    from fswap.assets import example_image
    from fswap.imageio import load_image

    photo = load_image(example_image("yaoming.jpg"))
    height, width = photo.shape[:2]
    [upright] = analyzer.detect(photo)
    [down] = analyzer.detect(np.ascontiguousarray(photo[::-1, ::-1]))
    # Turned back, the upside-down face's landmarks and keypoints lie on the upright ones (the
    # detector alone reads its eyes where its mouth is, about 40 px off, and the swap is garbage).
    for upright_points, down_points in ((upright.landmarks, down.landmarks), (upright.keypoints, down.keypoints)):
        turned_back = np.stack([width - 1 - down_points[:, 0], height - 1 - down_points[:, 1]], axis=1)
        assert np.abs(turned_back - upright_points).mean() < 1.0
    assert down.keypoints[:2, 1].mean() > down.keypoints[3:, 1].mean()  # its eyes below its mouth


def test_tight_crop_is_found(analyzer):
    from fswap.assets import example_image
    from fswap.imageio import load_image

    crop = load_image(example_image("Tom_Hanks_54745.png"))  # 112 x 112, the face fills it
    [face] = analyzer.detect(crop)
    # The same close-up at camera resolution: the detector, shown it shrunk to 640 px, misses a
    # face that fills the frame at any size (800 px and up found nothing before).
    for side in (800, 1500, 3000):
        [large] = analyzer.detect(cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC))
        assert np.abs(large.keypoints * 112 / side - face.keypoints).max() < 3.0


def test_template_scales_and_margin_widens():
    assert np.allclose(face_template(112), ARCFACE_TEMPLATE_112)
    assert np.allclose(face_template(256), ARCFACE_TEMPLATE_112 * 256 / 112)
    wide = face_template(256, margin=0.5)
    assert np.ptp(wide[:, 0]) < np.ptp(face_template(256)[:, 0])  # same face, smaller in the crop
    with pytest.raises(ValueError):
        face_template(0)


@pytest.mark.parametrize("size", [112, 128, 256, 512])
def test_alignment_puts_keypoints_on_the_template(analyzer, t1_image, size):
    face = analyzer.detect(t1_image)[0]
    matrix = alignment_matrix(face.keypoints, size, margin=0.2)
    aligned = transform_points(face.keypoints, matrix)
    assert np.abs(aligned - face_template(size, 0.2)).max() < 0.08 * size


# t1.jpg's faces are about 110 px wide: a 128-px crop with margin holds fewer pixels than the
# face, so the round trip loses detail there (about 39 dB); from 256 px on it must be lossless-ish.
@pytest.mark.parametrize(("size", "min_psnr"), [(128, 35), (256, 40), (512, 40)])
def test_align_then_paste_back_reproduces_the_face(analyzer, t1_image, size, min_psnr):
    for face in analyzer.detect(t1_image)[:3]:
        matrix = alignment_matrix(face.keypoints, size, margin=0.25)
        crop = warp_face(t1_image, matrix, size)
        crop_landmarks = transform_points(face.landmarks, matrix)
        blend_mask = feather(region_mask(crop_landmarks, (size, size), "face"), size / 64)
        pasted = paste_back(t1_image, crop, matrix, blend_mask)
        face_region = region_mask(face.landmarks, t1_image.shape, "face") > 0
        assert _psnr(pasted[face_region], t1_image[face_region]) > min_psnr
        # The hull drawn in crop pixels and the one drawn in image pixels differ by rasterisation,
        # so "outside" starts 3 px beyond the image-space hull.
        near_face = cv2.dilate(face_region.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert np.array_equal(pasted[~near_face], t1_image[~near_face])


def test_paste_back_changes_only_inside_the_mask(analyzer, t1_image):
    face = analyzer.detect(t1_image)[0]
    matrix = alignment_matrix(face.keypoints, 256, margin=0.25)
    grey = np.full((256, 256, 3), 128, np.uint8)
    mask = np.zeros((256, 256), np.float32)
    mask[96:160, 96:160] = 1.0
    pasted = paste_back(t1_image, grey, matrix, mask)
    changed = np.any(pasted != t1_image, axis=2)
    assert 0 < changed.sum() < 0.05 * changed.size
    ys, xs = np.nonzero(changed)
    x0, y0, x1, y1 = face.box
    assert x0 - 5 <= xs.min() and xs.max() <= x1 + 5 and y0 - 5 <= ys.min() and ys.max() <= y1 + 5


def test_feather_fades_inside_the_edge():
    mask = np.zeros((100, 100), np.float32)
    mask[20:80, 20:80] = 1
    soft = feather(mask, 6)
    assert soft[50, 50] > 0.99 and soft[20, 50] < 0.5 and soft[10, 50] == 0
    assert np.all(soft[mask == 0] == 0)


def test_region_masks_are_nested_and_in_place(analyzer, t1_image):
    face = analyzer.detect(t1_image)[0]
    shape = t1_image.shape[:2]
    whole = region_mask(face.landmarks, shape, "face")
    for part in ("eyes", "brows", "mouth", "nose", "inner_face"):
        region = region_mask(face.landmarks, shape, part)
        assert region.sum() > 20
        assert (region * whole).sum() / region.sum() > 0.95  # every part lies in the face
    eyes = np.argwhere(region_mask(face.landmarks, shape, "eyes") > 0)[:, 0].mean()
    mouth = np.argwhere(region_mask(face.landmarks, shape, "mouth") > 0)[:, 0].mean()
    assert eyes < mouth  # upright face: eyes above the mouth
    with pytest.raises(ValueError, match="unknown region"):
        region_mask(face.landmarks, shape, "ears")


def test_appearance_matching_moves_statistics_to_the_reference(analyzer, t1_image):
    faces = analyzer.detect(t1_image)
    crops, masks = [], []
    for face in faces[:2]:
        matrix = alignment_matrix(face.keypoints, 128, 0.25)
        crops.append(warp_face(t1_image, matrix, 128))
        masks.append(region_mask(transform_points(face.landmarks, matrix), (128, 128), "face"))
    tinted = np.clip(crops[0].astype(int) + (40, -20, 0), 0, 255).astype(np.uint8)
    matched = match_appearance(tinted, crops[1], masks[0])
    inside = masks[0] > 0.5
    before = np.abs(tinted[inside].mean(0) - crops[1][inside].mean(0)).sum()
    after = np.abs(matched[inside].mean(0) - crops[1][inside].mean(0)).sum()
    assert after < 0.35 * before
    assert np.array_equal(match_appearance(tinted, crops[1], masks[0], strength=0.0), tinted)


def test_select_by_reference_photo_picks_the_same_person(analyzer, t1_image):
    faces = analyzer.detect(t1_image, embeddings=True)
    for wanted in (1, 4):
        x0, y0, x1, y1 = faces[wanted].box.astype(int)
        pad = (x1 - x0) // 2
        # A different photo of the person: the crop, mirrored, darker and blurred.
        reference_photo = t1_image[max(y0 - pad, 0) : y1 + pad, max(x0 - pad, 0) : x1 + pad][:, ::-1]
        reference_photo = cv2.GaussianBlur((reference_photo * 0.8).astype(np.uint8), (3, 3), 0)
        reference = analyzer.largest_face(np.ascontiguousarray(reference_photo), embeddings=True)
        assert select_faces(faces, reference.embedding) == [wanted]


def test_select_faces_by_index_all_and_errors(analyzer, t1_image):
    faces = analyzer.detect(t1_image)
    assert select_faces(faces, "largest") == [0]
    assert select_faces(faces, "all") == list(range(6))
    assert select_faces(faces, [2, 5]) == [2, 5]
    with pytest.raises(NoFaceError, match="numbered 0 to 5; face 6 does not exist"):
        select_faces(faces, 6)
    with pytest.raises(NoFaceError, match="no face found in empty.jpg"):
        select_faces([], "all", name="empty.jpg")
    with pytest.raises(ValueError):
        select_faces(faces, "biggest")


def test_analyzer_folder_round_trip_and_missing_models(analyzer, tmp_path, t1_image):
    saved = analyzer.save_pretrained(tmp_path / "face_analyzer")
    assert json.loads((saved / "config.json").read_text())["detector"].endswith(".onnx")
    reloaded = FaceAnalyzer.from_pretrained(tmp_path, subfolder="face_analyzer")
    assert np.allclose(reloaded.detect(t1_image)[0].keypoints, analyzer.detect(t1_image)[0].keypoints)
    (saved / "2d106det.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="2d106det.onnx"):
        FaceAnalyzer.from_pretrained(saved)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        FaceAnalyzer.from_pretrained(tmp_path / "nowhere")


def test_hub_repo_not_in_offline_cache_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="some-org/no-such-model"):
        FaceAnalyzer.from_pretrained("some-org/no-such-model", subfolder="face_analyzer")


def test_annotation_draws_on_a_copy(analyzer, t1_image):
    faces = analyzer.detect(t1_image)
    drawn = annotate_faces(t1_image, faces)
    assert drawn.shape == t1_image.shape and not np.array_equal(drawn, t1_image)
    assert t1_image.flags.writeable and np.any(drawn != t1_image)


def test_a_small_face_in_a_large_photo_gets_a_number_no_wider_than_itself():
    from fswap.faces import Face
    from fswap.faces.draw import BOX_COLOUR

    photo = np.zeros((3000, 3000, 3), np.uint8)  # sized for the photo, a number would be ~60 px wide
    face = Face(box=np.array([1000.0, 1000.0, 1024.0, 1024.0]), score=0.9, keypoints=np.full((5, 2), 1012.0))
    drawn = annotate_faces(photo, [face])
    label_rows = np.all(drawn[980:998] == BOX_COLOUR, axis=-1)  # the number's green patch above the box
    columns = np.flatnonzero(label_rows.any(axis=0))
    assert len(columns) and columns.min() >= 1000 and columns.max() - columns.min() + 1 <= 26


def test_visible_skin_drops_outline_slivers_and_keeps_real_occluders_whole():
    from fswap.faces.masks import visible_skin

    face = np.zeros((64, 64), np.float32)
    face[8:56, 8:56] = 1.0
    visible = face.copy()
    visible[8:10, 8:56] = 0.0  # a 2-px sliver along the top edge: the segmenter's guess of the outline
    visible[30:56, 40:48] = 0.0  # a hand from the bottom edge, reaching deep into the face
    skin = visible_skin(face, visible, band=3)
    assert skin[8:10, 8:56].all()  # the sliver is face again
    assert not skin[30:56, 40:48].any()  # the hand is cut, including where it crosses the band
    assert skin[20:30, 20:30].all() and not skin[:8].any()  # the face stays the face, outside stays out
    assert np.array_equal(visible_skin(face, face, band=3), face)


def test_visible_skin_ignores_specks_but_cuts_small_real_occluders():
    from fswap.faces.masks import occluded_skin, visible_skin

    face = np.zeros((64, 64), np.float32)
    face[8:56, 8:56] = 1.0
    visible = face.copy()
    visible[30:32, 30:32] = 0.0  # a 4-pixel speck mid-face: a dark eye corner, not an occluder
    visible[20:28, 40:48] = 0.0  # a fingertip, 8 x 8 px
    skin = visible_skin(face, visible, band=3)
    assert skin[30:32, 30:32].all()
    assert not skin[20:28, 40:48].any()
    assert np.array_equal(occluded_skin(face, visible, band=3), (face > 0) & (skin == 0))
    assert not visible_skin(face, visible, band=3, speck=1)[30:32, 30:32].any()  # a smaller speck limit cuts it


def test_blend_mask_fades_wide_at_the_outline_and_narrow_at_occluders():
    from fswap.faces.align import blend_mask

    face = np.zeros((100, 100), np.float32)
    face[10:90, 10:90] = 1.0
    skin = face.copy()
    skin[45:55, 45:55] = 0.0  # an occluder in the middle of the face
    blend = blend_mask(face, skin, outline_radius=8, occluder_radius=2)
    assert np.all(blend[face == 0] == 0) and np.all(blend[skin == 0] == 0)
    assert blend[12, 50] < 0.5 and blend[50, 50] == 0  # the outline fades over its 8 px
    assert blend[50, 59] > 0.99 and blend[50, 41] > 0.99  # 4 px from the occluder the swap is whole
    # The old rule (feather the cut skin as one mask) left a halo of target skin the outline's width.
    assert feather(skin, 8)[50, 59] < 0.5
    assert np.array_equal(blend_mask(face, face, 8, 2), feather(face, 8))  # nothing occluded: the outline alone


def test_blend_mask_narrows_the_outline_below_the_nose_only():
    from fswap.faces.align import blend_mask, face_template, jaw_rows

    face = np.zeros((128, 128), np.float32)
    face[10:120, 20:108] = 1.0
    top, bottom = jaw_rows(128, 0.25)
    template = face_template(128, 0.25)  # eyes, nose tip, mouth corners
    assert template[:2, 1].mean() < top < template[2, 1] < bottom < template[3:, 1].mean()
    wide = blend_mask(face, face, 8, 2)
    jaw = blend_mask(face, face, 8, 2, jaw_radius=3, jaw_rows=(top, bottom))
    above, below = int(top) - 1, int(bottom) + 2
    assert np.array_equal(jaw[:above], wide[:above])  # forehead and temples: the outline's width
    assert np.array_equal(jaw[below:], blend_mask(face, face, 3, 2)[below:])  # cheeks, jaw, chin: the jaw's
    assert jaw[below, 25] > 0.99 and wide[below, 25] < 0.2  # 5 px inside the cheek's edge
    assert jaw[114, 64] > 0.99 and wide[114, 64] < 0.2  # and the chin's
    assert np.all(jaw[face == 0] == 0)
    assert np.array_equal(blend_mask(face, face, 8, 2, jaw_radius=8, jaw_rows=(top, bottom)), wide)
    with pytest.raises(ValueError, match="jaw_rows"):
        blend_mask(face, face, 8, 2, jaw_radius=3)


def test_source_occluders_land_where_the_source_face_is_warped(analyzer, t1_image):
    from fswap.faces.masks import region_mask
    from fswap.faces.warp import carried_occluders

    faces = analyzer.detect(t1_image)[:2]
    size = 128
    points = [transform_points(f.landmarks, alignment_matrix(f.keypoints, size, 0.25)) for f in faces]
    mouth = region_mask(points[0], (size, size), "mouth") > 0.5  # the source's mouth is covered
    carried = carried_occluders(mouth, points[0], points[1], (size, size))
    target_mouth = region_mask(points[1], (size, size), "mouth") > 0.5
    overlap = (carried & target_mouth).sum() / (carried | target_mouth).sum()
    assert overlap > 0.7  # a microphone over the source's mouth lands on the target's mouth (the hulls differ a little)
    assert not (carried & (region_mask(points[1], (size, size), "eyes") > 0.5)).any()
    assert not carried_occluders(np.zeros((size, size), bool), points[0], points[1], (size, size)).any()
    grown = carried_occluders(mouth, points[0], points[1], (size, size), margin=3)
    assert (grown >= carried).all() and grown.sum() > carried.sum() * 1.3  # a margin around the occluder


def test_first_stage_colours_are_matched_on_skin_not_on_the_sources_sunglasses(analyzer, t1_image):
    from fswap.faces.masks import region_mask
    from fswap.faces.warp import carried_occluders, first_stage_composite

    faces = analyzer.detect(t1_image)[:2]
    size = 128
    crops, points = [], []
    for face in faces:
        matrix = alignment_matrix(face.keypoints, size, 0.25)
        crops.append(warp_face(t1_image, matrix, size))
        points.append(transform_points(face.landmarks, matrix))
    source = crops[0].copy()
    lenses = region_mask(points[0], (size, size), "eyes") > 0.5
    lenses = cv2.dilate(lenses.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # dark sunglasses
    source[lenses] = 10
    visible = region_mask(points[1], (size, size), "face")
    landed = carried_occluders(lenses, points[0], points[1], (size, size))
    skin = (visible > 0.5) & ~landed

    def skin_mean(composite: np.ndarray) -> float:
        return float(composite[skin & (region_mask(points[1], (size, size), "inner_face") < 0.5)].mean())

    plain, _ = first_stage_composite(crops[1], points[1], crops[0], points[0], visible)
    dragged, _ = first_stage_composite(crops[1], points[1], source, points[0], visible)
    measured, _ = first_stage_composite(crops[1], points[1], source, points[0], visible, measured=skin)
    # Measured over the lenses too, the skin is pushed brighter to make up for them; measured on
    # the skin alone it comes out as without sunglasses.
    assert skin_mean(dragged) > skin_mean(plain) + 5
    assert abs(skin_mean(measured) - skin_mean(plain)) < 1.5
