"""The bad-input corpus of the command line and of checkpoint loading (issue #28).

Each entry names the command, the bad input and the error its one line must give. Every entry is
run in a fresh folder of real files and must end with exit status 2, `error:` on the last line of
stderr, no traceback, every input byte for byte as it was and no file left behind (no output, no
hidden partial). The app's API has its own corpus in `tests/test_bad_inputs_api.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from fswap.assets import example_image
from fswap.checkpoint_files import write_hashes
from fswap.cli import main

WEIGHTS = "diffusion_pytorch_model.safetensors"


def _png(width: int, height: int) -> bytes:
    """A grey PNG that declares `width` x `height` and compresses to almost nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes(width + 1) * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    return _png(9_500, 9_500)  # 90 megapixels, over the 80 MP limit, in under 100 KB


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from fswap.building import build_untrained_pipeline

    folder = tmp_path_factory.mktemp("checkpoint") / "fswap-tiny"
    build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8, seed=0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory) -> Path:
    from fswap.models.detector import SwapDetector

    folder = tmp_path_factory.mktemp("detector") / "detector"
    SwapDetector(**SwapDetector.TINY_CONFIG).save_pretrained(folder)
    return folder


@pytest.fixture
def workspace(tmp_path, monkeypatch, bomb_png, tiny_checkpoint, tiny_detector):
    """A folder of inputs, good and bad, as the current directory."""
    shutil.copyfile(example_image("yaoming.jpg"), tmp_path / "source.jpg")
    shutil.copyfile(example_image("t1.jpg"), tmp_path / "target.jpg")
    photo = (tmp_path / "target.jpg").read_bytes()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a photo\n")
    (tmp_path / "truncated.jpg").write_bytes(photo[: len(photo) // 3])
    (tmp_path / "bomb.png").write_bytes(bomb_png)
    (tmp_path / "grey.png").write_bytes(_png(200, 200))
    (tmp_path / "hostname.pem").write_text("my-laptop\n")
    (tmp_path / "target_swapped.png").write_bytes(photo)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "link.jpg").symlink_to("target.jpg")
    os.link(tmp_path / "target.jpg", tmp_path / "hardlink.jpg")
    shutil.copytree(tiny_checkpoint, tmp_path / "model")
    shutil.copytree(tiny_detector, tmp_path / "detector")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------ ways to spoil a checkpoint
def _edit_json(path: str, **changes):
    def edit(root: Path):
        file = root / path
        file.write_text(json.dumps(json.loads(file.read_text()) | changes))
    return edit


def _write(path: str, data: bytes, *, rehash: bool = False):
    def edit(root: Path):
        (root / path).write_bytes(data)
        if rehash:  # as a user who regenerated SHA256SUMS would: the file itself must be refused
            write_hashes((root / path).parent)
    return edit


def _flip_byte(path: str):
    def edit(root: Path):
        data = bytearray((root / path).read_bytes())
        data[-100] ^= 0x01  # inside the tensor data, past the header
        (root / path).write_bytes(bytes(data))
    return edit


def _remove(path: str):
    return lambda root: (root / path).unlink()


SWAP = ["swap", "source.jpg", "target.jpg"]
TINY = [*SWAP, "-o", "out.png", "--model", "model"]

#: (id, arguments, what the error line must say, how to spoil the workspace first)
CORPUS = [
    # swap: where the result goes
    ("swap-output-is-target", [*SWAP, "-o", "target.jpg", "--method", "classic"], "would destroy the original", None),
    ("swap-output-is-source", [*SWAP, "-o", "source.jpg", "--method", "classic"], "would destroy the original", None),
    ("swap-output-links-to-target", [*SWAP, "-o", "link.jpg", "--method", "classic"], "would destroy the original", None),
    ("swap-output-hard-link", [*SWAP, "-o", "hardlink.jpg", "--method", "classic"], "would destroy the original", None),
    ("swap-output-gif", [*SWAP, "-o", "x.gif"], "cannot write a .gif file", None),
    ("swap-output-unknown-suffix", [*SWAP, "-o", "x.xyz"], "cannot write a .xyz file", None),
    ("swap-output-bmp-signed", [*SWAP, "-o", "x.bmp"], "cannot write a .bmp file", None),
    ("swap-output-in-proc", [*SWAP, "-o", "/proc/self/x.png"], "no permission to write", None),
    ("swap-output-under-a-file", [*SWAP, "-o", "target.jpg/x.png"], "is a file, not a folder", None),
    ("swap-output-deep-under-a-file", [*SWAP, "-o", "target.jpg/a/b/x.png"], "is a file, not a folder", None),
    ("swap-output-a-pipe", [*SWAP, "-o", "pipe.png"], "not a regular file", None),
    # swap: the photos
    ("swap-target-missing", ["swap", "source.jpg", "nothere.jpg", "-o", "out.png", "--method", "classic"], "no such file", None),
    ("swap-target-empty", ["swap", "source.jpg", "empty.jpg", "-o", "out.png", "--method", "classic"], "is empty", None),
    ("swap-target-text", ["swap", "source.jpg", "text.jpg", "-o", "out.png", "--method", "classic"], "not an image", None),
    ("swap-target-truncated", ["swap", "source.jpg", "truncated.jpg", "-o", "out.png", "--method", "classic"],
     "damaged or truncated", None),
    ("swap-target-bomb", ["swap", "source.jpg", "bomb.png", "-o", "out.png", "--method", "classic"], "too large", None),
    ("swap-target-empty-folder", ["swap", "source.jpg", "folder", "-o", "out", "--method", "classic"], "holds no photos",
     None),
    ("swap-targets-into-a-file", ["swap", "source.jpg", "--targets", "target.jpg", "text.jpg", "-o", "empty.jpg",
                                  "--method", "classic"], "is a file; several targets need a folder", None),
    ("swap-targets-over-a-target", ["swap", "source.jpg", "--targets", "target.jpg", "target_swapped.png", "-o", ".",
                                    "--method", "classic"], "is one of the targets", None),
    ("swap-no-target", ["swap", "source.jpg", "-o", "out.png"], "needs a source photo and a target", None),
    ("swap-target-no-face", ["swap", "source.jpg", "grey.png", "-o", "out.png", "--method", "classic"], "no face", None),
    ("swap-source-no-face", ["swap", "grey.png", "target.jpg", "-o", "out.png", "--method", "classic"], "no face", None),
    ("swap-source-faces-count", [*SWAP, "-o", "out.png", "--source-faces", "0,1"], "give one per photo", None),
    ("swap-source-face-out-of-range", [*SWAP, "-o", "out.png", "--method", "classic", "--source-faces", "7"],
     "face", None),
    ("swap-target-face-out-of-range", [*SWAP, "-o", "out.png", "--method", "classic", "--faces", "9"], "face", None),
    ("swap-cert-without-key", [*SWAP, "-o", "out.png", "--c2pa-cert", "hostname.pem"], "give both", None),
    ("swap-cert-not-pem", [*SWAP, "-o", "out.png", "--method", "classic", "--c2pa-cert", "hostname.pem",
                           "--c2pa-key", "hostname.pem"], "error", None),
    # swap: the checkpoint
    ("model-missing", [*SWAP, "-o", "out.png", "--model", "nothere"], "does not exist", None),
    ("model-index-not-json", TINY, "not valid JSON", _write("model/model_index.json", b"{not json")),
    ("model-index-a-list", TINY, "not an object", _write("model/model_index.json", b"[1, 2]")),
    ("model-index-wrong-class", TINY, "not a FaceSwapPipeline", _edit_json("model/model_index.json", _class_name="Other")),
    ("model-setting-a-word", TINY, "shape_strength must be a number", _edit_json("model/model_index.json", shape_strength="lots")),
    ("model-setting-out-of-range", TINY, "shape_strength must be in [0, 1]", _edit_json("model/model_index.json", shape_strength=5)),
    ("model-setting-not-finite", TINY, "feather_fraction must be a number",
     _edit_json("model/model_index.json", feather_fraction=float("nan"))),
    ("model-unknown-component", TINY, "unknown component", _edit_json("model/model_index.json", upscaler=["x", "Y"])),
    ("analyzer-detection-size-word", TINY, "detection_size must be", _edit_json("model/face_analyzer/config.json",
                                                                              detection_size="big")),
    ("analyzer-threshold-out-of-range", TINY, "detection_threshold must be",
     _edit_json("model/face_analyzer/config.json", detection_threshold=7)),
    ("analyzer-file-outside", TINY, "the name of a file in the same folder",
     _edit_json("model/face_analyzer/config.json", detector="../generator/config.json")),
    ("analyzer-absolute-file", TINY, "the name of a file in the same folder",
     _edit_json("model/face_analyzer/config.json", detector="/etc/passwd")),
    ("analyzer-file-in-a-subfolder", TINY, "the name of a file in the same folder",
     _edit_json("model/face_analyzer/config.json", landmarks="sub/2d106det.onnx")),
    ("analyzer-onnx-random-bytes", TINY, "not an ONNX model",
     _write("model/face_analyzer/scrfd_500m_bnkps.onnx", os.urandom(4096), rehash=True)),
    ("analyzer-onnx-flipped-byte", TINY, "damaged or was changed", _flip_byte("model/face_analyzer/w600k_mbf.onnx")),
    ("analyzer-config-unknown-key", TINY, "unknown keys", _edit_json("model/face_analyzer/config.json", backdoor=1)),
    ("weights-flipped-byte", TINY, "damaged or was changed", _flip_byte(f"model/generator/{WEIGHTS}")),
    ("weights-missing", TINY, f"has no {WEIGHTS}", _remove(f"model/generator/{WEIGHTS}")),
    ("weights-listed-file-missing", TINY, "which is missing", _write("model/generator/SHA256SUMS", b"0" * 64 + b"  gone.bin\n")),
    ("weights-list-points-outside", TINY, "points outside",
     _write("model/generator/SHA256SUMS", b"0" * 64 + b"  ../model_index.json\n")),
    ("component-config-not-json", TINY, "not a valid JSON", _write("model/generator/config.json", b"{oops")),
    ("component-config-other-class", TINY, "not a Generator",
     _edit_json("model/generator/config.json", _class_name="OcclusionSegmenter")),
    # detect
    ("detect-output-in-proc", ["detect", "target.jpg", "-o", "/proc/self/d.png"], "no permission to write", None),
    ("detect-output-unknown-suffix", ["detect", "target.jpg", "-o", "d.xyz"], "cannot write a .xyz file", None),
    ("detect-output-is-input", ["detect", "target.jpg", "-o", "target.jpg"], "would destroy the original", None),
    ("detect-image-missing", ["detect", "nothere.jpg"], "no such file", None),
    ("detect-image-folder", ["detect", "folder"], "not a file", None),
    ("detect-image-bomb", ["detect", "bomb.png"], "too large", None),
    ("detect-face-models-missing", ["detect", "target.jpg", "--face-models", "nothere"], "does not exist", None),
    # verify
    ("verify-bomb", ["verify", "bomb.png"], "too large", None),
    ("verify-trust-not-pem", ["verify", "target.jpg", "--trust", "hostname.pem"], "not PEM certificates", None),
    ("verify-trust-missing", ["verify", "target.jpg", "--trust", "nothere.pem"], "no such file", None),
    ("verify-text", ["verify", "text.jpg"], "not an image", None),
    ("verify-empty", ["verify", "empty.jpg"], "is empty", None),
    # detect-swap
    ("detect-swap-output-is-input", ["detect-swap", "target.jpg", "-o", "target.jpg"], "would destroy the original", None),
    ("detect-swap-output-gif", ["detect-swap", "target.jpg", "-o", "h.gif"], "cannot write a .gif file", None),
    ("detect-swap-detector-missing", ["detect-swap", "target.jpg", "--detector", "/nothere"], "no such folder", None),
    ("detect-swap-detector-flipped-byte", ["detect-swap", "target.jpg", "--detector", "detector"],
     "damaged or was changed", _flip_byte(f"detector/{WEIGHTS}")),
    ("detect-swap-image-truncated", ["detect-swap", "truncated.jpg"], "damaged or truncated", None),
    # eval
    ("eval-data-missing", ["eval", "--data", "nothere", "-o", "report"], "not a data set", None),
    ("eval-data-not-a-dataset", ["eval", "--data", "folder", "-o", "report"], "not a data set", None),
    ("eval-output-a-file", ["eval", "--data", "folder", "-o", "target.jpg"], "not a data set", None),
    ("eval-pairs-zero", ["eval", "--data", "folder", "-o", "report", "--pairs", "0"], "1 or more", None),
]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (links not followed) and a digest of its bytes."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_fifo():
            files[str(path.relative_to(folder))] = "fifo"
        elif path.is_symlink():
            files[str(path.relative_to(folder))] = "-> " + os.readlink(path)
        elif path.is_file():
            files[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 60 and len({case[0] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("arguments", "message", "spoil"), [case[1:] for case in CORPUS],
                         ids=[case[0] for case in CORPUS])
def test_a_bad_input_gives_one_line_and_changes_nothing(workspace, capsys, arguments, message, spoil):
    if spoil is not None:
        spoil(workspace)
    before = _snapshot(workspace)
    with pytest.raises(SystemExit) as raised:
        main(list(arguments))
    error = capsys.readouterr().err
    assert raised.value.code == 2, error
    assert "Traceback" not in error
    last = error.strip().splitlines()[-1]
    assert "error:" in last and message in last, error
    assert _snapshot(workspace) == before  # inputs unchanged, no output, no partial file


def test_a_training_state_holding_a_pickle_is_refused_not_run(tmp_path):
    """accelerate reads optimizer.bin with torch.load(weights_only=True): a pickle that would call
    code is refused; fswap says which state and what to do instead of a raw UnpicklingError."""
    import pickle

    import torch
    from accelerate import Accelerator

    from fswap.errors import CheckpointError
    from fswap.training import common

    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    common.save_checkpoint(accelerator, tmp_path, step=3)
    state = tmp_path / "checkpoints" / "step_3"
    (state / "optimizer.bin").write_bytes(pickle.dumps(print))  # would call a global if unpickled
    with pytest.raises(CheckpointError, match="cannot be loaded.*move it away"):
        common.resume(accelerator, tmp_path)
