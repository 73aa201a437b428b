"""Train the fswap swap networks (attribute encoder + generator) with doc 004's objective.

    L_G = L_GAN + λ_mask L_mask + L_FM + 10 L_rec + 5 L_ICL  (+ 10 L_bg outside the face)
    L_D = softplus(-D(X_t)) + softplus(D(Y))

    accelerate launch --config_file fswap/training/configs/cpu.yaml -m fswap.training.train_swap \
        --data data/celeba --segmenter runs/segmenter/occlusion_segmenter --output runs/swap
    fswap train swap --config fswap/training/configs/swap_default.json   # the same through the CLI
    # two processes (DDP; --batch-size is per process), a prepared set on the Hub, plain photos streamed:
    accelerate launch --config_file fswap/training/configs/cpu_2.yaml -m fswap.training.train_swap \
        --config fswap/training/configs/swap_default.json --data hf://datasets/me/faces
    ... --data me/photos --streaming     # aligned as they come; sources from the stream's recent faces
    # GPUs and SLURM: docs/gpu.md

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
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save

from fswap import losses
from fswap.building import identity_encoder_from_registry, swap_network_configs
from fswap.data.aligned import (
    AlignedFace,
    AlignedFaces,
    DatasetFaces,
    FaceRows,
    data_record,
    open_faces,
    stream_rows,
)
from fswap.data.occluders import occlude
from fswap.faces.masks import region_mask
from fswap.faces.pose import yaw_proxy
from fswap.faces.warp import first_stage_composite
from fswap.fileio import write_atomically
from fswap.models import AttributeEncoder, Discriminator, Generator
from fswap.pipeline import identity_view
from fswap.training import common
from fswap.training.train_segmenter import jitter


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.training_parser("Train the fswap attribute encoder and generator.", steps=4000, batch_size=8,
                                    learning_rate=2e-4, every=200, log_every=20, base_channels=16)
    parser.add_argument("--segmenter", type=Path, help="trained OcclusionSegmenter folder for the final pipeline")
    parser.add_argument("--attribute-input", choices=["target", "warped_source"], default="warped_source")
    parser.add_argument("--pipeline-settings", type=Path,
                        help="JSON of the pipeline settings training does not learn (shape_strength, jaw_feather_share, "
                        "...), written into the checkpoint's model_index.json; e.g. "
                        "fswap/training/configs/pipeline_default.json (default: the code's defaults)")
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
    common.add_face_data_options(parser)
    return common.parse_with_config(parser, argv)


def appearance_change(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another 'photo' of the same face: colour, gamma and blur changes."""
    image = image.astype(np.float32) / 255.0
    image = image ** rng.uniform(0.7, 1.4) * rng.uniform(0.75, 1.25, 3) + rng.uniform(-0.08, 0.08)
    if rng.random() < 0.4:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.2))
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def swap_sample(target: AlignedFace, source: AlignedFace | None, rng: np.random.Generator, args) -> dict:
    """A training pair: `target` occluded, and `source`, or for a same-image pair (None) the target
    as another 'photo' of the same face."""
    target_image, target_landmarks = target.image, target.landmarks
    if source is None:
        source_image, source_landmarks = jitter(appearance_change(target_image, rng), target_landmarks, rng)
    else:
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
        "same": torch.tensor(float(source is None)),
    }


def most_similar_pose(target_yaw: float, yaws: np.ndarray, rng: np.random.Generator, candidates: int) -> int:
    """Of a few random faces, the one turned most like the target: a frontal face warped onto a
    profile (or back) is garbage that neither the classic swap nor ours can fix."""
    drawn = rng.integers(len(yaws), size=candidates)
    return int(drawn[np.argmin(np.abs(yaws[drawn] - target_yaw))])


def make_sampler(faces, args, same_fraction: float):
    """Samples by target index (each target once per epoch); the identity table gives their embeddings."""
    yaws = faces.yaw_proxies()

    def make_sample(target_index: int, rng: np.random.Generator) -> dict:
        same = rng.random() < same_fraction
        source_index = target_index if same else most_similar_pose(yaws[target_index], yaws, rng, args.pose_candidates)
        sample = swap_sample(faces[target_index], None if same else faces[source_index], rng, args)
        return {**sample, "source_index": torch.tensor(source_index), "target_index": torch.tensor(target_index)}

    return make_sample


def make_streamed_sampler(args, same_fraction: float):
    """Samples of a stream: sources among the stream's recent faces; the clean crops ride along,
    for the loop to embed (a stream has no identity table)."""

    def make_sample(target: AlignedFace, rng: np.random.Generator, recent: list[AlignedFace]) -> dict:
        same = rng.random() < same_fraction or not recent
        source = None
        if not same:
            yaws = np.asarray([yaw_proxy(face.landmarks) for face in recent])
            source = recent[most_similar_pose(yaw_proxy(target.landmarks), yaws, rng, args.pose_candidates)]
        sample = swap_sample(target, source, rng, args)
        return {**sample, "source_clean": common.to_tensor_image((target if source is None else source).image),
                "target_clean": common.to_tensor_image(target.image)}

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
def identity_table(identity_encoder, faces: AlignedFaces | DatasetFaces, margin: float, cache: Path,
                   write: bool = True) -> torch.Tensor:
    """[N, 512] embeddings of every clean crop, computed once and cached in the run folder.

    The frozen encoder gives the same answer every step, so sources and targets are looked up
    here; only the swap's own embedding is computed (and differentiated) in the loop. With several
    processes only the main one writes the cache (`write`); the others compute it after it, and read it.
    """
    files = faces.keys()
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
        embeddings.append(embed(identity_encoder, crops.to(next(identity_encoder.parameters()).device), margin))
    table = torch.cat(embeddings)
    if write:
        write_atomically(cache, save({"embeddings": table.contiguous().cpu()}, metadata={"files": files_key}))
    return table


@torch.no_grad()
def batch_identities(batch: dict, table: torch.Tensor | None, identity_encoder, margin: float):
    """The source's and target's embeddings: looked up in the table, or for a streamed batch
    computed from the clean crops it carries."""
    if table is None:
        return embed(identity_encoder, batch["source_clean"], margin), embed(identity_encoder, batch["target_clean"], margin)
    return table[batch["source_index"]], table[batch["target_index"]]


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    return list(((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())


def _stacked(samples: list[dict], device) -> dict:
    return {key: torch.stack([sample[key] for sample in samples]).to(device) for key in samples[0]}


@torch.no_grad()
def validate(models, identity_encoder, samples: list[dict], margin: float, accelerator) -> tuple[dict, np.ndarray]:
    """Identity transfer (training recogniser, so only a progress signal) over the fixed validation
    samples, each process scoring a share, and a picture grid of the first few:
    source | target | attribute input | swap | control masks (coarse → fine) | occlusion mask."""
    models.eval()

    def score(share: list[dict]) -> list[list[float]]:
        batch = _stacked(share, accelerator.device)
        source_identity = embed(identity_encoder, batch["source"], margin)
        target_identity = embed(identity_encoder, batch["target"], margin)
        swapped = models(source_identity, batch["attribute_input"], batch["visible"]).image
        swap_identity = embed(identity_encoder, swapped, margin)
        return torch.stack([(swap_identity * source_identity).sum(-1), (swap_identity * target_identity).sum(-1),
                            (swapped - batch["target"]).abs().mean(dim=(1, 2, 3)), batch["same"]], dim=1).tolist()

    scores = np.array(common.evaluate_shared(samples, score, accelerator))
    cross = scores[:, 3] < 0.5
    metrics = {
        "val_id_to_source": float(scores[cross, 0].mean()) if cross.any() else float("nan"),
        "val_id_to_target": float(scores[cross, 1].mean()) if cross.any() else float("nan"),
        "val_rec_l1": float(scores[~cross, 2].mean()) if (~cross).any() else float("nan"),
    }
    batch = _stacked(samples[:6], accelerator.device)
    output = models(embed(identity_encoder, batch["source"], margin), batch["attribute_input"], batch["visible"])
    models.train()
    size = output.image.shape[-1]
    rows = []
    sources, targets, inputs = (to_uint8(batch[k]) for k in ("source", "target", "attribute_input"))
    swaps = to_uint8(output.image)
    for k in range(len(swaps)):
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
    datasets = data_record(args.data, state.get("samples") if args.streaming else None)
    run_config = args.output / "run_config.json"
    processes = int(json.loads(run_config.read_text()).get("processes", 1)) if run_config.is_file() else 1
    save_pipeline(models, args, args.export_to, state["step"], state.get("wall_s", 0.0), datasets, processes)
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
    step_samples = common.samples_per_step(accelerator, args.batch_size)
    start = common.Position() if args.no_resume else common.resume(accelerator, output, step_samples)

    with accelerator.main_process_first():  # the main process fills the caches (`datasets`, identities); the others read them
        held_out = common.held_out_faces(args)
        train = identities = None
        if not args.streaming:
            train = open_faces(args.data, "train", args.resolution)
            identities = identity_table(identity_encoder, train, margin, output / "train_identities.safetensors",
                                        write=accelerator.is_main_process).to(accelerator.device)
    val_make = make_sampler(held_out, args, same_fraction=0.25)
    val_samples = [val_make(i % len(held_out), np.random.default_rng([10**9, i])) for i in range(16)]
    if args.streaming:
        stream = common.StreamSamples(stream_rows(args.data, "train"), FaceRows(args.resolution),
                                      make_streamed_sampler(args, args.same_fraction), args.seed, start.samples,
                                      args.batch_size, accelerator.process_index, accelerator.num_processes)
        batches = common.stream_batches(stream, accelerator, args.batch_size, args.workers)
    else:
        samples = common.IndexedSamples(make_sampler(train, args, args.same_fraction),
                                        common.EpochOrder(len(train), args.seed), args.seed)
        batches = common.step_batches(samples, accelerator, start, args.steps, args.batch_size, args.workers)
    common.start_run(accelerator, output, "swap", args, attribute_encoder=attribute_config, generator=generator_config)
    count = sum(p.numel() for p in models.parameters())
    accelerator.print(f"swap networks: {count / 1e6:.2f} M parameters; {'streamed' if train is None else len(train)} "
                      f"train / {len(held_out)} val faces; "
                      f"attribute input {args.attribute_input}; {accelerator.num_processes} process(es) x "
                      f"{args.batch_size} samples; steps {start.step} -> {args.steps}")

    stop = common.StopSignal()
    progress = common.Progress(args.steps, start.step, accelerator.is_local_main_process)
    history_path = output / "history.jsonl"
    stopwatch = common.Stopwatch(common.previous_wall_time(output))
    step = start.step
    try:
        while common.keep_training(step, start.step, args, stop, accelerator):
            use_gan = step >= args.gan_start
            for _ in range(args.gradient_accumulation_steps):
                batch = next(batches)
                source_identity, target_identity = batch_identities(batch, identities, identity_encoder, margin)
                terms, swapped = generator_step(models, discriminator, identity_encoder, batch, source_identity,
                                                target_identity, args, margin, use_gan, accelerator, optimizer_g)
                if use_gan:
                    terms["d_loss"] = discriminator_step(discriminator, batch["target"], swapped, accelerator, optimizer_d)
            step += 1
            if step % args.log_every == 0 or step % args.validate_every == 0 or step == args.steps:
                terms = common.averaged_over_processes(terms, accelerator)
            if step % args.validate_every == 0 or step == args.steps:
                val_metrics, grid = validate(accelerator.unwrap_model(models), identity_encoder, val_samples, margin,
                                             accelerator)
                terms.update(val_metrics)
                common.log_images(accelerator, "val/source|target|input|swap|control masks|occlusion", grid, step)
                if accelerator.is_main_process:
                    cv2.imwrite(str(output / "val_latest.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
            if step % args.log_every == 0 or "val_id_to_source" in terms:
                accelerator.log(terms, step=step)
                if accelerator.is_main_process:
                    with history_path.open("a") as history:
                        history.write(json.dumps({"step": step, "wall_s": round(stopwatch.seconds, 2), **terms}) + "\n")
            progress.update(g=terms["g_loss"], id=terms.get("icl", 0.0))
            if step % args.checkpoint_every == 0:
                common.save_position(accelerator, output, start.after(step - start.step, step_samples),
                                     wall_s=stopwatch.seconds)
    finally:
        progress.close()
        stop.restore()
    if step % args.checkpoint_every:  # else the loop has just saved this step
        common.save_position(accelerator, output, start.after(step - start.step, step_samples), wall_s=stopwatch.seconds)
    final = output / "pipeline"
    if accelerator.is_main_process:
        datasets = data_record(args.data, start.after(step - start.step, step_samples).samples if args.streaming else None)
        save_pipeline(accelerator.unwrap_model(models), args, final, step, stopwatch.seconds, datasets,
                      accelerator.num_processes)
    common.finish(accelerator)
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
        # rec, bg, icl and the masked feature terms average over what the batch holds (same-person
        # pairs, background pixels, cross pairs): made means over every process's batch.
        whole = common.WholeBatch(accelerator, same=batch["same"].sum(), non_face=non_face.sum() * swapped.shape[1],
                                  cross=cross.sum())
        terms = {
            "rec": whole("same", losses.reconstruction_loss(swapped, batch["target"], weight=batch["same"])),
            "bg": whole("non_face", losses.masked_l1(swapped, batch["target"], non_face)),
            "mask": losses.mask_loss(output.control_masks),
        }
        if cross.any():  # identity only where source and target differ (same pairs have L_rec)
            swapped_identity = embed(identity_encoder, swapped[cross], margin)
            terms["icl"] = losses.identity_contrastive_loss(swapped_identity, source_identity[cross], target_identity[cross])
        else:
            terms["icl"] = swapped.new_zeros(())
        terms["icl"] = whole("cross", terms["icl"])
        total = (args.rec_weight * terms["rec"] + args.background_weight * terms["bg"]
                 + args.icl_weight * terms["icl"] + args.mask_weight * terms["mask"])
        if use_gan:
            # The discriminator is frozen here: called outside its DDP wrapper, whose hooks would
            # wait for gradients it never gets in this backward pass.
            critic = accelerator.unwrap_model(discriminator)
            critic.requires_grad_(False)  # the generator's loss must not leave gradients in D
            fake = critic(swapped)
            with torch.no_grad():
                real = critic(batch["target"])
            critic.requires_grad_(True)
            terms["gan"] = losses.generator_adversarial_loss([scale.logits for scale in fake])
            terms["fm"] = feature_matching(fake, real, non_face, whole)
            total = total + args.gan_weight * terms["gan"] + args.fm_weight * terms["fm"]
        accelerator.backward(total)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {"g_loss": total.item(), **{name: value.item() for name, value in terms.items()}}, swapped.detach()


def feature_matching(fake, real, non_face: torch.Tensor, whole: common.WholeBatch, shallow_layers: int = 2) -> torch.Tensor:
    """`losses.feature_matching_loss` with its masked shallow layers made whole-batch means: each
    is averaged over the background pixels at its size, a fixed share of `non_face`'s."""
    def layers(scales, chosen: slice) -> list[list[torch.Tensor]]:
        return [scale.features[chosen] for scale in scales]

    shallow, deep = slice(0, shallow_layers), slice(shallow_layers, None)
    masked = losses.feature_matching_loss(layers(fake, shallow), layers(real, shallow), non_face, shallow_layers)
    plain = losses.feature_matching_loss(layers(fake, deep), layers(real, deep), non_face, shallow_layers=0)
    count_masked, count_plain = (sum(len(features) for features in layers(fake, part)) for part in (shallow, deep))
    return (count_masked * whole("non_face", masked) + count_plain * plain) / (count_masked + count_plain)


def discriminator_step(discriminator, target: torch.Tensor, swapped: torch.Tensor, accelerator, optimizer) -> float:
    with accelerator.accumulate(discriminator):
        loss = losses.discriminator_loss([s.logits for s in discriminator(target)], [s.logits for s in discriminator(swapped)])
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.item()


def pipeline_settings_of(args) -> dict:
    """The settings the checkpoint's `model_index.json` gets: `--pipeline-settings` (validated by
    `fswap.pipeline.pipeline_settings`; the code's defaults fill gaps) and `--attribute-input`."""
    from fswap.checkpoint_files import read_json
    from fswap.errors import FswapError
    from fswap.pipeline import PIPELINE_SETTINGS, pipeline_settings

    chosen = {} if args.pipeline_settings is None else read_json(args.pipeline_settings)
    unknown = sorted(key for key in chosen if not key.startswith("_") and key not in PIPELINE_SETTINGS)
    if unknown:
        raise FswapError(f"{args.pipeline_settings} names unknown pipeline settings {unknown}; "
                         f"known: {sorted(PIPELINE_SETTINGS)}")
    settings = pipeline_settings({**PIPELINE_SETTINGS, **chosen}, args.pipeline_settings or "the defaults")
    return settings | {"attribute_input": args.attribute_input}


def save_pipeline(models: SwapModels, args, folder: Path, step: int, wall_seconds: float, datasets: list[dict],
                  processes: int = 1) -> None:
    """The whole pipeline (registry face models + ArcFace + trained networks) and its training record
    (`datasets`: `fswap.data.aligned.data_record`)."""
    from fswap.assets import INSIGHTFACE_LICENCE
    from fswap.building import build_untrained_pipeline
    from fswap.models import OcclusionSegmenter, load_component

    pipeline = build_untrained_pipeline(args.resolution, args.base_channels)
    pipeline.attribute_encoder, pipeline.generator = models.attribute_encoder.eval(), models.generator.eval()
    if args.segmenter:
        pipeline.occlusion_segmenter = load_component(OcclusionSegmenter, args.segmenter)
    for name, value in pipeline_settings_of(args).items():
        setattr(pipeline, name, value)
    pipeline.save_pretrained(folder)
    common.write_json(folder / "training_record.json", {
        "method": f"fswap two-stage (doc 003 + doc 004), attribute input: {args.attribute_input}",
        "config": {k: str(v) for k, v in vars(args).items() if k not in ("config", "output")},
        "steps": step,
        "hardware": common.hardware(processes),
        "wall_time_s": round(wall_seconds, 1),
        "datasets": datasets,
        "base_models": [{"name": "insightface buffalo_s: SCRFD-500M, 2d106det, w600k_mbf", "licence": INSIGHTFACE_LICENCE}],
    })


if __name__ == "__main__":
    main()
