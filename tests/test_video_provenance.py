"""Provenance on video (issue 25, item 6): Content Credentials signed into the output file, the
watermark in every swapped frame read back by `fswap verify VIDEO` after a re-encode at CRF 28 and
half size, and `fswap swap VIDEO --map REF=SOURCE`. Clips are made here from the offline photos
(`fswap.video.known_motion`); the classic swap stands in for the networks where they do not
matter (the watermark and the signing are the same for both)."""

import json
import struct

import numpy as np
import pytest

from fswap.assets import example_image
from fswap.cli import main
from fswap.imageio import load_image, save_image
from fswap.provenance import read_video_manifest, verify_video
from fswap.video import probe_video, swap_video
from fswap.video.known_motion import KnownMotion, reencode, write_clip

CLASSIC = "classic landmark swap"


@pytest.fixture(scope="module")
def clip(people, tmp_path_factory):
    """960x540, 12 frames at 25 fps of one face (about 180 px across) panning, zooming, turning
    and dimming, with a tone."""
    path = tmp_path_factory.mktemp("clip") / "input.mp4"
    write_clip(path, KnownMotion(frames=12, size=(960, 540)).clip(people[0]))
    return path


@pytest.fixture(scope="module")
def signed(clip, people, classic, tmp_path_factory):
    """`clip` swapped with the defaults: watermarked, signed with the local test certificate."""
    folder = tmp_path_factory.mktemp("signed")
    result = swap_video(classic, people[2], clip, folder / "swapped.mp4", progress=False)
    assert result.notices == [] and sorted(path.name for path in folder.iterdir()) == ["swapped.mp4"]
    return result.path


def _boxes(path):
    """(type, offset, size) of the top-level boxes of an ISO BMFF file."""
    data, boxes, offset = path.read_bytes(), [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        boxes.append((kind.decode("latin-1"), offset, size))
        offset += size
    return boxes


# ---------------------------------------------------------------------------------------- the manifest
def test_the_swapped_video_carries_a_valid_manifest(signed, clip):
    manifest = read_video_manifest(signed, format="video/mp4")
    assert manifest.status == "valid" and manifest.failures == []
    assert manifest.checkpoint == CLASSIC and manifest.software_agent.startswith("fswap ")
    assert manifest.actions == ["c2pa.opened", "c2pa.edited"]  # the input video is the parent ingredient
    assert manifest.digital_source_type.endswith("/digitalsourcetype/composite")  # no trained model drew it
    assert manifest.signer.startswith("fswap local test certificate")
    # Signing moved no frame and dropped no sound.
    before, after = probe_video(clip), probe_video(signed)
    assert (after.frames, after.width, after.height, after.audio_codec) == (before.frames, 960, 540, "aac")
    assert read_video_manifest(clip, format="video/mp4").status == "absent"


def test_a_byte_changed_in_the_frames_makes_the_manifest_tampered(signed, tmp_path):
    _, offset, size = next(box for box in _boxes(signed) if box[0] == "mdat")
    data = bytearray(signed.read_bytes())
    data[offset + size // 2] ^= 0x01
    edited = tmp_path / "edited.mp4"
    edited.write_bytes(bytes(data))
    report = verify_video(edited, frames=2)
    assert report.manifest.status == "tampered" and "assertion.bmffHash.mismatch" in report.manifest.failures
    assert "Content Credentials: TAMPERED" in report.summary()


def test_the_networks_swap_is_declared_trained_media_in_a_mov(people, two_stage, tmp_path):
    clip = tmp_path / "small.mp4"
    write_clip(clip, KnownMotion(frames=3, size=(160, 120)).clip(people[0]), tone=None)
    output = swap_video(two_stage, people[2], clip, tmp_path / "swapped.mov", progress=False).path
    manifest = read_video_manifest(output, format="video/mp4")
    assert manifest.status == "valid" and manifest.checkpoint == "unnamed checkpoint"
    assert manifest.digital_source_type.endswith("/compositeWithTrainedAlgorithmicMedia")


def test_a_signing_failure_leaves_no_output(people, classic, tmp_path):
    """Signing runs before the file is moved into place: rejected credentials leave the destination
    as it was and no partial file."""
    from fswap.provenance import C2paCredentials, ProvenanceError

    clip = tmp_path / "small.mp4"
    write_clip(clip, KnownMotion(frames=3, size=(160, 120)).clip(people[0]), tone=None)
    output = tmp_path / "out.mp4"
    output.write_bytes(b"an older result")
    broken = C2paCredentials(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
                             b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ProvenanceError):
        swap_video(classic, people[2], clip, output, credentials=broken, progress=False)
    assert output.read_bytes() == b"an older result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.mp4", "small.mp4"]


def test_an_mkv_is_written_unsigned_with_a_notice_and_keeps_the_watermark(clip, people, classic, tmp_path):
    result = swap_video(classic, people[2], clip, tmp_path / "swapped.mkv", progress=False)
    assert len(result.notices) == 1 and "carries no Content Credentials" in result.notices[0]
    report = verify_video(result.path, frames=4)
    assert report.manifest.status == "absent" and "cannot carry a C2PA manifest" in report.summary()
    assert report.frames_marked == report.frames_with_face == 4


# ---------------------------------------------------------------------------------------- the watermark
def test_the_watermark_survives_crf_28_at_half_size_and_the_input_has_none(signed, clip, tmp_path):
    """Issue 25's acceptance: found in at least 95 % of the frames after a re-encode at CRF 28 and
    half size (here the face is about 90 px across after halving; benchmarks/video_watermark.py
    measures smaller ones); never in the unswapped clip."""
    shared, unswapped = tmp_path / "shared.mp4", tmp_path / "unswapped.mp4"
    reencode(signed, shared, crf=28, scale=0.5)
    reencode(clip, unswapped, crf=28, scale=0.5)
    assert (probe_video(shared).width, probe_video(shared).height) == (480, 270)
    report = verify_video(shared, frames=None)
    assert report.manifest.status == "absent"  # a re-encode drops the Content Credentials; the mark stays
    assert report.frames_with_face == 12 and report.share >= 0.95, report.summary()
    assert report.found and report.tag is not None
    plain = verify_video(unswapped, frames=None)
    assert plain.frames_with_face == 12 and plain.frames_marked == 0 and not plain.found


def test_frames_are_sampled_evenly_through_a_longer_clip(signed):
    report = verify_video(signed, frames=4)
    assert [check.index for check in report.frames] == [0, 4, 7, 11]
    assert report.total_frames == 12 and "4 of 12 frames, evenly spaced" in report.summary()
    with pytest.raises(ValueError, match="frames must be a whole number"):
        verify_video(signed, frames=0)


# ---------------------------------------------------------------------------------------- the command line
def test_fswap_verify_reports_a_videos_manifest_and_watermark_share(signed, tmp_path, capsys):
    assert main(["verify", str(signed)]) == 0
    out = capsys.readouterr().out
    assert "Content Credentials: VALID" in out and f"checkpoint: {CLASSIC}" in out
    assert "Watermark: FOUND in 12 of 12 frames with a face (100%; every frame;" in out
    assert "the watermark's tag matches the manifest's fswap version and checkpoint" in out
    assert main(["verify", str(signed), "--json", "--frames", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["manifest"]["status"] == "valid" and report["watermark"]["share"] == 1.0
    assert (report["watermark"]["frames_total"], report["watermark"]["frames_checked"]) == (12, 3)
    assert [frame["found"] for frame in report["watermark"]["frames"]] == [True] * 3


def test_fswap_verify_refuses_a_broken_video_in_one_line(signed, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(signed.read_bytes()[:400])
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(broken)])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and error.startswith("fswap: error: broken.mp4")


def test_no_provenance_writes_neither_signal(clip, tmp_path, capsys):
    output = tmp_path / "plain.mp4"
    assert main(["swap", str(example_image("yaoming.jpg")), str(clip), "-o", str(output), "--method", "classic",
                 "--no-provenance"]) == 0
    capsys.readouterr()
    report = verify_video(output, frames=3)
    assert report.manifest.status == "absent" and report.frames_with_face == 3 and report.frames_marked == 0


# ---------------------------------------------------------------------------------------- --map
@pytest.fixture(scope="module")
def two_people(people, tmp_path_factory):
    """A clip of two people side by side, their reference photos, and two sources (files)."""
    folder = tmp_path_factory.mktemp("two")
    first, second = (KnownMotion(frames=6, size=(240, 240), roll=0, light=0).clip(photo) for photo in people[:2])
    clip = folder / "two.mp4"
    write_clip(clip, [np.hstack([a, b]) for a, b in zip(first, second, strict=True)])
    files = {name: save_image(folder / f"{name}.png", image)
             for name, image in (("left", people[0]), ("right", people[1]))}
    files["yao"] = example_image("yaoming.jpg")
    files["gdp"] = example_image("gdp.jpg")
    return clip, files


def test_map_gives_each_person_in_a_video_their_own_source(two_people, analyzer, tmp_path, capsys):
    from fswap.video.decode import read_frames

    clip, files = two_people
    output = tmp_path / "mapped.mp4"
    assert main(["swap", str(clip), "--map", f"{files['left']}={files['yao']}",
                 "--map", f"{files['right']}={files['gdp']}", "-o", str(output), "--method", "classic"]) == 0
    assert "6 frames, 6 with a swapped face" in capsys.readouterr().out
    sources = {name: analyzer.largest_face(load_image(files[name]), embeddings=True).embedding for name in ("yao", "gdp")}
    frame = next(read_frames(probe_video(output))).image
    left, right = sorted(analyzer.detect(frame, embeddings=True), key=lambda face: face.box[0])
    similarity = {(side, name): float(face.embedding @ sources[name])
                  for side, face in (("left", left), ("right", right)) for name in sources}
    assert similarity["left", "yao"] > similarity["left", "gdp"], similarity
    assert similarity["right", "gdp"] > similarity["right", "yao"], similarity
    assert read_video_manifest(output, format="video/mp4").status == "valid"


@pytest.mark.parametrize("case", ["no equals sign", "missing file", "positional source", "with --faces",
                                  "with --source-faces", "a photo", "--source-faces without --map"])
def test_map_errors_are_one_line(two_people, tmp_path, capsys, case):
    clip, files = two_people
    pair = f"{files['left']}={files['yao']}"
    argv = {
        "no equals sign": [str(clip), "--map", str(files["left"])],
        "missing file": [str(clip), "--map", f"{files['left']}={tmp_path / 'nobody.jpg'}"],
        "positional source": [str(files["gdp"]), str(clip), "--map", pair],
        "with --faces": [str(clip), "--map", pair, "--faces", "all"],
        "with --source-faces": [str(clip), "--map", pair, "--source-faces", "0"],
        "a photo": [str(example_image("t1.jpg")), "--map", pair],
        "--source-faces without --map": [str(files["yao"]), str(clip), "--source-faces", "0"],  # was ignored
    }[case]
    expected = {
        "no equals sign": "is not REF=SOURCE",
        "missing file": "no such file",
        "positional source": "name only the video before -o",
        "with --faces": "leave out --faces",
        "with --source-faces": "leave out --source-faces",
        "a photo": "--map works on a video",
        "--source-faces without --map": "--source-faces is for photos",
    }[case]
    output = tmp_path / "out.mp4"
    with pytest.raises(SystemExit) as exit_info:
        main(["swap", *argv, "-o", str(output), "--method", "classic"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1 and expected in error, error
    assert not output.exists()
