"""The fswap networks: tiny real models, real faces for the ArcFace conversion, no mocks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.flop_counter import FlopCounterMode

from fswap.assets import insightface_images_dir, vectron_model_dir
from fswap.errors import CheckpointError, ModelNotFoundError
from fswap.models import (
    AttributeEncoder,
    Discriminator,
    Generator,
    IdentityEncoder,
    OcclusionSegmenter,
    load_component,
    mean_identity,
    modulated_conv2d,
)
from fswap.models.convert_arcface import convert_arcface_onnx

SIZE = 32  # every TINY_CONFIG works on 32-px crops
WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: oneDNN's thread hand-offs cost more than they save
    # (measured 1 s vs 16 ms for the tiny IdentityEncoder under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _image(
    batch: int = 2, size: int = SIZE, seed: int = 0, dtype=torch.float32, device="cpu"
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device=device, dtype=dtype)


def _mask(batch: int = 2, size: int = SIZE, dtype=torch.float32, device="cpu") -> torch.Tensor:
    mask = torch.ones(batch, 1, size, size, dtype=dtype, device=device)
    mask[..., size // 2 :, : size // 3] = 0  # an occluder in the lower left
    return mask


def _attribute_features(batch: int = 2, dtype=torch.float32, device="cpu") -> list[torch.Tensor]:
    config = Generator.TINY_CONFIG
    generator = torch.Generator().manual_seed(1)
    return [
        torch.randn(batch, channels, 8 * 2**i, 8 * 2**i, generator=generator).to(device=device, dtype=dtype)
        for i, channels in enumerate(config["attribute_channels"])
    ]


def _identity(batch: int = 2, dtype=torch.float32, device="cpu") -> torch.Tensor:
    embedding = torch.randn(
        batch, Generator.TINY_CONFIG["identity_dim"], generator=torch.Generator().manual_seed(2)
    )
    return F.normalize(embedding, dim=-1).to(device=device, dtype=dtype)


def _tensors(output) -> list[torch.Tensor]:
    """Every tensor in a model output, flattened in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):  # diffusers BaseOutput
        return [t for value in output.values() for t in _tensors(value)]
    return [t for item in output for t in _tensors(item)]


# name -> (class, config, inputs(dtype, device), expected shapes of the flattened outputs for a batch of 2)
CASES = {
    "identity": (
        IdentityEncoder,
        IdentityEncoder.TINY_CONFIG,
        lambda **kw: (_image(size=48, **kw),),  # not the 32-px input size: exercises the resize
        [(2, 16)],
    ),
    "attributes": (
        AttributeEncoder,
        AttributeEncoder.TINY_CONFIG,
        lambda **kw: (_image(**kw), _mask(**kw)),
        [(2, 16, 8, 8), (2, 16, 16, 16), (2, 8, 32, 32)],
    ),
    "attributes_variational": (
        AttributeEncoder,
        {**AttributeEncoder.TINY_CONFIG, "variational": True},
        lambda **kw: (_image(**kw), _mask(**kw)),
        [(2, 16, 8, 8), (2, 16, 16, 16), (2, 8, 32, 32), (2, 16, 8, 8), (2, 16, 8, 8)],
    ),
    "generator": (
        Generator,
        Generator.TINY_CONFIG,
        lambda **kw: (_identity(**kw), _attribute_features(**kw)),
        [(2, 3, 32, 32), (2, 1, 8, 8), (2, 1, 16, 16), (2, 1, 32, 32)],
    ),
    "generator_zero_map": (
        Generator,
        {**Generator.TINY_CONFIG, "learned_initial_map": False},
        lambda **kw: (_identity(**kw), _attribute_features(**kw)),
        [(2, 3, 32, 32), (2, 1, 8, 8), (2, 1, 16, 16), (2, 1, 32, 32)],
    ),
    "segmenter": (
        OcclusionSegmenter,
        OcclusionSegmenter.TINY_CONFIG,
        lambda **kw: (_image(**kw),),
        [(2, 1, 32, 32)],
    ),
    "discriminator": (
        Discriminator,
        Discriminator.TINY_CONFIG,
        lambda **kw: (_image(**kw),),
        # scale 0: 32 -> 16 -> 8 -> 7 -> logits 6; scale 1: 16 -> 8 -> 4 -> 3 -> logits 2
        [
            (2, 1, 6, 6),
            (2, 8, 16, 16),
            (2, 16, 8, 8),
            (2, 16, 7, 7),
            (2, 1, 2, 2),
            (2, 8, 8, 8),
            (2, 16, 4, 4),
            (2, 16, 3, 3),
        ],
    ),
}


def _build(name: str, **overrides):
    cls, config, make_inputs, _ = CASES[name]
    torch.manual_seed(0)
    return cls(**{**config, **overrides}), make_inputs


@pytest.mark.parametrize("name", list(CASES))
def test_forward_shapes_and_finite(name):
    model, make_inputs = _build(name)
    outputs = _tensors(model(*make_inputs()))
    assert [tuple(t.shape) for t in outputs] == CASES[name][3]
    assert all(torch.isfinite(t).all() for t in outputs)


@pytest.mark.parametrize("name", [n for n in CASES if n != "generator_zero_map"])
def test_gradients_reach_every_trainable_parameter(name):
    model, make_inputs = _build(name)
    model.train()
    inputs = [x.requires_grad_(True) if isinstance(x, torch.Tensor) else x for x in make_inputs()]
    outputs = _tensors(model(*inputs))
    # Random weights: a plain sum would be blind to parameters whose effect a normalisation cancels.
    generator = torch.Generator().manual_seed(3)
    loss = sum((t * torch.randn(t.shape, generator=generator)).sum() for t in outputs)
    loss.backward()

    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if name == "identity":
        assert not trainable, "the identity encoder must be frozen"
    else:
        assert trainable
        dead = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not dead, f"no gradient reaches {dead}"
    assert inputs[0].grad is not None and inputs[0].grad.abs().sum() > 0


def test_zero_initial_map_leaves_first_conv_without_gradient():
    # Documents why learned_initial_map defaults to True: doc 004's zero map starves block 0's conv.
    model, make_inputs = _build("generator_zero_map")
    model(*make_inputs()).image.sum().backward()
    assert model.blocks[0].conv.weight.grad.abs().sum() == 0
    assert model.blocks[1].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(CASES))
def test_save_and_load_give_identical_outputs(name, tmp_path):
    model, make_inputs = _build(name)
    model.eval()
    inputs = make_inputs()
    with torch.no_grad():
        before = _tensors(model(*inputs))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SHA256SUMS", "config.json", WEIGHTS]

    loaded = load_component(type(model), tmp_path)
    assert type(loaded) is type(model) and not loaded.training
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(model.config)  # tuples stay tuples
    with torch.no_grad():
        after = _tensors(loaded(*inputs))
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    if name == "identity":
        assert not any(p.requires_grad for p in loaded.parameters())


@pytest.mark.parametrize("name", ["identity", "attributes", "generator", "segmenter", "discriminator"])
def test_float64_in_float64_out(name):
    model, make_inputs = _build(name)
    model = model.to(torch.float64).eval()
    outputs = _tensors(model(*make_inputs(dtype=torch.float64)))
    assert all(t.dtype == torch.float64 for t in outputs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["identity", "attributes", "generator", "segmenter", "discriminator"])
def test_runs_on_cuda(name):
    model, make_inputs = _build(name)
    model = model.to("cuda").eval()
    with torch.no_grad():
        cpu = _tensors(model.to("cpu")(*make_inputs()))
        gpu = _tensors(model.to("cuda")(*make_inputs(device="cuda")))
    assert all(g.device.type == "cuda" for g in gpu)
    assert all(torch.allclose(c, g.cpu(), atol=1e-4) for c, g in zip(cpu, gpu, strict=True))


# --- modulated convolution -------------------------------------------------------------------------


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("kernel_size", [1, 3])
def test_modulated_conv2d_fused_equals_unfused(demodulate, kernel_size):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 10, 12, generator=generator)
    weight = torch.randn(5, 8, kernel_size, kernel_size, generator=generator) / (8 * kernel_size**2) ** 0.5
    styles = torch.randn(3, 8, generator=generator) + 1
    fused = modulated_conv2d(x, weight, styles, demodulate=demodulate, fused=True)
    unfused = modulated_conv2d(x, weight, styles, demodulate=demodulate, fused=False)
    assert fused.shape == (3, 5, 10, 12)
    torch.testing.assert_close(fused, unfused, atol=1e-5, rtol=1e-5)
    # Modulation is per sample: sample 0 alone gives the same result as in the batch.
    torch.testing.assert_close(modulated_conv2d(x[:1], weight, styles[:1], demodulate=demodulate), fused[:1])


def test_modulated_conv2d_demodulation_normalises_the_kernel():
    # With unit-variance i.i.d. input, a demodulated kernel keeps the output at unit variance.
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 32, 32, generator=generator)
    weight = torch.randn(16, 64, 3, 3, generator=generator) * 7.0
    styles = torch.rand(2, 64, generator=generator) * 5
    out = modulated_conv2d(x, weight, styles)[..., 1:-1, 1:-1]
    assert 0.9 < out.std().item() < 1.1


def test_generator_fused_and_unfused_agree():
    model, make_inputs = _build("generator")
    fused = model(*make_inputs(), fused_modconv=True)
    unfused = model(*make_inputs(), fused_modconv=False)
    torch.testing.assert_close(fused.image, unfused.image, atol=1e-5, rtol=1e-5)


# --- how the networks fit together ------------------------------------------------------------------


def test_attribute_encoder_feeds_generator():
    attribute_encoder = AttributeEncoder(**AttributeEncoder.TINY_CONFIG)
    generator = Generator(
        **{**Generator.TINY_CONFIG, "attribute_channels": attribute_encoder.output_channels}
    )
    features = attribute_encoder(_image(), _mask()).attribute_features
    output = generator(_identity(), features)
    assert output.image.shape == (2, 3, SIZE, SIZE)
    assert output.image.abs().max() <= 1
    assert all(((m >= 0) & (m <= 1)).all() for m in output.control_masks)


def test_default_configs_line_up_and_generator_is_cheap():
    # no_grad as in a benchmark: torch's module hooks reject parameter views made under no_grad.
    with torch.device("meta"), torch.no_grad():
        attribute_encoder = AttributeEncoder()
        generator = Generator(attribute_channels=attribute_encoder.output_channels)
        assert generator.config.attribute_channels == Generator().config.attribute_channels
        target_image, occlusion_mask = torch.zeros(1, 3, 256, 256), torch.ones(1, 1, 256, 256)
        features = attribute_encoder(target_image, occlusion_mask).attribute_features
        identity_embedding = torch.zeros(1, 512)
        with FlopCounterMode(display=False) as counter:
            output = generator(identity_embedding, features)
    assert output.image.shape == (1, 3, 256, 256)
    assert counter.get_total_flops() <= 10e9


def test_generator_projects_attribute_features_of_other_widths():
    model = Generator(**{**Generator.TINY_CONFIG, "attribute_channels": (4, 8, 12)})
    assert isinstance(model.blocks[0].attribute_proj, torch.nn.Conv2d)
    features = [torch.randn(2, c, 8 * 2**i, 8 * 2**i) for i, c in enumerate((4, 8, 12))]
    assert model(_identity(), features).image.shape == (2, 3, SIZE, SIZE)


def test_generator_rejects_mismatched_attribute_features():
    model, _ = _build("generator")
    features = _attribute_features()
    with pytest.raises(ValueError, match="attribute features"):
        model(_identity(), features[:-1])
    with pytest.raises(ValueError, match=r"attribute_features\[2\]"):
        model(_identity(), [*features[:-1], features[-1][:, :4]])
    with pytest.raises(ValueError, match="identity_embedding"):
        model(_identity()[:, :8], features)


def test_variational_bottleneck_samples_in_training_only():
    model, make_inputs = _build("attributes_variational")
    inputs = make_inputs()
    model.train()
    first, second = model(*inputs), model(*inputs)
    assert not torch.equal(first.attribute_features[0], second.attribute_features[0])
    model.eval()
    assert torch.equal(model(*inputs).attribute_features[0], model(*inputs).attribute_features[0])
    assert first.mean is not None and first.logvar is not None
    assert model(*inputs, sample_posterior=False).attribute_features[0].shape == (2, 16, 8, 8)


def test_segmenter_mask_is_a_probability():
    model, make_inputs = _build("segmenter")
    mask = model.predict_mask(*make_inputs())
    assert mask.shape == (2, 1, SIZE, SIZE) and ((mask > 0) & (mask < 1)).all()
    torch.testing.assert_close(mask, torch.sigmoid(model(*make_inputs())))


BAD_CONFIGS = [
    (IdentityEncoder, {**IdentityEncoder.TINY_CONFIG, "input_size": 30}, "input_size"),
    (IdentityEncoder, {**IdentityEncoder.TINY_CONFIG, "residual_blocks": (1, 1)}, "same length"),
    (IdentityEncoder, {**IdentityEncoder.TINY_CONFIG, "stem_groups": 3}, "stem_groups"),
    (AttributeEncoder, {**AttributeEncoder.TINY_CONFIG, "in_channels": 5}, "in_channels"),
    (AttributeEncoder, {**AttributeEncoder.TINY_CONFIG, "block_out_channels": (8, 10)}, "divisible"),
    (AttributeEncoder, {**AttributeEncoder.TINY_CONFIG, "sample_size": 30}, "sample_size"),
    (Generator, {**Generator.TINY_CONFIG, "attribute_channels": (16, 8)}, "one entry per generator block"),
    (Generator, {**Generator.TINY_CONFIG, "sample_size": 64}, "sample_size"),
    (OcclusionSegmenter, {**OcclusionSegmenter.TINY_CONFIG, "layers_per_block": 0}, "layers_per_block"),
    (OcclusionSegmenter, {**OcclusionSegmenter.TINY_CONFIG, "block_out_channels": (8,)}, "at least 2"),
    (Discriminator, {**Discriminator.TINY_CONFIG, "num_scales": 3}, "too small"),
]


@pytest.mark.parametrize(("cls", "config", "message"), BAD_CONFIGS)
def test_bad_configs_raise_value_error(cls, config, message):
    with pytest.raises(ValueError, match=message):
        cls(**config)


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("attributes", lambda: (_image(size=30), _mask(size=30)), "divisible by 4"),
        ("attributes", lambda: (_image(),), "pass occlusion_mask"),
        ("attributes", lambda: (_image(), _mask(size=16)), "must match"),
        ("segmenter", lambda: (_image()[:, :1],), r"\[B, 3, H, W\]"),
        ("identity", lambda: (_image().to(torch.uint8),), "floating-point"),
    ],
)
def test_bad_inputs_raise_value_error(name, inputs, message):
    model, _ = _build(name)
    with pytest.raises(ValueError, match=message):
        model(*inputs())


# --- strict loading ---------------------------------------------------------------------------------


@pytest.fixture
def saved_generator(tmp_path):
    model, _ = _build("generator")
    model.save_pretrained(tmp_path)
    (tmp_path / "SHA256SUMS").unlink()  # the weights are edited below, as by hand: their hash would refuse them first
    return tmp_path, load_file(tmp_path / WEIGHTS)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.pop("to_rgb.bias"), r"missing keys: to_rgb\.bias"),
        (lambda sd: sd.__setitem__("blocks.9.extra", torch.zeros(2)), r"unexpected keys: blocks\.9\.extra"),
        (lambda sd: sd.__setitem__("to_rgb.bias", torch.zeros(4)), r"to_rgb\.bias.*\[3\].*\[4\]"),
    ],
    ids=["missing", "unexpected", "wrong_shape"],
)
def test_strict_loading_names_the_bad_keys(saved_generator, edit, message):
    folder, state_dict = saved_generator
    edit(state_dict)
    save_file(state_dict, folder / WEIGHTS)
    with pytest.raises(CheckpointError, match=message):
        load_component(Generator, folder)


def test_strict_loading_checks_class_and_config(saved_generator):
    folder, _ = saved_generator
    with pytest.raises(CheckpointError, match="holds a Generator, not a OcclusionSegmenter"):
        load_component(OcclusionSegmenter, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_heads": 4}))
    with pytest.raises(CheckpointError, match="num_heads"):
        load_component(Generator, folder)


def test_strict_loading_needs_safetensors(saved_generator):
    folder, state_dict = saved_generator
    (folder / WEIGHTS).unlink()
    torch.save(state_dict, folder / "diffusion_pytorch_model.bin")  # a pickle: must not be read
    with pytest.raises(ModelNotFoundError, match="safetensors"):
        load_component(Generator, folder)


def test_load_component_subfolder(tmp_path):
    model, make_inputs = _build("segmenter")
    model.save_pretrained(tmp_path / "occlusion_segmenter")
    loaded = load_component(OcclusionSegmenter, tmp_path, subfolder="occlusion_segmenter")
    assert torch.equal(loaded(*make_inputs()), model.eval()(*make_inputs()))


# --- the identity encoder against insightface's ONNX ------------------------------------------------


@pytest.fixture(scope="module")
def arcface():
    return convert_arcface_onnx(vectron_model_dir() / "w600k_mbf.onnx")


@pytest.fixture(scope="module")
def aligned_faces():
    """BGR 112x112 ArcFace crops: Tom Hanks (pre-aligned) and the six faces of t1.jpg."""
    from insightface.model_zoo import get_model
    from insightface.utils import face_align

    detector = get_model(str(vectron_model_dir() / "scrfd_500m_bnkps.onnx"))
    detector.prepare(ctx_id=-1, input_size=(640, 640))
    photo = cv2.imread(str(insightface_images_dir() / "t1.jpg"))
    _, keypoints = detector.detect(photo, input_size=(640, 640))
    assert len(keypoints) == 6
    crops = [face_align.norm_crop(photo, kps, 112) for kps in keypoints]
    return [cv2.imread(str(insightface_images_dir() / "Tom_Hanks_54745.png")), *crops]


def _to_rgb_tensor(bgr_crops) -> torch.Tensor:
    rgb = np.stack([crop[:, :, ::-1] for crop in bgr_crops]).astype(np.float32)
    return torch.from_numpy(rgb).permute(0, 3, 1, 2) / 127.5 - 1


def test_identity_encoder_matches_onnxruntime(arcface, aligned_faces):
    from insightface.model_zoo import get_model

    # onnxruntime on the ONNX file, with insightface's own preprocessing of the BGR crops.
    reference = get_model(str(vectron_model_dir() / "w600k_mbf.onnx"))
    expected = F.normalize(torch.from_numpy(reference.get_feat(aligned_faces)), dim=-1)
    with torch.no_grad():
        embeddings = arcface(_to_rgb_tensor(aligned_faces))
    cosine = (embeddings * expected).sum(dim=-1)
    assert cosine.min() >= 0.9999, cosine
    # The faces are different people: a conversion that collapsed them would also "match" poorly here.
    different = embeddings @ embeddings.T - torch.eye(len(aligned_faces))
    assert different.max() < 0.5
    # Same face at another resolution: the internal resize keeps the identity.
    upscaled = F.interpolate(_to_rgb_tensor(aligned_faces[:1]), size=224, mode="bilinear", antialias=True)
    with torch.no_grad():
        assert (arcface(upscaled) * embeddings[:1]).sum() > 0.95


def test_identity_encoder_is_frozen_but_differentiable(arcface, aligned_faces):
    images = _to_rgb_tensor(aligned_faces[:2]).requires_grad_(True)
    embeddings = arcface(images)
    assert not any(p.requires_grad for p in arcface.parameters())
    (1 - embeddings[0] @ embeddings[1]).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_encode_neutralises_occluded_pixels(arcface, aligned_faces):
    faces = _to_rgb_tensor(aligned_faces[:2])
    with torch.no_grad():
        clean = arcface(faces)
        assert torch.equal(arcface.encode(faces, torch.ones(2, 1, 112, 112)), clean)
        # Paste the other person's lower face in and tell encode() about it.
        visible_mask = torch.ones(2, 1, 112, 112)
        visible_mask[..., 70:, :] = 0
        occluded = faces * visible_mask + faces.flip(0) * (1 - visible_mask)
        naive = (arcface(occluded) * clean).sum(-1)
        neutralised = (arcface.encode(occluded, visible_mask) * clean).sum(-1)
    assert (neutralised > naive).all()
    with pytest.raises(ValueError, match="visible_mask"):
        arcface.encode(faces, visible_mask[:1])


def test_mean_identity():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(4, 16, generator=generator)
    mean = mean_identity(embeddings)
    assert mean.shape == (16,)
    torch.testing.assert_close(mean.norm(), torch.tensor(1.0))
    torch.testing.assert_close(mean, F.normalize(F.normalize(embeddings, dim=-1).sum(0), dim=0))
    torch.testing.assert_close(mean_identity(embeddings[:1])[None], F.normalize(embeddings[:1], dim=-1))
    assert mean_identity(embeddings.expand(3, 4, 16)).shape == (3, 16)
    assert IdentityEncoder.mean_identity is mean_identity


def test_convert_rejects_a_config_that_does_not_fit():
    with pytest.raises(CheckpointError, match="Conv/PRelu"):
        convert_arcface_onnx(vectron_model_dir() / "w600k_mbf.onnx", residual_blocks=(4, 6, 3))
    with pytest.raises(ModelNotFoundError):
        convert_arcface_onnx(vectron_model_dir() / "missing.onnx")
