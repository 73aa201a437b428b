"""What the training scripts share: the accelerator, epoch-ordered data, exact resume on any
number of processes, logging.

Data: sample i of a run is a pure function of (seed, i): the data item it is made from (every
item once per epoch, in an order drawn afresh each epoch: `EpochOrder`) and the randomness of
its augmentation. A step with B samples in all takes the next B sample indices; process r of W
takes the r-th slice of each micro-batch. So W processes with batch b see exactly the samples
one process with batch W·b sees, an epoch boundary inside a batch needs neither padding nor
dropping, and the data position is a sample count that does not depend on the process count.

Gradients: DDP averages them over processes, which equals the gradient of the whole batch when
every loss is a mean over the whole batch. Losses normalised by something the batch decides (the
labelled pixels, the same-person pairs) are rescaled by `WholeBatch` so that this holds too.

Exact resume: `accelerator.save_state` stores models and optimisers (and each process's RNG
state); `training_state.json` stores the step and the sample position; the learning rate is a
function of the step. A run resumed on another number of processes continues at the same step
and sample, and killing a run and resuming it gives the same weights as not killing it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import pickle
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from fswap.checkpoint_files import read_json
from fswap.errors import CheckpointError, FswapError
from fswap.fileio import write_atomically

STATE_FILE = "training_state.json"
_ORDER_STREAM = 0x5EED_0DE5  # keeps the epoch orders' random streams apart from the samples' [seed, index]


FACE_DATA_HELP = ("face data sets: folders from `fswap data prepare`, or Hugging Face data sets (a local "
                  "imagefolder, hf://datasets/<owner>/<name> or <owner>/<name>)")


def training_parser(description: str, *, steps: int, batch_size: int, learning_rate: float, every: int,
                    log_every: int, base_channels: int, data_help: str = FACE_DATA_HELP) -> argparse.ArgumentParser:
    """The options the training scripts share; each adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, help="JSON file whose keys set these options' defaults")
    parser.add_argument("--data", nargs="+", help=data_help)
    parser.add_argument("--output", type=Path, help="run folder: checkpoints, logs, the final model")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--base-channels", type=int, default=base_channels)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="samples per process per micro-batch (the step's batch is this x processes x accumulation)")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"],
                        help="default: the launch config's mixed_precision (bf16 in gpu_*.yaml)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="data loader processes (per training process)")
    parser.add_argument("--checkpoint-every", type=int, default=every)
    parser.add_argument("--validate-every", type=int, default=every)
    parser.add_argument("--log-every", type=int, default=log_every)
    parser.add_argument("--stop-after", type=int, help="leave after this many steps in this run, as if interrupted "
                        "(checkpointed; run again to continue: how CPU training spreads over sessions)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    return parser


def add_face_data_options(parser: argparse.ArgumentParser) -> None:
    """What the scripts that train on faces add to `training_parser(..., data_help=FACE_DATA_HELP)`."""
    parser.add_argument("--streaming", action="store_true",
                        help="stream the data sets instead of loading them (sets that do not fit the disk; "
                        "photos without fswap's landmarks are aligned as they come)")
    parser.add_argument("--val-faces", type=int, default=64, help="held-out faces read from a streamed set")


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse `argv`; keys of a --config JSON file become defaults, so the command line still wins."""
    args, _ = parser.parse_known_args(argv)
    if args.config:
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in json.loads(args.config.read_text()).items()})
    args = parser.parse_args(argv)
    if not args.data or not args.output:
        parser.error("--data and --output are required (directly or in --config)")
    for name in ("steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "validate_every", "log_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def make_accelerator(output_dir: Path, mixed_precision: str | None = None, gradient_accumulation_steps: int = 1,
                     log: bool = True):
    """The run's `Accelerator`. `mixed_precision` None leaves it to the launch config (`accelerate
    launch` passes it on); a value overrides the config."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    launched = int(os.environ.get("WORLD_SIZE", "1"))
    # accelerate forms a CPU (gloo) process group only when told to use the CPU, and its
    # multi-process launcher (torchrun) does not pass `use_cpu` on: without this, N processes
    # launched on a machine with no GPU would be N single-process runs writing one folder.
    cpu = launched > 1 and not torch.accelerator.is_available()
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=gradient_accumulation_steps,
        log_with="tensorboard" if log else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    if accelerator.num_processes != launched:
        raise RuntimeError(f"{launched} processes were launched but accelerate joined {accelerator.num_processes}: "
                           "launch with `accelerate launch --config_file` one of fswap/training/configs/*.yaml")
    return accelerator


class EpochOrder:
    """Sample index -> item index: epoch e (sample indices [e*n, (e+1)*n)) visits each of the n
    items once, in an order drawn from (seed, e)."""

    def __init__(self, size: int, seed: int):
        if size < 1:
            raise ValueError(f"an epoch needs at least one item, got {size}")
        self.size, self.seed = size, seed
        self._epoch, self._permutation = -1, np.arange(0)

    def __call__(self, index: int) -> int:
        epoch, position = divmod(index, self.size)
        if epoch != self._epoch:
            self._epoch = epoch
            self._permutation = np.random.default_rng([self.seed, _ORDER_STREAM, epoch]).permutation(self.size)
        return int(self._permutation[position])


class IndexedSamples(Dataset):
    """Sample `index` is `make_sample(order(index), np.random.default_rng([seed, index]))`, plus its index."""

    def __init__(self, make_sample: Callable[[int, np.random.Generator], dict], order: Callable[[int], int], seed: int):
        self.make_sample, self.order, self.seed = make_sample, order, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> dict:
        sample = self.make_sample(self.order(index), np.random.default_rng([self.seed, index]))
        return {**sample, "sample_index": torch.tensor(index)}


class SampleIndices(Sampler[int]):
    """This process's sample indices for `micro_batches` micro-batches from sample `start` on:
    micro-batch k of process r of W is [start + (k W + r) b, start + (k W + r + 1) b)."""

    def __init__(self, start: int, micro_batches: int, batch_size: int, rank: int, world: int):
        self.start, self.micro_batches, self.batch_size, self.rank, self.world = start, micro_batches, batch_size, rank, world

    def __iter__(self) -> Iterator[int]:
        for micro in range(self.micro_batches):
            first = self.start + (micro * self.world + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)

    def __len__(self) -> int:
        return self.micro_batches * self.batch_size


def samples_per_step(accelerator, batch_size: int) -> int:
    """Samples one optimiser step takes, over every process and micro-batch."""
    return batch_size * accelerator.num_processes * accelerator.gradient_accumulation_steps


def step_batches(dataset: IndexedSamples, accelerator, position: Position, total_steps: int, batch_size: int,
                 workers: int) -> Iterator[dict]:
    """This process's micro-batches from `position` to step `total_steps`, on its device."""
    micro_batches = (total_steps - position.step) * accelerator.gradient_accumulation_steps
    sampler = SampleIndices(position.samples, micro_batches, batch_size, accelerator.process_index,
                            accelerator.num_processes)
    yield from _device_batches(dataset, accelerator, batch_size, workers, sampler)


class StreamSamples(IterableDataset):
    """Samples made from a stream of rows (a `datasets.IterableDataset`, reshuffled each epoch),
    for data sets that do not fit the disk.

    Row g of the stream, counting on over epochs, makes sample g, and the samples are laid out over
    processes and micro-batches as `SampleIndices` lays out indices: every process reads the whole
    stream and makes only its own samples (each data loader worker only its micro-batches). So the
    position is a sample count on any number of processes, as with `IndexedSamples`; resuming
    reads past the rows already trained on. A row with no usable face makes its sample from this
    worker's previous face, so that every row still makes one sample.
    """

    def __init__(self, rows, to_face: Callable, make_sample: Callable, seed: int, start: int, batch_size: int,
                 rank: int, world: int, shuffle_buffer: int = 1000):
        self.rows = rows.shuffle(seed=seed, buffer_size=shuffle_buffer)
        self.to_face, self.make_sample, self.seed, self.start = to_face, make_sample, seed, start
        self.batch_size, self.rank, self.world = batch_size, rank, world

    def _mine(self, index: int, workers: int, worker: int) -> bool:
        part = (index - self.start) // self.batch_size  # the micro-batch slice it falls in, over every process
        return index >= self.start and part % self.world == self.rank and (part // self.world) % workers == worker

    def __iter__(self) -> Iterator[dict]:
        from collections import deque

        info = torch.utils.data.get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        recent: deque = deque(maxlen=64)  # this worker's last faces: swap sources, stand-ins for faceless rows
        waiting: list[int] = []  # samples whose rows had no face before this worker met one
        index = 0
        for epoch in itertools.count():
            self.rows.set_epoch(epoch)
            first = index
            for row in _rows(self.rows):
                index += 1
                if not self._mine(index - 1, workers, worker):
                    continue
                face = self.to_face(row, f"{epoch}:{index - 1}")
                if face is None and not recent:
                    waiting.append(index - 1)
                    continue
                for sample_index in [*waiting, index - 1]:
                    yield self._sample(recent[-1] if face is None else face, sample_index, recent)
                waiting = []
                if face is not None:
                    recent.append(face)
            if index == first:
                raise FswapError("the training data stream has no rows")

    def _sample(self, face, index: int, recent) -> dict:
        sample = self.make_sample(face, np.random.default_rng([self.seed, index]), list(recent))
        return {**sample, "sample_index": torch.tensor(index)}


def _rows(rows) -> Iterator[dict]:
    """Every row of a `datasets.IterableDataset`, in every data loader worker: iterating it directly
    would give each worker only some of its shards."""
    for batch in rows.iter(batch_size=64):
        for values in zip(*batch.values(), strict=True):
            yield dict(zip(batch, values, strict=True))


def stream_batches(stream: StreamSamples, accelerator, batch_size: int, workers: int) -> Iterator[dict]:
    """This process's micro-batches of `stream`, on its device."""
    yield from _device_batches(stream, accelerator, batch_size, workers)


def _device_batches(dataset, accelerator, batch_size: int, workers: int, sampler=None) -> Iterator[dict]:
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                        worker_init_fn=_ignore_stop_signals if workers > 0 else None)
    for batch in loader:
        yield {key: value.to(accelerator.device) if torch.is_tensor(value) else value for key, value in batch.items()}


def held_out_faces(args):
    """The validation faces: the "val" split of --data, or its first --val-faces usable faces when streamed."""
    from fswap.data.aligned import FaceRows, first_faces, open_faces, stream_rows

    if args.streaming:
        return first_faces(stream_rows(args.data, "val"), FaceRows(args.resolution), args.val_faces)
    return open_faces(args.data, "val", args.resolution)


def _ignore_stop_signals(worker_id: int) -> None:
    """Data workers leave stopping to the main process: a SIGTERM or Ctrl-C sent to the whole
    process group (a cluster's job cancel, a terminal) would otherwise kill them first, and the
    main loop would crash instead of saving a checkpoint and exiting cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def to_tensor_image(image: np.ndarray) -> torch.Tensor:
    """[S, S, 3] uint8 → [3, S, S] float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


def to_tensor_mask(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]


# ---------------------------------------------------------------------- checkpoints
def latest_checkpoint(output_dir: Path) -> Path | None:
    folders = sorted((output_dir / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    complete = [folder for folder in folders if (folder / STATE_FILE).is_file()]
    return complete[-1] if complete else None


@dataclass(frozen=True)
class Position:
    """How far a run is: optimiser steps taken, and samples drawn by every process together (the
    index where the next step's batch starts)."""

    step: int = 0
    samples: int = 0

    def after(self, steps: int, samples_per_step: int) -> Position:
        return Position(self.step + steps, self.samples + steps * samples_per_step)


def save_checkpoint(accelerator, output_dir: Path, step: int, keep: int = 2, extra: dict | None = None) -> Path:
    """`save_state` into a temporary folder, then rename: an interrupted save leaves no half checkpoint.
    Every process calls it; the main process writes the models and optimisers, each its RNG state."""
    folder = output_dir / "checkpoints" / f"step_{step}"
    partial = folder.with_name(folder.name + ".partial")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # every process's files are in `partial` before it moves
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps({"step": step, **(extra or {})}) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
        older = sorted((output_dir / "checkpoints").glob("step_*[0-9]"), key=lambda p: int(p.name.split("_")[1]))
        for stale in older[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def save_position(accelerator, output_dir: Path, position: Position, **extra) -> Path:
    return save_checkpoint(accelerator, output_dir, position.step, extra={"samples": position.samples, **extra})


def resume(accelerator, output_dir: Path, samples_per_step: int = 0) -> Position:
    """Load the newest complete checkpoint under `output_dir`; return where it was (the start when none).

    The state may come from another number of processes: models and optimisers are the same on
    every process, and a process with no RNG state of its own needs none (samples are seeded by
    their index). States written before the sample position was stored assume `samples_per_step`.
    """
    folder = latest_checkpoint(output_dir)
    if folder is None:
        return Position()
    try:
        accelerator.load_state(str(folder))
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError) as error:
        # torch.load refuses pickled code (weights_only): a damaged or tampered state, never run.
        raise CheckpointError(f"the training state {folder} cannot be loaded ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200]}); move it away to resume from an older one, "
                              "or start afresh in another folder") from error
    state = read_json(folder / STATE_FILE)
    position = Position(state["step"], state.get("samples", state["step"] * samples_per_step))
    accelerator.print(f"resumed from {folder} at step {position.step}, sample {position.samples}")
    return position


def previous_wall_time(output_dir: Path) -> float:
    """Seconds of training the newest checkpoint of `output_dir` records (0 for a new run)."""
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        return 0.0
    return json.loads((checkpoint / STATE_FILE).read_text()).get("wall_s", 0.0)


def start_run(accelerator, output_dir: Path, name: str, args, **model_configs) -> None:
    """On the main process: open the trackers and write `run_config.json` (the options and model configs)."""
    if not accelerator.is_main_process:
        return
    options = {key: str(value) for key, value in vars(args).items()}
    accelerator.init_trackers(name, config={**options, "processes": accelerator.num_processes})
    write_json(output_dir / "run_config.json", {**options, "processes": accelerator.num_processes, **model_configs})


def keep_training(step: int, start_step: int, args, stop: StopSignal, accelerator) -> bool:
    """Whether the loop takes another step: steps left, no stop signal on any process, and
    `--stop-after` not reached. Every process gets the same answer, so none waits for the others
    at a collective they have left."""
    if stop.requested:
        accelerator.set_trigger()
    stop_requested = accelerator.check_trigger()  # an all-reduce: one process's signal stops them all
    return (step < args.steps and not stop_requested
            and (args.stop_after is None or step - start_step < args.stop_after))


def finish(accelerator) -> None:
    """Close the trackers and leave together: the main process has written the final model before
    any process takes the process group down."""
    accelerator.wait_for_everyone()
    accelerator.end_training()


class StopSignal:
    """Turns SIGTERM / SIGINT into a flag checked once per step, so the loop can save and exit cleanly."""

    def __init__(self):
        self.requested = False
        self._previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class Progress:
    """A tqdm bar with an ETA on the main process; silent elsewhere."""

    total: int
    start: int
    enabled: bool

    def __post_init__(self):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.start, disable=not self.enabled, dynamic_ncols=True,
                        unit="step", smoothing=0.05)

    def update(self, **metrics):
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


def log_images(accelerator, tag: str, grid: np.ndarray, step: int) -> None:
    """Write an [H, W, 3] uint8 grid to TensorBoard (main process only)."""
    if not accelerator.is_main_process or not accelerator.log_with:
        return
    try:
        tracker = accelerator.get_tracker("tensorboard", unwrap=True)
    except Exception:  # noqa: BLE001 - no tracker configured
        return
    tracker.add_image(tag, grid, step, dataformats="HWC")


def image_grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Tile equally sized [S, S, 3] uint8 images (or [S, S] masks in [0, 1]) row by row."""
    def as_rgb(tile):
        if tile.ndim == 2:
            tile = np.repeat((np.clip(tile, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
        return tile

    return np.concatenate([np.concatenate([as_rgb(t) for t in row], axis=1) for row in rows], axis=0)


def cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up, then a cosine from 1 down to 0.1 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def cosine_schedule(optimizer, warmup_steps: int, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, warmup_steps, total_steps))


def set_learning_rate(optimizer, learning_rate: float) -> None:
    """The rate as a function of the step, set before the step: nothing to store or resume, and the
    same on any number of processes (accelerate's prepared schedulers step once per process)."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


# ---------------------------------------------------------------------- several processes
def process_mean(values: torch.Tensor, accelerator) -> torch.Tensor:
    """The mean of `values` over processes (an all-reduce; the tensor itself with one process)."""
    if accelerator.num_processes == 1:
        return values
    return accelerator.reduce(values.detach().float(), reduction="mean")


class WholeBatch:
    """Losses normalised by a count the batch decides (labelled pixels, pairs of one kind), made
    means over the whole batch of every process.

    DDP averages gradients over processes: a loss that is a plain mean over this process's batch
    then gives the whole batch's gradient, but `sum / count` with the count of this process's
    batch does not. `WholeBatch(accelerator, pairs=count)("pairs", loss)` rescales such a loss to
    `sum / mean count over processes`, so W processes with batch b train as one with batch W*b.
    All counts of a step go through one all-reduce; every process must create it, with the same names.
    """

    def __init__(self, accelerator, **counts: torch.Tensor):
        self.local = {name: count.detach().float() for name, count in counts.items()}
        self.processes = accelerator.num_processes
        means = process_mean(torch.stack(list(self.local.values())), accelerator)
        self.mean = dict(zip(self.local, means, strict=True))

    def __call__(self, name: str, loss: torch.Tensor) -> torch.Tensor:
        """`loss` = (sum over this process's items) / max(count, 1) -> sum / max(mean count, 1 / W):
        averaged over W processes, the sum over all of them / max(total count, 1), as with one."""
        if self.processes == 1:
            return loss
        return loss * self.local[name].clamp(min=1) / self.mean[name].clamp(min=1 / self.processes)


def evaluate_shared(items: list, evaluate: Callable[[list], list], accelerator) -> list:
    """`evaluate(items)` with each process taking a contiguous share (uneven shares are fine);
    every process gets every result, in the order of `items`."""
    from accelerate.utils import gather_object

    with accelerator.split_between_processes(items) as share:
        results = list(evaluate(share)) if len(share) else []
    return gather_object(results) if accelerator.num_processes > 1 else results


def averaged_over_processes(metrics: dict[str, float], accelerator) -> dict[str, float]:
    """Per-step training metrics averaged over processes, for the log (every process passes the same keys)."""
    if accelerator.num_processes == 1:
        return metrics
    names = sorted(metrics)
    values = process_mean(torch.tensor([metrics[name] for name in names], device=accelerator.device), accelerator)
    return dict(zip(names, values.tolist(), strict=True))


def hardware(processes: int) -> str:
    """What the run trained on, for its training record."""
    import platform

    if torch.cuda.is_available():
        return f"{processes} process(es), one {torch.cuda.get_device_name()} GPU each"
    return (f"{processes} process(es) on {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} CPU thread(s) each, no GPU")


def write_json(path: Path, payload: dict) -> None:
    write_atomically(path, (json.dumps(payload, indent=2) + "\n").encode())


class Stopwatch:
    def __init__(self, already: float = 0.0):
        self.start, self.already = time.time(), already

    @property
    def seconds(self) -> float:
        return self.already + time.time() - self.start
