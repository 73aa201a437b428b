"""The source's face proportions on the target's pose and expression (`fswap.faces.shape`),
on landmarks detected in real photos."""

import cv2
import numpy as np
import pytest

from fswap.faces.masks import LANDMARK_GROUPS
from fswap.faces.shape import FEATURES, identity_shape, similarity_fit


@pytest.fixture(scope="module")
def t1_landmarks(analyzer, t1_image):
    """The six people of t1.jpg, largest first."""
    return [face.landmarks for face in analyzer.detect(t1_image)]


def _eye_gap(landmarks):
    left = landmarks[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)
    right = landmarks[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0)
    return float(np.linalg.norm(right - left))


def _face_width(landmarks):
    contour = landmarks[list(LANDMARK_GROUPS["contour"])]
    return float(np.ptp(contour[:, 0]))


def test_similarity_fit_recovers_a_known_transform(t1_landmarks):
    points = t1_landmarks[0]
    angle, scale, shift = np.radians(12), 1.7, np.array([40.0, -25.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = scale * points @ rotation.T + shift
    matrix = similarity_fit(points, moved)
    assert np.allclose(matrix[:, :2], scale * rotation, atol=1e-9) and np.allclose(matrix[:, 2], shift, atol=1e-6)


def test_strength_zero_or_the_same_face_gives_the_target_back(t1_landmarks):
    source, target = t1_landmarks[0], t1_landmarks[1]
    assert np.array_equal(identity_shape(source, target, 0.0), target)
    # The same face, moved, scaled and turned in the photo, has the same proportions.
    rotation = np.array([[np.cos(0.2), -np.sin(0.2)], [np.sin(0.2), np.cos(0.2)]])
    assert np.allclose(identity_shape(0.5 * target @ rotation.T + 300, target, 1.0), target, atol=1e-6)


def test_wider_set_eyes_are_carried_over_and_the_outline_and_eye_openness_stay(t1_landmarks):
    target = t1_landmarks[0]
    source = target.copy()
    for eye, direction in (("left_eye", -1.0), ("right_eye", 1.0)):  # each eye 4 % of the face further out
        source[list(LANDMARK_GROUPS[eye]), 0] += direction * 0.04 * _face_width(target)
    shaped = identity_shape(source, target, 1.0)
    contour = list(LANDMARK_GROUPS["contour"])
    assert np.allclose(shaped[contour], target[contour])  # the outline bounds the paste: it stays
    # The eye gap moves to the source's, measured against the face, which the similarity fit may rescale.
    ratio = _eye_gap(shaped) / _face_width(shaped)
    assert abs(ratio - _eye_gap(source) / _face_width(source)) < 0.25 * abs(
        _eye_gap(source) / _face_width(source) - _eye_gap(target) / _face_width(target))
    for eye in ("left_eye", "right_eye"):  # same size, same openness: only moved
        group = list(LANDMARK_GROUPS[eye])
        assert np.allclose(np.ptp(shaped[group], axis=0), np.ptp(target[group], axis=0), rtol=0.03)
    half = identity_shape(source, target, 0.5)
    assert _eye_gap(target) < _eye_gap(half) < _eye_gap(shaped)


def test_a_source_smile_does_not_open_the_target_mouth(t1_landmarks):
    target = t1_landmarks[0]
    source = target.copy()
    mouth = list(LANDMARK_GROUPS["mouth"])
    corners = [mouth[int(i)] for i in (np.argmin(target[mouth, 0]), np.argmax(target[mouth, 0]))]
    lower = [i for i in mouth if target[i, 1] > target[corners, 1].mean() and i not in corners]
    source[lower, 1] += 0.15 * _face_width(target)  # the source's mouth wide open, corners in place
    shaped = identity_shape(source, target, 1.0)
    height = np.ptp(shaped[mouth, 1])
    assert height < np.ptp(target[mouth, 1]) * 1.05  # the target's mouth stays as it was


def test_the_change_fades_out_as_the_head_poses_differ(t1_landmarks):
    target = t1_landmarks[0]
    source = target.copy()
    nose = list(LANDMARK_GROUPS["nose"])
    source[nose] = target[nose] + (target[nose] - target[nose].mean(axis=0)) * 0.3  # a bigger nose
    assert not np.allclose(identity_shape(source, target, 1.0), target)
    turned = source.copy()
    left = target[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)
    right = target[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0)
    turned[86] = right + 0.05 * (right - left)  # nose tip past the right eye: a profile
    assert np.array_equal(identity_shape(turned, target, 1.0), target)


def test_every_feature_moves_and_nothing_else(t1_landmarks):
    from fswap.faces.pose import yaw_proxy

    yaws = [yaw_proxy(landmarks) for landmarks in t1_landmarks]
    _, i, j = min((abs(yaws[i] - yaws[j]), i, j) for i in range(6) for j in range(6) if i != j)
    source, target = t1_landmarks[i], t1_landmarks[j]  # two people turned alike
    shaped = identity_shape(source, target, 1.0)
    moved = np.any(np.abs(shaped - target) > 1e-9, axis=1)
    features = sorted(i for feature in FEATURES for i in LANDMARK_GROUPS[feature])
    assert not moved[list(LANDMARK_GROUPS["contour"])].any()
    assert moved[features].mean() > 0.9


def test_features_the_source_hides_keep_the_target_placement(t1_landmarks, t1_image):
    from fswap.faces.masks import region_mask
    from fswap.faces.shape import hidden_features

    source = t1_landmarks[0]
    shape = t1_image.shape[:2]
    assert hidden_features(source, np.zeros(shape, bool)) == frozenset()
    lenses = region_mask(source, shape, "eyes") > 0.5
    lenses = np.asarray(cv2.dilate(lenses.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)  # sunglasses
    hidden = hidden_features(source, lenses)
    assert {"left_eye", "right_eye"} <= hidden and not {"nose", "mouth"} & hidden
    target = source.copy()
    for eye in ("left_eye", "right_eye"):  # the target's eyes sit closer together
        target[list(LANDMARK_GROUPS[eye]), 0] += (1 if eye == "left_eye" else -1) * 0.04 * _face_width(source)
    shaped = identity_shape(source, target, 1.0, keep=hidden)
    eyes = list(LANDMARK_GROUPS["left_eye"] + LANDMARK_GROUPS["right_eye"])
    assert np.array_equal(shaped[eyes], target[eyes])
    assert not np.allclose(identity_shape(source, target, 1.0)[eyes], target[eyes])


def test_an_occluder_over_a_hidden_eye_is_cut_whole(t1_landmarks, t1_image):
    from fswap.faces.masks import region_mask
    from fswap.faces.shape import hidden_features, hidden_regions

    landmarks = t1_landmarks[0]
    shape = t1_image.shape[:2]
    eye = region_mask(landmarks, shape, "left_eye") > 0.5
    lens = cv2.dilate(eye.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    reflection = cv2.erode(eye.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # inside the eye's outline
    patchy = lens & ~reflection  # a lens whose middle reflects the light like skin
    assert "left_eye" in hidden_features(landmarks, patchy)
    filled = hidden_regions(landmarks, patchy, frozenset({"left_eye"}))
    assert reflection.sum() > 10 and filled[reflection].all()  # cut whole
    assert filled[~lens].sum() < 0.02 * lens.sum()  # and nothing beyond the lens but the hull's rasterised edge
    assert np.array_equal(hidden_regions(landmarks, patchy, frozenset()), patchy)
    elsewhere = np.zeros(shape, bool)
    elsewhere[:20, :20] = True  # an occluder that hides no feature is left as it is
    elsewhere[:5, :5] = False
    kept = hidden_regions(landmarks, elsewhere | patchy, frozenset({"left_eye"}))
    assert np.array_equal(kept[:40, :40], elsewhere[:40, :40])


def test_a_lock_across_the_face_is_filled_only_near_the_eye_it_hides(t1_landmarks, t1_image):
    from fswap.faces.shape import hidden_regions

    landmarks = t1_landmarks[0]
    shape = t1_image.shape[:2]
    eye = landmarks[list(LANDMARK_GROUPS["left_eye"])]
    chin = landmarks[0]
    lock = np.zeros(shape, np.uint8)
    # A curved lock: over the eye, then down and round to the chin (its hull would cover the cheek).
    path = np.array([eye.mean(axis=0) + (-30, -20), eye.mean(axis=0), eye.mean(axis=0) + (0, 40), chin + (-20, 0)])
    cv2.polylines(lock, [np.round(path).astype(np.int32)], False, 1, thickness=9)
    lock = lock > 0
    filled = hidden_regions(landmarks, lock, frozenset({"left_eye"}))
    eye_width = np.ptp(eye[:, 0])
    far = np.hypot(*(np.mgrid[: shape[0], : shape[1]][::-1] - eye.mean(axis=0)[:, None, None])) > 2.5 * eye_width
    assert np.array_equal(filled[far], lock[far])  # away from the eye, the lock stays as it was found
    assert filled.sum() >= lock.sum()


def _centre(landmarks, feature):
    return landmarks[list(LANDMARK_GROUPS[feature])].mean(axis=0)


def test_moves_a_turned_or_tilted_head_would_make_are_left_out(t1_landmarks):
    """The nose's place and any sideways shift are the head's pose as much as the person's: a
    source whose nose sits lower, or whose features all sit to one side, moves neither; its
    bigger nose and wider-set eyes still count."""
    target = t1_landmarks[0]
    width = _face_width(target)
    nose, mouth = list(LANDMARK_GROUPS["nose"]), list(LANDMARK_GROUPS["mouth"])

    lower_nose = target.copy()
    lower_nose[nose, 1] += 0.05 * width
    shaped = identity_shape(lower_nose, target, 1.0)
    assert np.allclose(_centre(shaped, "nose"), _centre(target, "nose"), atol=0.002 * width)
    # The rest barely moves either: only as far as the lower nose shifts the fit of the whole face.
    assert np.abs(shaped - target).max() < 0.01 * width

    bigger_nose = target.copy()
    bigger_nose[nose] = target[nose] + (target[nose] - target[nose].mean(axis=0)) * 0.3
    shaped = identity_shape(bigger_nose, target, 1.0)
    assert np.ptp(shaped[nose, 0]) > 1.1 * np.ptp(target[nose, 0])  # bigger ...
    assert np.allclose(_centre(shaped, "nose"), _centre(target, "nose"), atol=0.02 * width)  # ... in place

    to_one_side = target.copy()
    for feature in ("left_eye", "right_eye", "left_brow", "right_brow", "mouth"):
        to_one_side[list(LANDMARK_GROUPS[feature]), 0] += 0.05 * width
    shaped = identity_shape(to_one_side, target, 1.0)
    for feature in ("left_eye", "right_eye", "mouth"):
        assert abs(_centre(shaped, feature)[0] - _centre(target, feature)[0]) < 0.01 * width, feature

    lower_mouth = target.copy()
    lower_mouth[mouth, 1] += 0.04 * width  # up and down, the mouth still moves
    assert _centre(identity_shape(lower_mouth, target, 1.0), "mouth")[1] > _centre(target, "mouth")[1] + 0.02 * width


def test_one_hidden_eye_holds_the_other_still_sideways(t1_landmarks):
    target = t1_landmarks[0]
    source = target.copy()
    source[list(LANDMARK_GROUPS["right_eye"]), 0] += 0.05 * _face_width(target)
    shaped = identity_shape(source, target, 1.0, keep=frozenset({"left_eye"}))
    assert np.allclose(_centre(shaped, "right_eye")[0], _centre(target, "right_eye")[0], atol=0.01 * _face_width(target))
    assert np.allclose(identity_shape(source, target, 1.0)[list(LANDMARK_GROUPS["left_eye"])][:, 0].mean(),
                       _centre(target, "left_eye")[0] - 0.025 * _face_width(target), atol=0.01 * _face_width(target))
