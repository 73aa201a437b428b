"""Occlusion segmenters side by side, per kind of occluder: IoU of the occluded part of the face
on held-out faces (people never trained on) with one synthetic occluder of that kind each, plus
how much of the face each one cuts on the real held-out photos as they are.

    git worktree add /tmp/first 2d8d8c1        # the segmenters fswap shipped before, as committed
    git worktree add /tmp/second cc88cbd
    python benchmarks/segmenter_occluders.py \
        --segmenter first=/tmp/first/checkpoints/fswap-default/occlusion_segmenter \
        second=/tmp/second/checkpoints/fswap-default/occlusion_segmenter \
        third=checkpoints/fswap-default/occlusion_segmenter

The synthetic occluders are `fswap.data.occluders` with a fixed seed; an IoU here is not a
measurement on real occluders (there is no labelled set offline), so the README also shows the
masks on real photos. The per-kind IoU leaves out the pixels the photo itself may hide (its own
fringe or sunglasses: `fswap.data.own_occluders`), which have no label. On the 94 held-out CelebA
photos as they are, "share of the skin cut" is the share of the face the segmenter calls occluded
outside those pixels (most is bare skin, so lower is fewer false cuts), and "share of their own
occluders found" is the share of those pixels it calls occluded (higher finds more real fringes,
brims and sunglasses, though the colour test behind them also flags some bare skin). The share of
the skin cut is also given for the frontal photos and for the turned ones apart
(`fswap.faces.pose.yaw_proxy` under `FRONTAL` or from `TURNED`, about 10° and 30°): on a turned
face the landmark hull reaches past the far cheek, and a segmenter may take the far eye for an
occluder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import markdown_table, portable_path, write_result

from fswap.data.aligned import AlignedFaces
from fswap.data.occluders import OCCLUDERS, occlude
from fswap.data.own_occluders import own_occluders
from fswap.faces.masks import region_mask
from fswap.faces.pose import yaw_proxy
from fswap.models import OcclusionSegmenter, load_component

#: `yaw_proxy` limits: under FRONTAL a photo counts as frontal, from TURNED as turned.
FRONTAL, TURNED = 0.2, 0.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenter", nargs="+", required=True, metavar="NAME=FOLDER",
                        help="segmenter folders (config.json + safetensors) to compare")
    parser.add_argument("--data", type=Path, default=Path("data/celeba"))
    parser.add_argument("--samples", type=int, default=94, help="occluded samples per kind")
    args = parser.parse_args()

    segmenters = {}
    for spec in args.segmenter:
        name, _, folder = spec.partition("=")
        segmenters[name] = load_component(OcclusionSegmenter, Path(folder)).eval()
    resolution = next(iter(segmenters.values())).config["sample_size"]
    faces = AlignedFaces([args.data], "val", resolution)

    def predict(model, images: list[np.ndarray]) -> np.ndarray:
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        with torch.no_grad():
            return torch.cat([model.predict_mask(chunk) for chunk in batch.split(32)])[:, 0].numpy()

    chosen = [faces[k % len(faces)] for k in range(args.samples)]
    face_region = np.stack([region_mask(face.landmarks, (resolution, resolution), "face") > 0.5 for face in chosen])
    rows = []
    for kind in OCCLUDERS:
        rng = np.random.default_rng([7, list(OCCLUDERS).index(kind)])
        samples = [occlude(face.image, face.landmarks, rng, max_occluders=1, p_none=0.0, kinds=[kind]) for face in chosen]
        # The photos' own occluders (a fringe, sunglasses) have no label (`OccludedFace.known`).
        labelled = face_region & np.stack([s.known > 0.5 for s in samples])
        occluded = labelled & np.stack([s.visible_mask <= 0.5 for s in samples])
        row = {"occluder": kind}
        for name, model in segmenters.items():
            predicted = labelled & (predict(model, [s.image for s in samples]) <= 0.5)
            row[name] = round(float((predicted & occluded).sum() / max((predicted | occluded).sum(), 1)), 3)
        rows.append(row)
    rows.append({"occluder": "mean IoU", **{name: round(float(np.mean([r[name] for r in rows])), 3)
                                            for name in segmenters}})

    photos = [faces[k] for k in range(len(faces))]
    masks = np.stack([region_mask(f.landmarks, (resolution, resolution), "face") > 0.5 for f in photos])
    own = masks & np.stack([own_occluders(f.image, f.landmarks) for f in photos])
    turns = np.array([abs(yaw_proxy(f.landmarks)) for f in photos])
    groups = {"": turns >= 0, f", {(turns < FRONTAL).sum()} frontal": turns < FRONTAL,
              f", {(turns >= TURNED).sum()} turned": turns >= TURNED}
    cut_skin = {label: {"occluder": f"real photos{label}: share of the skin cut"} for label in groups}
    found = {"occluder": "real photos: share of their own occluders found"}
    skin = masks & ~own
    for name, model in segmenters.items():
        occluded = (predict(model, [f.image for f in photos]) <= 0.5) & masks
        for label, chosen_photos in groups.items():
            cut = (occluded & skin)[chosen_photos].sum()
            cut_skin[label][name] = round(float(cut / max(skin[chosen_photos].sum(), 1)), 3)
        found[name] = round(float((occluded & own).sum() / max(own.sum(), 1)), 3)
    rows += [*cut_skin.values(), found]

    columns = ["occluder", *segmenters]
    path = write_result("segmenter_occluders", {"data": portable_path(args.data), "samples_per_kind": args.samples,
                                                "segmenters": {name: portable_path(folder) for name, folder in
                                                               (s.partition("=")[::2] for s in args.segmenter)},
                                                "rows": rows})
    print(markdown_table(rows, columns))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
