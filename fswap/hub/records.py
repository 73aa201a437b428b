"""The two records a checkpoint carries beside its weights, read strictly.

`training_record.json` is written by the training scripts, `eval.json` by `fswap eval`; the
cards are filled from them (`fswap.hub.cards`). Both are a contract with the code that writes
them: `TrainingRecord` and `EvalResults` below. A malformed file is a `CheckpointError` that
names the field, never a card with holes in it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fswap.errors import CheckpointError

TRAINING_RECORD = "training_record.json"
EVAL_RESULTS = "eval.json"
#: What of `eval.json` stays home: the per-pair results, inline (older files) or in the file named.
EVAL_PAIR_KEYS = ("results", "results_file")


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
    #: How sure each difference between two methods is, in words (`comparison_text`).
    comparisons: tuple[str, ...] = ()


def read_json(path: str | Path) -> Any:
    """The JSON in a checkpoint's file; `CheckpointError` when it is not JSON."""
    path = Path(path)
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
    data, where = read_json(path), str(path)
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
    data, where = read_json(path), str(path)
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


def comparison_text(comparison: dict) -> str:
    """One comparison of `eval.json` (`fswap.evaluation.paired_comparison`) in a sentence or
    three, for the console, the README and the card."""
    identity, pose = comparison["identity_similarity_difference"], comparison["pose_error_deg_difference"]
    return (
        f"{comparison['method']} vs {comparison['reference']} on {comparison['pairs']} pairs "
        f"({comparison['sources']} source photos): top-1 right only for {comparison['method']} in "
        f"{comparison['top1_only_method']} pairs, only for {comparison['reference']} in "
        f"{comparison['top1_only_reference']} (McNemar {_p_text(comparison['top1_mcnemar_p'])}); identity similarity "
        f"{identity['mean']:+.3f} (95 % CI {identity['ci95'][0]:+.3f} to {identity['ci95'][1]:+.3f}); pose error "
        f"{pose['mean']:+.2f}° ({pose['ci95'][0]:+.2f} to {pose['ci95'][1]:+.2f})."
    )


def _p_text(p_value: float) -> str:
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.2g}"


def eval_summary(folder: str | Path) -> bytes:
    """The checkpoint's `eval.json` as the Hub gets it: the command, the rows and the comparisons
    the card shows, without the per-pair results (`EVAL_PAIR_KEYS`), which are for re-analysis
    (`fswap.evaluation.read_pair_results`) and stay with the checkpoint."""
    data = read_json(Path(folder) / EVAL_RESULTS)
    summary = {key: value for key, value in data.items() if key not in EVAL_PAIR_KEYS}
    return (json.dumps(summary, indent=2) + "\n").encode()
