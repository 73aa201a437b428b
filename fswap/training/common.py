"""What both training scripts share: the accelerator, step-indexed data, exact resume, logging.

Exact resume: every sample is a pure function of (seed, global sample index), so the data
position is the step counter; `accelerator.save_state` stores models, optimisers,
schedulers and RNG states, and `training_state.json` stores the step. Killing a run and
resuming it gives the same weights as not killing it.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fswap.checkpoint_files import read_json
from fswap.errors import CheckpointError
from fswap.fileio import write_atomically

STATE_FILE = "training_state.json"


def training_parser(description: str, *, steps: int, batch_size: int, learning_rate: float, every: int,
                    log_every: int, base_channels: int) -> argparse.ArgumentParser:
    """The options both training scripts take; each adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, help="JSON file whose keys set these options' defaults")
    parser.add_argument("--data", nargs="+", help="data set folder(s) from `fswap data prepare`")
    parser.add_argument("--output", type=Path, help="run folder: checkpoints, logs, the final model")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--base-channels", type=int, default=base_channels)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="data loader processes")
    parser.add_argument("--checkpoint-every", type=int, default=every)
    parser.add_argument("--validate-every", type=int, default=every)
    parser.add_argument("--log-every", type=int, default=log_every)
    parser.add_argument("--stop-after", type=int, help="leave after this many steps in this run, as if interrupted "
                        "(checkpointed; run again to continue: how CPU training spreads over sessions)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    return parser


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse `argv`; keys of a --config JSON file become defaults, so the command line still wins."""
    args, _ = parser.parse_known_args(argv)
    if args.config:
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in json.loads(args.config.read_text()).items()})
    args = parser.parse_args(argv)
    if not args.data or not args.output:
        parser.error("--data and --output are required (directly or in --config)")
    return args


def make_accelerator(output_dir: Path, mixed_precision: str = "no", gradient_accumulation_steps: int = 1, log: bool = True):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    return Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=gradient_accumulation_steps,
        log_with="tensorboard" if log else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )


class SampleIndices(Sampler[int]):
    """Global sample indices for this process, from `start_step` on: step s, micro-batch a, rank r
    gets indices ((s * accumulation + a) * world + r) * batch + j."""

    def __init__(self, start_step: int, total_steps: int, batch_size: int, accumulation: int, rank: int, world: int):
        self.start_step, self.total_steps = start_step, total_steps
        self.batch_size, self.accumulation, self.rank, self.world = batch_size, accumulation, rank, world

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start_step, self.total_steps):
            for micro in range(self.accumulation):
                first = ((step * self.accumulation + micro) * self.world + self.rank) * self.batch_size
                yield from range(first, first + self.batch_size)

    def __len__(self) -> int:
        return (self.total_steps - self.start_step) * self.accumulation * self.batch_size


class IndexedSamples(Dataset):
    """A dataset whose item `index` is `make_sample(np.random.default_rng([seed, index]))`."""

    def __init__(self, make_sample: Callable[[np.random.Generator], dict], seed: int):
        self.make_sample, self.seed = make_sample, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> dict:
        return self.make_sample(np.random.default_rng([self.seed, index]))


def step_batches(dataset: IndexedSamples, accelerator, start_step: int, total_steps: int, batch_size: int,
                 workers: int) -> Iterator[dict]:
    sampler = SampleIndices(start_step, total_steps, batch_size, accelerator.gradient_accumulation_steps,
                            accelerator.process_index, accelerator.num_processes)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                        worker_init_fn=_ignore_stop_signals if workers > 0 else None)
    for batch in loader:
        yield {key: value.to(accelerator.device) if torch.is_tensor(value) else value for key, value in batch.items()}


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


def save_checkpoint(accelerator, output_dir: Path, step: int, keep: int = 2, extra: dict | None = None) -> Path:
    """`save_state` into a temporary folder, then rename: an interrupted save leaves no half checkpoint."""
    folder = output_dir / "checkpoints" / f"step_{step}"
    partial = folder.with_name(folder.name + ".partial")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
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


def resume(accelerator, output_dir: Path) -> int:
    """Load the newest complete checkpoint under `output_dir`; return its step (0 when none)."""
    folder = latest_checkpoint(output_dir)
    if folder is None:
        return 0
    try:
        accelerator.load_state(str(folder))
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError) as error:
        # torch.load refuses pickled code (weights_only): a damaged or tampered state, never run.
        raise CheckpointError(f"the training state {folder} cannot be loaded ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200]}); move it away to resume from an older one, "
                              "or start afresh in another folder") from error
    step = read_json(folder / STATE_FILE)["step"]
    accelerator.print(f"resumed from {folder} at step {step}")
    return step


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
    accelerator.init_trackers(name, config=options)
    write_json(output_dir / "run_config.json", {**options, **model_configs})


def keep_training(step: int, start_step: int, args, stop: StopSignal) -> bool:
    """Whether the loop takes another step: steps left, no stop signal, and `--stop-after` not reached."""
    return (step < args.steps and not stop.requested
            and (args.stop_after is None or step - start_step < args.stop_after))


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


def cosine_schedule(optimizer, warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def write_json(path: Path, payload: dict) -> None:
    write_atomically(path, (json.dumps(payload, indent=2) + "\n").encode())


class Stopwatch:
    def __init__(self, already: float = 0.0):
        self.start, self.already = time.time(), already

    @property
    def seconds(self) -> float:
        return self.already + time.time() - self.start
