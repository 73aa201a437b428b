"""benchmarks/realism.py's pure logic: scoring the judges' answers against the key, Wilson's
interval, and the seeded, blind layout of the sets (which side the swap is on, which label is
which system)."""

import sys
from pathlib import Path

import pytest
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import realism  # noqa: E402


def _key(sides: str) -> list[dict]:
    return [{"row": n + 1, "pair": n, "source": n, "target": n, "swap_side": side} for n, side in enumerate(sides)]


def test_scoring_counts_spotted_fooled_and_unsure_with_unsure_as_half():
    rows = _key("LRLLRRLR")
    answers = {1: "L", 2: "R", 3: "?", 4: "L", 5: "R", 6: "?", 7: "L", 8: "L"}
    counts = realism.score_set(answers, rows)
    assert (counts["rows"], counts["spotted"], counts["fooled"], counts["unsure"]) == (8, 5, 1, 2)
    assert counts["spotted_share"] == pytest.approx((5 + 2 / 2) / 8)
    low, high = counts["ci95"]
    assert low < counts["spotted_share"] < high


def test_all_unsure_is_chance_and_all_wrong_is_zero():
    rows = _key("LRRL")
    assert realism.score_set(dict.fromkeys(range(1, 5), "?"), rows)["spotted_share"] == 0.5
    fooled = realism.score_set({1: "R", 2: "L", 3: "L", 4: "R"}, rows)
    assert (fooled["spotted"], fooled["fooled"], fooled["spotted_share"]) == (0, 4, 0.0)


def test_scoring_refuses_answers_that_do_not_match_the_key():
    with pytest.raises(ValueError, match="missing"):
        realism.score_set({1: "L"}, _key("LR"))
    with pytest.raises(ValueError, match="does not have"):
        realism.score_set({1: "L", 2: "R", 3: "L"}, _key("LR"))


def test_answers_file_reads_case_blank_and_comments(tmp_path):
    path = tmp_path / "ANSWERS.txt"
    path.write_text("# judge 1\n1 l\n2 R\n3\n\n4 ?\n")
    assert realism.read_answers(path) == {1: "L", 2: "R", 3: "?", 4: "?"}
    path.write_text("1 left\n")
    with pytest.raises(ValueError, match="L, R or"):
        realism.read_answers(path)


@pytest.mark.parametrize(("successes", "trials", "expected"), [
    (8, 10, (0.4902, 0.9433)),
    (0, 10, (0.0, 0.2775)),
    (5, 10, (0.2366, 0.7634)),
])
def test_wilson_interval_known_values(successes, trials, expected):
    assert realism.wilson_interval(successes, trials) == pytest.approx(expected, abs=1e-4)
    reference = binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    assert realism.wilson_interval(successes, trials) == pytest.approx((reference.low, reference.high), abs=1e-6)


def test_wilson_interval_takes_half_counts_between_its_neighbours():
    low, high = realism.wilson_interval(5.5, 10)
    assert realism.wilson_interval(5, 10)[0] < low < realism.wilson_interval(6, 10)[0]
    assert realism.wilson_interval(5, 10)[1] < high < realism.wilson_interval(6, 10)[1]


def test_swap_sides_are_reproducible_balanced_and_seeded():
    sides = realism.swap_sides(32, seed=0, label="set-A")
    assert sides == realism.swap_sides(32, seed=0, label="set-A")
    assert sides.count("L") == sides.count("R") == 16
    assert sides != realism.swap_sides(32, seed=1, label="set-A")
    assert sides != realism.swap_sides(32, seed=0, label="set-B")
    assert realism.swap_sides(7, seed=0, label="set-A").count("L") == 4


def test_set_labels_hide_the_systems_reproducibly():
    systems = list(realism.SYSTEMS)
    labels = realism.set_labels(systems, seed=0)
    assert list(labels) == ["set-A", "set-B", "set-C"]
    assert sorted(labels.values()) == sorted(systems)
    assert labels == realism.set_labels(systems, seed=0)
    assert any(realism.set_labels(systems, seed) != labels for seed in range(1, 10))
