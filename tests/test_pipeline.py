"""FaceSwapPipeline end to end on real photos with small, randomly initialised swap networks."""

import json
import shutil

import numpy as np
import pytest
import torch

from fswap import FaceSwapPipeline
from fswap.assets import example_image
from fswap.building import build_untrained_pipeline, swap_network_configs
from fswap.errors import CheckpointError, ModelNotFoundError, NoFaceError
from fswap.faces import region_mask
from fswap.faces.align import jaw_rows
from fswap.imageio import load_image
from fswap.options import SwapOptions


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8, seed=0)


@pytest.fixture(scope="module")
def saved_pipeline(pipe, tmp_path_factory):
    return pipe.save_pretrained(tmp_path_factory.mktemp("checkpoint") / "fswap-tiny")


@pytest.fixture(scope="module")
def source_path():
    return example_image("yaoming.jpg")


def test_output_has_the_target_size_and_only_the_face_changes(pipe, source_path, t1_image):
    # The segmenter here is untrained, so its masks are arbitrary: judge the face region alone.
    # Without the watermark, which also touches a margin around the face (tested below).
    output = pipe(source_path, t1_image, occlusion_aware=False, watermark=False)
    assert output.image.shape == t1_image.shape and output.image.dtype == np.uint8
    assert len(output.faces) == 6 and [s.index for s in output.swapped] == [0]
    blend = output.blend_mask()
    assert np.array_equal(output.image[blend == 0], t1_image[blend == 0])  # outside: bit-identical
    inside = blend > 0.5
    assert inside.sum() > 300
    assert np.abs(output.image[inside].astype(int) - t1_image[inside]).mean() > 3  # inside: changed
    face = output.faces[0]
    x0, y0, x1, y1 = face.box
    ys, xs = np.nonzero(blend)
    assert xs.min() >= x0 - 0.3 * (x1 - x0) and xs.max() <= x1 + 0.3 * (x1 - x0)


def test_every_mask_is_returned_with_its_shape(pipe, source_path, t1_image):
    output = pipe(source_path, t1_image, target_faces=[1, 3])
    size = pipe.crop_size
    assert [s.index for s in output.swapped] == [1, 3]
    for swapped in output.swapped:
        for mask in (swapped.blend_mask, swapped.occlusion_mask, swapped.face_mask):
            assert mask.shape == (size, size) and mask.min() >= 0 and mask.max() <= 1
        assert [m.shape[-1] for m in swapped.control_masks] == [8, 16, 32, 64]
        assert swapped.swapped_crop.shape == (size, size, 3)
    assert len(output.source_occlusion_masks) == 1
    assert set(output.timings) >= {"detect", "align", "occlusion", "identity", "generate", "blend"}


def test_every_swapped_face_carries_the_watermark_and_nothing_far_from_it_changes(pipe, source_path, t1_image):
    import cv2

    from fswap.provenance import detect_watermark

    output = pipe(source_path, t1_image, target_faces=[0, 2], occlusion_aware=False)
    assert "watermark" in output.timings
    report = detect_watermark(output.image, analyzer=pipe.face_analyzer)
    marked = [mark for mark in report.faces if mark.log10_p < np.log10(report.threshold)]
    assert report.found and len(marked) == 2
    assert not detect_watermark(t1_image, analyzer=pipe.face_analyzer).found
    half = cv2.resize(output.image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    jpeg = cv2.imdecode(cv2.imencode(".jpg", half[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])[1], 1)[..., ::-1]
    assert detect_watermark(np.ascontiguousarray(jpeg), analyzer=pipe.face_analyzer).found
    near = np.zeros(t1_image.shape[:2], bool)
    for index in (0, 2):
        x0, y0, x1, y1 = output.faces[index].box
        pad_x, pad_y = 0.6 * (x1 - x0), 0.6 * (y1 - y0)
        near[max(int(y0 - pad_y), 0) : int(y1 + pad_y), max(int(x0 - pad_x), 0) : int(x1 + pad_x)] = True
    assert np.array_equal(output.image[~near], t1_image[~near])


def test_all_swaps_every_face_of_t1(pipe, source_path, t1_image):
    output = pipe(source_path, t1_image, target_faces="all", occlusion_aware=False)
    assert [s.index for s in output.swapped] == list(range(6))
    for face in output.faces:
        hull = region_mask(face.landmarks, t1_image.shape, "face") > 0
        assert np.abs(output.image[hull].astype(int) - t1_image[hull]).mean() > 2


def test_several_source_photos_average_their_identities(pipe, t1_image):
    players = load_image(example_image("players.jpg"))
    one = pipe(example_image("yaoming.jpg"), t1_image, occlusion_aware=False)
    two = pipe([example_image("yaoming.jpg"), players], t1_image, occlusion_aware=False)
    assert len(two.source_faces) == 2 and len(two.source_occlusion_masks) == 2
    assert not np.array_equal(one.image, two.image)


def test_reference_photo_selects_the_target_face(pipe, source_path, t1_image):
    x0, y0, x1, y1 = pipe.face_analyzer.detect(t1_image)[2].box.astype(int)
    pad = (x1 - x0) // 2
    reference = np.ascontiguousarray(t1_image[y0 - pad : y1 + pad, x0 - pad : x1 + pad][:, ::-1])
    output = pipe(source_path, t1_image, target_faces=reference)
    assert [s.index for s in output.swapped] == [2]


def test_occluded_pixels_are_never_pasted(pipe, source_path, t1_image):
    from fswap.faces.masks import occluded_skin
    from fswap.pipeline import OUTLINE_BAND

    for swapped in pipe(source_path, t1_image, target_faces="all").swapped:
        # Occluders as `visible_skin` counts them: the segmenter's outline slivers and specks are not.
        band = OUTLINE_BAND * swapped.face_mask.shape[0]
        occluders = occluded_skin(swapped.face_mask, swapped.occlusion_mask, band)
        assert occluders.any() and np.all(swapped.blend_mask[occluders] == 0)
        assert np.all(swapped.blend_mask <= swapped.face_mask)


def test_options_change_the_result(pipe, source_path, t1_image):
    base = pipe(source_path, t1_image)
    plain = pipe(source_path, t1_image, appearance_matching=False, occlusion_aware=False)
    assert not np.array_equal(base.image, plain.image)
    assert (plain.swapped[0].occlusion_mask == 1).all()


def test_clear_errors_for_user_mistakes(pipe, source_path, t1_image, tmp_path):
    sky = np.full((240, 320, 3), (110, 160, 220), np.uint8)
    with pytest.raises(NoFaceError, match="no face found in source photo 1"):
        pipe(sky, t1_image)
    with pytest.raises(NoFaceError, match="no face found in target photo"):
        pipe(source_path, sky)
    with pytest.raises(NoFaceError, match="face 9 does not exist"):
        pipe(source_path, t1_image, target_faces=9)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    from fswap.errors import ImageError

    with pytest.raises(ImageError, match="broken.jpg"):
        pipe(source_path, broken)
    # A mistyped selector is said to be one, not reported as a missing reference photo.
    with pytest.raises(ImageError, match="'biggest' is neither \"largest\", \"all\""):
        pipe(source_path, t1_image, target_faces="biggest")


def test_the_source_face_can_be_chosen_in_a_group_photo(pipe, source_path, t1_image):
    largest = pipe(t1_image, source_path, watermark=False)
    assert largest.notices[-1].startswith("source photo 1: 6 faces in it are about as large")
    chosen = pipe(t1_image, source_path, source_faces=3, watermark=False)
    assert not np.array_equal(chosen.source_faces[0].box, largest.source_faces[0].box)
    assert np.array_equal(chosen.source_faces[0].box, pipe.face_analyzer.detect(t1_image)[3].box)
    assert not any("faces in it" in notice for notice in chosen.notices)  # chosen: nothing to warn about
    assert not np.array_equal(chosen.image, largest.image)
    assert np.array_equal(pipe(t1_image, source_path, source_faces=[None], watermark=False).image, largest.image)
    two = pipe([source_path, t1_image], source_path, source_faces=[None, 3], watermark=False)
    assert np.array_equal(two.source_faces[1].box, chosen.source_faces[0].box)
    with pytest.raises(NoFaceError, match="source photo 1 has 6 face"):
        pipe(t1_image, source_path, source_faces=6)
    with pytest.raises(ValueError, match="names one face, but there are 2 source photos"):
        pipe([source_path, t1_image], source_path, source_faces=3)
    with pytest.raises(ValueError, match="one face index \\(or None\\) per source photo"):
        pipe(t1_image, source_path, source_faces=[0, 1])


def test_save_then_load_gives_identical_outputs(pipe, saved_pipeline, source_path, t1_image):
    loaded = FaceSwapPipeline.from_pretrained(saved_pipeline)
    # The watermark's tag names the checkpoint ("fswap-tiny" once loaded, none before): compare unmarked.
    assert loaded.checkpoint_name == "fswap-tiny" and pipe.checkpoint_name is None
    a, b = pipe(source_path, t1_image, watermark=False), loaded(source_path, t1_image, watermark=False)
    assert np.array_equal(a.image, b.image)
    for name in ("identity_encoder", "attribute_encoder", "generator", "occlusion_segmenter"):
        assert (saved_pipeline / name / "config.json").is_file()
        assert list((saved_pipeline / name).glob("*.safetensors"))
        assert not list((saved_pipeline / name).glob("*.bin"))
        assert (saved_pipeline / name / "SHA256SUMS").is_file()
    assert sorted(p.name for p in (saved_pipeline / "face_analyzer").iterdir()) == sorted(
        ["config.json", "2d106det.onnx", "scrfd_500m_bnkps.onnx", "w600k_mbf.onnx", "SHA256SUMS"]
    )


def test_strict_loading_errors(saved_pipeline, tmp_path):
    def copy() -> "Path":  # noqa: F821
        target = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(saved_pipeline, target)
        return target

    unknown = copy()
    index = json.loads((unknown / "model_index.json").read_text())
    index["text_encoder"] = ["transformers", "CLIPTextModel"]
    (unknown / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="unknown component"):
        FaceSwapPipeline.from_pretrained(unknown)

    swapped_class = copy()
    index = json.loads((swapped_class / "model_index.json").read_text())
    index["generator"] = ["os", "system"]  # never imported: only the known classes load
    (swapped_class / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="generator"):
        FaceSwapPipeline.from_pretrained(swapped_class)

    missing = copy()
    shutil.rmtree(missing / "occlusion_segmenter")
    with pytest.raises(CheckpointError, match="occlusion_segmenter"):
        FaceSwapPipeline.from_pretrained(missing)

    pickled = copy()
    for weights in (pickled / "generator").glob("*.safetensors"):
        torch.save({}, weights.with_suffix(".bin"))
        weights.unlink()
    with pytest.raises((CheckpointError, ModelNotFoundError)):
        FaceSwapPipeline.from_pretrained(pickled)

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        FaceSwapPipeline.from_pretrained(tmp_path / "nowhere")


def test_mismatched_components_are_refused(pipe):
    attribute_config, generator_config = swap_network_configs(128, 8)
    from fswap.models import Generator

    with pytest.raises(CheckpointError, match="px"):
        FaceSwapPipeline(
            pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder,
            Generator(**generator_config), pipe.occlusion_segmenter,
        )


def test_loads_by_hub_id_from_an_offline_cache(saved_pipeline, tmp_path, monkeypatch, source_path, t1_image, pipe):
    """A hand-built Hub cache (models--org--name/{refs,snapshots}) resolves with HF_HUB_OFFLINE=1."""
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--fswap--tiny"
    shutil.copytree(saved_pipeline, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = FaceSwapPipeline.from_pretrained("fswap/tiny", cache_dir=cache)
    assert loaded.checkpoint_name == "fswap/tiny"  # the watermark's tag and the C2PA claim name the Hub id
    unmarked = {"watermark": False}
    assert np.array_equal(loaded(source_path, t1_image, **unmarked).image, pipe(source_path, t1_image, **unmarked).image)
    with pytest.raises(ModelNotFoundError, match="fswap/other"):
        FaceSwapPipeline.from_pretrained("fswap/other", cache_dir=cache)


def test_to_moves_networks_and_dtype(pipe, source_path, t1_image):
    pipe.to(dtype=torch.float64)
    try:
        assert pipe.dtype == torch.float64 and pipe.identity_encoder.dtype == torch.float64
        output = pipe(source_path, t1_image)
        assert output.image.dtype == np.uint8
    finally:
        pipe.to(dtype=torch.float32)


def test_two_stage_pipeline_runs_and_keeps_its_setting(pipe, tmp_path, t1_image):
    two_stage = FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        attribute_input="warped_source",
    )
    sources = [example_image("yaoming.jpg"), load_image(example_image("players.jpg"))]
    output = two_stage(sources, t1_image, target_faces=[0, 1], occlusion_aware=False, watermark=False)
    assert "first stage" in output.timings and [s.index for s in output.swapped] == [0, 1]
    loaded = FaceSwapPipeline.from_pretrained(two_stage.save_pretrained(tmp_path / "two-stage"))
    assert loaded.attribute_input == "warped_source"
    again = loaded(sources, t1_image, target_faces=[0, 1], occlusion_aware=False, watermark=False)
    assert np.array_equal(again.image, output.image)
    with pytest.raises(CheckpointError, match="attribute_input"):
        FaceSwapPipeline(pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator,
                         pipe.occlusion_segmenter, attribute_input="pixels")


@pytest.mark.parametrize("two_stage", [False, True], ids=["one-stage", "two-stage"])
@pytest.mark.parametrize("full_resolution", [False, True], ids=["crop", "full-resolution"])
def test_the_callers_target_array_is_never_written(pipe, t1_image, two_stage, full_resolution):
    # Faces are pasted in place into the pipeline's own copy of the target, never into the caller's.
    model = FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        attribute_input="warped_source" if two_stage else "target",
    )
    target = t1_image.copy()
    output = model(example_image("yaoming.jpg"), target, target_faces=[0, 1], full_resolution=full_resolution,
                   occlusion_aware=False)
    assert np.array_equal(target, t1_image)
    assert not np.shares_memory(output.image, target) and (output.image != target).any()


def test_shape_strength_moves_the_features_inside_the_face_only_and_is_kept(pipe, tmp_path, t1_image):
    two_stage = FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        attribute_input="warped_source", shape_strength=0.5,
    )
    options = {"refine": False, "occlusion_aware": False, "watermark": False}
    source = load_image(example_image("players.jpg"))
    plain = two_stage(source, t1_image, shape_strength=0.0, **options)
    shaped = two_stage(source, t1_image, **options)
    changed = np.any(plain.image != shaped.image, axis=2)
    inside = plain.blend_mask() > 0
    assert changed[inside].mean() > 0.2 and not changed[~inside].any()
    loaded = FaceSwapPipeline.from_pretrained(two_stage.save_pretrained(tmp_path / "shaped"))
    assert loaded.shape_strength == 0.5
    assert np.array_equal(loaded(source, t1_image, **options).image, shaped.image)
    with pytest.raises(CheckpointError, match="shape_strength"):
        FaceSwapPipeline(pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator,
                         pipe.occlusion_segmenter, attribute_input="warped_source", shape_strength=1.5)


def test_jaw_feather_share_narrows_the_lower_outline_only_and_is_kept(pipe, tmp_path, t1_image, source_path):
    narrow = FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        jaw_feather_share=0.5,
    )
    options = {"occlusion_aware": False, "watermark": False}
    wide = narrow(source_path, t1_image, jaw_feather_share=1.0, **options).swapped[0].blend_mask
    output = narrow(source_path, t1_image, **options)
    jaw = output.swapped[0].blend_mask
    top, bottom = jaw_rows(narrow.crop_size, narrow.crop_margin)
    assert np.array_equal(jaw[: int(top)], wide[: int(top)])  # the forehead's seam is feathered as widely
    assert (jaw[int(bottom) + 1 :] >= wide[int(bottom) + 1 :]).all() and jaw.sum() > wide.sum()
    loaded = FaceSwapPipeline.from_pretrained(narrow.save_pretrained(tmp_path / "jaw"))
    assert loaded.jaw_feather_share == 0.5
    assert np.array_equal(loaded(source_path, t1_image, **options).image, output.image)
    with pytest.raises(CheckpointError, match="jaw_feather_share"):
        FaceSwapPipeline(pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator,
                         pipe.occlusion_segmenter, jaw_feather_share=1.5)
    with pytest.raises(ValueError, match="jaw_feather_share"):
        narrow(source_path, t1_image, jaw_feather_share=-0.1, **options)


def test_refine_off_blends_the_first_stage_as_it_is(pipe, source_path, t1_image):
    two_stage = FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        attribute_input="warped_source",
    )
    options = {"occlusion_aware": False, "appearance_matching": False, "full_resolution": False}
    refined = two_stage(source_path, t1_image, **options).swapped[0]
    first = two_stage(source_path, t1_image, refine=False, **options).swapped[0]
    # The untrained generator's output is noise; the first stage keeps the target outside the face
    # and the source's texture inside it.
    outside = first.face_mask < 0.5
    assert np.array_equal(first.swapped_crop[outside], first.target_crop[outside])
    assert np.abs(refined.swapped_crop.astype(int) - first.target_crop.astype(int))[outside].mean() > 10
    with pytest.raises(ValueError, match="two-stage"):
        pipe(source_path, t1_image, refine=False)


def test_an_open_target_mouth_keeps_its_own_teeth_in_the_photo(pipe):
    """A closed source mouth warped onto an open one would smear its lips over the teeth."""
    from fswap.faces.masks import mouth_interior

    two_stage = FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        attribute_input="warped_source",
    )
    target = load_image(example_image("yaoming.jpg"))
    closed_mouth = load_image(example_image("players.jpg"))
    options = {"source_faces": 2, "refine": False, "occlusion_aware": False, "watermark": False}
    output = two_stage(closed_mouth, target, **options)
    teeth = mouth_interior(output.swapped[0].face.landmarks, target.shape)
    kept = teeth & (output.blend_mask() == 0)
    assert teeth.sum() > 100 and kept.sum() > 0.3 * teeth.sum()
    assert np.array_equal(output.image[kept], target[kept])
    # The lips around them, and the rest of the face, are swapped.
    face = output.blend_mask() > 0.5
    assert np.abs(output.image[face].astype(int) - target[face]).mean() > 3
    # Asked to, it stretches the source's closed mouth over the teeth.
    stretched = two_stage(closed_mouth, target, keep_open_mouths=False, **options)
    assert (stretched.blend_mask()[teeth] > 0.5).all()


# ------------------------------------------------------------------ prepare once, swap many
def test_sources_prepared_once_swap_several_targets_as_the_call_does(two_stage, source_path, t1_image):
    """`prepare_sources` + `swap_faces` are `__call__`'s two halves: bit for bit, and the prepared
    sources serve any number of targets (a video's frames, a folder of photos)."""
    faces = two_stage.face_analyzer.detect(t1_image)
    crop = np.ascontiguousarray(t1_image[:, : t1_image.shape[1] // 2])
    crop_faces = two_stage.face_analyzer.detect(crop)
    prepared = two_stage.prepare_sources(source_path, mirrors_for=[faces[2], crop_faces[0]])
    for target, target_faces, swap in ((t1_image, faces, [2]), (crop, crop_faces, [0])):
        expected = two_stage(source_path, target, target_faces=swap[0])
        output = two_stage.swap_faces(prepared, target, target_faces, swap)
        assert np.array_equal(output.image, expected.image)
        assert [s.index for s in output.swapped] == swap and output.notices == expected.notices
    with pytest.raises(ValueError, match=r"swap=\[6\] names faces beyond the 6 given"):
        two_stage.swap_faces(prepared, t1_image, faces, [6])


def test_sources_prepared_for_the_relit_rendering_find_their_identity_when_needed(two_stage, source_path, t1_image):
    faces = two_stage.face_analyzer.detect(t1_image)
    relit = two_stage.prepare_sources(source_path, options=SwapOptions(rendering="relit"))
    assert relit.identity is None  # the relit rendering runs no identity encoder
    pasted = two_stage.swap_faces(relit, t1_image, faces, [0], options=SwapOptions(watermark=False))
    again = two_stage.swap_faces(two_stage.prepare_sources(source_path), t1_image, faces, [0],
                                 options=SwapOptions(watermark=False))
    assert relit.identity is not None and np.array_equal(pasted.image, again.image)


def test_an_occlusion_filter_decides_what_is_pasted(two_stage, source_path, t1_image):
    """`occlusion_filter` sees the faces' occlusion masks before the blend masks are made from
    them: masks saying 'all covered' leave the photo as it was."""
    faces = two_stage.face_analyzer.detect(t1_image)
    prepared = two_stage.prepare_sources(source_path)
    seen = []

    def all_covered(masks: np.ndarray) -> np.ndarray:
        seen.append(masks.shape)
        return np.zeros_like(masks)

    output = two_stage.swap_faces(prepared, t1_image, faces, [0, 1], options=SwapOptions(watermark=False),
                                  occlusion_filter=all_covered)
    assert seen == [(2, two_stage.crop_size, two_stage.crop_size)]
    assert np.array_equal(output.image, t1_image) and output.blend_mask().max() == 0


def test_prepared_sources_in_place_of_photos_give_the_same_swaps(two_stage, t1_image):
    """Sources prepared once (`mirrors_for=[]`, as batch swapping does) swap every target as the
    photos do: used as they are where no mirror image is wanted, prepared again where one is."""
    source = np.ascontiguousarray(t1_image[:, ::-1])  # six faces turned the other way
    prepared = two_stage.prepare_sources(source, 1, mirrors_for=[])
    for face in range(6):
        alone = two_stage(source, t1_image, target_faces=face, source_faces=1, watermark=False)
        reused = two_stage(prepared, t1_image, target_faces=face, watermark=False)
        assert np.array_equal(reused.image, alone.image), face
        assert [s.texture_mirrored for s in reused.swapped] == [s.texture_mirrored for s in alone.swapped]
    assert prepared.asked_mirrors == ()  # what was prepared is left as it was
