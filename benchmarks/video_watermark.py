"""Does the watermark of a swapped video survive re-encoding and downscaling? (issue 25, item 6)

    python benchmarks/video_watermark.py                          # 1280x720, 960x540, 640x360; 24 frames
    python benchmarks/video_watermark.py --sizes 640x360 --frames 12
    python benchmarks/video_watermark.py --model PATH             # another checkpoint

Clips: a face cut from t1.jpg (two people: its faces 0 and 3) moved along a smooth path
(`fswap.video.known_motion.KnownMotion`: a pan of 20 % of the width, a zoom of 15 %, a roll of 6°,
a change of light of -20 %) at each size, 25 fps; the face is about 0.19 of the clip's width
across. Each clip's frames are swapped with yaoming.jpg by `fswap.video.VideoSwapper` (what
`swap_video` runs: tracked, smoothed) without a watermark, then marked at each strength the scheme
has (`fswap.provenance.watermark.STEPS`: a photo's, and a video's, twice as strong, what
`swap_video` writes) and encoded as `swap_video` encodes (x264 veryfast, CRF 18). Each file is then
re-encoded with PyAV as a platform would (`fswap.video.known_motion.reencode`: libx264, preset
medium): at CRF 28; at half size (FFmpeg's bicubic scaler) and CRF 18; at half size and CRF 28.
`fswap.provenance.verify_video` reads every frame: the share of the frames with a face in which the
mark is found (each frame at the photo's false-alarm bound, 1e-6). The unswapped input clip goes
through the same transformations and the same reader: the share of its frames wrongly found marked,
and the strongest unmarked frame's bound.

What the mark costs, per strength, on the frames before encoding: the PSNR of the marked swap
against the unmarked one over the pixels the mark changed (the face and a margin), and the temporal
error and flicker it adds (`fswap.video.known_motion.StabilityMeter`, as benchmarks/video_stability.py).

Writes benchmarks/results/video_watermark.json (per-frame rows beside it) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import markdown_table, model_name, write_result

SUBJECTS = (0, 3)  # faces of t1.jpg, largest first
#: name -> (CRF, scale) of the re-encoding; None: the file as written.
TRANSFORMS = {
    "as written (CRF 18)": None,
    "CRF 28": (28, 1.0),
    "half size": (18, 0.5),
    "half size, CRF 28": (28, 0.5),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: the embedded default)")
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "960x540", "640x360"],
                        help="clip sizes, WIDTHxHEIGHT")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from fswap.assets import default_model, example_image
    from fswap.faces import region_mask
    from fswap.imageio import load_image
    from fswap.pipeline import FaceSwapPipeline
    from fswap.provenance import verify_video
    from fswap.provenance.watermark import STEP, STEPS, VIDEO_STEP
    from fswap.video import VideoOptions, VideoSwapper, probe_video
    from fswap.video.decode import read_frames
    from fswap.video.known_motion import KnownMotion, StabilityMeter, portrait, reencode, write_clip
    from fswap.video.marking import mark_faces

    torch.set_num_threads(1)  # on 2 shared cores, 2 threads contend (benchmarks/video_speed.py)
    pipe = FaceSwapPipeline.from_pretrained(args.model or default_model())
    analyzer = pipe.face_analyzer
    source = load_image(example_image("yaoming.jpg"))
    t1 = load_image(example_image("t1.jpg"))
    faces = analyzer.detect(t1)
    strengths = {STEP: "photo strength", VIDEO_STEP: "video strength (written)"}
    assert set(strengths) == set(STEPS)
    rows, costs, frame_rows = [], [], []
    read_seconds, read_frames_count = 0.0, 0
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for size_text in args.sizes:
            size = tuple(int(side) for side in size_text.split("x"))
            for subject in SUBJECTS:
                photo = portrait(t1, faces[subject].box)
                motion = KnownMotion(frames=args.frames, size=size)
                clip = folder / f"{size_text}-{subject}.mp4"
                write_clip(clip, motion.clip(photo))
                swapper = VideoSwapper(pipe, source, options=VideoOptions(watermark=False))
                unmarked, boxes = [], []
                for frame in read_frames(probe_video(clip)):
                    swapped = swapper(frame.image, frame.time)
                    unmarked.append(swapped.image)
                    boxes.append([face.face.box for face in swapped.faces if face.region is not None])
                face_mask = region_mask(analyzer.largest_face(photo).landmarks, photo.shape[:2], "face")
                plain = StabilityMeter(motion, photo.shape, face_mask)
                for index, image in enumerate(unmarked):
                    plain.add(index, image)
                files = {"input": clip}
                for step, strength in strengths.items():
                    marked = [image.copy() for image in unmarked]
                    meter = StabilityMeter(motion, photo.shape, face_mask)
                    for index, (image, frame_boxes) in enumerate(zip(marked, boxes, strict=True)):
                        mark_faces(image, frame_boxes, analyzer, pipe.checkpoint_name, step=step)
                        meter.add(index, image)
                    costs.append({"size": size_text, "subject": subject, "strength": strength, "step": step,
                                  "psnr_db": _psnr(unmarked, marked), **_added(plain.result(), meter.result())})
                    files[strength] = folder / f"{size_text}-{subject}-{step:.0f}.mp4"
                    write_clip(files[strength], marked, crf=18)
                for kind, path in files.items():
                    for transform, setting in TRANSFORMS.items():
                        checked = path
                        if setting is not None:
                            checked = folder / f"{path.stem}-{setting[0]}-{setting[1]}.mp4"
                            reencode(path, checked, crf=setting[0], scale=setting[1])
                        start = time.perf_counter()
                        report = verify_video(checked, frames=None, analyzer=analyzer)
                        read_seconds += time.perf_counter() - start
                        read_frames_count += len(report.frames)
                        rows.append({
                            "size": size_text, "subject": subject, "clip": kind, "transform": transform,
                            "frames": len(report.frames), "with_face": report.frames_with_face,
                            "marked": report.frames_marked, "share": report.share,
                            "strongest_frame_log10_p": _strongest(report),
                            "face_px": _face_width(analyzer, checked, report),
                        })
                        frame_rows += [{"size": size_text, "subject": subject, "clip": kind, "transform": transform,
                                        "index": check.index, "faces": check.faces, "found": check.found,
                                        "log10_p": check.log10_p} for check in report.frames]
                        print(f"{size_text} face {subject} {kind:<25} {transform:<20} {report.frames_marked}/"
                              f"{report.frames_with_face} marked, face {rows[-1]['face_px']} px", flush=True)
    kinds = ["input", *strengths.values()]
    survival = _survival(rows, kinds)
    cost = _cost(costs)
    tables = {
        "survival": markdown_table(survival, ["size", "transform", "face px", *kinds]),
        "cost": markdown_table(cost, ["size", "strength", "PSNR (dB)", "temporal error added", "flicker added"]),
    }
    print(tables["survival"], tables["cost"], sep="\n\n")
    write_result("video_watermark", {
        "model": model_name(args.model),
        "source": "yaoming.jpg",
        "subjects": [f"t1.jpg face {subject}" for subject in SUBJECTS],
        "frames_per_clip": args.frames,
        "motion": {"pan": 0.2, "zoom": 0.15, "roll": 6.0, "light": -0.2, "fill": 0.9},
        "steps": {strength: step for step, strength in strengths.items()},
        "transforms": {name: None if setting is None else {"crf": setting[0], "scale": setting[1], "preset": "medium"}
                       for name, setting in TRANSFORMS.items()},
        "threshold": 1e-6,
        "verify_seconds_per_frame": round(read_seconds / max(read_frames_count, 1), 4),
        "survival": survival,
        "cost": cost,
        "tables": tables,
        "clips": rows,
        "costs": costs,
    }, pair_results=frame_rows)


def _psnr(unmarked: list[np.ndarray], marked: list[np.ndarray]) -> float:
    """PSNR (dB) of the marked frames against the unmarked ones, over the pixels the mark changed."""
    squared = [(after.astype(np.float64) - before) ** 2 for before, after in zip(unmarked, marked, strict=True)]
    changed = np.concatenate([error[error.sum(axis=2) > 0].ravel() for error in squared])
    return round(float(10 * np.log10(255.0**2 / changed.mean())), 2) if changed.size else float("inf")


def _added(plain: dict, marked: dict) -> dict:
    return {"temporal_error_added": round(marked["temporal_error"] - plain["temporal_error"], 3),
            "flicker_added": round(marked["flicker"] - plain["flicker"], 3),
            "temporal_error_unmarked": round(plain["temporal_error"], 3), "flicker_unmarked": round(plain["flicker"], 3)}


def _strongest(report) -> float | None:
    """The lowest false-alarm bound (log10) of any one frame: on an unmarked clip, how near chance came."""
    bounds = [check.log10_p for check in report.frames if check.log10_p is not None]
    return round(min(bounds), 2) if bounds else None


def _face_width(analyzer, path: Path, report) -> float | None:
    """The median width (px) of the largest face in every 6th frame with a face."""
    from fswap.video.decode import read_frames
    from fswap.video.probe import probe_video

    chosen = {check.index for check in report.frames if check.faces}
    chosen = set(sorted(chosen)[::6])
    widths = []
    for frame in read_frames(probe_video(path), only=chosen):
        found = analyzer.detect(frame.image)
        if found:
            widths.append(float(found[0].box[2] - found[0].box[0]))
    return round(float(np.median(widths)), 1) if widths else None


def _survival(rows: list[dict], kinds: list[str]) -> list[dict]:
    """Per size and transformation, over the subjects: the share of frames with a face found marked."""
    out = []
    for size in dict.fromkeys(row["size"] for row in rows):
        for transform in TRANSFORMS:
            line = {"size": size, "transform": transform}
            widths = [row["face_px"] for row in rows if row["size"] == size and row["transform"] == transform
                      and row["face_px"] is not None]
            line["face px"] = round(float(np.mean(widths))) if widths else "-"
            for kind in kinds:
                group = [row for row in rows if row["size"] == size and row["transform"] == transform
                         and row["clip"] == kind]
                marked, with_face = sum(row["marked"] for row in group), sum(row["with_face"] for row in group)
                line[kind] = f"{marked / max(with_face, 1):.1%} ({marked}/{with_face})"
                if kind == "input":
                    strongest = [row["strongest_frame_log10_p"] for row in group
                                 if row["strongest_frame_log10_p"] is not None]
                    line[kind] += f", strongest p {10 ** min(strongest):.2g}" if strongest else ""
            out.append(line)
    return out


def _cost(costs: list[dict]) -> list[dict]:
    """Per size and strength, over the subjects: PSNR and the temporal error and flicker added."""
    out = []
    for size in dict.fromkeys(row["size"] for row in costs):
        for strength in dict.fromkeys(row["strength"] for row in costs):
            group = [row for row in costs if row["size"] == size and row["strength"] == strength]
            out.append({
                "size": size, "strength": strength,
                "PSNR (dB)": f"{np.mean([row['psnr_db'] for row in group]):.1f}",
                "temporal error added": f"{np.mean([row['temporal_error_added'] for row in group]):+.2f}",
                "flicker added": f"{np.mean([row['flicker_added'] for row in group]):+.3f}",
            })
    return out


if __name__ == "__main__":
    main()
