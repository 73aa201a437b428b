"""The Gradio app as a Hub Space: which files it holds and its card. No network here but
`hub_model_metadata`, which reads a Hub model's card for its licence."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Mapping
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from fswap.assets import is_hub_repo_id
from fswap.errors import FswapError, ModelNotFoundError
from fswap.hub.cards import CARD_NAME, PROJECT_ROOT, card_environment, model_upload
from fswap.hub.checkpoints import (
    CODE_LICENCE,
    LICENCE_NAME,
    MODEL_INDEX,
    licence_metadata,
    licence_terms,
    read_checkpoint,
)
from fswap.version import __version__

#: Where a Space looks for its model (read by `fswap.assets.default_model`).
SPACE_MODEL_VARIABLE = "FSWAP_MODEL"
#: Where a checkpoint embedded in a Space goes: `fswap.assets.DEFAULT_CHECKPOINT` relative to the root.
SPACE_CHECKPOINT_DIR = "checkpoints/fswap-default"
SKIPPED_NAMES = ("__pycache__", ".DS_Store")
#: Files a Space reads from its root that live in `space/` in the checkout.
SPACE_ROOT_FILES = ("requirements.txt", "packages.txt")


def front_matter(text: str, where: str) -> tuple[dict, str]:
    """(metadata, body) of a Markdown file with an optional YAML block; `where` names it in errors."""
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


def space_checkpoint(root: str | Path, model: str | Path | None) -> Path | None:
    """The checkpoint folder to embed in the Space, or None when the Space loads the Hub model `model`.

    Raises:
        ModelNotFoundError: no model given and no default checkpoint under `root`, or `model` is
            neither a folder nor a Hub repo id.
    """
    if model is None:
        default = Path(root) / SPACE_CHECKPOINT_DIR
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
    settings, extra_body = front_matter(readme.read_text(encoding="utf-8"), str(readme)) if readme.is_file() else ({}, "")
    checkpoint_folder = space_checkpoint(root, model)
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
    return card_environment().get_template("space_card.md.j2").render(
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
    checkpoint_folder = space_checkpoint(root, model)
    if checkpoint_folder is not None:
        upload |= {f"{SPACE_CHECKPOINT_DIR}/{name}": source for name, source in model_upload(checkpoint_folder).items()}
    card = render_space_card(root, repo_id=repo_id, model=model, model_metadata=model_metadata, endpoint=endpoint)
    upload[CARD_NAME] = card.encode()
    return upload


def hub_model_metadata(api, model: str) -> dict:
    """The YAML metadata of the Hub model `model`'s card (its licence goes into the Space card),
    read through `api` (a `huggingface_hub.HfApi`); {} when the model has no card.

    Raises:
        ModelNotFoundError: the model does not exist, is private to someone else, or its card
            cannot be read.
    """
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
    return front_matter(card.read_text(encoding="utf-8"), f"the card of {model}")[0]
