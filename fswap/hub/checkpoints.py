"""What a checkpoint folder holds, read without torch: its components, its records, the files a Hub
repo of it carries, and the licence terms its weights inherit."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from fswap.errors import CheckpointError, ModelNotFoundError
from fswap.hub.records import (
    EVAL_RESULTS,
    TRAINING_RECORD,
    EvalResults,
    TrainingRecord,
    read_eval_results,
    read_json,
    read_training_record,
)

MODEL_INDEX = "model_index.json"
WEIGHT_SUFFIXES = (".safetensors", ".onnx")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
LICENCE_NAME = "LICENSE.md"
#: The licence of fswap's own code; the weights add the terms they inherit (see `licence_terms`).
CODE_LICENCE = "Apache-2.0"


@dataclass
class Checkpoint:
    """What a card needs to know about a checkpoint folder, read without torch."""

    folder: Path
    index: dict
    components: dict[str, dict]  # name -> {"class", "config", "files", "parameters"}
    training: TrainingRecord | None
    evaluation: EvalResults | None
    files: dict[str, Path] = field(default_factory=dict)  # path in repo -> local file


def safetensors_parameters(path: str | Path) -> int:
    """Number of weights in a safetensors file, from its JSON header alone."""
    path = Path(path)
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
    index = read_json(folder / MODEL_INDEX)
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
        config = read_json(config_path)
        parameters = sum(safetensors_parameters(p) for p in weights if p.suffix == ".safetensors")
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


def record_licence_terms(training: TrainingRecord | dict | None) -> list[LicenceTerm]:
    """The terms of the base models and data sets a training record names, in that order.

    Takes the strict `TrainingRecord` or the record's JSON as a dict (a swap detector's record,
    which adds its own fields to the contract)."""
    if training is None:
        return []
    if isinstance(training, dict):
        models = [(m["name"], m["licence"]) for m in training["base_models"]]
        datasets = [(d["name"], d["licence"]) for d in training["datasets"]]
    else:
        models = [(m.name, m.licence) for m in training.base_models]
        datasets = [(d.name, d.licence) for d in training.datasets]
    return [LicenceTerm(f"base model: {name}", terms) for name, terms in models] + [
        LicenceTerm(f"training data: {name}", terms) for name, terms in datasets
    ]


def licence_terms(checkpoint: Checkpoint) -> list[LicenceTerm]:
    """Every licence the checkpoint inherits: the face models' config, then the training record."""
    terms = []
    analyzer = checkpoint.components.get("face_analyzer", {})
    if isinstance(analyzer.get("config"), dict) and analyzer["config"].get("licence"):
        files = ", ".join(analyzer["files"])
        terms.append(LicenceTerm(f"face_analyzer ({files})", str(analyzer["config"]["licence"])))
    terms += record_licence_terms(checkpoint.training)
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
