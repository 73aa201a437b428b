"""Runs in a separate environment with MediaPipe 0.10.21 (see mesh_pose.py): the 468-point face
mesh of each image in a list, written as one .npz. Imports nothing of fswap.

    python mesh_pose_worker.py images.json meshes.npz

images.json is a JSON list of image paths; meshes.npz holds `meshes`, float32 [N, 468, 3] in
pixels (x, y, and depth z on x's scale), NaN where no face was found.
"""

from __future__ import annotations

import json
import sys

import cv2
import mediapipe as mp
import numpy as np

POINTS = 468


def main() -> None:
    images, output = sys.argv[1], sys.argv[2]
    with open(images) as listing:
        paths = json.load(listing)
    meshes = np.full((len(paths), POINTS, 3), np.nan, np.float32)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False) as mesh:
        for index, path in enumerate(paths):
            image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            found = mesh.process(image).multi_face_landmarks
            if found:
                height, width = image.shape[:2]
                points = np.array([(p.x * width, p.y * height, p.z * width) for p in found[0].landmark])
                meshes[index] = points[:POINTS]
    np.savez_compressed(output, meshes=meshes)


if __name__ == "__main__":
    main()
