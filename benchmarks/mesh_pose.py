"""Head pose error measured a second, independent way: MediaPipe's 468-point face mesh, next to
`fswap eval`'s 2d106det landmarks, on the same swaps in the same run.

    python -m venv .venv-mediapipe && .venv-mediapipe/bin/pip install mediapipe==0.10.21   # once
    python benchmarks/mesh_pose.py --mediapipe-python .venv-mediapipe/bin/python   # 9 minutes
    # -> benchmarks/results/mesh_pose.json, every pair in mesh_pose_pairs.jsonl.gz beside it

Why a second measure: `fswap eval` reads the head's pose by PnP from six of 2d106det's
landmarks (eye corners, nose tip, mouth corners, chin). fswap moves the eyes, nose and mouth
towards the source's proportions on purpose (`shape_strength`), while the outline, and with it
the head, stays the target's; a PnP on those six points reads the moved features as a turned
head. Here the pose is also read from MediaPipe's face mesh, a different model from a different
maker, whose 468 points cover the whole face surface: the swap's mesh is fitted to the
target's by the rotation, scale and shift that best match all 468 points in 3-D (Umeyama), and
the pose error is that rotation as mean |yaw|, |pitch|, |roll|, in degrees, the same summary as
`fswap eval`'s. Features that move a few pixels barely turn a fit over the whole face; a head
that turns does.

MediaPipe is not one of fswap's dependencies: 0.10.21, the last release that ships its models,
needs numpy<2 and protobuf<5, which fight the rest of the stack (`../shared/ASSETS.md`). So the
mesh runs in its own environment (`mesh_pose_worker.py`, which imports nothing of fswap), on
the swaps this script saves as PNG files.

Pairs: `fswap eval`'s 2,209 held-out pairs. Rows: fswap, fswap with the target's proportions
(`shape_strength=0`), fswap with a source turned the other way stretched rather than mirrored
(`mirror_sources=False`, `fswap.faces.mirror`), the classic swap, and no swap. fswap is paired with the classic swap on
both measures (a 95 % interval from a bootstrap over source photos, as in `fswap eval`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from common import add_checkpoint_arguments, markdown_table, model_name, portable_path, write_result

from fswap.assets import default_model
from fswap.baselines.classic import ClassicFaceSwapper
from fswap.evaluation import face_at, held_out_pairs, pose_error, source_bootstrap
from fswap.imageio import save_image
from fswap.pipeline import FaceSwapPipeline

WORKER = Path(__file__).with_name("mesh_pose_worker.py")
COLUMNS = ["method", "mesh_pose_error_deg", "mesh_pose_median_deg", "landmark_pose_error_deg",
           "landmark_pose_median_deg", "pairs", "no_mesh"]


def rigid_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 rotation of the similarity that maps `source` [N, 3] onto `target` [N, 3] with the
    least squared error (Umeyama)."""
    a, b = source - source.mean(axis=0), target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(b.T @ a)
    sign = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ sign @ vt


def rotation_degrees(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) of a rotation, degrees: about the image's y (down), x (right) and z axes."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rotation).as_euler("yxz", degrees=True)


def mesh_pose_error(swap_mesh: np.ndarray, target_mesh: np.ndarray) -> float:
    """Mean |yaw|, |pitch|, |roll| of the rotation between two face meshes [468, 3], degrees;
    NaN when either has no face."""
    if np.isnan(swap_mesh).any() or np.isnan(target_mesh).any():
        return float("nan")
    return float(np.mean(np.abs(rotation_degrees(rigid_rotation(target_mesh, swap_mesh)))))


def face_meshes(python: str, paths: list[Path], folder: Path) -> np.ndarray:
    """[len(paths), 468, 3] meshes from the MediaPipe environment's `python`."""
    listing, output = folder / "images.json", folder / "meshes.npz"
    listing.write_text(json.dumps([str(path) for path in paths]))
    subprocess.run([python, str(WORKER), str(listing), str(output)], check=True)
    return np.load(output)["meshes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mediapipe-python", required=True,
                        help="the python of an environment with mediapipe==0.10.21 installed")
    add_checkpoint_arguments(parser)
    parser.add_argument("--pairs", type=int, default=2209)
    parser.add_argument("--work", type=Path, help="where the swaps are saved (default: a temporary folder)")
    args = parser.parse_args()
    from tqdm.auto import tqdm

    sources, targets, pairs = held_out_pairs(args.data, args.pairs)
    pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    methods = {
        "fswap": lambda source, target: pipeline(source, target).image,
        "fswap, the target's proportions (shape_strength=0)": lambda source, target: pipeline(
            source, target, shape_strength=0.0).image,
        "fswap, a source turned the other way stretched (mirror_sources=False)": lambda source, target: pipeline(
            source, target, mirror_sources=False).image,
        "classic": lambda source, target: classic(source, target).image,
        "no swap": lambda source, target: target,
    }
    analyzer = pipeline.face_analyzer
    target_faces = [analyzer.largest_face(image) for image in targets]
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.work or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [save_image(folder / f"target_{t}.png", image) for t, image in enumerate(targets)]
        landmark_errors: dict[str, list[float]] = {name: [] for name in methods}
        for s, t in tqdm(pairs, desc="swaps", unit="pair"):
            for m, (name, method) in enumerate(methods.items()):
                swapped = method(sources[s], targets[t])
                paths.append(save_image(folder / f"swap_{m}_{s}_{t}.png", swapped))
                face = face_at(analyzer, swapped, target_faces[t])
                landmark_errors[name].append(pose_error(face.landmarks, target_faces[t].landmarks, targets[t].shape))
        meshes = face_meshes(args.mediapipe_python, paths, folder)
    target_meshes, swap_meshes = meshes[: len(targets)], meshes[len(targets):].reshape(len(pairs), len(methods), -1, 3)
    mesh_errors = {name: np.array([mesh_pose_error(swap_meshes[i, m], target_meshes[t])
                                   for i, (_, t) in enumerate(pairs)])
                   for m, name in enumerate(methods)}
    rows = []
    for name in methods:
        mesh, landmark = mesh_errors[name], np.array(landmark_errors[name])
        rows.append({"method": name, "mesh_pose_error_deg": round(float(np.nanmean(mesh)), 2),
                     "mesh_pose_median_deg": round(float(np.nanmedian(mesh)), 2),
                     "landmark_pose_error_deg": round(float(np.nanmean(landmark)), 2),
                     "landmark_pose_median_deg": round(float(np.nanmedian(landmark)), 2),
                     "pairs": len(pairs), "no_mesh": int(np.isnan(mesh).sum())})
    source_of = np.array([s for s, _ in pairs])
    paired = {
        f"{name} minus classic": {
            "mesh_pose_error_deg": source_bootstrap(mesh_errors[name] - mesh_errors["classic"], source_of, digits=3),
            "landmark_pose_error_deg": source_bootstrap(
                np.array(landmark_errors[name]) - np.array(landmark_errors["classic"]), source_of, digits=3),
        }
        for name in methods if name.startswith("fswap")
    }
    path = write_result("mesh_pose", {
        "model": model_name(args.model), "data": portable_path(args.data), "pairs": len(pairs),
        "rows": rows, "paired": paired,
    }, pair_results=[{"source": s, "target": t, **{f"{name} mesh": round(float(mesh_errors[name][i]), 3)
                                                   for name in methods},
                      **{f"{name} landmarks": round(float(landmark_errors[name][i]), 3) for name in methods}}
                     for i, (s, t) in enumerate(pairs)])
    print(markdown_table(rows, COLUMNS))
    for label, measures in paired.items():
        print(label + ": " + "; ".join(f"{measure} {value['mean']:+.2f}° ({value['ci95'][0]:+.2f} to "
                                         f"{value['ci95'][1]:+.2f})" for measure, value in measures.items()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
