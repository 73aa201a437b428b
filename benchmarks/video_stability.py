"""Temporal stability of video swaps on clips with a known motion (issue 25, item 4).

    python benchmarks/video_stability.py                 # the default checkpoint
    python benchmarks/video_stability.py --frames 24     # shorter clips
    python benchmarks/video_stability.py --model PATH    # another checkpoint

Each clip is a face cut from t1.jpg (two people: its faces 0 and 3) moved along a smooth path
(`fswap.video.known_motion.KnownMotion`) at 480x360 and 25 fps: a pan, a zoom, a small roll, a slow
change of light (-20 %), and all four at once. In such a clip frame t+1 is frame t moved and lit by
a known transform, and a steady swap keeps that. Per method, over every clip:

- temporal error: mean |swap(t+1) - swap(t) moved and lit on| inside the face, in grey levels;
- flicker: mean |change of the face's mean luma| from frame to frame beyond the known light change.

The input clip's own figures are the floor (resampling alone). The methods, all in this run, with
yaoming.jpg as the source and no watermark (it is the same in every method): fswap's photo pipeline
on each frame alone; the video swap (`fswap.video.VideoSwapper`) without and with smoothing; the
classic landmark swap on each frame alone, and through the video swap with smoothing. Frames are
compared as swapped, before any encoding.

Writes benchmarks/results/video_stability.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from common import add_checkpoint_arguments, markdown_table, model_name, write_result

MOTIONS = {
    "pan": {"pan": 0.25, "zoom": 0.0, "roll": 0.0, "light": 0.0},
    "zoom": {"pan": 0.0, "zoom": 0.25, "roll": 0.0, "light": 0.0},
    "roll": {"pan": 0.0, "zoom": 0.0, "roll": 8.0, "light": 0.0},
    "light": {"pan": 0.0, "zoom": 0.0, "roll": 0.0, "light": -0.2},
    "all": {"pan": 0.2, "zoom": 0.15, "roll": 6.0, "light": -0.2},
}
SUBJECTS = (0, 3)  # faces of t1.jpg, largest first
METHODS = ("input", "fswap, per frame", "fswap video, unsmoothed", "fswap video, smoothed", "classic, per frame",
           "classic video, smoothed")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from fswap.assets import default_model, example_image
    from fswap.baselines.classic import ClassicFaceSwapper
    from fswap.faces import region_mask
    from fswap.imageio import load_image
    from fswap.pipeline import FaceSwapPipeline
    from fswap.video import VideoOptions, VideoSwapper
    from fswap.video.known_motion import KnownMotion, StabilityMeter, portrait

    torch.set_num_threads(1)  # on 2 shared cores, 2 threads contend (benchmarks/video_speed.py): same figures, sooner
    pipe = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipe.face_analyzer)
    source = load_image(example_image("yaoming.jpg"))
    t1 = load_image(example_image("t1.jpg"))
    faces = pipe.face_analyzer.detect(t1)
    quiet = VideoOptions(watermark=False)
    per_clip = []
    for subject in SUBJECTS:
        photo = portrait(t1, faces[subject].box)
        face_mask = region_mask(pipe.face_analyzer.largest_face(photo).landmarks, photo.shape[:2], "face")
        for motion_name, path in MOTIONS.items():
            motion = KnownMotion(frames=args.frames, size=(480, 360), **path)
            swaps = {
                "input": lambda frame, time: frame,
                "fswap, per frame": lambda frame, time: pipe(source, frame, watermark=False).image,
                "fswap video, unsmoothed": VideoSwapper(pipe, source, options=quiet.replace(smoothing=False)),
                "fswap video, smoothed": VideoSwapper(pipe, source, options=quiet),
                "classic, per frame": lambda frame, time: classic(source, frame).image,
                "classic video, smoothed": VideoSwapper(classic, source, options=quiet),
            }
            meters = {name: StabilityMeter(motion, photo.shape, face_mask) for name in METHODS}
            for index, frame in enumerate(motion.clip(photo)):
                for name, swap in swaps.items():
                    result = swap(frame, index / 25)
                    meters[name].add(index, result if isinstance(result, np.ndarray) else result.image)
            row = {"subject": subject, "motion": motion_name,
                   **{name: meters[name].result() for name in METHODS}}
            per_clip.append(row)
            print(f"face {subject}, {motion_name}: " + ", ".join(
                f"{name} {row[name]['temporal_error']:.2f}/{row[name]['flicker']:.2f}" for name in METHODS),
                file=sys.stderr)
    summary = {name: {figure: round(float(np.mean([row[name][figure] for row in per_clip])), 3)
                      for figure in ("temporal_error", "flicker")} for name in METHODS}
    by_motion = {motion: {name: {figure: round(float(np.mean([row[name][figure] for row in per_clip
                                                               if row["motion"] == motion])), 3)
                                 for figure in ("temporal_error", "flicker")} for name in METHODS}
                 for motion in MOTIONS}
    path = write_result("video_stability", {
        "model": model_name(args.model), "clips": {"subjects": list(SUBJECTS), "motions": MOTIONS,
                                                   "frames": args.frames, "size": [480, 360], "fps": 25},
        "source": "yaoming.jpg", "summary": summary, "by_motion": by_motion,
    })
    rows = [{"method": name, "temporal error": summary[name]["temporal_error"], "flicker": summary[name]["flicker"],
             **{motion: f"{by_motion[motion][name]['temporal_error']:.2f} / {by_motion[motion][name]['flicker']:.2f}"
                for motion in MOTIONS}} for name in METHODS]
    print(markdown_table(rows, ["method", "temporal error", "flicker", *MOTIONS]))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
