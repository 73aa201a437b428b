"""Does the swapped face take the target's light? Swaps onto synthetically relit photos, scored
against the truth.

    python benchmarks/relighting.py   # -> benchmarks/results/relighting.json, about 2 minutes

Each of the first `--photos` (40) held-out photos (`fswap.evaluation.held_out_photos`, people
never trained on) is relit by each light of `LIGHTS`, multiplied in linear light: a light from
the side (the far side gets 35 % of it), from above (the chin gets 45 %), a blue stage light and
a warm one. The photo as it was is the source, the relit photo the target. Both show the same
person, so the relit photo is the truth a perfect swap would give: whatever the swap differs
from it by, on the face's skin (the landmark face region less eyes, brows and mouth, grown),
is error. Reported per system and light: the mean absolute error in grey levels (0-255, all
three channels) and the share of that error that is slow (the light, after a Gaussian blur of
a twentieth of the face's size), with "unswapped" (the source as it was) as the reference of
doing nothing about the light.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import cv2
import numpy as np
from common import add_checkpoint_arguments, markdown_table, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.errors import FswapError
from fswap.evaluation import held_out_photos
from fswap.faces.relight import from_linear, skin_weight, to_linear
from fswap.imageio import load_image
from fswap.pipeline import FaceSwapPipeline


def _side(shape: tuple[int, int]) -> np.ndarray:
    return np.linspace(0.35, 1.0, shape[1], dtype=np.float32)[None, :, None].repeat(shape[0], 0).repeat(3, 2)


def _above(shape: tuple[int, int]) -> np.ndarray:
    return np.linspace(1.0, 0.45, shape[0], dtype=np.float32)[:, None, None].repeat(shape[1], 1).repeat(3, 2)


def _tint(rgb: tuple[float, float, float]) -> Callable[[tuple[int, int]], np.ndarray]:
    return lambda shape: np.broadcast_to(np.array(rgb, np.float32), (*shape, 3))


#: light -> per-pixel linear-light multiplier for a photo of a given (height, width).
LIGHTS: dict[str, Callable[[tuple[int, int]], np.ndarray]] = {
    "from the side": _side,
    "from above": _above,
    "blue stage light": _tint((0.7, 0.85, 1.15)),
    "warm light": _tint((1.15, 0.9, 0.65)),
}


def relit(photo: np.ndarray, light: str) -> np.ndarray:
    return from_linear(to_linear(photo) * LIGHTS[light](photo.shape[:2]))


def errors(swap: np.ndarray, truth: np.ndarray, skin: np.ndarray, face_size: float) -> tuple[float, float]:
    """Mean absolute error on the skin (grey levels), and the same of the blurred difference (the light's part)."""
    difference = swap.astype(np.float32) - truth.astype(np.float32)
    slow = cv2.GaussianBlur(difference, (0, 0), face_size / 20.0)
    return float(np.abs(difference[skin]).mean()), float(np.abs(slow[skin]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    systems: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "unswapped": lambda source, target: source,
        "classic": lambda source, target: classic(source, target).image,
        "pasted (default)": lambda source, target: pipeline(source, target, watermark=False, rendering="pasted",
                                                            paste_source_occluders="all").image,
        "relit": lambda source, target: pipeline(source, target, watermark=False, rendering="relit").image,
    }
    scores = {(system, light): [] for system in systems for light in LIGHTS}
    failures = dict.fromkeys(systems, 0)
    for path in held_out_photos(args.data, args.photos, seed=args.seed):
        photo = load_image(path)
        face = pipeline.face_analyzer.largest_face(photo)
        skin = skin_weight(face.landmarks, photo.shape[:2]) > 0.5
        size = float(np.ptp(face.landmarks, axis=0).max())
        for light in LIGHTS:
            truth = relit(photo, light)
            for system, swap in systems.items():
                try:
                    scores[system, light].append(errors(swap(photo, truth), truth, skin, size))
                except FswapError:
                    failures[system] += 1
    rows = []
    for system in systems:
        row = {"system": system}
        for light in LIGHTS:
            total, slow = np.mean(scores[system, light], axis=0)
            row[light] = f"{total:.1f} ({slow:.1f})"
        rows.append(row)
    table = markdown_table(rows, ["system", *LIGHTS])
    write_result("relighting", {
        "photos": args.photos, "seed": args.seed, "failures": failures,
        "mean_abs_error": {f"{system} / {light}": [round(float(v), 2) for v in np.mean(scores[system, light], axis=0)]
                           for system in systems for light in LIGHTS},
        "unit": "grey levels on the face's skin: [all of it, its slow part]",
    })
    print("mean absolute error on the skin against the relit truth, grey levels (its slow part)\n")
    print(table)


if __name__ == "__main__":
    main()
