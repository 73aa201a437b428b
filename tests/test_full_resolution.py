"""The two-stage swap finished at the target photo's resolution (`fswap.faces.full_resolution`)."""

import cv2
import numpy as np

from fswap.assets import example_image
from fswap.faces import alignment_matrix, feather, mask_to_image, region_mask, transform_points
from fswap.faces.full_resolution import composite_full_resolution, network_correction

SIZE = 64



def test_correction_keeps_smooth_changes_and_drops_fine_ones():
    rng = np.random.default_rng(0)
    first = rng.integers(60, 190, (SIZE, SIZE, 3), dtype=np.uint8)
    brighter = network_correction(first + np.uint8(12), first)
    assert np.allclose(brighter, 12.0, atol=1e-3)
    checker = (np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 2 - 1)[..., None] * 20  # ±20, one-pixel period
    noisy = np.clip(first.astype(int) + checker, 0, 255).astype(np.uint8)
    assert np.abs(network_correction(noisy, first)).mean() < 3.0
    assert np.abs(network_correction(noisy, first, blur=0.0)).mean() > 15.0


def face_masks(face, matrix):
    skin = region_mask(transform_points(face.landmarks, matrix), (SIZE, SIZE), "face")
    return skin, feather(skin, 0.04 * SIZE)


def test_a_face_swapped_onto_itself_comes_back_and_the_rest_is_untouched(analyzer, t1_image):
    face = analyzer.detect(t1_image)[0]
    matrix = alignment_matrix(face.keypoints, SIZE, 0.25)
    skin, blend = face_masks(face, matrix)
    result, crop = composite_full_resolution(
        t1_image, face.landmarks, t1_image, face.landmarks, matrix, skin, blend, appearance_matching=False
    )
    assert crop.shape == (SIZE, SIZE, 3)
    inside = mask_to_image(blend, matrix, t1_image.shape) > 0
    assert inside.sum() > 1000
    assert np.abs(result[inside].astype(int) - t1_image[inside]).mean() < 1.0  # the same face comes back

    shifted, _ = composite_full_resolution(
        t1_image, face.landmarks, t1_image, face.landmarks, matrix, skin, blend,
        correction=np.full((SIZE, SIZE, 3), 20.0, np.float32), appearance_matching=False,
    )
    centre = (slice(int(face.keypoints[:, 1].min()), int(face.keypoints[:, 1].max())),
              slice(int(face.keypoints[:, 0].min()), int(face.keypoints[:, 0].max())))
    lift = shifted[centre].astype(int) - t1_image[centre]
    assert 15 < lift.mean() <= 20  # the correction is carried up into the photo
    for swapped in (result, shifted):  # outside the blend mask: the target, bit for bit
        assert np.array_equal(swapped[~inside], t1_image[~inside])


def test_a_face_outside_the_photo_changes_nothing(analyzer, t1_image):
    face = analyzer.detect(t1_image)[0]
    outside = face.landmarks - 10_000  # the face, moved far off the photo
    matrix = alignment_matrix(face.keypoints - 10_000, SIZE, 0.25)
    skin, blend = np.ones((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32)
    result, _ = composite_full_resolution(t1_image, outside, t1_image, face.landmarks, matrix, skin, blend)
    assert np.array_equal(result, t1_image)


def sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F)[mask].var())


def test_full_resolution_keeps_the_source_detail_a_small_crop_loses(two_stage, t1_image):
    # The first stage alone (refine=False) is deterministic: the source texture at 64 px pasted
    # back, against the same texture warped at the photo's resolution.
    options = {"refine": False, "occlusion_aware": False, "watermark": False}
    source = example_image("yaoming.jpg")
    sharp = two_stage(source, t1_image, full_resolution=True, **options)
    soft = two_stage(source, t1_image, full_resolution=False, **options)
    inside = sharp.blend_mask() > 0.9
    assert inside.sum() > 1000
    assert sharpness(sharp.image, inside) > 2.0 * sharpness(soft.image, inside)
    outside = sharp.blend_mask() == 0
    assert np.array_equal(sharp.image[outside], t1_image[outside])


def test_full_resolution_swaps_every_face_of_a_group_photo(two_stage, t1_image):
    output = two_stage(example_image("yaoming.jpg"), t1_image, target_faces="all", occlusion_aware=False,
                       watermark=False)
    assert len(output.swapped) == 6
    for swapped in output.swapped:
        assert swapped.swapped_crop.shape == (SIZE, SIZE, 3)
        inside = swapped.blend_mask > 0.9
        assert np.abs(swapped.swapped_crop[inside].astype(int) - swapped.target_crop[inside]).mean() > 3
