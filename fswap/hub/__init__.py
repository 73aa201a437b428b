"""fswap on the Hugging Face Hub: the records a checkpoint carries, its cards, the Space, pushing.

    fswap push model checkpoints/fswap-default me/fswap           # push_model(folder, repo_id)
    fswap push space me/fswap-demo --model me/fswap                # push_space(repo_id, model=...)
    pipeline.push_to_hub("me/fswap", revision="v2")               # PushToHubMixin

One module per job, each importing only those above it in this list:

- `records`: `training_record.json` and `eval.json`, the contract with training and `fswap eval`;
- `checkpoints`: what a checkpoint folder holds and the licence terms its weights inherit;
- `cards`: model and detector cards from `hub_cards/`, and the files each Hub repo holds;
- `space`: the files and the card of the Gradio Space;
- `push`: the commits to the Hub and `PushToHubMixin`.

None of them imports torch, the pipeline or the training code; every public name is here too.
"""

from fswap.hub.cards import (
    CARD_NAME,
    DETECTOR_FILES,
    HUB_CARDS_DIR,
    PROJECT_ROOT,
    card_environment,
    detector_cards,
    detector_mask_size,
    detector_upload,
    model_upload,
    render_detector_card,
    render_licence,
    render_model_card,
    write_detector_cards,
    write_model_card,
)
from fswap.hub.checkpoints import (
    CODE_LICENCE,
    LICENCE_NAME,
    MODEL_INDEX,
    PICKLE_SUFFIXES,
    WEIGHT_SUFFIXES,
    Checkpoint,
    LicenceTerm,
    licence_metadata,
    licence_terms,
    read_checkpoint,
    record_licence_terms,
    safetensors_parameters,
)
from fswap.hub.push import (
    PushToHubMixin,
    push_checkpoint,
    push_detector,
    push_model,
    push_pipeline,
    push_space,
)
from fswap.hub.records import (
    EVAL_PAIR_KEYS,
    EVAL_RESULTS,
    TRAINING_RECORD,
    BaseModel,
    DatasetUse,
    EvalResults,
    EvalRow,
    TrainingRecord,
    comparison_text,
    eval_summary,
    read_eval_results,
    read_json,
    read_training_record,
)
from fswap.hub.space import (
    SKIPPED_NAMES,
    SPACE_CHECKPOINT_DIR,
    SPACE_MODEL_VARIABLE,
    SPACE_ROOT_FILES,
    front_matter,
    hub_model_metadata,
    render_space_card,
    space_checkpoint,
    space_upload,
)

__all__ = [
    "BaseModel",
    "CARD_NAME",
    "CODE_LICENCE",
    "Checkpoint",
    "DETECTOR_FILES",
    "DatasetUse",
    "EVAL_PAIR_KEYS",
    "EVAL_RESULTS",
    "EvalResults",
    "EvalRow",
    "HUB_CARDS_DIR",
    "LICENCE_NAME",
    "LicenceTerm",
    "MODEL_INDEX",
    "PICKLE_SUFFIXES",
    "PROJECT_ROOT",
    "PushToHubMixin",
    "SKIPPED_NAMES",
    "SPACE_CHECKPOINT_DIR",
    "SPACE_MODEL_VARIABLE",
    "SPACE_ROOT_FILES",
    "TRAINING_RECORD",
    "TrainingRecord",
    "WEIGHT_SUFFIXES",
    "card_environment",
    "comparison_text",
    "detector_cards",
    "detector_mask_size",
    "detector_upload",
    "eval_summary",
    "front_matter",
    "hub_model_metadata",
    "licence_metadata",
    "licence_terms",
    "model_upload",
    "push_checkpoint",
    "push_detector",
    "push_model",
    "push_pipeline",
    "push_space",
    "read_checkpoint",
    "read_eval_results",
    "read_json",
    "read_training_record",
    "record_licence_terms",
    "render_detector_card",
    "render_licence",
    "render_model_card",
    "render_space_card",
    "safetensors_parameters",
    "space_checkpoint",
    "space_upload",
    "write_detector_cards",
    "write_model_card",
]
