"""`FaceSwapPipeline`: the stages of one swap, from photos to the composited result and its masks.

    source photo(s) ─ detect ─ align ─ occlusion mask ─ identity encoder ─┐
    target photo ─── detect ─ align ─ occlusion mask ─ attribute encoder ─ generator
        ─ appearance matching ─ blend mask (face ∧ visible, feathered) ─ paste-back ─ SwapOutput

Two-stage checkpoints (doc 003) give the attribute encoder the source face warped onto the
target (its features moved towards the source's proportions: `fswap.faces.shape`), and finish at
the photo's resolution: the source face warped straight into the photo
plus the smooth part of the network's correction (`fswap.faces.full_resolution`).

A checkpoint is a folder (or a Hub repo with the same files): `model_index.json` and one
sub-folder per component, each `config.json` + safetensors, and `face_analyzer/` with the
ONNX files. Only safetensors and ONNX are ever read, and loading is strict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fswap.assets import is_hub_repo_id
from fswap.checkpoint_files import HASHES_NAME, read_json
from fswap.errors import CheckpointError, ImageError, ModelNotFoundError
from fswap.faces import (
    Face,
    FaceAnalyzer,
    mask_to_image,
    match_appearance,
    paste_back,
    region_mask,
    select_faces,
)
from fswap.faces.align import blend_mask, jaw_rows
from fswap.faces.analyzer import face_numbered
from fswap.faces.first_stage import FaceCrops, FirstStage, first_stage
from fswap.faces.full_resolution import composite_full_resolution, network_correction, relit_full_resolution
from fswap.faces.masks import occluded_skin, unlike_skin, visible_skin
from fswap.faces.mirror import mirrored_face, mirrors_wanted
from fswap.faces.notices import (
    COVER_LIMIT,
    colourless_notice,
    covered_notice,
    cut_off_notice,
    enlarged_notice,
    mirrored_notice,
    several_faces_notice,
    turn_notice,
)
from fswap.faces.render import SourceFace
from fswap.hub.push import PushToHubMixin
from fswap.imageio import ImageInput, image_name, is_single_image, load_image
from fswap.models import AttributeEncoder, Generator, IdentityEncoder, OcclusionSegmenter, load_component
from fswap.models.identity import mean_identity
from fswap.options import RENDERINGS, OptionError, SwapOptions  # noqa: F401  (RENDERINGS: its old home)
from fswap.provenance import embed_watermark
from fswap.timing import timed
from fswap.version import __version__

MODEL_INDEX = "model_index.json"

#: The only classes a checkpoint may name, by component. `model_index.json` is never used to
#: import arbitrary code: a component or class not listed here is an error.
COMPONENTS: dict[str, type] = {
    "face_analyzer": FaceAnalyzer,
    "identity_encoder": IdentityEncoder,
    "attribute_encoder": AttributeEncoder,
    "generator": Generator,
    "occlusion_segmenter": OcclusionSegmenter,
}
NETWORKS = ("identity_encoder", "attribute_encoder", "generator", "occlusion_segmenter")
PIPELINE_SETTINGS = {"crop_margin": 0.25, "feather_fraction": 0.04, "attribute_input": "target", "shape_strength": 0.0,
                     "jaw_feather_share": 1.0}
#: Occluded regions thinner than this band along the face's outline (a fraction of the crop
#: size, 3 px at 128) are the segmenter's guess of the outline, not occluders (`visible_skin`).
OUTLINE_BAND = 0.025
#: An occluder's edge fades over this fraction of the crop size (2 px at 128): it is a real edge
#: in the photo, unlike the face's outline, which fades over `feather_fraction` (`blend_mask`).
OCCLUDER_FEATHER = 0.016
#: What the attribute encoder sees: the target crop (doc 004) or the target with the source face's
#: texture warped onto it (doc 003's first stage). Fixed by how the checkpoint was trained.
ATTRIBUTE_INPUTS = ("target", "warped_source")


@dataclass
class SwappedFace:
    """What happened to one target face; every array is in the aligned crop's coordinates."""

    index: int  # into `SwapOutput.faces`
    face: Face
    matrix: np.ndarray  # 2x3, image -> crop
    target_crop: np.ndarray  # [S, S, 3] uint8
    swapped_crop: np.ndarray  # [S, S, 3] uint8, the pasted face (after appearance matching) seen in the crop
    occlusion_mask: np.ndarray  # [S, S] float32, 1 = visible face skin of the target
    face_mask: np.ndarray  # [S, S] float32, the face region from the landmarks
    blend_mask: np.ndarray  # [S, S] float32, what was pasted: face ∧ visible ∧ ¬left-out source occluders ∧ ¬kept open mouth, feathered
    source_occluders: np.ndarray  # [S, S] float32, 1 = left out: the source's occluders land here (all 0 when pasted)
    control_masks: list[np.ndarray]  # coarse to fine, [h, w] float32; 1 = kept the target's attributes (none when relit)
    texture_source: int = 0  # the source photo whose face texture was warped onto it (two-stage checkpoints)
    texture_mirrored: bool = False  # ... in its mirror image, the face turned the other way (`fswap.faces.mirror`)
    #: [S, S] float32 (relit rendering; None otherwise): how far the source photo's pixels were
    #: trusted (`fswap.faces.trust`: 0 where the warp stretches them or they show an occluder)...
    trust_map: np.ndarray | None = None
    #: ... and where the texture came from the source face's other side, in its mirror image.
    mirror_filled: np.ndarray | None = None


@dataclass
class SwapOutput:
    """The result of `FaceSwapPipeline.__call__`."""

    image: np.ndarray  # [H, W, 3] uint8 RGB at the target's full resolution
    faces: list[Face]  # every face found in the target, largest first
    swapped: list[SwappedFace]
    source_faces: list[Face]
    source_occlusion_masks: list[np.ndarray]  # one [S, S] mask per source photo
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    #: Plain-words notices about source photos that make a poor swap (`fswap.faces.notices`), and
    #: about faces too small to carry the invisible watermark (`fswap.provenance.embed_watermark`).
    notices: list[str] = field(default_factory=list)

    def blend_mask(self) -> np.ndarray:
        """The union of the blend masks in full-image coordinates, [H, W] float32."""
        full = np.zeros(self.image.shape[:2], np.float32)
        for swapped in self.swapped:
            full = np.maximum(full, mask_to_image(swapped.blend_mask, swapped.matrix, self.image.shape))
        return full


class FaceSwapPipeline(PushToHubMixin):
    """Occlusion-aware face swapping with control masks (fswap).

    Example:
        ```python
        >>> from fswap import FaceSwapPipeline
        >>> from fswap.imageio import save_image
        >>> pipe = FaceSwapPipeline.from_pretrained("checkpoints/fswap-default")  # or a Hub id
        >>> output = pipe("source.jpg", "target.jpg", target_faces="all")
        >>> save_image("swapped.png", output.image)
        >>> output.swapped[0].blend_mask.shape, len(output.swapped[0].control_masks)
        ```
    """

    def __init__(
        self,
        face_analyzer: FaceAnalyzer,
        identity_encoder: IdentityEncoder,
        attribute_encoder: AttributeEncoder,
        generator: Generator,
        occlusion_segmenter: OcclusionSegmenter,
        crop_margin: float = PIPELINE_SETTINGS["crop_margin"],
        feather_fraction: float = PIPELINE_SETTINGS["feather_fraction"],
        attribute_input: str = PIPELINE_SETTINGS["attribute_input"],
        shape_strength: float = PIPELINE_SETTINGS["shape_strength"],
        jaw_feather_share: float = PIPELINE_SETTINGS["jaw_feather_share"],
    ):
        size = generator.config.sample_size
        if attribute_encoder.config.sample_size != size:
            raise CheckpointError(
                f"attribute_encoder works at {attribute_encoder.config.sample_size} px but the generator at {size} px"
            )
        if identity_encoder.config.embedding_dim != generator.config.identity_dim:
            raise CheckpointError(
                f"identity_encoder gives {identity_encoder.config.embedding_dim}-D embeddings but the generator "
                f"expects {generator.config.identity_dim}-D"
            )
        self.face_analyzer = face_analyzer
        self.identity_encoder = identity_encoder.eval()
        self.attribute_encoder = attribute_encoder.eval()
        self.generator = generator.eval()
        self.occlusion_segmenter = occlusion_segmenter.eval()
        if attribute_input not in ATTRIBUTE_INPUTS:
            raise CheckpointError(f"attribute_input must be one of {ATTRIBUTE_INPUTS}, got {attribute_input!r}")
        self.attribute_input = attribute_input
        self.crop_size = size
        if not 0.0 <= float(crop_margin) <= 1.0 or not 0.0 < float(feather_fraction) <= 0.5:
            raise CheckpointError(f"crop_margin must be in [0, 1] and feather_fraction in (0, 0.5], got {crop_margin} "
                                  f"and {feather_fraction}")
        self.crop_margin = float(crop_margin)
        self.feather_fraction = float(feather_fraction)
        if not 0.0 <= float(shape_strength) <= 1.0:
            raise CheckpointError(f"shape_strength must be in [0, 1], got {shape_strength}")
        #: Two-stage checkpoints: how far the source's face proportions replace the target's
        #: (`fswap.faces.shape.identity_shape`; 0 = warp onto the target's landmarks as they are).
        self.shape_strength = float(shape_strength)
        #: How wide the outline's feather is below the nose, as a share of `feather_fraction`
        #: (`fswap.faces.align.blend_mask`; 1 = as wide as around the forehead).
        self.jaw_feather_share = _jaw_feather_share(jaw_feather_share, CheckpointError)
        #: What this checkpoint is called in provenance (watermark tag, C2PA claim): the Hub id or
        #: the folder's name when loaded by `from_pretrained`.
        self.checkpoint_name: str | None = None

    # ------------------------------------------------------------------ device and dtype
    @property
    def device(self) -> torch.device:
        return self.generator.device

    @property
    def dtype(self) -> torch.dtype:
        return self.generator.dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> FaceSwapPipeline:
        """Move every network to `device` and/or `dtype` (the ONNX face models stay on onnxruntime)."""
        if device is None and dtype is None:
            return self
        from diffusers.utils import logging as diffusers_logging

        # diffusers warns about "modules to keep in float32" even when there are none: keep the log clean.
        verbosity = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()
        try:
            for name in NETWORKS:
                getattr(self, name).to(device=device, dtype=dtype)
        finally:
            diffusers_logging.set_verbosity(verbosity)
        return self

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the checkpoint: `model_index.json` and one sub-folder per component."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.face_analyzer.save_pretrained(folder / "face_analyzer")
        for name in NETWORKS:
            getattr(self, name).save_pretrained(folder / name, safe_serialization=True)
        index = {"_class_name": type(self).__name__, "_fswap_version": __version__}
        index |= {name: [cls.__module__, cls.__name__] for name, cls in COMPONENTS.items()}
        index |= {name: getattr(self, name) for name in PIPELINE_SETTINGS}
        (folder / MODEL_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(
        cls,
        folder_or_repo_id: str | Path,
        *,
        revision: str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cache_dir: str | Path | None = None,
    ) -> FaceSwapPipeline:
        """Load a checkpoint from a local folder or a Hub repo id.

        Args:
            folder_or_repo_id: a folder holding `model_index.json`, or a Hub repo id
                ("org/name"), fetched with `snapshot_download` (so `HF_HUB_OFFLINE=1` works
                from a populated cache).
            revision: branch, tag or commit of a Hub repo.
            device, dtype: where to put the networks (default CPU, float32).
            cache_dir: Hub cache folder (default: huggingface_hub's).
        """
        folder = _resolve_checkpoint(folder_or_repo_id, revision, cache_dir)
        index_path = folder / MODEL_INDEX
        if not index_path.is_file():
            raise ModelNotFoundError(f"{folder} has no {MODEL_INDEX}; is it an fswap checkpoint?")
        settings = _check_index(read_json(index_path), index_path)
        components = {"face_analyzer": FaceAnalyzer.from_pretrained(folder / "face_analyzer")}
        for name in NETWORKS:
            components[name] = load_component(COMPONENTS[name], folder / name)
        pipeline = cls(**components, **settings).to(device, dtype)
        pipeline.checkpoint_name = str(folder_or_repo_id) if folder != Path(folder_or_repo_id) else folder.resolve().name
        return pipeline

    # ------------------------------------------------------------------ the swap
    @torch.no_grad()
    def __call__(
        self,
        source_images: ImageInput | Sequence[ImageInput],
        target_image: ImageInput,
        target_faces: str | int | Sequence[int] | ImageInput = "largest",
        *,
        source_faces: int | Sequence[int | None] | None = None,
        options: SwapOptions | None = None,
        **option_changes,
    ) -> SwapOutput:
        """Swap the identity of the person in `source_images` onto faces of `target_image`.

        Args:
            source_images: one photo (path, bytes, PIL image or RGB array) or several photos of
                the same person, or those photos prepared once for many swaps
                (`prepare_sources(..., mirrors_for=[])`: used as they are for a target that needs
                no mirror image, prepared again for one that does; `source_faces` is then theirs).
                Several photos' identities are averaged (more photos, steadier identity),
                and a two-stage checkpoint takes each target's face texture from the photo whose
                head is turned most like it (of photos turned about as well, one whose face is not
                largely covered). The largest face of each photo is used unless `source_faces`
                says otherwise.
            target_image: the photo whose face(s) are replaced; the result has its size.
            target_faces: "largest", "all", an index or list of indices into the target's faces
                (largest first), or a reference photo of the person to replace.
            source_faces: which face of each source photo is the person, by index (largest
                first, as `fswap detect` numbers them): one index for a single photo, or one
                per photo (None: its largest). Default: the largest face of every photo.
            options: how the swap is made (`fswap.SwapOptions`, where each option is explained);
                default `SwapOptions()`.
            **option_changes: `SwapOptions` fields by name, applied over `options`
                (`pipe(src, tgt, rendering="relit")`).

        Returns:
            `SwapOutput` with the image, the target's faces, and per swapped face its crops,
            occlusion, face, blend and control masks, plus per-stage timings in seconds.

        Raises:
            fswap.ImageError: an input cannot be read.
            fswap.NoFaceError: no face in a source photo, or the requested target face is absent.
            fswap.OptionError: an option has a value it cannot take (also a ValueError).
        """
        options = (options or SwapOptions()).replace(**option_changes)
        self._check_options(options)
        timings: dict[str, float] = {}
        with timed(timings, "load"):
            target_name = image_name(target_image, "target photo")
            target = load_image(target_image, name=target_name)
            reference = None if _is_selector(target_faces) else _reference_photo(target_faces)
        with timed(timings, "detect"):
            faces = self.face_analyzer.detect(target, embeddings=reference is not None)
            selector = target_faces
            if reference is not None:
                selector = self.face_analyzer.largest_face(reference, name="reference photo", embeddings=True).embedding
            chosen = select_faces(faces, selector, name=target_name)
        sources = source_images
        if not isinstance(sources, PreparedSources) or not self._serves(sources, faces, chosen, options):
            if isinstance(sources, PreparedSources):  # prepared for other targets: again, from its photos
                source_images, source_faces = sources.inputs, sources.chosen
            sources = self.prepare_sources(source_images, source_faces, options=options,
                                           mirrors_for=[faces[i] for i in chosen])
        output = self.swap_faces(sources, target, faces, chosen, options=options, target_name=target_name)
        output.timings = _added_timings(timings, sources.timings, output.timings)
        return output

    @torch.no_grad()
    def prepare_sources(
        self,
        source_images: ImageInput | Sequence[ImageInput],
        source_faces: int | Sequence[int | None] | None = None,
        *,
        options: SwapOptions | None = None,
        mirrors_for: Sequence[Face] | None = None,
    ) -> PreparedSources:
        """Read and analyse one person's source photos once, for any number of swaps
        (`swap_faces`): a video's frames, or many target photos.

        Args:
            source_images, source_faces: as in `__call__`.
            options: the swap's options (`occlusion_aware`, `mirror_sources` and `rendering`
                decide what is prepared).
            mirrors_for: the target faces the sources will be swapped onto. A two-stage
                checkpoint also offers a source face's mirror image where it is turned more like
                one of them (`fswap.faces.mirror`). None: every photo's mirror image (a clip,
                in which the head turns).

        Raises:
            fswap.ImageError: a photo cannot be read.
            fswap.NoFaceError: a photo has no face (or not the one `source_faces` asks for).
        """
        options = options or SwapOptions()
        timings: dict[str, float] = {}
        size, margin = self.crop_size, self.crop_margin
        with timed(timings, "load"):
            images = [source_images] if is_single_image(source_images) else list(source_images)
            if not images:
                raise ValueError("give at least one source photo")
            names = [image_name(image, f"source photo {i + 1}") for i, image in enumerate(images)]
            photos = [load_image(image, name=name) for image, name in zip(images, names, strict=True)]
        with timed(timings, "detect"):
            per_photo = [self.face_analyzer.detect(photo) for photo in photos]
            chosen = _per_source_photo(source_faces, len(photos))
            faces = [face_numbered(found, index, name)
                     for found, name, index in zip(per_photo, names, chosen, strict=True)]
        mirrors, wanted = self._mirror_textures(photos, faces, mirrors_for, options, timings)
        with timed(timings, "align"):
            crops = FaceCrops.align(photos + [photo for _, photo, _ in mirrors],
                                    faces + [face for _, _, face in mirrors], size, margin)
        with timed(timings, "occlusion"):
            batch = self.as_batch(crops.crops)
            count = len(photos)
            if options.occlusion_aware:
                # The photos apart from their mirror images: the identity does not depend on
                # which mirror images a swap asked for.
                visible = torch.cat([self.occlusion_segmenter.predict_mask(part)
                                     for part in (batch[:count], batch[count:]) if len(part)])
            else:
                visible = batch.new_ones(len(crops.crops), 1, size, size)
            masks = list(visible.float().cpu().numpy()[:, 0])  # the photos', then the mirrors'
            band = OUTLINE_BAND * size
            regions = [region_mask(points, (size, size), "face") > 0.5 for points in crops.points]
            # What covers each source face; where the photo's edge cuts the face off, its crop
            # only reflects the photo, so that counts as covered too.
            cut_off = [region & crops.outside(j) for j, region in enumerate(regions)]
            occluders = [occluded_skin(region, mask, band) | outside
                         for region, mask, outside in zip(regions, masks, cut_off, strict=True)]
            areas = [max(region.sum(), 1) for region in regions]
        prepared = PreparedSources(
            inputs=images, asked_mirrors=None if mirrors_for is None else tuple(wanted),
            occlusion_aware=options.occlusion_aware, mirror_sources=options.mirror_sources,
            photos=photos, names=names, per_photo=per_photo, chosen=chosen, faces=faces, crops=crops,
            texture_photo=list(range(count)) + [j for j, _, _ in mirrors], batch=batch, visible=visible,
            masks=masks, occluders=occluders,
            covered_shares=[o.sum() / area for o, area in zip(occluders, areas, strict=True)],
            outside_shares=[o.sum() / area for o, area in zip(cut_off, areas, strict=True)],
            timings=timings,
        )
        # The relit rendering forms the face from the source photos alone (`fswap.faces.render`):
        # the identity encoder has no part in it, so it is not run.
        if not self._relit(options):
            with timed(timings, "identity"):
                prepared.identity = self._identity(prepared)
        return prepared

    @torch.no_grad()
    def swap_faces(
        self,
        sources: PreparedSources,
        target_image: ImageInput,
        faces: Sequence[Face],
        swap: Sequence[int] | None = None,
        *,
        options: SwapOptions | None = None,
        occlusion_filter: Callable[[np.ndarray], np.ndarray] | None = None,
        target_name: str | None = None,
    ) -> SwapOutput:
        """Swap the person of `sources` (`prepare_sources`) onto the given faces of a target.

        Args:
            sources: the source photos, prepared once.
            target_image: the photo (or a video's frame) whose faces are replaced.
            faces: the target's faces: `face_analyzer.detect(target)`'s, or faces tracked through
                a clip, with their landmarks.
            swap: which of `faces` to swap, by index (default: all).
            options: how the swap is made (`fswap.SwapOptions`).
            occlusion_filter: given the swapped faces' occlusion masks [N, S, S] (1 = visible
                skin), returns them changed before the blend masks are built from them: a video
                smooths them over time.
            target_name: the target's name in notices and errors.

        Returns:
            `SwapOutput`, as `__call__` gives it (its `faces` are `faces`).
        """
        options = options or SwapOptions()
        self._check_options(options)
        two_stage = self.attribute_input == "warped_source"
        timings: dict[str, float] = {}
        with timed(timings, "load"):
            target = load_image(target_image, name=target_name or image_name(target_image, "target photo"))
        faces = list(faces)
        chosen = list(range(len(faces))) if swap is None else [int(i) for i in swap]
        if any(not 0 <= i < len(faces) for i in chosen):
            raise ValueError(f"swap={list(swap)} names faces beyond the {len(faces)} given")
        with timed(timings, "align"):
            crops = self._align(sources, target, [faces[i] for i in chosen])
        with timed(timings, "occlusion"):
            occlusion = self._occlusion(sources, crops, options.occlusion_aware, occlusion_filter)
        relit = self._relit(options)
        if not relit and sources.identity is None:  # prepared for the relit rendering
            with timed(timings, "identity"):
                sources.identity = self._identity(sources)
        if two_stage:
            with timed(timings, "first stage"):
                stage = self._first_stage(crops, occlusion, options)
        else:
            stage = FirstStage.none(occlusion.skins, self.crop_size)
        notices = _source_notices(sources, crops, occlusion, stage, two_stage, options.source_occluders)
        relit_sources = None
        if relit:
            swapped_crops, control_masks = stage.crops, []
            relit_sources = self._relit_sources(crops, stage, options.source_occluders)
        else:
            with timed(timings, "generate"):
                swapped_crops, control_masks = self._generate(sources.identity.expand(len(chosen), -1), stage,
                                                              occlusion, options.refine, two_stage)
        with timed(timings, "blend"):
            image, results = self._blend(target, faces, chosen, crops, occlusion, stage, swapped_crops,
                                         control_masks, relit_sources, options)
        if options.watermark:
            with timed(timings, "watermark"):
                # Re-found in the result, so the mark is aligned the way `fswap verify` will read it.
                image = embed_watermark(image, [faces[i] for i in chosen], checkpoint=self.checkpoint_name,
                                        analyzer=self.face_analyzer, unmarked=notices)
        return SwapOutput(
            image=image, faces=faces, swapped=results, source_faces=sources.faces,
            source_occlusion_masks=sources.masks[:sources.photo_count], timings=timings,
            notices=list(dict.fromkeys(n for n in notices if n)),
        )

    # ------------------------------------------------------------------ the swap's stages
    def _check_options(self, options: SwapOptions) -> None:
        if not options.refine and self.attribute_input != "warped_source":
            raise OptionError("refine=False needs a two-stage checkpoint (attribute_input 'warped_source')")

    def _relit(self, options: SwapOptions) -> bool:
        return self.attribute_input == "warped_source" and options.full_resolution and options.rendering == "relit"

    def _mirror_textures(self, photos: list[np.ndarray], faces: list[Face], mirrors_for: Sequence[Face] | None,
                         options: SwapOptions, timings: dict) -> tuple[list[tuple], list[int]]:
        """A source face turned the other way from a target face offers its mirror image as a
        texture too: after the photos, as more source faces (the identity stays the photos').
        Each as (source photo index, mirrored photo, its face); and the photos whose mirror image
        was wanted (found or not)."""
        wanted = self._mirrors_wanted(faces, mirrors_for, options)
        mirrors = []
        if wanted:
            with timed(timings, "mirror"):
                for j in wanted:
                    found_again = mirrored_face(photos[j], faces[j], self.face_analyzer)
                    if found_again is not None:
                        mirrors.append((j, *found_again))
        return mirrors, list(wanted)

    def _mirrors_wanted(self, faces: list[Face], mirrors_for: Sequence[Face] | None, options: SwapOptions) -> list[int]:
        """The source photos whose mirror image the faces `mirrors_for` want (all: None)."""
        if self.attribute_input != "warped_source" or not options.mirror_sources:
            return []
        if mirrors_for is None:
            return list(range(len(faces)))
        return mirrors_wanted([face.landmarks for face in faces], [face.landmarks for face in mirrors_for])

    def _serves(self, sources: PreparedSources, faces: list[Face], chosen: list[int], options: SwapOptions) -> bool:
        """Whether `sources` swap the chosen faces as sources prepared for them would: made with
        the same occlusion and mirror options, and holding the mirror images they want, no others."""
        wanted = self._mirrors_wanted(sources.faces, [faces[i] for i in chosen], options)
        return (sources.occlusion_aware == options.occlusion_aware and sources.mirror_sources == options.mirror_sources
                and sources.asked_mirrors == tuple(wanted))

    def _align(self, sources: PreparedSources, target: np.ndarray, faces: list[Face]) -> _Crops:
        size = self.crop_size
        targets = FaceCrops.align([target] * len(faces), faces, size, self.crop_margin)
        face_masks = [region_mask(points, (size, size), "face") for points in targets.points]
        return _Crops(sources.crops, targets, face_masks, sources.texture_photo, sources.photo_count)

    def _occlusion(self, sources: PreparedSources, crops: _Crops, occlusion_aware: bool,
                   occlusion_filter: Callable[[np.ndarray], np.ndarray] | None) -> _Occlusion:
        """What covers each target face (the segmenter's masks, then `occlusion_filter`'s, and the
        visible skin), beside what covers each source face."""
        size = self.crop_size
        target_batch = self.as_batch(crops.targets.crops)
        if occlusion_aware:
            target_visible = self.occlusion_segmenter.predict_mask(target_batch)
        else:
            target_visible = target_batch.new_ones(len(crops.targets.crops), 1, size, size)
        visible = target_visible.float().cpu().numpy()[:, 0]
        if occlusion_filter is not None:
            visible = np.asarray(occlusion_filter(visible), np.float32)
            target_visible = torch.from_numpy(np.ascontiguousarray(visible))[:, None].to(target_batch.device,
                                                                                          target_batch.dtype)
        band = OUTLINE_BAND * size
        skins = [visible_skin(mask, v, band) for mask, v in zip(crops.face_masks, visible, strict=True)]
        return _Occlusion(sources.batch, target_batch, sources.visible, target_visible, sources.masks, list(visible),
                          skins, sources.occluders, sources.covered_shares, sources.outside_shares, band)

    def _identity(self, sources: PreparedSources) -> torch.Tensor:
        """The source photos' mean identity embedding [1, D]."""
        count = sources.photo_count
        source_view, visible_view = identity_view(sources.batch[:count], sources.visible[:count], self.crop_margin)
        return mean_identity(self.identity_encoder.encode(source_view, visible_view))

    def _first_stage(self, crops: _Crops, occlusion: _Occlusion, options: SwapOptions) -> FirstStage:
        """Doc 003's first stage: the chosen source texture warped onto each target face."""
        strength = self.shape_strength if options.shape_strength is None else float(options.shape_strength)
        covered = [share > COVER_LIMIT for share in occlusion.covered_shares]
        return first_stage(crops.sources, crops.targets, occlusion.source_occluders, covered, occlusion.skins, strength,
                           options.source_occluders, occlusion.band, options.keep_open_mouths,
                           mirrored=crops.mirrored)

    def _generate(self, identity: torch.Tensor, stage: FirstStage, occlusion: _Occlusion, refine: bool,
                  two_stage: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The networks' crops (the first stage's, when not `refine`) and their control masks."""
        attribute_batch = self.as_batch(stage.crops) if two_stage else occlusion.target_batch
        attribute_features = self.attribute_encoder(attribute_batch, occlusion.target_visible).attribute_features
        generated = self.generator(identity, attribute_features)
        swapped_crops = self._to_uint8(generated.image) if refine else stage.crops
        return swapped_crops, [mask.float().cpu().numpy()[:, 0] for mask in generated.control_masks]

    def _relit_sources(self, crops: _Crops, stage: FirstStage, source_occluders: str) -> dict[int, SourceFace]:
        """Each source face used as a texture, cut from its photo with what is not to be pasted:
        once per source, however many target faces take it."""
        sources, band = crops.sources, OUTLINE_BAND * self.crop_size
        relit = {}
        for j in sorted(set(stage.texture_sources)):
            avoid = stage.unpasted[j]
            if source_occluders == "none":  # what the segmenter missed too
                avoid = avoid | unlike_skin(sources.crops[j], sources.points[j], band)
            relit[j] = SourceFace.cut(sources.photos[j], sources.faces[j].landmarks, avoid, sources.matrices[j])
        return relit

    def _blend(self, target: np.ndarray, faces: list[Face], chosen: list[int], crops: _Crops, occlusion: _Occlusion,
               stage: FirstStage, swapped_crops: list[np.ndarray], control_masks: list[np.ndarray],
               relit_sources: dict[int, SourceFace] | None, options: SwapOptions) -> tuple[np.ndarray, list[SwappedFace]]:
        """Each swapped face formed at the photo's resolution and blended into a copy of it."""
        size, targets, sources = self.crop_size, crops.targets, crops.sources
        two_stage = self.attribute_input == "warped_source"
        fraction = self.feather_fraction if options.feather_fraction is None else options.feather_fraction
        jaw_share = self.jaw_feather_share if options.jaw_feather_share is None else options.jaw_feather_share
        lower_face = jaw_rows(size, self.crop_margin)
        image = target.copy()  # each face is written into it in place
        results = []
        for k, index in enumerate(chosen):
            face = faces[index]
            swapped = swapped_crops[k]
            trust_map = mirror_filled = None
            # The occluder cut is hard (then feathered): a half-confident mask must not ghost.
            # Relit, what covers the source is filled from its other side where that is clean,
            # so only what the rendering leaves uncovered is cut (below).
            blend = blend_mask(crops.face_masks[k], stage.visible[k] if relit_sources else stage.skins[k],
                               fraction * size, OCCLUDER_FEATHER * size, jaw_radius=jaw_share * fraction * size,
                               jaw_rows=lower_face)
            if relit_sources:
                rendered = relit_full_resolution(
                    image, face.landmarks, relit_sources[stage.texture_sources[k]], targets.matrices[k],
                    stage.visible[k], blend, stage.shapes[k], use_mirror=options.mirror_sources,
                    relight_face=options.appearance_matching, out=image,
                )
                image, swapped = rendered.image, rendered.face_crop
                blend = blend * (1.0 - rendered.uncovered)
                trust_map, mirror_filled = rendered.trust, rendered.mirrored
            elif two_stage and options.full_resolution:
                j = stage.texture_sources[k]
                correction = network_correction(swapped, stage.crops[k]) if options.refine else None
                image, swapped = composite_full_resolution(
                    image, face.landmarks, sources.photos[j], sources.faces[j].landmarks, targets.matrices[k],
                    stage.measured[k], blend, correction, options.appearance_matching, stage.shapes[k], out=image,
                )
            else:
                if options.appearance_matching:
                    swapped = match_appearance(swapped, targets.crops[k], stage.measured[k])
                paste_back(image, swapped, targets.matrices[k], blend, out=image)
            results.append(SwappedFace(
                index=index, face=face, matrix=targets.matrices[k], target_crop=targets.crops[k],
                swapped_crop=swapped, occlusion_mask=occlusion.visible[k], face_mask=crops.face_masks[k],
                blend_mask=blend, source_occluders=stage.left_out[k].astype(np.float32),
                texture_source=crops.texture_photo[stage.texture_sources[k]],
                texture_mirrored=crops.mirrored[stage.texture_sources[k]],
                control_masks=[masks[k] for masks in control_masks], trust_map=trust_map, mirror_filled=mirror_filled,
            ))
        return image, results

    def as_batch(self, crops: list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 crops [S, S, 3] as the networks' input: [N, 3, S, S] in [-1, 1], on the
        pipeline's device and dtype."""
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
        return (batch.to(self.device, torch.float32) / 127.5 - 1.0).to(self.dtype)

    @staticmethod
    def _to_uint8(images: torch.Tensor) -> list[np.ndarray]:
        images = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return list(images.permute(0, 2, 3, 1).cpu().numpy())



# ------------------------------------------------------------------ what flows between the stages
@dataclass
class PreparedSources:
    """One person's source photos, analysed once (`FaceSwapPipeline.prepare_sources`): what every
    swap from them shares, whether onto one photo's faces or a whole clip's."""

    inputs: list[ImageInput]  # the photos as given
    asked_mirrors: tuple[int, ...] | None  # the photos whose mirror image was wanted (None: all)
    occlusion_aware: bool  # the options they were prepared with
    mirror_sources: bool
    photos: list[np.ndarray]
    names: list[str]
    per_photo: list[list[Face]]  # every face of each photo
    chosen: list[int | None]  # which of them was asked for (None: the largest)
    faces: list[Face]  # the person's face in each photo
    crops: FaceCrops  # the photos' faces, then their mirror images'
    texture_photo: list[int]  # per source face: the photo it is (or mirrors)
    batch: torch.Tensor  # the crops as the networks' input
    visible: torch.Tensor  # [N, 1, S, S] the segmenter's non-occlusion masks
    masks: list[np.ndarray]
    occluders: list[np.ndarray]  # per source face: what covers it (or the photo's edge cuts off)
    covered_shares: list[float]
    outside_shares: list[float]
    identity: torch.Tensor | None = None  # [1, D] the photos' mean identity (None: not needed yet)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def photo_count(self) -> int:
        return len(self.photos)


@dataclass
class _Crops:
    sources: FaceCrops  # the source photos' faces, then their mirror images'
    targets: FaceCrops  # one per chosen target face
    face_masks: list[np.ndarray]  # of the target crops
    texture_photo: list[int]  # per source face: the source photo it is (or mirrors)
    photo_count: int  # the source faces before that are the photos', those after their mirror images'

    @property
    def mirrored(self) -> list[bool]:
        return [j >= self.photo_count for j in range(len(self.texture_photo))]


@dataclass
class _Occlusion:
    source_batch: torch.Tensor
    target_batch: torch.Tensor
    source_visible: torch.Tensor  # [N, 1, S, S] the segmenter's non-occlusion masks
    target_visible: torch.Tensor
    source_masks: list[np.ndarray]
    visible: list[np.ndarray]  # per target face
    skins: list[np.ndarray]  # per target face: its visible skin
    source_occluders: list[np.ndarray]  # per source face: what covers it (or the photo's edge cuts off)
    covered_shares: list[float]
    outside_shares: list[float]
    band: float


def _source_notices(sources: PreparedSources, crops: _Crops, occlusion: _Occlusion, stage: FirstStage,
                    two_stage: bool, source_occluders: str) -> list[str]:
    """Plain-words notices about the source photos that make a poor swap (`fswap.faces.notices`)."""
    names = [sources.names[j] for j in crops.texture_photo]
    photo_count = sources.photo_count
    # Each source photo that is largely covered or cut off says so (in two-stage checkpoints,
    # those whose texture is used: an uncovered photo turned as well is preferred to a covered one).
    per_source = [[covered_notice(name, covered - outside, source_occluders), cut_off_notice(name, outside)]
                  for name, covered, outside in zip(names, occlusion.covered_shares, occlusion.outside_shares,
                                                    strict=True)]
    if two_stage:
        textures, targets, used = crops.sources, crops.targets, stage.texture_sources
        notices = [notice for j in sorted(set(used)) for notice in per_source[j]]
        notices += [mirrored_notice(names[j]) for j in used if j >= photo_count]
        notices += [turn_notice(names[j], textures.yaw(j), targets.yaw(k)) for k, j in enumerate(used)]
        notices += [enlarged_notice(names[j], textures.size(j), targets.size(k)) for k, j in enumerate(used)]
        notices += [colourless_notice(names[j], textures.colourless(j), targets.colourless(k))
                    for k, j in enumerate(used)]
    else:
        notices = [notice for said in per_source[:photo_count] for notice in said]
    # Every source photo gives identity, so each whose face was not chosen says when it may show
    # the wrong person.
    notices += [several_faces_notice(name, [np.sqrt(face.area) for face in faces])
                for name, faces, index in zip(sources.names, sources.per_photo, sources.chosen, strict=True)
                if index is None]
    return notices


def identity_view(crops: torch.Tensor, visible: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ArcFace-aligned centre of margin crops: `face_template(S, m)` is the 112 template
    scaled into the centre S / (1 + m) square, so cropping that square gives ArcFace's view."""
    size = crops.shape[-1]
    side = int(round(size / (1.0 + margin)))
    start = (size - side) // 2
    window = slice(start, start + side)
    view = crops[..., window, window]
    mask = visible[..., window, window]
    return (
        F.interpolate(view, size=(112, 112), mode="bilinear", align_corners=False, antialias=True),
        F.interpolate(mask, size=(112, 112), mode="bilinear", align_corners=False),
    )


def checkpoint_settings(folder_or_repo_id: str | Path, revision: str | None = None) -> dict:
    """A checkpoint's pipeline settings (`PIPELINE_SETTINGS` keys) from its `model_index.json`
    alone, without loading a network: the app shows them before the model is loaded. A Hub repo's
    index is fetched with `hf_hub_download` (from the cache when offline)."""
    local = Path(folder_or_repo_id)
    if local.is_dir():
        path = local / MODEL_INDEX
    elif is_hub_repo_id(str(folder_or_repo_id)):
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            path = Path(hf_hub_download(str(folder_or_repo_id), MODEL_INDEX, revision=revision))
        except (HfHubHTTPError, LocalEntryNotFoundError) as error:
            raise ModelNotFoundError(f"cannot read {MODEL_INDEX} of Hub repo {folder_or_repo_id}: {error}") from error
    else:
        raise ModelNotFoundError(f"checkpoint folder {folder_or_repo_id} does not exist (and it is not a Hub repo id)")
    if not path.is_file():
        raise ModelNotFoundError(f"{path.parent} has no {MODEL_INDEX}; is it an fswap checkpoint?")
    return pipeline_settings(read_json(path), path)


def pipeline_settings(index: dict, path: str | Path) -> dict:
    """The pipeline settings in `index` (a `model_index.json`, or a settings file for training, at
    `path`), each of its default's type (`PIPELINE_SETTINGS` fill gaps), or `CheckpointError` for
    one that is not."""
    settings = {}
    for key, default in PIPELINE_SETTINGS.items():
        value = index.get(key, default)
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise CheckpointError(f"{path}: {key} must be a number, not {value!r}")
            value = float(value)
        elif not isinstance(value, type(default)):
            raise CheckpointError(f"{path}: {key} must be a {type(default).__name__}, not {value!r}")
        settings[key] = value
    return settings


def _resolve_checkpoint(folder_or_repo_id: str | Path, revision: str | None, cache_dir) -> Path:
    local = Path(folder_or_repo_id)
    if local.is_dir():
        return local
    text = str(folder_or_repo_id)
    if not is_hub_repo_id(text):
        raise ModelNotFoundError(f"checkpoint folder {text} does not exist (and it is not a Hub repo id 'org/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            snapshot_download(
                text, revision=revision, cache_dir=cache_dir,
                allow_patterns=[MODEL_INDEX, "*/config.json", "*.safetensors", "*.onnx", f"*/{HASHES_NAME}", "README.md"],
            )
        )
    except RevisionNotFoundError as error:
        raise ModelNotFoundError(f"Hub repo {text} has no revision {revision!r}") from error
    except RepositoryNotFoundError as error:
        raise ModelNotFoundError(
            f"Hub repo {text} not found, or it is private and no token was given (huggingface-cli login or HF_TOKEN)"
        ) from error
    except LocalEntryNotFoundError as error:
        raise ModelNotFoundError(
            f"Hub repo {text}{'@' + revision if revision else ''} is not in the local cache and the Hub cannot "
            "be reached (HF_HUB_OFFLINE is set, or there is no network)"
        ) from error
    except HfHubHTTPError as error:
        raise ModelNotFoundError(f"cannot download {text} from the Hub: {error}") from error


def _check_index(index: dict, path: Path) -> dict:
    """Validate `model_index.json` against `COMPONENTS`; return the pipeline settings it holds."""
    if index.get("_class_name") != FaceSwapPipeline.__name__:
        raise CheckpointError(f"{path} describes a {index.get('_class_name')!r}, not a {FaceSwapPipeline.__name__}")
    named = {key: value for key, value in index.items() if not key.startswith("_") and key not in PIPELINE_SETTINGS}
    unknown = sorted(set(named) - set(COMPONENTS))
    if unknown:
        raise CheckpointError(f"{path} names unknown component(s) {unknown}; fswap knows {sorted(COMPONENTS)}")
    missing = sorted(set(COMPONENTS) - set(named))
    if missing:
        raise CheckpointError(f"{path} lacks component(s) {missing}")
    for name, cls in COMPONENTS.items():
        if list(named[name]) != [cls.__module__, cls.__name__]:
            raise CheckpointError(
                f"{path}: component {name} is {named[name]}, expected {[cls.__module__, cls.__name__]}"
            )
        if not (path.parent / name).is_dir():
            raise CheckpointError(f"{path.parent} lacks the folder of component {name}")
    return pipeline_settings(index, path)


def _jaw_feather_share(value, error: type[Exception] = ValueError) -> float:
    """`jaw_feather_share` as a float in [0, 1], or `error`."""
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise error(f"jaw_feather_share must be in [0, 1], got {value}")
    return share


def _added_timings(*parts: dict[str, float]) -> dict[str, float]:
    """Stage timings of several calls as one: a stage timed in more than one is added up."""
    total: dict[str, float] = {}
    for part in parts:
        for stage, seconds in part.items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


def _is_selector(value) -> bool:
    if isinstance(value, str):
        return value in ("largest", "all")
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value)


def _per_source_photo(source_faces, photos: int) -> list[int | None]:
    """`source_faces` as one face index (or None: the largest) per source photo."""
    if source_faces is None:
        return [None] * photos
    if isinstance(source_faces, (int, np.integer)):
        if photos != 1:
            raise ValueError(f"source_faces={source_faces} names one face, but there are {photos} source photos: "
                             "give one index (or None) per photo")
        return [int(source_faces)]
    chosen = list(source_faces)
    if len(chosen) != photos or not all(i is None or isinstance(i, (int, np.integer)) for i in chosen):
        raise ValueError(f"source_faces must be one face index (or None) per source photo; got {source_faces!r} "
                         f"for {photos} photo(s)")
    return chosen


def _reference_photo(target_faces) -> np.ndarray:
    """The photo behind a `target_faces` that is not a selector; a string that names no file is
    taken for a mistyped selector, not reported as a missing photo."""
    if isinstance(target_faces, (str, os.PathLike)) and not Path(target_faces).is_file():
        raise ImageError(f'target_faces={target_faces!r} is neither "largest", "all", face numbers nor a reference '
                         "photo (no such file)")
    return load_image(target_faces, name="reference photo")
