"""Publishing and pulling over the Hub's HTTP protocol, and the cards that go with a checkpoint.

The real `huggingface_hub` client talks to `hub_server.HubServer` (127.0.0.1, this process).
The client runs in subprocesses: huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it
is imported, and this suite imports it offline (conftest.py), so a subprocess with its own
environment is the only honest way to point it elsewhere. The offline pulls run here, in the
offline test process itself, from the cache a subprocess filled.
"""

from __future__ import annotations

import hashlib
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
from huggingface_hub import ModelCard, SpaceCard, metadata_load

from fswap import FaceSwapPipeline
from fswap.assets import CELEBA_LICENCE, DEFAULT_CHECKPOINT, INSIGHTFACE_LICENCE, example_image
from fswap.building import build_untrained_pipeline
from fswap.errors import CheckpointError, FswapError, ModelNotFoundError
from fswap.hub import (
    PROJECT_ROOT,
    read_eval_results,
    read_training_record,
    render_model_card,
    space_upload,
    write_model_card,
)

REPO = "alice/fswap-tiny"
SOURCE = TARGET = example_image("yaoming.jpg")  # one small face: the cheapest real swap
TRAINING_RECORD = {
    "method": "fswap two-stage (test record)",
    "config": {"resolution": "64", "learning_rate": "0.0002"},
    "steps": 1200,
    "hardware": "test machine, 2 CPU threads, no GPU",
    "wall_time_s": 3725.4,
    "datasets": [{"name": "CelebA (999 aligned photos)", "licence": CELEBA_LICENCE, "images": 999}],
    "base_models": [{"name": "insightface buffalo_s", "licence": INSIGHTFACE_LICENCE}],
}
EVAL = {
    "command": "fswap eval CHECKPOINT --pairs 200",
    "recogniser": "w600k_mbf (ArcFace)",
    "pairs": 200,
    "rows": [
        {"method": "fswap", "identity_similarity": 0.4123, "identity_top1": 0.61, "pose_error_deg": 3.214,
         "expression_error": 0.1234, "background_psnr_db": 38.21, "seconds_per_swap": 0.412},
        {"method": "classic", "identity_similarity": 0.3012, "identity_top1": 0.405, "pose_error_deg": 5.5,
         "expression_error": 0.2, "background_psnr_db": 41.0, "seconds_per_swap": 0.105},
    ],
}


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        server.add_user("alice")
        server.add_user("bob")
        yield server


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8, seed=0)


@pytest.fixture(scope="module")
def checkpoint(pipe, tmp_path_factory):
    """A real checkpoint with a training record and an evaluation."""
    folder = pipe.save_pretrained(tmp_path_factory.mktemp("v1") / "fswap-tiny")
    (folder / "training_record.json").write_text(json.dumps(TRAINING_RECORD))
    (folder / "eval.json").write_text(json.dumps(EVAL))
    (folder / "notes.txt").write_text("local notes, not for the Hub")
    return folder


@pytest.fixture(scope="module")
def checkpoint_v2(checkpoint, tmp_path_factory):
    """The same checkpoint with other generator weights and no eval.json."""
    from safetensors.torch import load_file, save_file

    from fswap.checkpoint_files import write_hashes

    folder = tmp_path_factory.mktemp("v2") / "fswap-tiny"
    shutil.copytree(checkpoint, folder)
    (folder / "eval.json").unlink()
    weights = folder / "generator" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    save_file({name: tensor + 0.05 if tensor.is_floating_point() else tensor for name, tensor in tensors.items()}, weights)
    write_hashes(weights.parent)  # as `save_pretrained` would: other weights, their own SHA256SUMS
    return folder


def run_client(hub: HubServer, code: str, home: Path, *, token: str | None, args: dict, cwd: Path | None = None,
               timeout: int = 300, pythonpath: Path | None = None, env_extra: dict | None = None) -> dict:
    """Run `code` with the real client pointed at `hub`; `args` in, the dict `result` out."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING"))}
    env |= {
        "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",  # the test Hub has no Xet storage
        "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    if token is not None:
        env["HF_TOKEN"] = token
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env |= env_extra or {}
    script = "import json, sys\nargs = json.loads(sys.argv[1])\nresult = {}\n" + textwrap.dedent(code)
    script += "\nprint('RESULT ' + json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args, default=str)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"client failed:\n{done.stdout[-2000:]}\n{done.stderr[-6000:]}"
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])


@pytest.fixture(scope="module")
def published(hub, checkpoint, tmp_path_factory):
    """Pushes with `push_model` (public, again unchanged, private), two broken repos, and refused calls."""
    broken = tmp_path_factory.mktemp("broken")
    for name, removed in (("no-weights", "generator/diffusion_pytorch_model.safetensors"), ("no-folder", "generator")):
        shutil.copytree(checkpoint, broken / name)
        target = broken / name / removed
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    code = """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    from fswap.errors import FswapError
    from fswap.hub import push_model

    info = push_model(args["checkpoint"], args["repo"], commit_message="first weights")
    result["v1"] = info.oid
    again = push_model(args["checkpoint"], args["repo"])  # nothing changed: no new commit
    result["unchanged_push"] = again.oid
    push_model(args["checkpoint"], "alice/fswap-private", private=True)
    api = HfApi()
    for name in ("no-weights", "no-folder"):  # what push_model refuses to publish, uploaded raw
        api.create_repo(f"alice/broken-{name}")
        api.upload_folder(repo_id=f"alice/broken-{name}", folder_path=args["broken"] + "/" + name)
    result["files"] = sorted(api.list_repo_files(args["repo"]))
    result["private"] = api.model_info("alice/fswap-private").private

    def refused(call):
        try:
            call()
        except (RepositoryNotFoundError, HfHubHTTPError) as error:
            return f"{type(error).__name__}: {error.response.status_code}"
        except FswapError as error:
            return f"{type(error).__name__}: {error}"
        return "allowed"

    anonymous, bob = HfApi(token=False), HfApi(token=args["bob"])
    result["private_anonymous_info"] = refused(lambda: anonymous.model_info("alice/fswap-private"))
    result["private_anonymous_file"] = refused(
        lambda: hf_hub_download("alice/fswap-private", "model_index.json", token=False, cache_dir=args["cache"]))
    result["private_bob_info"] = refused(lambda: bob.model_info("alice/fswap-private"))
    result["private_owner_file"] = refused(
        lambda: hf_hub_download("alice/fswap-private", "model_index.json", cache_dir=args["cache"]))
    result["bob_pushes_to_alice"] = refused(
        lambda: push_model(args["checkpoint"], args["repo"], revision="bob", token=args["bob"]))
    """
    home = tmp_path_factory.mktemp("publisher")
    args = {"checkpoint": checkpoint, "repo": REPO, "broken": broken, "bob": hub.tokens["bob"], "cache": home / "dl"}
    return run_client(hub, code, home, token=hub.tokens["alice"], args=args)


@pytest.fixture(scope="module")
def pulled(hub, published, checkpoint_v2, tmp_path_factory):
    """`push_to_hub` of other weights to revision v2, then pulls into a fresh cache, and failing pulls."""
    code = """
    import os
    import numpy as np
    from fswap import FaceSwapPipeline
    from fswap.errors import FswapError

    second = FaceSwapPipeline.from_pretrained(args["checkpoint_v2"])
    result["v2"] = second.push_to_hub(args["repo"], revision="v2", commit_message="other weights").oid
    result["cache_was_empty"] = not os.path.exists(args["cache"])
    for name, revision in (("main", None), ("v2", "v2"), ("pinned", args["v1"])):
        pipe = FaceSwapPipeline.from_pretrained(args["repo"], revision=revision, cache_dir=args["cache"])
        output = pipe(args["source"], args["target"], watermark=False)
        swapped = output.swapped[0]
        np.savez(f"{args['out']}/{name}.npz", image=output.image, crop=swapped.swapped_crop, mask=swapped.occlusion_mask)

    def error_of(repo, revision=None):
        try:
            FaceSwapPipeline.from_pretrained(repo, revision=revision, cache_dir=args["cache"])
        except FswapError as error:
            return [type(error).__name__, str(error)]
        except Exception as error:
            return [f"not an fswap error: {type(error).__name__}", str(error)]
        return ["loaded", ""]

    result["missing_repo"] = error_of("alice/no-such-model")
    result["missing_revision"] = error_of(args["repo"], "v9")
    result["missing_weights"] = error_of("alice/broken-no-weights")
    result["missing_component"] = error_of("alice/broken-no-folder")
    del os.environ["HF_TOKEN"]
    result["private_without_token"] = error_of("alice/fswap-private")
    """
    home = tmp_path_factory.mktemp("puller")
    out = tmp_path_factory.mktemp("outputs")
    args = {"checkpoint_v2": checkpoint_v2, "repo": REPO, "v1": published["v1"], "cache": home / "fresh-cache",
            "out": out, "source": SOURCE, "target": TARGET}
    result = run_client(hub, code, home, token=hub.tokens["alice"], args=args)
    result["outputs"] = {name: dict(np.load(out / f"{name}.npz")) for name in ("main", "v2", "pinned")}
    result["cache"] = home / "fresh-cache"
    return result


# ------------------------------------------------------------------------------ round trip over HTTP
def swap_outputs(pipeline: FaceSwapPipeline) -> dict[str, np.ndarray]:
    """The result and, since the untrained segmenter may hide the whole face, what the networks made."""
    # Unmarked: the watermark's tag names the checkpoint, which differs between a folder and a Hub id.
    output = pipeline(SOURCE, TARGET, watermark=False)
    return {"image": output.image, "crop": output.swapped[0].swapped_crop, "mask": output.swapped[0].occlusion_mask}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)


@pytest.fixture(scope="module")
def local_outputs(pipe, checkpoint_v2):
    return {"v1": swap_outputs(pipe), "v2": swap_outputs(FaceSwapPipeline.from_pretrained(checkpoint_v2))}


def test_push_then_pull_from_a_fresh_cache_gives_identical_outputs(local_outputs, published, pulled, checkpoint):
    assert pulled["cache_was_empty"]
    assert same(pulled["outputs"]["main"], local_outputs["v1"])
    # Only checkpoint files and the cards are published; notes.txt stays home.
    expected = {".gitattributes", "README.md", "LICENSE.md", "model_index.json", "training_record.json", "eval.json"}
    expected |= {p.relative_to(checkpoint).as_posix() for p in checkpoint.glob("*/*") if p.suffix in (".json", ".onnx", ".safetensors")}
    assert set(published["files"]) == expected
    assert published["unchanged_push"] == published["v1"]


def test_pushes_speak_the_hub_protocol(hub, published):
    calls = {(method, path.split("/")[1] if path.startswith("/_lfs/") else path) for method, path in hub.state.requests}
    for call in [("POST", "/api/repos/create"), ("POST", "/api/validate-yaml"), ("POST", f"/api/models/{REPO}/preupload/main"),
                 ("POST", f"/{REPO}.git/info/lfs/objects/batch"), ("PUT", "_lfs"), ("POST", f"/api/models/{REPO}/commit/main")]:
        assert call in calls  # the card passed the Hub-side metadata check, the weights went through LFS


def test_push_checks_the_checkpoint_before_any_network_call(checkpoint, tmp_path):
    # This process is offline: reaching the network would raise OfflineModeIsEnabled instead.
    from fswap.hub import push_model

    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        push_model(tmp_path, REPO)
    folder = tmp_path / "pickled"
    shutil.copytree(checkpoint, folder)
    (folder / "generator" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="pickles"):
        push_model(folder, REPO)
    (folder / "generator" / "pytorch_model.bin").unlink()
    (folder / "eval.json").write_text("{}")
    with pytest.raises(CheckpointError, match="eval.json lacks 'rows'"):
        push_model(folder, REPO)


def test_the_upload_holds_what_a_user_of_the_weights_needs(checkpoint, tmp_path):
    """Configs, weights, the training record, the card, the licence and eval.json's summary. The
    per-pair results `fswap eval` writes beside it, its contact sheet, training histories and
    notes stay home; the card rendered from the upload alone is the one published."""
    from fswap.evaluation import Evaluation, PairResult, write_report
    from fswap.hub import model_upload

    folder = tmp_path / "fswap-tiny"
    shutil.copytree(checkpoint, folder)
    pairs = [PairResult(method, k, k, 0.3 + 0.01 * k + bonus, k if bonus or k % 3 else k + 1, 2.0 + k / 5, 0.02,
                        40.0 + k, 0.4) for k in range(30) for method, bonus in (("fswap", 0.05), ("classic", 0.0))]
    write_report(folder, Evaluation(results=pairs), "fswap eval --pairs 30 -o CHECKPOINT", 30,
                 np.zeros((16, 16, 3), np.uint8))
    (folder / "training_history").mkdir()
    (folder / "training_history" / "swap.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    assert {"eval_pairs.jsonl.gz", "contact_sheet.png", "notes.txt"} <= {p.name for p in folder.iterdir()}

    upload = model_upload(folder, repo_id=REPO)
    components = {p.relative_to(folder).as_posix() for p in folder.glob("*/*") if p.suffix in (".json", ".onnx", ".safetensors")}
    assert set(upload) == {"README.md", "LICENSE.md", "model_index.json", "training_record.json", "eval.json"} | components
    published = json.loads(upload["eval.json"])
    local = json.loads((folder / "eval.json").read_text())
    assert local["results_file"] == "eval_pairs.jsonl.gz"
    assert published == {key: value for key, value in local.items() if key != "results_file"}
    assert published["rows"] and published["comparisons"] and len(upload["eval.json"]) < 5_000

    hub_copy = tmp_path / "hub-copy"  # the repo as a user downloads it
    for name, content in upload.items():
        (hub_copy / name).parent.mkdir(parents=True, exist_ok=True)
        (hub_copy / name).write_bytes(content if isinstance(content, bytes) else content.read_bytes())
    assert render_model_card(hub_copy, repo_id=REPO) == upload["README.md"].decode()
    assert read_eval_results(hub_copy) == read_eval_results(folder)

    # An eval.json written before the per-pair results moved out: they stay home all the same.
    (folder / "eval.json").write_text(json.dumps({**EVAL, "results": [vars(pair) for pair in pairs]}))
    assert json.loads(model_upload(folder)["eval.json"]) == EVAL


def test_a_second_revision_leaves_the_first_weights_in_place(local_outputs, pulled):
    first, second = local_outputs["v1"], local_outputs["v2"]
    assert not np.array_equal(first["crop"], second["crop"])
    assert same(pulled["outputs"]["v2"], second)
    assert same(pulled["outputs"]["main"], first)
    assert same(pulled["outputs"]["pinned"], first)


def test_the_published_card_is_the_rendered_one(published, pulled, checkpoint):
    snapshot = pulled["cache"] / f"models--{REPO.replace('/', '--')}" / "snapshots" / published["v1"]
    assert (snapshot / "README.md").read_text() == render_model_card(checkpoint, repo_id=REPO)
    v2_card = next(p for p in (pulled["cache"]).rglob("README.md") if pulled["v2"] in str(p)).read_text()
    assert 'revision="v2"' in v2_card and "Not evaluated yet" in v2_card  # v2 was pushed without eval.json


def test_private_repos_refuse_anyone_but_their_owner(published, pulled):
    assert published["private"] is True
    assert published["private_anonymous_info"] == "RepositoryNotFoundError: 401"
    assert published["private_anonymous_file"] == "RepositoryNotFoundError: 401"
    assert published["private_bob_info"] == "RepositoryNotFoundError: 404"
    assert published["private_owner_file"] == "allowed"
    refusal = published["bob_pushes_to_alice"]
    assert refusal.startswith("FswapError: the Hub refused to publish alice/fswap-tiny: 403") and "HF_TOKEN" in refusal
    kind, message = pulled["private_without_token"]
    assert kind == "ModelNotFoundError" and "private" in message and "HF_TOKEN" in message


def test_failed_pulls_say_what_is_missing(pulled):
    kind, message = pulled["missing_repo"]
    assert kind == "ModelNotFoundError" and "alice/no-such-model not found" in message
    kind, message = pulled["missing_revision"]
    assert kind == "ModelNotFoundError" and "no revision 'v9'" in message
    kind, message = pulled["missing_weights"]
    assert kind == "ModelNotFoundError" and "diffusion_pytorch_model.safetensors" in message
    # pipeline._check_index calls a component folder missing altogether a malformed checkpoint.
    kind, message = pulled["missing_component"]
    assert kind == "CheckpointError" and "lacks the folder of component generator" in message


def test_offline_pulls_use_the_cache_and_fail_clearly_without_it(local_outputs, pulled, tmp_path):
    # This process runs with HF_HUB_OFFLINE=1 (conftest.py), set before huggingface_hub was imported.
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE
    loaded = FaceSwapPipeline.from_pretrained(REPO, cache_dir=pulled["cache"])
    assert same(swap_outputs(loaded), local_outputs["v1"])
    with pytest.raises(ModelNotFoundError, match="not in the local cache"):
        FaceSwapPipeline.from_pretrained(REPO, cache_dir=tmp_path / "empty")


# ------------------------------------------------------------------------------ cards
def test_model_card_passes_hub_parsing_with_eval_table_and_licences(checkpoint, tmp_path):
    text = render_model_card(checkpoint, repo_id=REPO)
    card = ModelCard(text)
    assert card.data.library_name == "fswap" and card.data.pipeline_tag == "image-to-image"
    assert card.data.license == "other" and card.data.license_name == "noncommercial-research-only"
    assert card.data.license_link == "LICENSE.md" and "face-swap" in card.data.tags
    (tmp_path / "README.md").write_text(text)
    assert metadata_load(tmp_path / "README.md") == card.data.to_dict()
    assert INSIGHTFACE_LICENCE in text and CELEBA_LICENCE in text
    assert "| fswap | 0.412 | 0.610 | 3.21 | 0.123 | 38.21 | 0.412 |" in text
    assert "| classic | 0.301 | 0.405 | 5.50 | 0.200 | 41.00 | 0.105 |" in text
    assert "200 source/target pairs" in text and "`fswap eval CHECKPOINT --pairs 200`" in text
    assert f'FaceSwapPipeline.from_pretrained("{REPO}")' in text
    for words in ("consent", "impersonate", "intimate imagery", "1 h 02 min", "1,200", "999", "@software{fswap"):
        assert words in text


def test_card_follows_eval_json(checkpoint, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, folder)
    before = render_model_card(folder)
    changed = json.loads(json.dumps(EVAL))
    changed["rows"][0]["identity_similarity"] = 0.5557
    changed["pairs"] = 50
    (folder / "eval.json").write_text(json.dumps(changed))
    after = render_model_card(folder)
    assert after != before and "| fswap | 0.556 |" in after and "50 source/target pairs" in after
    assert "| fswap | 0.412 |" not in after
    changed["comparisons"] = [{
        "method": "fswap", "reference": "classic", "pairs": 50, "sources": 25, "top1_only_method": 9,
        "top1_only_reference": 7, "top1_mcnemar_p": 0.8036,
        "identity_similarity_difference": {"mean": -0.0079, "ci95": [-0.0245, 0.0076]},
        "pose_error_deg_difference": {"mean": -0.19, "ci95": [-1.27, 0.48]},
    }]
    (folder / "eval.json").write_text(json.dumps(changed))
    assert "right only for fswap in 9 pairs, only for classic in 7 (McNemar p = 0.8)" in render_model_card(folder)
    changed["comparisons"] = [{"method": "fswap"}]
    (folder / "eval.json").write_text(json.dumps(changed))
    with pytest.raises(CheckpointError, match="comparisons"):
        render_model_card(folder)
    (folder / "eval.json").unlink()
    assert "Not evaluated yet" in render_model_card(folder) and "| fswap |" not in render_model_card(folder)


def test_card_carries_the_training_records_notes(checkpoint, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, folder)
    assert "after the run" not in render_model_card(folder)
    note = "the occlusion segmenter was retrained (4,000 steps) after the swap networks"
    (folder / "training_record.json").write_text(json.dumps({**TRAINING_RECORD, "notes": [note]}))
    assert read_training_record(folder).notes == (note,)
    assert f"- **after the run:** {note}" in render_model_card(folder)


def test_card_of_an_unrecorded_checkpoint_says_so(checkpoint, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, folder, ignore=shutil.ignore_patterns("training_record.json", "eval.json"))
    text = write_model_card(folder).read_text()
    assert text == render_model_card(folder) and (folder / "LICENSE.md").is_file()
    assert "no training record" in text and "Not evaluated yet" in text
    assert ModelCard(text).data.license == "other"  # the face models' terms still apply
    assert INSIGHTFACE_LICENCE in text and CELEBA_LICENCE not in text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("eval.json", "{not json", "not valid JSON"),
        ("eval.json", json.dumps({**EVAL, "rows": []}), "no rows"),
        ("eval.json", json.dumps({**EVAL, "pairs": "200"}), "'pairs' should be int"),
        ("eval.json", json.dumps({**EVAL, "rows": [{**EVAL["rows"][0], "pose_error_deg": float("nan")}]}), "finite"),
        ("eval.json", json.dumps({**EVAL, "rows": [{"method": "fswap"}]}), "rows\\[0\\] lacks 'identity_similarity'"),
        ("training_record.json", json.dumps({**TRAINING_RECORD, "steps": True}), "'steps' should be int"),
        ("training_record.json", json.dumps({**TRAINING_RECORD, "datasets": [{"name": "x", "images": 3}]}), "lacks 'licence'"),
        ("training_record.json", "[]", "should be a JSON object"),
        ("training_record.json", json.dumps({**TRAINING_RECORD, "notes": ["fine", 3]}), r"notes\[1\] should be"),
    ],
)
def test_malformed_records_are_checkpoint_errors(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    reader = read_eval_results if name == "eval.json" else read_training_record
    with pytest.raises(CheckpointError, match=message):
        reader(tmp_path)


def test_records_are_read_into_the_contract(checkpoint):
    record, evaluation = read_training_record(checkpoint), read_eval_results(checkpoint)
    assert record.steps == 1200 and record.datasets[0].images == 999 and record.datasets[0].hub_id is None
    assert [row.method for row in evaluation.rows] == ["fswap", "classic"] and evaluation.pairs == 200


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="the default checkpoint is not trained yet")
def test_default_checkpoint_card_parses():
    card = ModelCard(render_model_card(DEFAULT_CHECKPOINT))
    assert card.data.library_name == "fswap" and card.data.license
    # Its shape_strength (model_index.json) is stated among the limitations, as a share.
    index = json.loads((DEFAULT_CHECKPOINT / "model_index.json").read_text())
    assert f"take {index['shape_strength'] * 100:g} % of the way to the source's" in card.text
    # So are the outline's feather and its narrower share along the jaw.
    assert f"over {index['feather_fraction']:g} of the crop around the forehead" in card.text
    assert f"{index['jaw_feather_share'] * 100:g} % of that along the cheeks and the jaw" in card.text


# ------------------------------------------------------------------------------ the Space
def _fake_project(root: Path) -> Path:
    files = {
        "app.py": "print('app')\n",
        "space/README.md": "---\ntitle: fswap demo\nsdk: gradio\nsdk_version: 6.31.0\nemoji: 🎭\n---\nTry it.\n",
        "space/requirements.txt": "fswap-deps\n",
        "space/packages.txt": "libgl1\n",
        "space/__init__.py": "",
        "space/ui.py": "",
        "space/examples/a.jpg": "jpeg",
        "space/__pycache__/ui.cpython-311.pyc": "",
        "requirements.txt": "root requirements\n",
        "fswap/__init__.py": "",
        "fswap/models/net.py": "",
        "fswap/training/train.py": "",
        "fswap/training/__init__.py": "",
        "fswap/__pycache__/net.cpython-311.pyc": "",
        "fswap/.notes.swp": "",
        "tests/test_x.py": "",
        "notes.md": "",
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def test_space_upload_is_exactly_what_a_space_needs(tmp_path, checkpoint):
    root = _fake_project(tmp_path / "project")
    base = {"app.py", "README.md", "requirements.txt", "packages.txt", "space/__init__.py", "space/ui.py",
            "space/examples/a.jpg", "fswap/__init__.py", "fswap/models/net.py"}
    upload = space_upload(root, repo_id="alice/demo", model=REPO, model_metadata={"license": "mit"})
    assert set(upload) == base
    assert upload["requirements.txt"] == root / "space" / "requirements.txt"
    card = SpaceCard(upload["README.md"].decode())
    assert card.data.sdk == "gradio" and card.data.sdk_version == "6.31.0" and card.data.title == "fswap demo"
    assert card.data.models == [REPO] and card.data.license == "mit" and card.data.app_file == "app.py"
    assert "Try it." in card.text and "consent" in card.text

    embedded = space_upload(root, repo_id="alice/demo", model=checkpoint)
    checkpoint_files = {f"checkpoints/fswap-default/{name}" for name in
                        ("README.md", "LICENSE.md", "model_index.json", "training_record.json", "eval.json")}
    checkpoint_files |= {f"checkpoints/fswap-default/{p.relative_to(checkpoint).as_posix()}"
                         for p in checkpoint.glob("*/*") if p.suffix in (".json", ".onnx", ".safetensors")}
    assert set(embedded) == base | checkpoint_files
    assert SpaceCard(embedded["README.md"].decode()).data.license == "other"

    with pytest.raises(ModelNotFoundError, match="no model for the Space"):
        space_upload(root, repo_id="alice/demo")
    (root / "app.py").unlink()
    with pytest.raises(FswapError, match="app.py"):
        space_upload(root, repo_id="alice/demo", model=REPO)


@pytest.fixture(scope="module")
def space_project(tmp_path_factory):
    """A copy of what `push space` reads from this checkout, with fswap/training/ in it."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(PROJECT_ROOT / "fswap", root / "fswap", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("space", "requirements.txt", "packages.txt", "app.py"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy(source, root / name)
    return root


def test_pushed_space_holds_exactly_its_files_and_runs_from_a_clean_copy(hub, published, checkpoint, space_project, tmp_path):
    space = "alice/fswap-demo"
    code = """
    import hashlib
    from pathlib import Path
    from huggingface_hub import HfApi, snapshot_download
    from fswap.hub import push_space

    api = HfApi()

    def state():
        variables = {key: var.value for key, var in api.get_space_variables(args["space"]).items()}
        return {"variables": variables, "files": sorted(api.list_repo_files(args["space"], repo_type="space"))}

    push_space(args["space"], model=args["model"], root=args["root"])
    result["first"] = state()
    push_space(args["space"], model=args["checkpoint"], root=args["root"])  # embed it instead
    result["embedded"] = state()
    push_space(args["space"], model=args["model"], root=args["root"], commit_message="back to the Hub model")
    result["last"] = state()
    folder = Path(snapshot_download(args["space"], repo_type="space", local_dir=args["clean"]))
    result["files"] = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}
    """
    clean = tmp_path / "space"
    args = {"space": space, "model": REPO, "checkpoint": checkpoint, "root": space_project, "clean": clean}
    pushed = run_client(hub, code, tmp_path / "home", token=hub.tokens["alice"], args=args)

    model_metadata = ModelCard(render_model_card(checkpoint, repo_id=REPO)).data.to_dict()  # what main's card says
    expected = space_upload(space_project, repo_id=space, model=REPO, model_metadata=model_metadata, endpoint=hub.url)
    embedded = space_upload(space_project, repo_id=space, model=checkpoint, endpoint=hub.url)
    assert pushed["first"] == {"variables": {"FSWAP_MODEL": REPO}, "files": sorted({*expected, ".gitattributes"})}
    assert pushed["embedded"] == {"variables": {}, "files": sorted({*embedded, ".gitattributes"})}
    assert pushed["last"] == pushed["first"]  # the embedded checkpoint is gone again
    digest = {name: hashlib.sha256(source if isinstance(source, bytes) else source.read_bytes()).hexdigest()
              for name, source in expected.items()}
    assert pushed["files"] == digest | {".gitattributes": pushed["files"][".gitattributes"]}
    assert {"app.py", "space/__init__.py", "fswap/pipeline.py", "requirements.txt"} <= set(expected)
    assert not any(name.startswith(("fswap/training", "tests/", "hub_cards/")) for name in pushed["files"])

    run = """
    import importlib.util, runpy
    # This machine has fswap installed in editable mode; a Space has only the uploaded copy.
    sys.meta_path[:] = [finder for finder in sys.meta_path if not finder.__module__.startswith("__editable__")]
    app = runpy.run_path("app.py", run_name="space_check")  # builds the demo; __main__ would launch it
    import fswap
    result["fswap"] = fswap.__file__
    result["training"] = importlib.util.find_spec("fswap.training") is not None
    import gradio
    result["demo"] = isinstance(app["demo"], gradio.Blocks)
    result["crop_size"] = app["pipeline"].get().crop_size  # what a Space does first: load FSWAP_MODEL
    """
    ran = run_client(hub, run, tmp_path / "space-home", token=None, args={}, cwd=clean, pythonpath=clean,
                     env_extra={"FSWAP_MODEL": pushed["last"]["variables"]["FSWAP_MODEL"]})
    assert Path(ran["fswap"]).resolve().is_relative_to(clean.resolve())
    assert ran["training"] is False and ran["demo"] is True and ran["crop_size"] == 64


# ------------------------------------------------------------------------------ the swap detector
@pytest.mark.skipif(not (DEFAULT_CHECKPOINT.parent / "fswap-detector" / "config.json").is_file(),
                    reason="no shipped detector checkpoint")
def test_push_detector_then_load_it_from_the_hub(hub, checkpoint, tmp_path):
    code = """
    import contextlib, io
    import torch
    from huggingface_hub import HfApi, hf_hub_download
    from fswap.cli import main
    from fswap.swap_detection import load_detector
    from fswap.errors import FswapError
    from fswap.hub import push_detector

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result["exit"] = main(["push", "detector", args["detector"], "alice/fswap-detector"])  # as a user runs it
    result["printed"] = printed.getvalue()
    result["files"] = sorted(HfApi().list_repo_files("alice/fswap-detector"))
    remote = load_detector("alice/fswap-detector", cache_dir=args["cache"])
    local = load_detector(args["detector"])
    result["same_weights"] = all(torch.equal(remote.state_dict()[k], v) for k, v in local.state_dict().items())
    result["card"] = open(hf_hub_download("alice/fswap-detector", "README.md", cache_dir=args["cache"])).read()
    try:
        push_detector(args["pipeline"], "alice/not-a-detector")  # a face-swap checkpoint, not a detector
        result["refused"] = "allowed"
    except FswapError as error:
        result["refused"] = str(error)

    # A detector straight from memory pushes itself (`SwapDetector` inherits `PushToHubMixin`).
    from fswap.models import SwapDetector

    torch.manual_seed(0)
    tiny = SwapDetector(**SwapDetector.TINY_CONFIG)
    tiny.push_to_hub("alice/tiny-detector", private=True)
    result["tiny_files"] = sorted(HfApi().list_repo_files("alice/tiny-detector"))
    result["tiny_private"] = HfApi().model_info("alice/tiny-detector").private
    pulled = load_detector("alice/tiny-detector", cache_dir=args["cache"])
    result["tiny_same"] = all(torch.equal(pulled.state_dict()[k], v) for k, v in tiny.state_dict().items())
    result["tiny_card"] = open(hf_hub_download("alice/tiny-detector", "README.md", cache_dir=args["cache"])).read()
    """
    detector = DEFAULT_CHECKPOINT.parent / "fswap-detector"
    args = {"detector": detector, "pipeline": checkpoint, "cache": tmp_path / "dl"}
    result = run_client(hub, code, tmp_path / "home", token=hub.tokens["alice"], args=args)
    assert result["files"] == [".gitattributes", "LICENSE.md", "README.md", "config.json",
                               "diffusion_pytorch_model.safetensors", "eval.json",
                               "training_history/history.jsonl", "training_record.json"]
    assert result["exit"] == 0 and "pushed:" in result["printed"] and result["same_weights"]
    assert "non-commercial" in result["card"] and "alice/fswap-detector" in result["card"]
    assert "is not a SwapDetector checkpoint" in result["refused"]
    assert result["tiny_files"] == [".gitattributes", "LICENSE.md", "README.md", "config.json",
                                    "diffusion_pytorch_model.safetensors"]
    assert result["tiny_private"] and result["tiny_same"]
    assert "alice/tiny-detector" in result["tiny_card"] and "Not evaluated yet" in result["tiny_card"]
