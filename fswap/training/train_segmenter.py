"""Train the occlusion segmenter (doc 000) on aligned faces with synthetic occluders.

    # this CPU (the demo scale; resumes where it stopped when run again):
    accelerate launch --config_file fswap/training/configs/cpu.yaml \
        -m fswap.training.train_segmenter --data data/celeba --output runs/segmenter
    # two processes (DDP; --batch-size is per process), from a data set on the Hub:
    accelerate launch --config_file fswap/training/configs/cpu_2.yaml \
        -m fswap.training.train_segmenter --data hf://datasets/me/faces --output runs/segmenter
    # one GPU / eight GPUs / SLURM: the same script, another --config_file (docs/gpu.md)
    fswap train segmenter --data data/celeba --output runs/segmenter   # same, through the CLI

The label of each sample is the face-skin region from the 106 landmarks minus the pasted
occluders (fswap.data.occluders); where the photo may have occluders of its own (a fringe, a
brim, sunglasses: fswap.data.own_occluders) it carries no label. Validation reports IoU of the
visible-face mask over the labelled pixels, on held-out people with a fixed set of occluders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fswap.building import segmenter_config
from fswap.data.aligned import AlignedFace, FaceRows, open_faces, stream_rows
from fswap.data.occluders import occlude
from fswap.models import OcclusionSegmenter
from fswap.training import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.training_parser("Train the fswap occlusion segmenter.", steps=3000, batch_size=16,
                                    learning_rate=2e-3, every=250, log_every=25, base_channels=16)
    parser.add_argument("--val-samples", type=int, default=128)
    common.add_face_data_options(parser)
    return common.parse_with_config(parser, argv)


def jitter(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator):
    """Small similarity jitter and colour changes, so the segmenter tolerates imperfect alignment."""
    size = image.shape[0]
    angle, scale = rng.uniform(-12, 12), rng.uniform(0.9, 1.1)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.05, 0.05, 2) * size
    image = cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REFLECT_101)
    landmarks = landmarks @ matrix[:, :2].T + matrix[:, 2]
    gain = rng.uniform(0.75, 1.25, 3) * rng.uniform(0.8, 1.2)
    image = np.clip(image * gain + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
    return image, landmarks


def segmenter_sample(face: AlignedFace, rng: np.random.Generator, augment: bool = True) -> dict:
    image, landmarks = face.image, face.landmarks
    if augment:
        image, landmarks = jitter(image, landmarks, rng)
    occluded = occlude(image, landmarks, rng)
    return {"image": common.to_tensor_image(occluded.image), "visible": common.to_tensor_mask(occluded.visible_mask),
            "known": common.to_tensor_mask(occluded.known)}


def make_sampler(faces, augment: bool):
    def make_sample(face_index: int, rng: np.random.Generator) -> dict:
        return {**segmenter_sample(faces[face_index], rng, augment), "face_index": torch.tensor(face_index)}

    return make_sample


def streamed_sample(face: AlignedFace, rng: np.random.Generator, recent: list) -> dict:
    return segmenter_sample(face, rng, augment=True)


def segmentation_loss(logits: torch.Tensor, visible: torch.Tensor, known: torch.Tensor | None = None,
                      accelerator=None) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice over the pixels whose label is `known` (default: all):
    BCE for every pixel, Dice so thin occluders count. With `accelerator`, the BCE averages over
    the labelled pixels of every process's batch (`common.WholeBatch`)."""
    known = torch.ones_like(visible) if known is None else known
    bce = (F.binary_cross_entropy_with_logits(logits, visible, reduction="none") * known).sum() / known.sum().clamp(min=1)
    if accelerator is not None:
        bce = common.WholeBatch(accelerator, known=known.sum())("known", bce)
    probabilities = torch.sigmoid(logits) * known
    visible = visible * known
    intersection = (probabilities * visible).sum(dim=(1, 2, 3))
    dice = 1 - (2 * intersection + 1) / (probabilities.sum(dim=(1, 2, 3)) + visible.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


def overlaps(predicted: torch.Tensor, visible: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
    """[B, 2]: per sample, the pixels of intersection and of union of the visible-face masks,
    over the pixels whose label is `known` (default: all)."""
    predicted, visible = predicted > 0.5, visible > 0.5
    if known is not None:
        predicted, visible = predicted & (known > 0.5), visible & (known > 0.5)
    return torch.stack([(predicted & visible).sum(dim=(1, 2, 3)), (predicted | visible).sum(dim=(1, 2, 3))], dim=1)


def iou(predicted: torch.Tensor, visible: torch.Tensor, known: torch.Tensor | None = None) -> float:
    """IoU of the visible-face masks, over the pixels whose label is `known` (default: all)."""
    intersection, union = overlaps(predicted, visible, known).sum(dim=0).tolist()
    return intersection / max(union, 1)


def _stacked(samples: list[dict], key: str, device) -> torch.Tensor:
    return torch.stack([sample[key] for sample in samples]).to(device)


@torch.no_grad()
def validate(model, samples: list[dict], accelerator) -> tuple[float, np.ndarray]:
    """IoU of the visible-face mask over the fixed validation samples (known pixels; each process
    scores a share, the IoU pools them all), and a picture of the first few."""
    device = accelerator.device
    model.eval()

    def score(share: list[dict]) -> list[list[int]]:
        predicted = torch.cat([model.predict_mask(chunk) for chunk in _stacked(share, "image", device).split(32)])
        return overlaps(predicted, _stacked(share, "visible", device), _stacked(share, "known", device)).tolist()

    intersection, union = np.sum(common.evaluate_shared(samples, score, accelerator), axis=0)
    first = samples[:6]
    images = _stacked(first, "image", device)
    predicted = model.predict_mask(images)
    model.train()
    tiles = []
    for k, sample in enumerate(first):
        rgb = ((images[k].permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5).astype(np.uint8)
        label = sample["visible"][0] * sample["known"][0] + 0.5 * (1 - sample["known"][0])  # grey: no label
        tiles.append([rgb, label.numpy(), predicted[k, 0].float().cpu().numpy()])
    return float(intersection / max(union, 1)), common.image_grid(tiles)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    output = args.output
    accelerator = common.make_accelerator(output, args.mixed_precision, args.gradient_accumulation_steps)
    torch.manual_seed(args.seed)

    config = segmenter_config(args.resolution, args.base_channels)
    model = OcclusionSegmenter(**config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    warmup = min(100, args.steps // 10 + 1)
    model, optimizer = accelerator.prepare(model, optimizer)
    step_samples = common.samples_per_step(accelerator, args.batch_size)
    start = common.Position() if args.no_resume else common.resume(accelerator, output, step_samples)

    with accelerator.main_process_first():  # the main process fills the `datasets` cache; the others read it
        held_out = common.held_out_faces(args)
        train = None if args.streaming else open_faces(args.data, "train", args.resolution)
    val_make = make_sampler(held_out, augment=False)
    val_samples = [val_make(i % len(held_out), np.random.default_rng([10**9, i])) for i in range(args.val_samples)]
    if args.streaming:
        stream = common.StreamSamples(stream_rows(args.data, "train"), FaceRows(args.resolution), streamed_sample,
                                      args.seed, start.samples, args.batch_size, accelerator.process_index,
                                      accelerator.num_processes)
        batches = common.stream_batches(stream, accelerator, args.batch_size, args.workers)
    else:
        samples = common.IndexedSamples(make_sampler(train, augment=True), common.EpochOrder(len(train), args.seed),
                                        args.seed)
        batches = common.step_batches(samples, accelerator, start, args.steps, args.batch_size, args.workers)
    common.start_run(accelerator, output, "segmenter", args, model=config)
    accelerator.print(f"segmenter: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
                      f"{'streamed' if train is None else len(train)} train / {len(held_out)} val faces, "
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
                    loss = segmentation_loss(model(batch["image"]), batch["visible"], batch["known"], accelerator)
                    accelerator.backward(loss)
                    optimizer.step()
                    optimizer.zero_grad()
            step += 1
            metrics = {"loss": loss.item(), "lr": learning_rate}
            if step % args.validate_every == 0 or step == args.steps:
                metrics["val_iou"], grid = validate(accelerator.unwrap_model(model), val_samples, accelerator)
                common.log_images(accelerator, "val/image|label|prediction", grid, step)
            if step % args.log_every == 0 or "val_iou" in metrics:
                metrics.update(common.averaged_over_processes({"loss": metrics["loss"]}, accelerator))
                accelerator.log(metrics, step=step)
                if accelerator.is_main_process:
                    with history_path.open("a") as history:
                        history.write(json.dumps({"step": step, "wall_s": round(stopwatch.seconds, 2), **metrics}) + "\n")
            progress.update(**{k: v for k, v in metrics.items() if k != "lr"})
            if step % args.checkpoint_every == 0:
                common.save_position(accelerator, output, start.after(step - start.step, step_samples), wall_s=stopwatch.seconds)
    finally:
        progress.close()
        stop.restore()
    if step % args.checkpoint_every:  # else the loop has just saved this step
        common.save_position(accelerator, output, start.after(step - start.step, step_samples), wall_s=stopwatch.seconds)
    final = output / "occlusion_segmenter"
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(final, safe_serialization=True)
    common.finish(accelerator)
    accelerator.print(f"saved {final} at step {step}" + (" (stopped early; run again to resume)" if step < args.steps else ""))
    return final


if __name__ == "__main__":
    main()
