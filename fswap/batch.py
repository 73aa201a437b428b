"""Swapping photo files into files: one swapper loaded once, then target after target.

`FileSwapper` holds what every swap of a run shares (the model or the classic swapper, the
source photos, the options, the signing credentials) and turns one target file into one result
file with its provenance. `plan_batch` decides what a folder (or list) of targets becomes, and
`swap_files` runs the plan with a progress bar: results that exist are skipped unless asked to
redo them, and a target that fails is reported without stopping the others.

Under `accelerate launch --num_processes N`, `swap_files` splits the plan between the processes
(`split_between_processes`): each swaps its share and writes its own manifest shard, and the main
process merges the shards into OUT_DIR/manifest.jsonl (one line per target: written, skipped or
failed, by which process, how long) once all are done. One process is the same code with one share.

The command line uses it for `fswap swap SOURCE... FOLDER -o OUT_DIR` and `--targets`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fswap.errors import FswapError, OutputError
from fswap.fileio import check_output, write_atomically
from fswap.imageio import WRITE_SUFFIXES, keeps_alpha, load_image, load_rgba, save_image, with_transparency
from fswap.options import SwapOptions
from fswap.processes import launched_processes, shard_path, share

CLASSIC_CHECKPOINT = "classic landmark swap"
#: The files in a folder of targets that are taken for photos (`fswap.imageio.READ_FORMATS`' suffixes).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".bmp", ".tif", ".tiff", ".gif")


@dataclass
class SwapRecord:
    """What one target became."""

    path: Path
    timings: dict[str, float]
    notices: list[str]


@dataclass
class FileSwapper:
    """Swap the person in `sources` into target files; every model is loaded once, on creation.

    Args:
        sources: photos of the person to put in.
        method: "fswap" (the networks of `model`) or "classic" (the landmark swap baseline).
        model, revision: the checkpoint folder or Hub id (default: `fswap.assets.default_model()`).
        options: how the swap is made (`fswap.SwapOptions`); its `watermark` also decides whether
            the result carries Content Credentials (`provenance`).
        target_faces, source_faces: as in `FaceSwapPipeline.__call__` (a reference photo's path
            is allowed for `target_faces`).
        face_models: the face analyzer for the classic swap (default: the registry's).
        color_correction: the classic swap's colour correction.
        credentials: the Content Credentials signer (None: the local test certificate).
        device: where the networks run (default CPU).
    """

    sources: Sequence[Path]
    method: str = "fswap"
    model: str | None = None
    revision: str | None = None
    options: SwapOptions = field(default_factory=SwapOptions)
    target_faces: object = "largest"
    source_faces: list[int] | None = None
    face_models: str | None = None
    color_correction: bool = True
    credentials: object = None
    device: object = None  # where the networks run (default CPU); under `accelerate launch`, the process's

    def __post_init__(self):
        from fswap.faces import FaceAnalyzer

        self.sources = [Path(source) for source in self.sources]
        if self.method == "classic":
            from fswap.baselines.classic import ClassicFaceSwapper

            self._analyzer = FaceAnalyzer.from_pretrained(self.face_models, subfolder="face_analyzer")
            self._classic = ClassicFaceSwapper(self._analyzer)
            self.checkpoint = CLASSIC_CHECKPOINT
            self._selector = self.target_faces
            if isinstance(self._selector, Path):
                self._selector = self._analyzer.largest_face(load_image(self._selector), name=self._selector.name,
                                                             embeddings=True).embedding
        elif self.method == "fswap":
            from fswap.assets import default_model
            from fswap.pipeline import FaceSwapPipeline

            self._pipeline = FaceSwapPipeline.from_pretrained(self.model or default_model(), revision=self.revision,
                                                              device=self.device)
            self.checkpoint = self._pipeline.checkpoint_name or "unnamed checkpoint"
            # The source photos are read and analysed once for the run (a target that wants a
            # mirror image of them has them prepared again: `FaceSwapPipeline.__call__`).
            self._sources = self._pipeline.prepare_sources(self.sources, self.source_faces, options=self.options,
                                                           mirrors_for=[])
        else:
            raise FswapError(f"method must be fswap or classic, not {self.method!r}")

    @property
    def provenance(self) -> bool:
        return self.options.watermark

    @property
    def output_suffixes(self) -> dict[str, str]:
        from fswap.provenance.output import SIGNED_FORMATS

        return SIGNED_FORMATS if self.provenance else WRITE_SUFFIXES

    @property
    def inputs(self) -> list[Path]:
        """Files no result may overwrite (the targets are added per target)."""
        return [*self.sources, *([self.target_faces] if isinstance(self.target_faces, Path) else [])]

    def swap_file(self, target: Path, output: Path) -> SwapRecord:
        """Swap `target` and write the result to `output` (checked first: `fswap.fileio.check_output`)."""
        output = check_output(output, inputs=[*self.inputs, target], suffixes=self.output_suffixes)
        image, timings, notices = self._swap(target)
        # A cut-out portrait keeps its transparency, where the output's format can hold it.
        transparent = load_rgba(target, name=target.name)
        if transparent is not None and keeps_alpha(output):
            image = with_transparency(image, transparent)
        elif transparent is not None:
            notices.append(f"{target.name} is transparent in places and {output.suffix} files are not: those places "
                           "are white. Write a PNG, WebP or TIFF file to keep them transparent")
        if not self.provenance:
            return SwapRecord(save_image(output, image), timings, notices)
        from fswap.provenance.c2pa_manifest import COMPOSITE_SOURCE_TYPE, DIGITAL_SOURCE_TYPE
        from fswap.provenance.output import write_signed_image

        source_type = COMPOSITE_SOURCE_TYPE if self.method == "classic" else DIGITAL_SOURCE_TYPE
        path = write_signed_image(output, image, checkpoint=self.checkpoint, parent=target,
                                  credentials=self.credentials, digital_source_type=source_type)
        return SwapRecord(path, timings, notices)

    def _swap(self, target: Path):
        if self.method == "fswap":
            result = self._pipeline(self._sources, target, target_faces=self.target_faces, options=self.options)
            return result.image, dict(result.timings), list(result.notices)
        notices = ["the classic swap uses the first source photo only"] if len(self.sources) > 1 else []
        result = self._classic(
            self.sources[0], target, target_faces=self._selector, color_correction=self.color_correction,
            source_face=self.source_faces[0] if self.source_faces else None,
            source_name=self.sources[0].name, target_name=target.name,
        )
        image = result.image
        if self.provenance:
            from fswap.provenance import embed_watermark

            swapped = [face for face in self._analyzer.detect(image) if _pasted_over(face, result.blend_mask)]
            image = embed_watermark(image, swapped, checkpoint=self.checkpoint, analyzer=self._analyzer,
                                    unmarked=notices)
        return image, dict(result.timings), notices


def _pasted_over(face, blend_mask) -> bool:
    """Whether the classic swap pasted over this face (its keypoints' centre lies in the blend mask)."""
    x, y = face.keypoints.mean(axis=0).round().astype(int)
    height, width = blend_mask.shape
    return 0 <= x < width and 0 <= y < height and blend_mask[y, x] > 0.5


# ------------------------------------------------------------------ many targets
def photos_in(folder: Path) -> list[Path]:
    """The photos directly in `folder` (by suffix, sorted by name; hidden files left out)."""
    return sorted(path for path in folder.iterdir()
                  if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith("."))


def result_name(target: Path, suffix: str = ".png") -> str:
    return f"{target.stem}_swapped{suffix}"


@dataclass
class BatchPlan:
    jobs: list[tuple[Path, Path]]  # (target, output) to swap
    skipped: list[tuple[Path, Path]]  # (target, output) whose output exists and is kept


def plan_batch(targets: Sequence[Path], output_dir: Path, *, overwrite: bool = False, suffix: str = ".png") -> BatchPlan:
    """What each target becomes in `output_dir`; refused up front when two targets would write the
    same file, or `output_dir` is a file."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir} is a file; several targets need a folder to write their results into")
    if not targets:
        raise FswapError("no target photos to swap")
    outputs: dict[Path, Path] = {}
    for target in targets:
        output = output_dir / result_name(target, suffix)
        if output in outputs:
            raise OutputError(f"{outputs[output].name} and {target.name} would both be written to {output.name}; "
                              "rename one or swap them in two runs")
        outputs[output] = target
    resolved = {target.resolve() for target in targets}
    for output, target in outputs.items():
        if output.resolve() in resolved:
            raise OutputError(f"{output} is one of the targets, and the result of {target.name} would be written over "
                              "it; write the results into another folder")
    jobs = [(target, output) for output, target in outputs.items() if overwrite or not output.exists()]
    skipped = [(target, output) for output, target in outputs.items() if output.exists() and not overwrite]
    return BatchPlan(jobs, skipped)


@dataclass
class BatchReport:
    written: list[SwapRecord] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (target, the one-line error)

    def summary(self) -> str:
        parts = [f"{len(self.written)} written", f"{len(self.skipped)} skipped (already there; --overwrite redoes "
                 "them)" if self.skipped else "", f"{len(self.failed)} failed" if self.failed else ""]
        return ", ".join(part for part in parts if part)


MANIFEST = "manifest.jsonl"


def swap_files(swapper: FileSwapper, plan: BatchPlan, output_dir: Path | None = None, *,
               progress: bool = True) -> BatchReport:
    """Run `plan` with `swapper`: a target that cannot be swapped (no face, a broken file) is
    reported and the rest go on; the results that exist are kept (`plan.skipped`). Launched on
    several processes, each takes its share. Given `output_dir`, its `manifest.jsonl` records
    every target (merged from each process's shard by the main process at the end)."""
    from tqdm.auto import tqdm

    state = launched_processes()
    jobs = share(plan.jobs, state)
    main = state is None or state.is_main_process
    skipped = plan.skipped if main else []
    report = BatchReport(skipped=[output for _, output in skipped])
    rows = [{"target": target.name, "output": output.name, "status": "skipped"} for target, output in skipped]
    rank = 0 if state is None else state.process_index
    bar = tqdm(jobs, unit="photo", disable=not progress or not jobs or not main, file=sys.stderr)
    for target, output in bar:
        bar.set_postfix_str(target.name, refresh=False)
        start = time.perf_counter()
        row = {"target": target.name, "output": output.name, "process": rank}
        try:
            record = swapper.swap_file(target, output)
            report.written.append(record)
            row["status"] = "written"
            for notice in record.notices:
                bar.write(f"note: {target.name}: {notice}", file=sys.stderr)
        except FswapError as error:
            report.failed.append((target, str(error)))
            row |= {"status": "failed", "error": str(error)}
            bar.write(f"fswap: {target.name}: {error}", file=sys.stderr)
        rows.append(row | {"seconds": round(time.perf_counter() - start, 3)})
    if output_dir is not None:
        shard = shard_path(output_dir / MANIFEST, rank)
        write_atomically(shard, "".join(json.dumps(row) + "\n" for row in rows).encode())
    if state is not None:
        state.wait_for_everyone()
        report = _gather_reports(report, state)
    if output_dir is not None and main:
        merge_manifest(output_dir)
    if state is not None:
        state.wait_for_everyone()
    return report


def merge_manifest(output_dir: Path) -> Path:
    """Fold the processes' shards into `output_dir/manifest.jsonl`, one line per target (this
    run's line replaces an earlier run's), sorted by target; the shards are removed."""
    path = output_dir / MANIFEST
    rows = {}
    shards = sorted(output_dir.glob(f".{MANIFEST}.*"))
    for source in ([path] if path.is_file() else []) + shards:
        for line in source.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["status"] == "skipped" and row["target"] in rows:
                continue  # an earlier run's record of how it was made stays
            rows[row["target"]] = row
    write_atomically(path, "".join(json.dumps(rows[name]) + "\n" for name in sorted(rows)).encode())
    for shard in shards:
        shard.unlink()
    return path


def _gather_reports(report: BatchReport, state) -> BatchReport:
    """Every process's report, as one (the counts a user sees are the whole run's)."""
    from accelerate.utils import gather_object

    written = gather_object([record.path for record in report.written])
    failed = gather_object(report.failed)
    return BatchReport(written=[SwapRecord(Path(path), {}, []) for path in written],
                       skipped=report.skipped, failed=list(failed))
