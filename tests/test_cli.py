"""The `fswap` command line, run in-process on real photos."""

import json

import cv2
import numpy as np
import pytest

from fswap.assets import DEFAULT_CHECKPOINT, example_image
from fswap.cli import build_parser, main
from fswap.imageio import load_image, load_rgba


@pytest.mark.parametrize("command", [[], ["detect"], ["swap"], ["verify"], ["detect-swap"], ["data", "prepare"], ["convert", "insightface"],
                                     ["eval"], ["push", "model"], ["push", "detector"], ["push", "space"]])
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


def test_an_output_folder_gets_a_file_named_after_the_photo(tmp_path, capsys):
    """`-o folder` wrote folder.png beside the folder, and `-o name` without a suffix was reported
    as `name` while name.png was written."""
    folder = tmp_path / "results"
    folder.mkdir()
    t1, yaoming = str(example_image("t1.jpg")), str(example_image("yaoming.jpg"))
    assert main(["swap", yaoming, t1, "-o", str(folder), "--method", "classic", "--no-provenance"]) == 0
    assert f"wrote {folder / 't1_swapped.png'} (" in capsys.readouterr().out
    assert main(["detect", t1, "-o", str(folder)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"annotated: {folder / 't1_faces.png'}")
    assert main(["detect", t1, "-o", str(folder / "boxes"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["annotated"] == str(folder / "boxes.png")
    assert sorted(path.name for path in folder.iterdir()) == ["boxes.png", "t1_faces.png", "t1_swapped.png"]
    assert load_image(folder / "t1_swapped.png").shape == (886, 1280, 3)
    assert not (tmp_path / "results.png").exists()


def test_classic_swap_writes_a_full_size_result(tmp_path):
    output = tmp_path / "classic.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(output),
                 "--method", "classic", "--faces", "0,2"]) == 0
    assert load_image(output).shape == (886, 1280, 3)


def test_the_source_face_of_a_group_photo_can_be_chosen(tmp_path, capsys):
    t1, gdp = str(example_image("t1.jpg")), str(example_image("gdp.jpg"))
    largest, chosen = tmp_path / "largest.png", tmp_path / "chosen.png"
    for output, extra in ((largest, []), (chosen, ["--source-faces", "3"])):
        assert main(["swap", t1, gdp, "-o", str(output), "--method", "classic", "--no-provenance", *extra]) == 0
    assert not np.array_equal(load_image(largest), load_image(chosen))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["swap", t1, t1, gdp, "-o", str(tmp_path / "x.png"), "--source-faces", "3"])
    assert exit_info.value.code == 2 and "1 face number(s) for 2 source photo(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["swap", t1, gdp, "-o", "x.png", "--source-faces", "third"])
    assert "'third' is not face numbers" in capsys.readouterr().err


def test_every_swap_is_signed_and_watermarked_and_verify_says_so(tmp_path, capsys):
    output = tmp_path / "classic.jpg"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(output),
                 "--method", "classic", "--faces", "0,2"]) == 0
    capsys.readouterr()
    assert main(["verify", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["manifest"]["status"] == "valid" and report["manifest"]["checkpoint"] == "classic landmark swap"
    assert report["manifest"]["actions"] == ["c2pa.opened", "c2pa.edited"]  # the target is the parent
    # No trained model drew these pixels: IPTC "composite", not "...WithTrainedAlgorithmicMedia".
    assert report["manifest"]["digital_source_type"].endswith("/digitalsourcetype/composite")
    marked = [face for face in report["watermark"]["faces"] if face["log10_p"] < -6]
    assert report["watermark"]["found"] and len(marked) == 2  # the two swapped faces, not the other four
    assert main(["verify", str(example_image("t1.jpg"))]) == 0
    text = capsys.readouterr().out
    assert "Content Credentials: none" in text and "Watermark: absent" in text

    plain = tmp_path / "plain.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(plain),
                 "--method", "classic", "--no-provenance"]) == 0
    assert main(["verify", str(plain), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])  # after the "wrote" line
    assert report["manifest"]["status"] == "absent" and not report["watermark"]["found"]


def test_a_phone_photo_that_opens_as_mpo_can_be_swapped_and_checked(tmp_path, capsys):
    """Phone cameras append pictures to their JPEGs (PIL opens them as MPO): such a target was
    read and swapped, then refused as the signed result's parent ingredient."""
    from PIL import Image

    target = Image.open(example_image("t1.jpg"))
    phone = tmp_path / "phone.jpg"
    target.save(phone, "MPO", save_all=True, append_images=[target.resize((160, 110))])
    assert Image.open(phone).format == "MPO"
    output = tmp_path / "swap.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(phone), "-o", str(output), "--method", "classic"]) == 0
    assert main(["verify", str(phone)]) == 0
    assert "Content Credentials: none" in capsys.readouterr().out
    assert main(["verify", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["manifest"]["status"] == "valid" and report["manifest"]["actions"] == ["c2pa.opened", "c2pa.edited"]


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="no default checkpoint")
def test_a_cut_out_portrait_keeps_its_transparency(tmp_path, capsys):
    """A target with a transparent background came back on white: the swap reads photos as
    viewers show them, and the result was written without the photo's alpha."""
    from PIL import Image

    photo = load_image(example_image("gdp.jpg"))
    height, width = photo.shape[:2]
    rows, columns = np.mgrid[:height, :width]
    distance = ((columns - width / 2) / (0.42 * width)) ** 2 + ((rows - 0.45 * height) / (0.4 * height)) ** 2
    alpha = np.where(distance < 0.9, 255, np.where(distance < 1.0, 100, 0)).astype(np.uint8)
    colours = photo.copy()
    colours[alpha == 0] = (0, 90, 0)  # what editors leave under clear pixels
    cut_out = np.dstack([colours, alpha])
    target = tmp_path / "cut_out.png"
    Image.fromarray(cut_out).save(target)
    output = tmp_path / "swap.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(target), "-o", str(output)]) == 0
    capsys.readouterr()
    result = load_rgba(output)
    assert result is not None and result.shape == cut_out.shape
    assert np.array_equal(result[alpha < 255], cut_out[alpha < 255])
    from fswap.faces import FaceAnalyzer
    from fswap.faces.masks import region_mask

    face = region_mask(FaceAnalyzer.from_pretrained().largest_face(photo).landmarks, photo.shape, "face") > 0
    assert (alpha[face] == 255).all()
    assert np.abs(result[face][:, :3].astype(int) - photo[face]).mean() > 5  # the face was swapped
    assert main(["verify", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["manifest"]["status"] == "valid" and report["watermark"]["found"]
    # JPEG has no transparency: white there, and the user is told how to keep it.
    as_jpeg = tmp_path / "swap.jpg"
    assert main(["swap", str(example_image("yaoming.jpg")), str(target), "-o", str(as_jpeg), "--method", "classic"]) == 0
    assert "Write a PNG, WebP or TIFF file to keep them transparent" in capsys.readouterr().err
    assert load_rgba(as_jpeg) is None and load_image(as_jpeg)[2, 2].min() > 235


def test_half_given_signing_credentials_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(tmp_path / "x.png"),
              "--method", "classic", "--c2pa-cert", str(tmp_path / "chain.pem")])
    assert raised.value.code == 2 and "--c2pa-key" in capsys.readouterr().err


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="no default checkpoint")
def test_swap_with_the_default_checkpoint(tmp_path, capsys):
    output = tmp_path / "fswap.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(output)]) == 0
    assert load_image(output).shape == (886, 1280, 3)
    assert "first stage" in capsys.readouterr().out
    # The checkpoint's own proportions setting, overridden: the target's proportions give another face.
    plain = tmp_path / "plain.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(plain),
                 "--shape-strength", "0"]) == 0
    assert (load_image(plain) != load_image(output)).any()
    # The relit rendering, asked for by name, forms another face.
    relit = tmp_path / "relit.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(relit),
                 "--rendering", "relit"]) == 0
    assert (load_image(relit) != load_image(output)).any()


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="no default checkpoint")
def test_swap_open_mouths_stretches_the_closed_source_mouth_over_the_teeth(tmp_path):
    from fswap.faces import FaceAnalyzer
    from fswap.faces.masks import mouth_interior

    closed_mouth, open_mouth = str(example_image("players.jpg")), example_image("yaoming.jpg")
    kept, stretched = tmp_path / "kept.png", tmp_path / "stretched.png"
    common = ["--source-faces", "2", "--no-provenance"]
    assert main(["swap", closed_mouth, str(open_mouth), "-o", str(kept), *common]) == 0
    assert main(["swap", closed_mouth, str(open_mouth), "-o", str(stretched), "--swap-open-mouths", *common]) == 0
    target = load_image(open_mouth)
    teeth = mouth_interior(FaceAnalyzer.from_pretrained().largest_face(target).landmarks, target.shape)
    teeth = cv2.erode(teeth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert teeth.sum() > 50
    assert np.array_equal(load_image(kept)[teeth], target[teeth])
    assert np.abs(load_image(stretched)[teeth].astype(int) - target[teeth]).mean() > 10


def test_shape_strength_outside_zero_to_one_is_refused(capsys):
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["swap", "a", "b", "-o", "c", "--shape-strength", "1.5"])
    assert raised.value.code == 2 and "between 0 and 1" in capsys.readouterr().err


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


def test_face_selector_parsing(tmp_path):
    parser = build_parser()
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", "all"]).faces == "all"
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", "3"]).faces == 3
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", "0,2"]).faces == [0, 2]
    reference = tmp_path / "her.jpg"
    reference.write_bytes(b"checked when read")
    assert parser.parse_args(["swap", "a", "b", "-o", "c", "--faces", str(reference)]).faces == reference


def test_face_selector_that_is_no_selector_and_no_file_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["swap", "a", "b", "-o", "c", "--faces", "biggest"])
    assert exit_info.value.code == 2
    assert "'biggest' is neither \"largest\", \"all\", face numbers" in capsys.readouterr().err


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="no default checkpoint")
def test_detect_swap_scores_every_face_and_draws_heat_maps(tmp_path, capsys):
    from fswap.swap_detection import DEFAULT_DETECTOR

    if not (DEFAULT_DETECTOR / "config.json").is_file():
        pytest.skip("no shipped swap detector")
    swapped = tmp_path / "swapped.png"
    assert main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", str(swapped),
                 "--faces", "0"]) == 0
    capsys.readouterr()
    heat = tmp_path / "heat.png"
    assert main(["detect-swap", str(swapped), "-o", str(heat), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    probabilities = [face["swap_probability"] for face in report["faces"]]
    assert len(probabilities) == 6 and all(0 <= p <= 1 for p in probabilities)
    assert load_image(heat).shape == (886, 1280, 3)
    assert main(["detect-swap", str(swapped)]) == 0
    assert "face(s) in swapped.png" in capsys.readouterr().out
    assert main(["detect-swap", str(swapped), "-o", str(tmp_path)]) == 0  # a folder: a file named after the photo
    assert f"heat maps: {tmp_path / 'swapped_heatmaps.png'}" in capsys.readouterr().out
    assert (tmp_path / "swapped_heatmaps.png").is_file()
