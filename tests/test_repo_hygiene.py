"""The repo stays small and names no machine.

What is committed under benchmarks/results/ and checkpoints/ holds no absolute path and, weights
apart, no file over 1 MB: per-pair results go beside their summary gzipped
(`fswap.evaluation.write_pair_results`), and the benchmarks record paths relative to the checkout
(`benchmarks/common.portable_path`). Coverage data is never tracked.
"""

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fswap.errors import FswapError
from fswap.evaluation import Evaluation, PairResult, read_pair_results, write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import common  # noqa: E402

RECORDS = ("benchmarks/results", "checkpoints")
WEIGHT_SUFFIXES = (".safetensors", ".onnx")
LIMIT_BYTES = 1_000_000
#: A POSIX path under a machine's own folders (not `../tmp/`, not a URL's `/home/`), or a
#: Windows drive (`C:\`, escaped `C:\\` in JSON, or `C:/`) standing on its own.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~$-])/(?:work|tmp|root|home|Users)/|(?<![A-Za-z0-9])[A-Za-z]:(?:\\|/)")


def tracked(*folders: str) -> list[Path]:
    """Files git tracks under `folders` (present in the working tree); skip outside a git checkout."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    listed = subprocess.run([git, "-C", str(ROOT), "ls-files", "-z", "--", *folders], capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    """The file's text (a gzipped file's content), or None for a binary file (weights, images)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------------------ what is committed
def test_no_committed_result_or_checkpoint_file_names_a_machine_path():
    found = {}
    for path in tracked(*RECORDS):
        text = text_of(path)
        if text is not None and (match := ABSOLUTE_PATH.search(text)):
            found[path.relative_to(ROOT).as_posix()] = text[max(0, match.start() - 40) : match.end() + 40]
    assert not found, f"absolute paths committed (record them with common.portable_path): {found}"


def test_no_committed_result_is_over_a_megabyte():
    records = [path for path in tracked(*RECORDS) if path.suffix not in WEIGHT_SUFFIXES]
    assert any(path.name == "eval.json" for path in records)  # the listing found the records
    large = {path.relative_to(ROOT).as_posix(): path.stat().st_size for path in records
             if path.stat().st_size > LIMIT_BYTES}
    assert not large, f"results over 1 MB (move per-pair rows to a *_pairs.jsonl.gz): {large}"


def test_coverage_data_is_not_tracked():
    names = [path.relative_to(ROOT).as_posix() for path in tracked(".")]
    assert "README.md" in names
    assert not [name for name in names if re.search(r"(^|/)(\.coverage(\..*)?|htmlcov/.*|coverage\.xml)$", name)]


def test_committed_summaries_find_their_per_pair_results():
    """Each summary that names a per-pair file has it beside it, and the rows recomputed from
    the rounded per-pair values are the summary's to the last digit."""
    summaries = [path for path in tracked(*RECORDS) if path.suffix == ".json"
                 and "results_file" in json.loads(path.read_text(encoding="utf-8"))]
    assert ROOT / "checkpoints/fswap-default/eval.json" in summaries
    for path in summaries:
        assert (path.parent / json.loads(path.read_text())["results_file"]).is_file(), path
    evaluation_path = ROOT / "checkpoints/fswap-default/eval.json"
    rows = json.loads(evaluation_path.read_text())["rows"]
    evaluation = Evaluation(results=[PairResult(**row) for row in read_pair_results(evaluation_path)],
                            failures={row["method"]: row["failures"] for row in rows})
    assert evaluation.rows() == rows


# ------------------------------------------------------------------------------ the writers
def test_the_pattern_finds_machine_paths_and_nothing_else():
    machine = ['"/work/main/checkpoints"', "--python /tmp/mpenv/bin/python", '"/home/alice/x"',
               '"C:\\\\Users\\\\alice"', "D:/data", "file:///root/x"]
    portable = ["checkpoints/fswap-default", "https://huggingface.co/home/x", "../tmp/x", "$HOME/tmp/",
                "top-1: 0.9", "Note:\\nsee below", "models--a--b/snapshots"]
    assert all(ABSOLUTE_PATH.search(text) for text in machine)
    assert not [text for text in portable if ABSOLUTE_PATH.search(text)]


def test_benchmarks_record_paths_relative_to_the_checkout(tmp_path):
    import tempfile

    temporary = Path(tempfile.gettempdir())
    assert common.portable_path(common.ROOT / "checkpoints" / "fswap-default") == "checkpoints/fswap-default"
    assert common.portable_path(temporary / "first" / "checkpoints") == "first/checkpoints"
    assert common.portable_path("/opt/venvs/mediapipe/bin/python3") == "python3"
    assert common.portable_path("data/celeba") == "data/celeba"
    assert common.portable_path("alice/fswap") == "alice/fswap"  # a Hub id
    command = common.portable_command([str(common.ROOT / "benchmarks" / "mesh_pose.py"), "--model",
                                       str(common.ROOT / "runs" / "swap"), f"first={temporary}/first/seg", "--pairs", "9"])
    assert command == "python benchmarks/mesh_pose.py --model runs/swap first=first/seg --pairs 9"


def results(count: int) -> list[dict]:
    """Scored pairs of fswap and the classic swap on `count` sources, each its own target."""
    return [{"method": method, "source": k, "target": k, "identity_similarity": 0.123456789 + k / 7 + bonus,
             "retrieved": k if bonus or k % 2 else k + 1, "pose_error_deg": 1.0 + k / 3,
             "expression_error": 0.01 * k, "background_psnr_db": 40.0 + k, "seconds": 0.5}
            for k in range(count) for method, bonus in (("fswap", 0.05), ("classic", 0.0))]


def test_per_pair_results_go_beside_the_summary_gzipped_and_come_back(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", [str(common.ROOT / "benchmarks" / "x.py"), "--data", str(common.ROOT / "data")])
    pairs = results(6)
    path = common.write_result("x", {"rows": []}, pair_results=pairs)
    summary = json.loads(path.read_text())
    assert summary["command"] == "python benchmarks/x.py --data data" and "results" not in summary
    assert summary["results_file"] == "x_pairs.jsonl.gz"
    first = (tmp_path / "x_pairs.jsonl.gz").read_bytes()
    back = read_pair_results(path)
    assert back == [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in pairs]
    assert back[0]["identity_similarity"] == 0.173457  # 6 decimals, as the rows keep
    common.write_result("x", {"rows": []}, pair_results=pairs)
    assert (tmp_path / "x_pairs.jsonl.gz").read_bytes() == first  # no time stamp: a rerun changes nothing

    older = tmp_path / "older.json"  # a summary written before: its results inline
    older.write_text(json.dumps({"rows": [], "results": pairs}))
    assert read_pair_results(older) == pairs
    (tmp_path / "x_pairs.jsonl.gz").unlink()
    with pytest.raises(FswapError, match="x_pairs.jsonl.gz"):
        read_pair_results(path)


def test_fswap_eval_writes_a_small_summary_and_its_pairs_beside_it(tmp_path):
    evaluation = Evaluation(results=[PairResult(**row) for row in results(400)])
    path = write_report(tmp_path, evaluation, "fswap eval --pairs 400 -o out", 400, None)
    summary = json.loads(path.read_text())
    assert "results" not in summary and summary["results_file"] == "eval_pairs.jsonl.gz"
    assert [row["method"] for row in summary["rows"]] == ["fswap", "classic"] and summary["comparisons"]
    assert path.stat().st_size < 5_000
    back = Evaluation(results=[PairResult(**row) for row in read_pair_results(path)])
    assert back.rows() == summary["rows"]
