"""Train the occlusion segmenter (doc 000) on aligned faces with synthetic occluders.

    # this CPU (the demo scale; resumes where it stopped when run again):
    accelerate launch --config_file fswap/training/configs/cpu.yaml \
        -m fswap.training.train_segmenter --data data/celeba --output runs/segmenter
    # one GPU / eight GPUs / SLURM: the same script, another --config_file (see README)
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
from fswap.data.aligned import AlignedFaces
from fswap.data.occluders import occlude
from fswap.models import OcclusionSegmenter
from fswap.training import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.training_parser("Train the fswap occlusion segmenter.", steps=3000, batch_size=16,
                                    learning_rate=2e-3, every=250, log_every=25, base_channels=16)
    parser.add_argument("--val-samples", type=int, default=128)
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


def make_sampler(faces: AlignedFaces, augment: bool):
    def make_sample(rng: np.random.Generator) -> dict:
        face = faces[int(rng.integers(len(faces)))]
        image, landmarks = face.image, face.landmarks
        if augment:
            image, landmarks = jitter(image, landmarks, rng)
        occluded = occlude(image, landmarks, rng)
        return {"image": common.to_tensor_image(occluded.image), "visible": common.to_tensor_mask(occluded.visible_mask),
                "known": common.to_tensor_mask(occluded.known)}

    return make_sample


def segmentation_loss(logits: torch.Tensor, visible: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice over the pixels whose label is `known` (default: all):
    BCE for every pixel, Dice so thin occluders count."""
    known = torch.ones_like(visible) if known is None else known
    bce = (F.binary_cross_entropy_with_logits(logits, visible, reduction="none") * known).sum() / known.sum().clamp(min=1)
    probabilities = torch.sigmoid(logits) * known
    visible = visible * known
    intersection = (probabilities * visible).sum(dim=(1, 2, 3))
    dice = 1 - (2 * intersection + 1) / (probabilities.sum(dim=(1, 2, 3)) + visible.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


def iou(predicted: torch.Tensor, visible: torch.Tensor, known: torch.Tensor | None = None) -> float:
    """IoU of the visible-face masks, over the pixels whose label is `known` (default: all)."""
    predicted, visible = predicted > 0.5, visible > 0.5
    if known is not None:
        predicted, visible = predicted & (known > 0.5), visible & (known > 0.5)
    union = (predicted | visible).sum().item()
    return (predicted & visible).sum().item() / max(union, 1)


@torch.no_grad()
def validate(model, samples: list[dict], device) -> tuple[float, np.ndarray]:
    """IoU of the visible-face mask over the fixed validation samples (known pixels), and a picture of the first few."""
    model.eval()
    images = torch.stack([s["image"] for s in samples]).to(device)
    visible = torch.stack([s["visible"] for s in samples]).to(device)
    known = torch.stack([s["known"] for s in samples]).to(device)
    predicted = torch.cat([model.predict_mask(chunk) for chunk in images.split(32)])
    model.train()
    tiles = []
    for k in range(min(6, len(samples))):
        rgb = ((images[k].permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5).astype(np.uint8)
        label = visible[k, 0] * known[k, 0] + 0.5 * (1 - known[k, 0])  # grey: no label
        tiles.append([rgb, label.cpu().numpy(), predicted[k, 0].float().cpu().numpy()])
    return iou(predicted, visible, known), common.image_grid(tiles)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    output = args.output
    accelerator = common.make_accelerator(output, args.mixed_precision, args.gradient_accumulation_steps)
    torch.manual_seed(args.seed)

    config = segmenter_config(args.resolution, args.base_channels)
    model = OcclusionSegmenter(**config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    scheduler = common.cosine_schedule(optimizer, warmup_steps=min(100, args.steps // 10 + 1), total_steps=args.steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    start = 0 if args.no_resume else common.resume(accelerator, output)

    train = AlignedFaces(args.data, "train", args.resolution)
    held_out = AlignedFaces(args.data, "val", args.resolution)
    val_make = make_sampler(held_out, augment=False)
    val_samples = [val_make(np.random.default_rng([10**9, i])) for i in range(args.val_samples)]
    batches = common.step_batches(common.IndexedSamples(make_sampler(train, augment=True), args.seed),
                                  accelerator, start, args.steps, args.batch_size, args.workers)
    common.start_run(accelerator, output, "segmenter", args, model=config)
    accelerator.print(f"segmenter: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
                      f"{len(train)} train / {len(held_out)} val faces, steps {start} -> {args.steps}")

    stop = common.StopSignal()
    progress = common.Progress(args.steps, start, accelerator.is_local_main_process)
    history_path = output / "history.jsonl"
    step = start
    try:
        while common.keep_training(step, start, args, stop):
            for _ in range(args.gradient_accumulation_steps):
                batch = next(batches)
                with accelerator.accumulate(model):
                    loss = segmentation_loss(model(batch["image"]), batch["visible"], batch["known"])
                    accelerator.backward(loss)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
            step += 1
            metrics = {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
            if step % args.validate_every == 0 or step == args.steps:
                metrics["val_iou"], grid = validate(accelerator.unwrap_model(model), val_samples, accelerator.device)
                common.log_images(accelerator, "val/image|label|prediction", grid, step)
            if step % args.log_every == 0 or "val_iou" in metrics:
                accelerator.log(metrics, step=step)
                if accelerator.is_main_process:
                    with history_path.open("a") as history:
                        history.write(json.dumps({"step": step, **metrics}) + "\n")
            progress.update(**{k: v for k, v in metrics.items() if k != "lr"})
            if step % args.checkpoint_every == 0:
                common.save_checkpoint(accelerator, output, step)
    finally:
        progress.close()
        stop.restore()
    common.save_checkpoint(accelerator, output, step)
    final = output / "occlusion_segmenter"
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(final, safe_serialization=True)
    accelerator.end_training()
    accelerator.print(f"saved {final} at step {step}" + (" (stopped early; run again to resume)" if step < args.steps else ""))
    return final


if __name__ == "__main__":
    main()
