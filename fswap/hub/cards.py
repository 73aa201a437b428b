"""Model cards and licences from `hub_cards/`, filled from a checkpoint's own files, never typed by hand.

Two kinds of checkpoint get a card: a `FaceSwapPipeline` folder (`model_index.json` and the
component configs, `face_analyzer/config.json` for the face models' licence, the training record
and `eval.json`, see `fswap.hub.records`) and a `SwapDetector` folder (`config.json`, the weights,
its training record and `eval.json` from `benchmarks/detector_auc.py`). A missing record or
evaluation is said so in the card. `model_upload` and `detector_upload` list every file of the
Hub repo, cards included; nothing here touches the network or imports torch.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from fswap.errors import FswapError
from fswap.fileio import write_atomically
from fswap.hub.checkpoints import (
    CODE_LICENCE,
    LICENCE_NAME,
    Checkpoint,
    licence_metadata,
    licence_terms,
    read_checkpoint,
    record_licence_terms,
    safetensors_parameters,
)
from fswap.hub.records import EVAL_RESULTS, eval_summary, read_json

#: The source checkout this package lives in (`push_space` finds the app there).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The card templates: package data (`fswap/hub_cards`, in a checkout a link to `hub_cards/`).
HUB_CARDS_DIR = Path(str(resources.files("fswap") / "hub_cards"))
if not HUB_CARDS_DIR.is_dir():  # a checkout without the link
    HUB_CARDS_DIR = PROJECT_ROOT / "hub_cards"
CARD_NAME = "README.md"
#: The files of a detector checkpoint that go to the Hub, besides the rendered card and licence.
DETECTOR_FILES = ("config.json", "diffusion_pytorch_model.safetensors", "training_record.json", "eval.json")
#: The `SwapDetector` config entries its card reads.
DETECTOR_CARD_CONFIG = ("sample_size", "crop_margin", "block_out_channels", "mask_head", "mask_upsamplings")


def card_environment():
    """The jinja2 environment of the templates in `hub_cards/`: strict, with the `yaml`,
    `duration` and `thousands` filters the cards use."""
    import jinja2

    if not HUB_CARDS_DIR.is_dir():
        raise FswapError(f"card templates not found at {HUB_CARDS_DIR}: reinstall fswap (they are package data)")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HUB_CARDS_DIR), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False,
    )
    # JSON is valid YAML: every value lands in the front matter quoted and escaped.
    environment.filters["yaml"] = lambda value: json.dumps(value, ensure_ascii=False)
    environment.filters["duration"] = _duration
    environment.filters["thousands"] = lambda value: f"{value:,}"
    return environment


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _render_licence_file(terms: list) -> str:
    return card_environment().get_template("licence.md.j2").render(
        code_licence=CODE_LICENCE, licence_terms=terms, licence=licence_metadata(terms)
    )


def _write_cards(folder: Path, cards: dict[str, str]) -> list[Path]:
    return [write_atomically(folder / name, text.encode("utf-8")) for name, text in cards.items()]


# ------------------------------------------------------------------------------- face-swap checkpoints
def _model_context(checkpoint: Checkpoint, repo_id: str | None, revision: str | None) -> dict:
    terms = licence_terms(checkpoint)
    training = checkpoint.training
    generator = checkpoint.components.get("generator", {}).get("config", {})
    analyzer = checkpoint.components.get("face_analyzer", {}).get("config", {})
    tags = ["fswap", "face-swap", "image-to-image", "occlusion-aware", "safetensors", "onnx"]
    return {
        "repo_id": repo_id,
        "revision": None if revision in (None, "main") else revision,
        "fswap_version": checkpoint.index.get("_fswap_version", "unknown"),
        "licence": licence_metadata(terms),
        "licence_terms": terms,
        "code_licence": CODE_LICENCE,
        "tags": tags,
        "dataset_ids": [d.hub_id for d in training.datasets if d.hub_id] if training else [],
        "base_model_ids": [m.hub_id for m in training.base_models if m.hub_id] if training else [],
        "components": checkpoint.components,
        "total_parameters": sum(c["parameters"] for c in checkpoint.components.values()),
        "settings": {k: v for k, v in checkpoint.index.items() if not k.startswith("_") and not isinstance(v, list)},
        "crop_size": generator.get("sample_size"),
        "face_models": analyzer if isinstance(analyzer, dict) else {},
        "training": training,
        "training_images": sum(d.images for d in training.datasets) if training else 0,
        "evaluation": checkpoint.evaluation,
    }


def _model_cards(checkpoint: Checkpoint, repo_id: str | None, revision: str | None) -> dict[str, str]:
    card = card_environment().get_template("model_card.md.j2").render(**_model_context(checkpoint, repo_id, revision))
    return {CARD_NAME: card, LICENCE_NAME: _render_licence_file(licence_terms(checkpoint))}


def render_model_card(folder: str | Path, *, repo_id: str | None = None, revision: str | None = None) -> str:
    """The checkpoint's `README.md`: Hub metadata and the card body, from `hub_cards/model_card.md.j2`.

    Args:
        folder: an fswap checkpoint folder (`save_pretrained`).
        repo_id: the Hub repo it is published as; shown in the usage snippet (default: the folder).
        revision: the branch it is published on; shown in the snippet when not "main".
    """
    return _model_cards(read_checkpoint(folder), repo_id, revision)[CARD_NAME]


def render_licence(folder: str | Path) -> str:
    """The checkpoint's `LICENSE.md`: fswap's code licence and every term the weights inherit."""
    return _render_licence_file(licence_terms(read_checkpoint(folder)))


def model_upload(folder: str | Path, *, repo_id: str | None = None, revision: str | None = None) -> dict[str, Path | bytes]:
    """Every file of the checkpoint's Hub repo (path in repo -> local file or content), cards included.

    What a user of the weights needs: the configs, the weights, the training record, the card,
    the licence and `eval.json`'s summary (`eval_summary`). A `README.md` or `LICENSE.md` already
    in the folder is replaced by the rendered ones.
    """
    checkpoint = read_checkpoint(folder)
    upload: dict[str, Path | bytes] = dict(checkpoint.files)
    if EVAL_RESULTS in upload:
        upload[EVAL_RESULTS] = eval_summary(checkpoint.folder)
    upload |= {name: text.encode() for name, text in _model_cards(checkpoint, repo_id, revision).items()}
    return upload


def write_model_card(folder: str | Path, *, repo_id: str | None = None) -> Path:
    """Write `README.md` and `LICENSE.md` into the checkpoint folder (what `push_model` uploads)."""
    folder = Path(folder)
    _write_cards(folder, _model_cards(read_checkpoint(folder), repo_id, None))
    return folder / CARD_NAME


# ------------------------------------------------------------------------------- swap detectors
def _detector_context(folder: Path, repo_id: str | None) -> dict:
    weights = folder / "diffusion_pytorch_model.safetensors"
    config_path = folder / "config.json"
    if not weights.is_file() or not config_path.is_file():
        raise FswapError(f"{folder} is not a SwapDetector checkpoint (it needs config.json and {weights.name})")
    config = read_json(config_path)
    if not isinstance(config, dict) or config.get("_class_name") != "SwapDetector":
        raise FswapError(f"{folder} is not a SwapDetector checkpoint (its config.json must name SwapDetector)")
    missing = [key for key in DETECTOR_CARD_CONFIG if key not in config]
    if missing:
        raise FswapError(f"{config_path} lacks {', '.join(missing)}: save the detector with save_pretrained")
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    training = read_json(folder / "training_record.json") if (folder / "training_record.json").is_file() else None
    evaluation = read_json(folder / EVAL_RESULTS) if (folder / EVAL_RESULTS).is_file() else None
    terms = record_licence_terms(training)
    return {
        "repo_id": repo_id, "config": config, "mask_size": detector_mask_size(config),
        "parameters": safetensors_parameters(weights), "size_mb": weights.stat().st_size / 1e6,
        "training": training, "evaluation": evaluation,
        "licence": licence_metadata(terms), "licence_terms": terms, "code_licence": CODE_LICENCE,
    }


def detector_mask_size(config: dict) -> int | None:
    """`SwapDetector.mask_size` from the config alone (the card is made without torch): the side of
    the predicted blend mask, None without a mask head. `tests/test_detector.py` holds the two equal."""
    if not config["mask_head"]:
        return None
    return config["sample_size"] // 2 ** (len(config["block_out_channels"]) - 1 - config["mask_upsamplings"])


def detector_cards(folder: str | Path, *, repo_id: str | None = None) -> dict[str, str]:
    """The detector checkpoint's `README.md` (the card, from `hub_cards/detector_card.md.j2`) and
    `LICENSE.md` (the terms it inherits), rendered from its own files: `config.json`, the weights,
    `training_record.json` and `eval.json`.

    Raises:
        fswap.FswapError: the folder is not a `SwapDetector` checkpoint.
    """
    context = _detector_context(Path(folder), repo_id)
    card = card_environment().get_template("detector_card.md.j2").render(**context)
    return {CARD_NAME: card, LICENCE_NAME: _render_licence_file(context["licence_terms"])}


def render_detector_card(folder: str | Path, *, repo_id: str | None = None) -> str:
    """The detector checkpoint's `README.md` (see `detector_cards`)."""
    return detector_cards(folder, repo_id=repo_id)[CARD_NAME]


def write_detector_cards(folder: str | Path, *, repo_id: str | None = None) -> list[Path]:
    """Write the checkpoint's `README.md` (the card) and `LICENSE.md` (the terms it inherits)."""
    folder = Path(folder)
    return _write_cards(folder, detector_cards(folder, repo_id=repo_id))


def detector_upload(folder: str | Path, *, repo_id: str | None = None) -> dict[str, Path | bytes]:
    """Every file of the detector's Hub repo (path in repo -> local file or content), cards included.

    Raises:
        fswap.FswapError: the folder is not a `SwapDetector` checkpoint (no weights, or a config
            of another class), so nothing is published.
    """
    folder = Path(folder)
    cards = detector_cards(folder, repo_id=repo_id)  # checks the folder first
    upload: dict[str, Path | bytes] = {name: folder / name for name in DETECTOR_FILES if (folder / name).is_file()}
    for history in sorted((folder / "training_history").glob("*.jsonl")):
        upload[f"training_history/{history.name}"] = history
    upload |= {name: text.encode() for name, text in cards.items()}
    return upload
