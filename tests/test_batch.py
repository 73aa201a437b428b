"""Swapping a folder (or a list) of targets in one process: `fswap.batch` and `fswap swap FOLDER`."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fswap.assets import example_image
from fswap.batch import FileSwapper, plan_batch
from fswap.cli import main
from fswap.errors import OutputError
from fswap.imageio import load_image


@pytest.fixture
def targets(tmp_path):
    folder = tmp_path / "targets"
    folder.mkdir()
    shutil.copyfile(example_image("t1.jpg"), folder / "group.jpg")
    shutil.copyfile(example_image("gdp.jpg"), folder / "gdp.jpg")
    Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(folder / "wall.png")  # no face
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".hidden.jpg").write_bytes(b"")
    return folder


def test_a_folder_is_swapped_in_one_run_and_a_failure_stops_nothing(targets, tmp_path, capsys):
    output = tmp_path / "out"
    source = str(example_image("yaoming.jpg"))
    assert main(["swap", source, str(targets), "-o", str(output), "--method", "classic"]) == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in output.iterdir()) == ["gdp_swapped.png", "group_swapped.png", "manifest.jsonl"]
    assert "wall.png: no face found" in captured.err and "2 written, 1 failed" in captured.out
    manifest = {row["target"]: row for row in map(json.loads, (output / "manifest.jsonl").read_text().splitlines())}
    assert {name: row["status"] for name, row in manifest.items()} == {
        "gdp.jpg": "written", "group.jpg": "written", "wall.png": "failed"}
    assert "no face found" in manifest["wall.png"]["error"]
    assert load_image(output / "group_swapped.png").shape == load_image(targets / "group.jpg").shape

    # Run again: what is there is kept, so an interrupted run picks up where it stopped.
    before = (output / "gdp_swapped.png").stat().st_mtime_ns
    assert main(["swap", source, str(targets), "-o", str(output), "--method", "classic"]) == 1
    assert "0 written, 2 skipped" in capsys.readouterr().out
    assert (output / "gdp_swapped.png").stat().st_mtime_ns == before
    again = {row["target"]: row for row in map(json.loads, (output / "manifest.jsonl").read_text().splitlines())}
    assert again["gdp.jpg"] == manifest["gdp.jpg"]  # the record of how it was made stays
    assert main(["swap", source, str(targets), "-o", str(output), "--method", "classic", "--overwrite"]) == 1
    assert "2 written" in capsys.readouterr().out
    assert (output / "gdp_swapped.png").stat().st_mtime_ns != before


def test_several_sources_and_several_targets_stay_apart(targets, tmp_path, capsys):
    """With --targets every positional photo is a source; the fswap swap of each target equals
    the same swap made alone."""
    output = tmp_path / "out"
    sources = [str(example_image("yaoming.jpg")), str(example_image("yaoming.jpg"))]
    group, gdp = str(targets / "group.jpg"), str(targets / "gdp.jpg")
    assert main(["swap", *sources, "--targets", group, gdp, "-o", str(output), "--no-provenance"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["gdp_swapped.png", "group_swapped.png", "manifest.jsonl"]
    alone = tmp_path / "alone.png"
    assert main(["swap", *sources, gdp, "-o", str(alone), "--no-provenance"]) == 0
    assert np.array_equal(load_image(alone), load_image(output / "gdp_swapped.png"))


def test_a_plan_refuses_two_targets_writing_one_file(tmp_path):
    with pytest.raises(OutputError, match="would both be written to a_swapped.png"):
        plan_batch([tmp_path / "a.jpg", tmp_path / "x" / "a.png"], tmp_path / "out")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is a file"):
        plan_batch([tmp_path / "a.jpg"], tmp_path / "file")


def test_a_batch_never_overwrites_a_target(tmp_path):
    """A target in the output folder under another target's result name is refused up front."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copyfile(example_image("t1.jpg"), folder / "t1.jpg")
    shutil.copyfile(example_image("t1.jpg"), folder / "t1_swapped.png")
    original = (folder / "t1_swapped.png").read_bytes()
    with pytest.raises(OutputError, match="is one of the targets"):
        plan_batch([folder / "t1.jpg", folder / "t1_swapped.png"], folder, overwrite=True)
    # The swapper itself refuses to write over the target it swaps.
    swapper = FileSwapper([example_image("yaoming.jpg")], method="classic")
    with pytest.raises(OutputError, match="would destroy the original"):
        swapper.swap_file(folder / "t1_swapped.png", folder / "t1_swapped.png")
    assert (folder / "t1_swapped.png").read_bytes() == original


def test_the_help_is_quick():
    """`fswap --help` and `fswap swap --help` import no torch: a small share of a pipeline import."""
    def seconds(*command):
        start = time.perf_counter()
        subprocess.run([sys.executable, *command], check=True, capture_output=True)
        return time.perf_counter() - start

    helps = min(seconds("-m", "fswap.cli", "swap", "--help") for _ in range(2))
    pipeline = seconds("-c", "import fswap.pipeline")
    assert helps < 0.5 * pipeline, (helps, pipeline)


CPU_2 = Path(__file__).resolve().parent.parent / "fswap" / "training" / "configs" / "cpu_2.yaml"


def _launch_batch(folder: Path, output: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2), "-m", "fswap.cli",
               "swap", str(example_image("yaoming.jpg")), str(folder), "-o", str(output), "--method", "classic",
               "--no-provenance"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_two_processes_swap_every_target_exactly_once_and_resume(tmp_path):
    """`accelerate launch` with two processes: each swaps its share, every target exactly once,
    and the manifests merge; a second run redoes only what is missing."""
    folder, output = tmp_path / "targets", tmp_path / "out"
    folder.mkdir()
    photo = load_image(example_image("t1.jpg"))
    for i in range(7):  # an odd count: the shares differ by one
        Image.fromarray(np.ascontiguousarray(np.roll(photo, 40 * i, axis=1))).save(folder / f"t{i}.jpg")
    result = _launch_batch(folder, output)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]
    assert sorted(row["target"] for row in rows) == [f"t{i}.jpg" for i in range(7)]  # each once
    assert {row["status"] for row in rows} == {"written"} and {row["process"] for row in rows} == {0, 1}
    assert sorted(p.name for p in output.iterdir()) == ["manifest.jsonl", *(f"t{i}_swapped.png" for i in range(7))]
    assert result.stdout.count("7 written") == 1  # the main process reports the whole run

    for i in (2, 5):
        (output / f"t{i}_swapped.png").unlink()
    result = _launch_batch(folder, output)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 written, 5 skipped" in result.stdout
    rows = [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and all(row["status"] == "written" for row in rows)
