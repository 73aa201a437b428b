"""The classic landmark swap on real photos: t1.jpg (six people) and gdp.jpg (three players)."""

import numpy as np
import pytest

from fswap.assets import example_image
from fswap.baselines import ClassicFaceSwapper, classic_swap
from fswap.errors import NoFaceError
from fswap.faces import region_mask
from fswap.imageio import load_image, save_image

# Face indices (largest first) of frontal-enough faces, so the classic warp has something to work with.
T1_ROSS, T1_CHANDLER, T1_PHOEBE = 0, 3, 5
GDP_TONY = 1


@pytest.fixture(scope="module")
def gdp_image():
    return load_image(example_image("gdp.jpg"))


@pytest.fixture(scope="module")
def t1_faces(analyzer, t1_image):
    return analyzer.detect(t1_image, embeddings=True)


@pytest.fixture(scope="module")
def gdp_faces(analyzer, gdp_image):
    return analyzer.detect(gdp_image, embeddings=True)


@pytest.fixture(scope="module")
def tony_image(gdp_image):
    """gdp.jpg cut down to Tony Parker, a frontal face, so that he is the largest face."""
    return np.ascontiguousarray(gdp_image[60:260, 300:460])


@pytest.fixture(scope="module", params=["t1_to_t1", "t1_to_gdp"])
def swap_case(request, t1_image, gdp_image, t1_faces, gdp_faces):
    """(source face, target image, target face, result) for two swaps between different people."""
    if request.param == "t1_to_t1":
        source_face, target_image, target_face = t1_faces[T1_CHANDLER], t1_image, t1_faces[T1_PHOEBE]
    else:
        source_face, target_image, target_face = t1_faces[T1_ROSS], gdp_image, gdp_faces[GDP_TONY]
    result = classic_swap(t1_image, target_image, source_face, target_face)
    return source_face, target_image, target_face, result


def face_difference(image, reference, face):
    """Mean absolute difference of two images inside `face`'s hull."""
    inside = region_mask(face.landmarks, image.shape, "face") > 0
    return np.abs(image.astype(np.float32) - reference.astype(np.float32))[inside].mean()


def test_swap_changes_the_target_face(swap_case):
    _, target_image, target_face, result = swap_case
    assert result.image.shape == target_image.shape and result.image.dtype == np.uint8
    assert result.blend_mask.shape == target_image.shape[:2] and result.blend_mask.dtype == np.float32
    assert result.blend_mask.min() >= 0.0 and result.blend_mask.max() <= 1.0
    assert face_difference(result.image, target_image, target_face) > 8.0
    assert set(result.timings) == {"triangulate", "warp", "color_correction", "poisson_blend", "composite"}


@pytest.mark.parametrize("color_correction", [True, False])
@pytest.mark.parametrize("poisson", [True, False])
def test_pixels_outside_the_face_are_unchanged(t1_image, t1_faces, color_correction, poisson):
    target_face = t1_faces[T1_PHOEBE]
    result = classic_swap(
        t1_image,
        t1_image,
        t1_faces[T1_CHANDLER],
        target_face,
        color_correction=color_correction,
        poisson=poisson,
    )
    changed = (result.image != t1_image).any(axis=2)
    assert changed.sum() > 1000
    assert not changed[result.blend_mask == 0].any()
    # The blend mask stays near the face: within its box grown by half its size.
    x0, y0, x1, y1 = target_face.box
    grow_x, grow_y = 0.5 * (x1 - x0), 0.5 * (y1 - y0)
    rows, columns = np.nonzero(result.blend_mask)
    assert x0 - grow_x <= columns.min() and columns.max() <= x1 + grow_x
    assert y0 - grow_y <= rows.min() and rows.max() <= y1 + grow_y
    # seamlessClone changes its whole bounding box; none of that may leak out.
    near_rows = slice(max(int(y0 - grow_y), 0), int(y1 + grow_y) + 1)
    near_columns = slice(max(int(x0 - grow_x), 0), int(x1 + grow_x) + 1)
    far = np.ones(changed.shape, dtype=bool)
    far[near_rows, near_columns] = False
    assert not changed[far].any()


def test_swapped_face_looks_like_the_source(analyzer, swap_case):
    source_face, target_image, target_face, result = swap_case
    swapped_face = _same_face(analyzer.detect(result.image, embeddings=True), target_face)
    similarity_after = float(swapped_face.embedding @ source_face.embedding)
    similarity_before = float(target_face.embedding @ source_face.embedding)
    # Measured: 0.54 vs 0.11 (t1 -> t1) and 0.42 vs -0.07 (t1 -> gdp).
    assert similarity_after > similarity_before + 0.2, (similarity_after, similarity_before)


def test_all_swaps_every_face(analyzer, t1_image, t1_faces):
    swapper = ClassicFaceSwapper(analyzer)
    result = swapper(example_image("yaoming.jpg"), t1_image, "all")  # a path, a frontal face
    assert len(t1_faces) == 6
    for face in t1_faces:
        assert face_difference(result.image, t1_image, face) > 8.0
        inside = region_mask(face.landmarks, t1_image.shape, "face") > 0
        assert result.blend_mask[inside].mean() > 0.5
    assert {"detect", "warp", "poisson_blend"} <= set(result.timings)

    only_largest = swapper(example_image("yaoming.jpg"), t1_image)
    assert face_difference(only_largest.image, t1_image, t1_faces[0]) > 8.0
    for face in t1_faces[1:]:
        assert face_difference(only_largest.image, t1_image, face) == 0.0


def test_a_photo_without_a_face_raises(analyzer, t1_image, tony_image, tmp_path):
    swapper = ClassicFaceSwapper(analyzer)
    table = save_image(tmp_path / "table.png", t1_image[620:])  # the poker table, nobody's face
    with pytest.raises(NoFaceError, match="table.png"):
        swapper(table, t1_image)
    with pytest.raises(NoFaceError, match="target image"):
        swapper(tony_image, t1_image[620:])
    with pytest.raises(NoFaceError, match="the poker table"):
        swapper(tony_image, t1_image[620:], target_name="the poker table")
    with pytest.raises(NoFaceError, match="face 6 does not exist"):
        swapper(tony_image, t1_image, 6)
    with pytest.raises(NoFaceError, match="gdp.jpg has 5 face"):
        swapper(example_image("gdp.jpg"), t1_image, source_face=7)


def test_the_source_face_can_be_chosen_in_a_group_photo(analyzer, t1_image, t1_faces, gdp_image):
    swapper = ClassicFaceSwapper(analyzer)
    largest = swapper(t1_image, gdp_image, GDP_TONY)
    assert np.array_equal(swapper(t1_image, gdp_image, GDP_TONY, source_face=0).image, largest.image)
    chosen = swapper(t1_image, gdp_image, GDP_TONY, source_face=T1_PHOEBE)
    expected = classic_swap(t1_image, gdp_image, t1_faces[T1_PHOEBE], analyzer.detect(gdp_image)[GDP_TONY])
    assert np.array_equal(chosen.image, expected.image) and not np.array_equal(chosen.image, largest.image)


def test_face_at_the_image_border(analyzer, t1_image, tony_image):
    target_image = np.ascontiguousarray(t1_image[240:480, 490:690])  # Ross, his left cheek cut off
    target_face = analyzer.largest_face(target_image)
    assert target_face.landmarks[:, 0].min() < 0  # the face really does run off the image
    result = ClassicFaceSwapper(analyzer)(tony_image, target_image)
    assert result.image.shape == target_image.shape
    assert result.blend_mask[:, 0].max() > 0.9  # blended right up to the edge
    assert face_difference(result.image, target_image, target_face) > 8.0
    assert not (result.image != target_image).any(axis=2)[result.blend_mask == 0].any()


def test_faces_need_landmarks(analyzer, t1_image, t1_faces):
    without_landmarks = analyzer.detect(t1_image, landmarks=False, max_faces=1)[0]
    with pytest.raises(ValueError, match="landmarks=True"):
        classic_swap(t1_image, t1_image, without_landmarks, t1_faces[1])


def _same_face(faces, reference):
    """The face in `faces` whose box overlaps `reference`'s most (intersection over union > 0.5)."""

    def overlap(face):
        x0, y0 = np.maximum(face.box[:2], reference.box[:2])
        x1, y1 = np.minimum(face.box[2:], reference.box[2:])
        intersection = max(x1 - x0, 0) * max(y1 - y0, 0)
        return intersection / (face.area + reference.area - intersection)

    best = max(faces, key=overlap)
    assert overlap(best) > 0.5, "the swapped face was not found where the target face was"
    return best
