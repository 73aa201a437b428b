"""The `fswap` command line, run in-process on real photos."""

import json

import pytest

from fswap.assets import DEFAULT_CHECKPOINT, example_image
from fswap.cli import build_parser, main
from fswap.imageio import load_image


@pytest.mark.parametrize("command", [[], ["detect"], ["swap"], ["data", "prepare"], ["convert", "insightface"],
                                     ["eval"], ["push", "model"], ["push", "space"]])
def test_every_help_is_complete(command, capsys):
    with pytest.raises(SystemExit) as raised:
        main([*command, "--help"])
    assert raised.value.code == 0
    assert "usage: fswap" in capsys.readouterr().out


def test_detect_lists_and_draws_faces(tmp_path, capsys):
    output = tmp_path / "faces.png"
    assert main(["detect", str(example_image("t1.jpg")), "-o", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["faces"]) == 6 and load_image(output).shape == (886, 1280, 3)


def test_classic_swap_writes_a_full_size_result(tmp_path):
    output = tmp_path / "classic.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(output),
                 "--method", "classic", "--faces", "0,2"]) == 0
    assert load_image(output).shape == (886, 1280, 3)


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="no default checkpoint")
def test_swap_with_the_default_checkpoint(tmp_path, capsys):
    output = tmp_path / "fswap.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(output)]) == 0
    assert load_image(output).shape == (886, 1280, 3)
    assert "first stage" in capsys.readouterr().out


def test_user_mistakes_end_in_one_line(tmp_path, capsys):
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("hello")
    with pytest.raises(SystemExit) as raised:
        main(["swap", str(not_a_photo), str(example_image("t1.jpg")), "-o", str(tmp_path / "x.png"),
              "--method", "classic"])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("fswap: error: notes.jpg") and "Traceback" not in error
    with pytest.raises(SystemExit):
        main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(tmp_path / "y.png"),
              "--model", str(tmp_path / "no-such-checkpoint")])
    assert "does not exist" in capsys.readouterr().err


def test_face_selector_parsing():
    parser = build_parser()
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", "all"]).faces == "all"
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", "3"]).faces == 3
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", "0,2"]).faces == [0, 2]
