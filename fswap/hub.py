"""Publishing on the Hugging Face Hub: model cards from `hub_cards/`, checkpoint and Space uploads.

    fswap push model checkpoints/fswap-default me/fswap           # push_model(folder, repo_id)
    fswap push space me/fswap-demo --model me/fswap                # push_space(repo_id, model=...)
    FaceSwapPipeline.push_to_hub("me/fswap", revision="v2")       # push_pipeline(pipe, repo_id)

The cards are filled from the checkpoint's own files, never typed by hand: `model_index.json`
and the component configs, `face_analyzer/config.json` (the face models' licence),
`training_record.json` (written by training) and `eval.json` (written by `fswap eval`). A
missing record or evaluation is said so in the card. Both JSON files are a contract with the
code that writes them: `TrainingRecord` and `EvalResults` below, read strictly.

Tokens: only huggingface_hub's own resolution (`HF_TOKEN`, or `hf auth login`); the functions
take a `token=` for Python callers, and the CLI must not offer one (it would end up in shell
history and CI logs).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fswap.assets import is_hub_repo_id
from fswap.errors import CheckpointError, FswapError, ModelNotFoundError
from fswap.version import __version__

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo

    from fswap.pipeline import FaceSwapPipeline

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HUB_CARDS_DIR = PROJECT_ROOT / "hub_cards"
MODEL_INDEX = "model_index.json"
TRAINING_RECORD = "training_record.json"
EVAL_RESULTS = "eval.json"
#: What of `eval.json` stays home: the per-pair results, inline (older files) or in the file named.
EVAL_PAIR_KEYS = ("results", "results_file")
CARD_NAME = "README.md"
LICENCE_NAME = "LICENSE.md"
#: The licence of fswap's own code; the weights add the terms they inherit (see `licence_terms`).
CODE_LICENCE = "Apache-2.0"
#: Where a Space looks for its model (read by `fswap.assets.default_model`).
SPACE_MODEL_VARIABLE = "FSWAP_MODEL"
#: Where a checkpoint embedded in a Space goes: `fswap.assets.DEFAULT_CHECKPOINT` relative to the root.
SPACE_CHECKPOINT_DIR = "checkpoints/fswap-default"
WEIGHT_SUFFIXES = (".safetensors", ".onnx")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SKIPPED_NAMES = ("__pycache__", ".DS_Store")
#: Files a Space reads from its root that live in `space/` in the checkout.
SPACE_ROOT_FILES = ("requirements.txt", "packages.txt")


# ------------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class DatasetUse:
    """One data set a checkpoint was trained on. `hub_id` ("org/name") goes into the card's
    `datasets:` metadata; without one the data set is only named in the text."""

    name: str
    licence: str
    images: int
    hub_id: str | None = None


@dataclass(frozen=True)
class BaseModel:
    """Pretrained weights a checkpoint contains or was built from (e.g. the InsightFace models)."""

    name: str
    licence: str
    hub_id: str | None = None


@dataclass(frozen=True)
class TrainingRecord:
    """`training_record.json`, written next to `model_index.json` by the training scripts."""

    method: str
    config: dict[str, Any]
    steps: int
    hardware: str
    wall_time_s: float
    datasets: tuple[DatasetUse, ...]
    base_models: tuple[BaseModel, ...]
    notes: tuple[str, ...] = ()  # what happened after the run: a component retrained or replaced


@dataclass(frozen=True)
class EvalRow:
    """One method's scores; arrows say which way is better."""

    method: str
    identity_similarity: float  # ↑ cosine similarity of the swap to the source identity
    identity_top1: float  # ↑ identity retrieval top-1
    pose_error_deg: float  # ↓ head pose difference to the target
    expression_error: float  # ↓ expression difference to the target
    background_psnr_db: float  # ↑ outside the face, against the target
    seconds_per_swap: float  # ↓


@dataclass(frozen=True)
class EvalResults:
    """`eval.json`, written next to `model_index.json` by `fswap eval`."""

    command: str
    rows: tuple[EvalRow, ...]
    recogniser: str
    pairs: int
    #: How sure each difference between two methods is, in words (`fswap.evaluation.comparison_text`).
    comparisons: tuple[str, ...] = ()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from error


def _field(data: Any, key: str, kind: type, where: str, *, optional: bool = False) -> Any:
    """`data[key]` checked to be a `kind` (ints pass as floats; bools never pass as numbers)."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} should be a JSON object, got {type(data).__name__}")
    if key not in data or (optional and data[key] is None):
        if optional:
            return None
        raise CheckpointError(f"{where} lacks {key!r}")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CheckpointError(f"{where}: {key!r} should be {kind.__name__}, got {json.dumps(value)[:80]}")
    if kind is float and not math.isfinite(value):
        raise CheckpointError(f"{where}: {key!r} is {value}; write a finite number")
    if kind is str and not value.strip():
        raise CheckpointError(f"{where}: {key!r} is empty")
    return value


def _list(data: dict, key: str, where: str) -> list:
    return _field(data, key, list, where)


def read_training_record(folder: str | Path) -> TrainingRecord | None:
    """The checkpoint's `training_record.json`, or None when it has none.

    Raises:
        CheckpointError: the file exists but does not follow `TrainingRecord`.
    """
    path = Path(folder) / TRAINING_RECORD
    if not path.is_file():
        return None
    data, where = _read_json(path), str(path)
    datasets = tuple(
        DatasetUse(
            name=_field(item, "name", str, f"{where} datasets[{i}]"),
            licence=_field(item, "licence", str, f"{where} datasets[{i}]"),
            images=_field(item, "images", int, f"{where} datasets[{i}]"),
            hub_id=_field(item, "hub_id", str, f"{where} datasets[{i}]", optional=True),
        )
        for i, item in enumerate(_list(data, "datasets", where))
    )
    base_models = tuple(
        BaseModel(
            name=_field(item, "name", str, f"{where} base_models[{i}]"),
            licence=_field(item, "licence", str, f"{where} base_models[{i}]"),
            hub_id=_field(item, "hub_id", str, f"{where} base_models[{i}]", optional=True),
        )
        for i, item in enumerate(_list(data, "base_models", where))
    )
    steps = _field(data, "steps", int, where)
    if steps < 0:
        raise CheckpointError(f"{where}: 'steps' is negative")
    notes = _field(data, "notes", list, where, optional=True) or []
    for i, note in enumerate(notes):
        if not isinstance(note, str) or not note.strip():
            raise CheckpointError(f"{where}: notes[{i}] should be a non-empty string, got {json.dumps(note)[:80]}")
    return TrainingRecord(
        method=_field(data, "method", str, where),
        config=_field(data, "config", dict, where),
        steps=steps,
        hardware=_field(data, "hardware", str, where),
        wall_time_s=_field(data, "wall_time_s", float, where),
        datasets=datasets,
        base_models=base_models,
        notes=tuple(notes),
    )


def read_eval_results(folder: str | Path) -> EvalResults | None:
    """The checkpoint's `eval.json`, or None when it has not been evaluated.

    Raises:
        CheckpointError: the file exists but does not follow `EvalResults`.
    """
    path = Path(folder) / EVAL_RESULTS
    if not path.is_file():
        return None
    data, where = _read_json(path), str(path)
    numbers = [name for name in EvalRow.__dataclass_fields__ if name != "method"]
    rows = []
    for i, item in enumerate(_list(data, "rows", where)):
        row_where = f"{where} rows[{i}]"
        values = {name: _field(item, name, float, row_where) for name in numbers}
        rows.append(EvalRow(method=_field(item, "method", str, row_where), **values))
    if not rows:
        raise CheckpointError(f"{where} has no rows")
    pairs = _field(data, "pairs", int, where)
    if pairs <= 0:
        raise CheckpointError(f"{where}: 'pairs' must be positive")
    from fswap.evaluation import comparison_text

    comparisons = data.get("comparisons", []) if isinstance(data, dict) else []
    try:
        texts = tuple(comparison_text(item) for item in comparisons)
    except (TypeError, KeyError, IndexError, ValueError) as error:
        raise CheckpointError(f"{where}: 'comparisons' do not follow fswap eval's format ({error!r})") from error
    return EvalResults(
        command=_field(data, "command", str, where),
        rows=tuple(rows),
        recogniser=_field(data, "recogniser", str, where),
        pairs=pairs,
        comparisons=texts,
    )


# ------------------------------------------------------------------------------- checkpoints
@dataclass
class Checkpoint:
    """What a card needs to know about a checkpoint folder, read without torch."""

    folder: Path
    index: dict
    components: dict[str, dict]  # name -> {"class", "config", "files", "parameters"}
    training: TrainingRecord | None
    evaluation: EvalResults | None
    files: dict[str, Path] = field(default_factory=dict)  # path in repo -> local file


def _safetensors_parameters(path: Path) -> int:
    """Number of weights in a safetensors file, from its JSON header alone."""
    with path.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if not 0 < length < 100_000_000:
            raise CheckpointError(f"{path} is not a safetensors file")
        header = json.loads(handle.read(length))
    return sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")


def read_checkpoint(folder: str | Path) -> Checkpoint:
    """Check that `folder` is an fswap checkpoint and list the files a Hub repo of it carries.

    Only `model_index.json`, the training record, the evaluation and each component's
    `config.json` + safetensors / ONNX files are published; anything else in the folder
    (optimizer states, notes, the contact sheet, the evaluation's per-pair results) stays local.

    Raises:
        ModelNotFoundError: the folder or its `model_index.json` is missing.
        CheckpointError: a component is incomplete, a pickle is present, or a JSON file is malformed.
    """
    folder = Path(folder)
    if not (folder / MODEL_INDEX).is_file():
        raise ModelNotFoundError(f"{folder} has no {MODEL_INDEX}; is it an fswap checkpoint (save_pretrained)?")
    index = _read_json(folder / MODEL_INDEX)
    if not isinstance(index, dict) or index.get("_class_name") != "FaceSwapPipeline":
        raise CheckpointError(f"{folder / MODEL_INDEX} does not describe a FaceSwapPipeline")
    files = {MODEL_INDEX: folder / MODEL_INDEX}
    components = {}
    for name, value in index.items():
        if name.startswith("_") or not (isinstance(value, list) and len(value) == 2):
            continue
        component = folder / name
        pickles = sorted(p.name for p in component.glob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(f"{component} holds pickles {pickles}: fswap checkpoints carry only safetensors and ONNX")
        weights = sorted(p for p in component.glob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
        config_path = component / "config.json"
        if not config_path.is_file() or not weights:
            raise CheckpointError(f"component {name} in {folder} needs config.json and its safetensors or ONNX files")
        config = _read_json(config_path)
        parameters = sum(_safetensors_parameters(p) for p in weights if p.suffix == ".safetensors")
        components[name] = {"class": value[1], "config": config, "files": [p.name for p in weights],
                            "parameters": parameters}
        files[f"{name}/config.json"] = config_path
        files |= {f"{name}/{p.name}": p for p in weights}
    if not components:
        raise CheckpointError(f"{folder / MODEL_INDEX} names no components")
    training, evaluation = read_training_record(folder), read_eval_results(folder)
    files |= {name: folder / name for name in (TRAINING_RECORD, EVAL_RESULTS) if (folder / name).is_file()}
    return Checkpoint(folder, index, components, training, evaluation, files)


# ------------------------------------------------------------------------------- licences
@dataclass(frozen=True)
class LicenceTerm:
    subject: str  # what the terms apply to
    terms: str

    @property
    def non_commercial(self) -> bool:
        return bool(re.search(r"non-?commercial", self.terms, re.IGNORECASE))


def licence_terms(checkpoint: Checkpoint) -> list[LicenceTerm]:
    """Every licence the checkpoint inherits: the face models' config, then the training record."""
    terms = []
    analyzer = checkpoint.components.get("face_analyzer", {})
    if isinstance(analyzer.get("config"), dict) and analyzer["config"].get("licence"):
        files = ", ".join(analyzer["files"])
        terms.append(LicenceTerm(f"face_analyzer ({files})", str(analyzer["config"]["licence"])))
    if checkpoint.training is not None:
        terms += [LicenceTerm(f"base model: {m.name}", m.licence) for m in checkpoint.training.base_models]
        terms += [LicenceTerm(f"training data: {d.name}", d.licence) for d in checkpoint.training.datasets]
    # The same weights often appear as a component and as a base model: one line per set of terms.
    subjects: dict[str, list[str]] = {}
    for term in terms:
        subjects.setdefault(term.terms, []).append(term.subject)
    return [LicenceTerm("; ".join(names), text) for text, names in subjects.items()]


def licence_metadata(terms: list[LicenceTerm], link: str = LICENCE_NAME) -> dict[str, str]:
    """The card's `license` fields: the code's licence alone when nothing is inherited, else "other"."""
    if not terms:
        return {"license": CODE_LICENCE.lower()}
    name = "noncommercial-research-only" if any(t.non_commercial for t in terms) else "inherited-terms"
    return {"license": "other", "license_name": name, "license_link": link}


# ------------------------------------------------------------------------------- rendering
def _environment():
    import jinja2

    if not HUB_CARDS_DIR.is_dir():
        raise FswapError(f"card templates not found at {HUB_CARDS_DIR}: publish from an fswap source checkout")
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


def render_model_card(folder: str | Path, *, repo_id: str | None = None, revision: str | None = None) -> str:
    """The checkpoint's `README.md`: Hub metadata and the card body, from `hub_cards/model_card.md.j2`.

    Args:
        folder: an fswap checkpoint folder (`save_pretrained`).
        repo_id: the Hub repo it is published as; shown in the usage snippet (default: the folder).
        revision: the branch it is published on; shown in the snippet when not "main".
    """
    return _render_model_card(read_checkpoint(folder), repo_id, revision)


def render_licence(folder: str | Path) -> str:
    """The checkpoint's `LICENSE.md`: fswap's code licence and every term the weights inherit."""
    return _render_licence(read_checkpoint(folder))


def _render_model_card(checkpoint: Checkpoint, repo_id: str | None, revision: str | None) -> str:
    return _environment().get_template("model_card.md.j2").render(**_model_context(checkpoint, repo_id, revision))


def _render_licence(checkpoint: Checkpoint) -> str:
    terms = licence_terms(checkpoint)
    return _environment().get_template("licence.md.j2").render(
        code_licence=CODE_LICENCE, licence_terms=terms, licence=licence_metadata(terms)
    )


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
    upload[CARD_NAME] = _render_model_card(checkpoint, repo_id, revision).encode()
    upload[LICENCE_NAME] = _render_licence(checkpoint).encode()
    return upload


def eval_summary(folder: str | Path) -> bytes:
    """The checkpoint's `eval.json` as the Hub gets it: the command, the rows and the comparisons
    the card shows, without the per-pair results (`EVAL_PAIR_KEYS`), which are for re-analysis
    (`fswap.evaluation.read_pair_results`) and stay with the checkpoint."""
    data = _read_json(Path(folder) / EVAL_RESULTS)
    summary = {key: value for key, value in data.items() if key not in EVAL_PAIR_KEYS}
    return (json.dumps(summary, indent=2) + "\n").encode()


def write_model_card(folder: str | Path, *, repo_id: str | None = None) -> Path:
    """Write `README.md` and `LICENSE.md` into the checkpoint folder (what `push_model` uploads)."""
    folder, checkpoint = Path(folder), read_checkpoint(folder)
    (folder / CARD_NAME).write_text(_render_model_card(checkpoint, repo_id, None), encoding="utf-8")
    (folder / LICENCE_NAME).write_text(_render_licence(checkpoint), encoding="utf-8")
    return folder / CARD_NAME


# ------------------------------------------------------------------------------- the Space
def _front_matter(text: str, where: str) -> tuple[dict, str]:
    """(metadata, body) of a Markdown file with an optional YAML block."""
    import yaml

    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(?:\n|$)", text, re.DOTALL)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise FswapError(f"the YAML block of {where} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise FswapError(f"the YAML block of {where} must be a mapping")
    return data, text[match.end():]


def _space_checkpoint(root: Path, model: str | Path | None) -> Path | None:
    """The checkpoint folder to embed in the Space, or None when the Space loads a Hub model."""
    if model is None:
        default = root / SPACE_CHECKPOINT_DIR
        if not (default / MODEL_INDEX).is_file():
            raise ModelNotFoundError(
                f"no model for the Space: pass a Hub repo id or a checkpoint folder as the model, "
                f"or create the default checkpoint {default}"
            )
        return default
    if Path(model).is_dir():
        return Path(model)
    if is_hub_repo_id(str(model)):
        return None
    raise ModelNotFoundError(f"model {model} is neither a checkpoint folder nor a Hub repo id 'org/name'")


def _walk(folder: Path, *, skip: tuple[str, ...] = ()) -> list[Path]:
    """Files under `folder`, without caches, hidden files or the sub-folders named in `skip`."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if (
            not path.is_file()
            or any(part.startswith(".") or part in SKIPPED_NAMES or part.endswith(".egg-info") for part in parts)
            or path.suffix == ".pyc"
            or any(path.relative_to(folder).as_posix().startswith(prefix + "/") for prefix in skip)
        ):
            continue
        found.append(path)
    return found


def render_space_card(
    root: str | Path = PROJECT_ROOT,
    *,
    repo_id: str,
    model: str | Path | None = None,
    model_metadata: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
) -> str:
    """The Space's `README.md` from `hub_cards/space_card.md.j2`.

    The Space settings come from `space/README.md`'s YAML block when it has one (sdk_version,
    emoji, ...), with defaults for the rest; the licence comes from the model: the embedded
    checkpoint's files, or `model_metadata` (the Hub model card's metadata) for a Hub model,
    linked on `endpoint` (default: huggingface_hub's, i.e. HF_ENDPOINT or huggingface.co).
    """
    from huggingface_hub import constants

    root, endpoint = Path(root), (endpoint or constants.ENDPOINT).rstrip("/")
    readme = root / "space" / CARD_NAME
    settings, extra_body = _front_matter(readme.read_text(encoding="utf-8"), str(readme)) if readme.is_file() else ({}, "")
    checkpoint_folder = _space_checkpoint(root, model)
    if checkpoint_folder is not None:
        checkpoint = read_checkpoint(checkpoint_folder)
        terms = licence_terms(checkpoint)
        licence = licence_metadata(terms, f"{SPACE_CHECKPOINT_DIR}/{LICENCE_NAME}")
        model_name, model_link = None, f"{SPACE_CHECKPOINT_DIR}/{CARD_NAME}"
    else:
        terms, model_name = [], str(model)
        model_link = f"{endpoint}/{model_name}"
        given = dict(model_metadata or {})
        licence = {key: given[key] for key in ("license", "license_name", "license_link") if key in given}
        licence.setdefault("license", "unknown")
        link = licence.get("license_link")
        if link and not re.match(r"https?://", link):
            licence["license_link"] = f"{model_link}/blob/main/{link}"
    metadata = {
        "title": "fswap",
        "emoji": "🎭",
        "colorFrom": "indigo",
        "colorTo": "gray",
        "sdk": "gradio",
        "app_file": "app.py",
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "short_description": "Occlusion-aware face swapping with explainable control masks",
    }
    with contextlib.suppress(package_metadata.PackageNotFoundError):
        metadata["sdk_version"] = package_metadata.version("gradio")
    metadata |= settings
    metadata |= licence
    metadata["tags"] = sorted({*metadata.get("tags", []), "fswap", "face-swap", "image-to-image"})
    if model_name:
        metadata["models"] = [model_name]
    return _environment().get_template("space_card.md.j2").render(
        metadata=metadata, space_url=f"{endpoint}/spaces/{repo_id}", model_name=model_name, model_link=model_link,
        licence_terms=terms, code_licence=CODE_LICENCE, extra_body=extra_body.strip(),
        model_variable=SPACE_MODEL_VARIABLE, fswap_version=__version__,
    )


def space_upload(
    root: str | Path = PROJECT_ROOT,
    *,
    repo_id: str,
    model: str | Path | None = None,
    model_metadata: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
) -> dict[str, Path | bytes]:
    """Every file of the Space (path in the Space -> local file or content). No network.

    - `app.py` and `space/`, the app's package, as they are in the checkout, except
      `space/README.md` (its YAML block lends the Space settings to the rendered card) and
      `space/requirements.txt` / `space/packages.txt`, which a Space reads from its root;
    - `requirements.txt` and `packages.txt` from `space/`, else from the checkout's root;
    - the `fswap` package without `fswap/training/` (the library never imports training code);
    - `README.md`, the Space card (`render_space_card`; `endpoint` is where its Hub links point);
    - the checkpoint under `checkpoints/fswap-default/` with its cards, unless `model` is a Hub
      repo id (then the Space reads it from the `FSWAP_MODEL` variable `push_space` sets).

    Caches, hidden files and `*.egg-info` are left out everywhere.

    Raises:
        FswapError: `app.py` or the requirements are missing.
        ModelNotFoundError / CheckpointError: no usable model to serve.
    """
    root = Path(root)
    if not (root / "app.py").is_file():
        raise FswapError(f"{root / 'app.py'} not found: a Space needs the app")
    upload: dict[str, Path | bytes] = {"app.py": root / "app.py"}
    space = root / "space"
    if space.is_dir():
        for path in _walk(space):
            name = path.relative_to(space).as_posix()
            if name in SPACE_ROOT_FILES:
                upload[name] = path
            elif name != CARD_NAME:
                upload[f"space/{name}"] = path
    for name in SPACE_ROOT_FILES:
        if name not in upload and (root / name).is_file():
            upload[name] = root / name
    if "requirements.txt" not in upload:
        raise FswapError(f"no requirements.txt in {space} or {root}: a Space installs its dependencies from it")
    for path in _walk(root / "fswap", skip=("training",)):
        upload[f"fswap/{path.relative_to(root / 'fswap').as_posix()}"] = path
    checkpoint_folder = _space_checkpoint(root, model)
    if checkpoint_folder is not None:
        upload |= {f"{SPACE_CHECKPOINT_DIR}/{name}": source for name, source in model_upload(checkpoint_folder).items()}
    card = render_space_card(root, repo_id=repo_id, model=model, model_metadata=model_metadata, endpoint=endpoint)
    upload[CARD_NAME] = card.encode()
    return upload


# ------------------------------------------------------------------------------- pushing
def _commit_operations(api, repo_id: str, repo_type: str, revision: str, upload: Mapping[str, Path | bytes]):
    """Add every file of `upload`; delete what the revision holds beyond it (except `.gitattributes`),
    so that the revision is exactly the upload and no stale card, weight or evaluation survives."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    existing = api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
    deletions = [CommitOperationDelete(path) for path in existing if path not in upload and path != ".gitattributes"]
    additions = [
        CommitOperationAdd(path, content if isinstance(content, bytes) else str(content))
        for path, content in sorted(upload.items())
    ]
    return deletions + additions


@contextlib.contextmanager
def _hub_refusals(action: str):
    """The Hub's HTTP refusals as one-line fswap errors, with what to do about a missing login."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "no answer"
        hint = ""
        if status in (401, 403):
            hint = " (log in with `hf auth login` or set HF_TOKEN to a token with write access to this namespace)"
        reason = str(error).strip().splitlines()[0]
        raise FswapError(f"the Hub refused to {action}: {reason}{hint}") from error


def _prepare_revision(api, repo_id: str, repo_type: str, revision: str | None) -> str:
    if revision is None or revision == "main":
        return "main"
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        raise FswapError(f"revision {revision} is a commit; push to a branch name (e.g. 'v2')")
    api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    return revision


def push_model(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Publish a checkpoint folder as the Hub model `repo_id`, with its rendered card and licence.

    Creates the repo (and the branch `revision`, from main) when needed; after the commit the
    revision holds exactly the checkpoint's files (see `read_checkpoint`), `README.md` and
    `LICENSE.md`.

    Args:
        folder: an fswap checkpoint (`FaceSwapPipeline.save_pretrained`).
        repo_id: "org/name".
        private: create the repo private (an existing repo keeps its visibility).
        revision: the branch to commit to (default "main").
        commit_message: default "Upload fswap checkpoint <folder name>".
        token: for Python callers only; default huggingface_hub's (HF_TOKEN or `hf auth login`).

    Returns:
        huggingface_hub's `CommitInfo` (`.oid` is the commit to pin, `.commit_url`).
    """
    folder = Path(folder)
    upload = model_upload(folder, repo_id=repo_id, revision=revision)  # validates before any network call
    message = commit_message or f"Upload fswap checkpoint {folder.resolve().name}"
    return _publish_model_repo(upload, repo_id, private, revision, message, token)


def push_detector(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Publish a swap-detector checkpoint (`fswap.detection`) as the Hub model `repo_id`.

    The revision then holds exactly its config, weights, training record, evaluation and
    training history (`fswap.detection.detector_upload`), with the rendered card and licence;
    `fswap.detection.load_detector(repo_id)` loads it back. Arguments as in `push_model`.
    """
    from fswap.detection import detector_upload

    folder = Path(folder)
    upload = detector_upload(folder, repo_id=repo_id)  # validates before any network call
    message = commit_message or f"Upload fswap swap detector {folder.resolve().name}"
    return _publish_model_repo(upload, repo_id, private, revision, message, token)


def _publish_model_repo(
    upload: Mapping[str, Path | bytes], repo_id: str, private: bool, revision: str | None, message: str, token: str | None
) -> CommitInfo:
    """Create the model repo (and branch) if needed and commit so that the revision is exactly `upload`."""
    from huggingface_hub import HfApi

    api = HfApi(token=token, library_name="fswap", library_version=__version__)
    with _hub_refusals(f"publish {repo_id}"):
        api.create_repo(repo_id, private=private, exist_ok=True)
        branch = _prepare_revision(api, repo_id, "model", revision)
        operations = _commit_operations(api, repo_id, "model", branch, upload)
        return api.create_commit(
            repo_id, operations, revision=branch, commit_message=message,
            commit_description=f"Pushed with fswap {__version__}.",
        )


def push_pipeline(
    pipeline: FaceSwapPipeline,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """`save_pretrained` into a temporary folder, then `push_model` (what `push_to_hub` does)."""
    with tempfile.TemporaryDirectory(prefix="fswap-push-") as tmp:
        folder = pipeline.save_pretrained(Path(tmp) / repo_id.split("/")[-1])
        return push_model(folder, repo_id, private=private, revision=revision, commit_message=commit_message, token=token)


def push_space(
    repo_id: str,
    *,
    model: str | Path | None = None,
    root: str | Path | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Publish the Gradio app as the Hub Space `repo_id` (the files of `space_upload`).

    Args:
        repo_id: "org/name" of the Space.
        model: a Hub model id (the Space loads it through its `FSWAP_MODEL` variable), a
            checkpoint folder (embedded), or None for the default checkpoint (embedded).
        root: the fswap source checkout (default: the one this module lives in).
        private: create the Space private.
        commit_message: default "Upload the fswap app".
        token: for Python callers only; default huggingface_hub's (HF_TOKEN or `hf auth login`).

    Returns:
        huggingface_hub's `CommitInfo`. The Space's main branch then holds exactly the upload.
    """
    from huggingface_hub import HfApi

    root = Path(root) if root is not None else PROJECT_ROOT
    api = HfApi(token=token, library_name="fswap", library_version=__version__)
    hub_model = _space_checkpoint(root, model) is None
    model_metadata = _hub_card_metadata(api, str(model)) if hub_model else None
    upload = space_upload(root, repo_id=repo_id, model=model, model_metadata=model_metadata, endpoint=api.endpoint)
    with _hub_refusals(f"publish the Space {repo_id}"):
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        if hub_model:
            api.add_space_variable(repo_id, SPACE_MODEL_VARIABLE, str(model), description="the fswap checkpoint the app loads")
        elif SPACE_MODEL_VARIABLE in api.get_space_variables(repo_id):
            # Left from an earlier push of a Hub model, it would win over the embedded checkpoint.
            api.delete_space_variable(repo_id, SPACE_MODEL_VARIABLE)
        operations = _commit_operations(api, repo_id, "space", "main", upload)
        return api.create_commit(
            repo_id, operations, repo_type="space", commit_message=commit_message or "Upload the fswap app",
            commit_description=f"Pushed with fswap {__version__}.",
        )


def _hub_card_metadata(api, model: str) -> dict:
    """The YAML metadata of a Hub model's card (its licence goes into the Space card)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    try:
        api.model_info(model)
    except RepositoryNotFoundError as error:
        raise ModelNotFoundError(f"Hub model {model} not found (or private and not yours)") from error
    try:
        card = Path(hf_hub_download(model, CARD_NAME, token=api.token, endpoint=api.endpoint))
    except EntryNotFoundError:
        return {}
    except HfHubHTTPError as error:
        raise ModelNotFoundError(f"cannot read the card of {model}: {error}") from error
    return _front_matter(card.read_text(encoding="utf-8"), f"the card of {model}")[0]
