"""The relit rendering (`fswap.faces.render`, `trust`, `relight`, `blend`) on real photos."""

import cv2
import numpy as np
import pytest

from fswap.faces import region_mask
from fswap.faces.blend import detail_strength, match_grain, multiband_blend
from fswap.faces.mirror import MIRRORED_LANDMARKS, mirror_landmarks
from fswap.faces.relight import from_linear, relight, skin_weight, to_linear
from fswap.faces.render import SourceFace, fill_from_mirror
from fswap.faces.trust import stretch_trust
from fswap.faces.warp import face_points, face_rectangle, triangulate

SIZE = 64



@pytest.fixture(scope="module")
def face(analyzer, t1_image):
    return analyzer.detect(t1_image)[0]


def face_patch(image, landmarks):
    x0, y0, x1, y1 = face_rectangle(face_points(landmarks), image.shape, margin=6)
    return image[y0:y1, x0:x1].copy(), np.asarray(landmarks, np.float64) - (x0, y0)


def test_the_mirror_table_pairs_each_landmark_with_its_mirror_place(analyzer, t1_image, face):
    assert sorted(MIRRORED_LANDMARKS) == list(range(106))
    assert all(MIRRORED_LANDMARKS[MIRRORED_LANDMARKS[i]] == i for i in range(106))  # an involution
    mirrored_photo = np.ascontiguousarray(t1_image[:, ::-1])
    found = analyzer.detect(mirrored_photo, near=[np.array([t1_image.shape[1] - face.box[2], face.box[1],
                                                           t1_image.shape[1] - face.box[0], face.box[3]])])[0]
    predicted = mirror_landmarks(face.landmarks, t1_image.shape[1])
    size = np.ptp(face.landmarks, axis=0).max()
    assert np.median(np.linalg.norm(predicted - found.landmarks, axis=1)) < 0.03 * size


def test_a_stretched_warp_lowers_trust_there_and_a_fold_removes_it(face):
    target = face_points(face.landmarks) - face.landmarks.min(axis=0) + 20
    triangles = triangulate(target)
    shape = tuple(int(v) for v in np.ceil(target.max(axis=0) + 20))[::-1]
    assert stretch_trust(target, target, triangles, shape)[region_mask(target[:106], shape) > 0.5].min() > 0.9

    # The source shows its left half squeezed to a tenth of its width: warped back, it is stretched.
    middle = target[:, 0].mean()
    squeezed = target.copy()
    left = squeezed[:, 0] < middle
    squeezed[left, 0] = middle - (middle - squeezed[left, 0]) / 10.0
    trust = stretch_trust(squeezed, target, triangles, shape)
    face_region = region_mask(target[:106], shape) > 0.5
    columns = np.arange(shape[1])[None, :]
    left_trust = trust[face_region & (columns < middle - 10)].mean()
    right_trust = trust[face_region & (columns > middle + 10)].mean()
    assert left_trust < 0.2 and right_trust > 0.8

    folded = target.copy()
    folded[:, 0] = 2 * middle - folded[:, 0]  # every triangle turned over
    assert stretch_trust(folded, target, triangles, shape).max() == 0.0


def test_a_covered_side_is_filled_from_the_mirror_image_without_the_cover(t1_image, face):
    patch, landmarks = face_patch(t1_image, face.landmarks)
    # A dark "lock of hair" over the face's left cheek, marked as what covers it.
    cheek = region_mask(landmarks, patch.shape[:2]) > 0.5
    cheek &= np.arange(patch.shape[1])[None, :] < landmarks[:, 0].mean() - 4
    covered = patch.copy()
    covered[cheek] = (20, 15, 10)
    source = SourceFace(covered, landmarks, cheek.astype(np.uint8))

    filled = fill_from_mirror(source, landmarks, patch.shape[:2])
    as_given = fill_from_mirror(source, landmarks, patch.shape[:2], use_mirror=False)
    core = cv2.erode(cheek.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    skin = patch[cheek].mean()
    assert as_given.texture[core].mean() < 40  # the cover, copied
    assert abs(filled.texture[core].mean() - skin) < 25  # skin from the other side
    assert filled.mirrored[core].mean() > 0.9 and filled.mirrored[~cheek].mean() < 0.2
    assert filled.uncovered[core].mean() < 0.1 and as_given.uncovered[core].mean() > 0.9


def test_a_source_with_an_occluder_is_swapped_without_it(two_stage, t1_image, face):
    # The face swapped onto itself, its source photo with a dark band reaching in over the
    # forehead's edge: the pasted rendering (the default) pastes the band, the relit one fills it
    # from the other side.
    landmarks = face.landmarks
    band = region_mask(landmarks, t1_image.shape[:2]) > 0.5
    x_mid = landmarks[:, 0].mean()
    brows_y = landmarks[43:52, 1].mean()
    rows, columns = np.indices(t1_image.shape[:2])
    band &= (columns < x_mid - 3) & (rows < brows_y - 2)
    source = t1_image.copy()
    source[band] = (25, 18, 12)

    new = two_stage(source, t1_image, watermark=False, occlusion_aware=False, rendering="relit").image
    old = two_stage(source, t1_image, watermark=False, occlusion_aware=False, rendering="pasted",
                    paste_source_occluders="all").image
    core = cv2.erode(band.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert core.sum() > 50
    original = t1_image[core].astype(float).mean()
    assert old[core].astype(float).mean() < original - 40  # pasted
    assert abs(new[core].astype(float).mean() - original) < 20  # not pasted


def test_relighting_moves_the_swap_shading_as_the_target_light_moves(analyzer, t1_image):
    faces = analyzer.detect(t1_image)
    target_patch, target_landmarks = face_patch(t1_image, faces[0].landmarks)
    # A light that falls off from right to left: the left side gets 40 % of it (in linear light).
    ramp = np.linspace(0.4, 1.0, target_patch.shape[1], dtype=np.float32)[None, :, None]
    darker_left = from_linear(to_linear(target_patch) * ramp)
    source = SourceFace.cut(t1_image, faces[1].landmarks, np.zeros((SIZE, SIZE), bool),
                            np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    texture = fill_from_mirror(source, target_landmarks, target_patch.shape[:2], use_mirror=False)
    weight = skin_weight(target_landmarks, target_patch.shape[:2])
    texture_weight = skin_weight(target_landmarks, target_patch.shape[:2], texture.coverage)
    size = float(np.ptp(target_landmarks, axis=0).max())

    def sides(image):
        linear = to_linear(image).mean(axis=2)
        middle = target_landmarks[:, 0].mean()
        columns = np.arange(image.shape[1])[None, :]
        skin = weight > 0.5
        return linear[skin & (columns < middle - 0.2 * size)].mean(), linear[skin & (columns > middle + 0.2 * size)].mean()

    plain = sides(relight(texture.texture, target_patch, texture_weight, weight, size))
    lit = sides(relight(texture.texture, darker_left, texture_weight, weight, size))
    truth_plain, truth_lit = sides(target_patch), sides(darker_left)
    # The swap's left/right balance moves by the factor the target's does (within 15 %).
    moved, truth_moved = (lit[0] / lit[1]) / (plain[0] / plain[1]), (truth_lit[0] / truth_lit[1]) / (truth_plain[0] / truth_plain[1])
    assert truth_moved < 0.75
    assert abs(moved / truth_moved - 1.0) < 0.15


def test_grain_is_added_to_a_softer_face_and_a_sharper_one_is_softened(t1_image, face):
    patch, landmarks = face_patch(t1_image, face.landmarks)
    skin = skin_weight(landmarks, patch.shape[:2])
    soft = cv2.GaussianBlur(patch, (0, 0), 1.5)
    grained = match_grain(soft, patch, skin, skin)
    wanted = detail_strength(patch, skin)
    assert detail_strength(soft, skin) < 0.6 * wanted
    assert abs(detail_strength(grained, skin) / wanted - 1.0) < 0.25
    assert np.array_equal(grained, match_grain(soft, patch, skin, skin))  # seeded: repeats to the bit
    noisy = np.clip(patch + np.random.default_rng(1).normal(0, 6, patch.shape), 0, 255).astype(np.uint8)
    assert detail_strength(match_grain(noisy, patch, skin, skin), skin) < detail_strength(noisy, skin)


def test_multiband_blend_leaves_every_byte_outside_the_mask(t1_image, face):
    patch, landmarks = face_patch(t1_image, face.landmarks)
    blend = cv2.GaussianBlur(region_mask(landmarks, patch.shape[:2]), (0, 0), 3) * region_mask(landmarks, patch.shape[:2])
    other = np.full_like(patch, 128)
    result = multiband_blend(patch, other, blend)
    assert np.array_equal(result[blend == 0], patch[blend == 0])
    assert np.abs(result[blend > 0.99].astype(int) - 128).mean() < 6


def test_the_masks_tab_shows_the_trust_map_of_a_relit_swap(two_stage, t1_image):
    from space.render import compositing_grid, control_mask_grid

    # The tiny segmenter is untrained: what covers the faces is left to the colour test.
    relit = two_stage(t1_image, t1_image, target_faces=1, watermark=False, occlusion_aware=False,
                      rendering="relit")
    pasted = two_stage(t1_image, t1_image, target_faces=1, watermark=False, occlusion_aware=False,
                       rendering="pasted")
    [face] = relit.swapped
    assert face.trust_map.shape == (SIZE, SIZE) and face.trust_map.min() >= 0.0 and face.trust_map.max() <= 1.0
    assert face.trust_map[face.face_mask > 0.5].mean() > 0.5
    assert face.control_masks == [] and pasted.swapped[0].trust_map is None
    assert compositing_grid(relit).shape[1] > compositing_grid(pasted).shape[1]  # one more column: the trust map
    assert control_mask_grid(relit).ndim == 3
    unlit = two_stage(t1_image, t1_image, target_faces=1, watermark=False, occlusion_aware=False,
                      rendering="relit", appearance_matching=False)  # the relighting left out
    assert not np.array_equal(unlit.image, relit.image)
    with pytest.raises(ValueError, match="rendering must be one of"):
        two_stage(t1_image, t1_image, rendering="painted")
