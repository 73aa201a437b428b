"""Strict loading of fswap networks: `config.json` + safetensors, every key and shape accounted for.

`ModelMixin.from_pretrained` in diffusers 0.42.1 is lenient where fswap must not be:

- a key missing from the checkpoint is only logged, and with the default
  `low_cpu_mem_usage=True` the parameter is left on the `meta` device (the model fails later,
  far from the cause);
- an unexpected key is only logged;
- a wrong shape raises `ValueError` (or `RuntimeError` with `low_cpu_mem_usage=False`);
- unknown `config.json` entries are logged and ignored, and `_class_name` is never checked, so
  a generator folder "loads" as a segmenter until a config check happens to fail.

`load_component` turns each of these into a `CheckpointError` that names the keys, and checks
the weights against the `SHA256SUMS` that `HashedWeightsMixin.save_pretrained` writes beside them
(`fswap.checkpoint_files`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TypeVar

from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import logging as diffusers_logging

from fswap.assets import is_hub_repo_id
from fswap.checkpoint_files import check_hashes, write_hashes
from fswap.errors import CheckpointError, ModelNotFoundError

ModelT = TypeVar("ModelT", bound=ModelMixin)

_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


class HashedWeightsMixin:
    """For fswap's networks (before `ModelMixin` in the bases): `save_pretrained` writes safetensors
    only, and `SHA256SUMS` with the weights' hash, which `load_component` checks."""

    def save_pretrained(self, save_directory, **kwargs):
        kwargs["safe_serialization"] = True
        super().save_pretrained(save_directory, **kwargs)
        if kwargs.get("is_main_process", True):
            write_hashes(save_directory)


def _list_keys(keys, limit: int = 10) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_component(cls: type[ModelT], folder: str | Path, subfolder: str | None = None, **kwargs) -> ModelT:
    """Load `cls` from `folder` (a local folder or a Hub id) with safetensors only, strictly.

    Args:
        cls: the model class, e.g. `Generator`.
        folder: a folder holding `config.json` and `diffusion_pytorch_model.safetensors`, or a Hub repo id.
        subfolder: the component's folder inside `folder` (e.g. "generator").
        **kwargs: passed to `from_pretrained` (`torch_dtype`, `revision`, ...).

    Raises:
        ModelNotFoundError: the config or the safetensors file is not there.
        CheckpointError: the checkpoint belongs to another class, has config entries the class
            does not take, or its weights have missing, unexpected or wrongly shaped keys.
    """
    location = str(Path(folder) / subfolder) if subfolder else str(folder)
    local = Path(location)
    if not Path(folder).exists() and not is_hub_repo_id(str(folder)):
        raise ModelNotFoundError(f"{cls.__name__} checkpoint {folder}: no such folder (and not a Hub repo id 'org/name')")
    if Path(folder).exists():
        for name in ("config.json", _WEIGHTS_NAME):
            if not (local / name).is_file():
                raise ModelNotFoundError(f"{cls.__name__} checkpoint {location} has no {name}")
        check_hashes(local)

    try:
        config = cls.load_config(folder, subfolder=subfolder, **kwargs)
    except OSError as err:
        raise ModelNotFoundError(f"cannot read the {cls.__name__} config at {location}: {err}") from err
    except ValueError as err:  # diffusers' EnvironmentError-or-ValueError for a config that is not JSON
        raise CheckpointError(f"the {cls.__name__} config at {location} is not valid JSON: {err}") from err
    if config.get("_class_name", cls.__name__) != cls.__name__:
        raise CheckpointError(f"{location} holds a {config['_class_name']}, not a {cls.__name__}")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = {key for key in config if not key.startswith("_")} - accepted
    if unknown:
        raise CheckpointError(
            f"{location}/config.json has entries {cls.__name__} does not take: {_list_keys(unknown)} "
            "(written by another fswap version?)"
        )

    # diffusers logs what we turn into errors below, plus noise about fp32 modules: keep it quiet.
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        model, info = cls.from_pretrained(
            str(folder), subfolder=subfolder, use_safetensors=True, output_loading_info=True, **kwargs
        )
    except OSError as err:
        raise ModelNotFoundError(f"cannot load {cls.__name__} weights from {location}: {err}") from err
    except (ValueError, RuntimeError) as err:
        # Wrong shapes, or a config that the constructor rejects.
        raise CheckpointError(f"{location} does not fit {cls.__name__}: {err}") from err
    finally:
        diffusers_logging.set_verbosity(verbosity)

    problems = []
    if info["missing_keys"]:
        problems.append(f"missing keys: {_list_keys(info['missing_keys'])}")
    if info["unexpected_keys"]:
        problems.append(f"unexpected keys: {_list_keys(info['unexpected_keys'])}")
    if info["mismatched_keys"]:
        mismatched = [
            f"{key} (file {tuple(found)}, model {tuple(wanted)})"
            for key, found, wanted in info["mismatched_keys"]
        ]
        problems.append(f"wrong shapes: {_list_keys(mismatched)}")
    if problems:
        raise CheckpointError(
            f"{location}/{_WEIGHTS_NAME} does not match {cls.__name__}: " + "; ".join(problems)
        )
    return model
