"""Publishing on the Hugging Face Hub: checkpoints, swap detectors and the Space, and the
`PushToHubMixin` that gives `push_to_hub` to the classes that save them.

    fswap push model checkpoints/fswap-default me/fswap           # push_model(folder, repo_id)
    fswap push detector checkpoints/fswap-detector me/detector     # push_detector(folder, repo_id)
    fswap push space me/fswap-demo --model me/fswap                # push_space(repo_id, model=...)
    pipeline.push_to_hub("me/fswap", revision="v2")               # PushToHubMixin.push_to_hub

Every push commits so that the revision holds exactly the upload (`fswap.hub.cards.model_upload`,
`detector_upload`, `fswap.hub.space.space_upload`): no stale card, weight or evaluation survives.

Tokens: only huggingface_hub's own resolution (`HF_TOKEN`, or `hf auth login`); the functions
take a `token=` for Python callers, and the CLI must not offer one (it would end up in shell
history and CI logs).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fswap.errors import FswapError
from fswap.hub.cards import PROJECT_ROOT, detector_upload, model_upload
from fswap.hub.checkpoints import MODEL_INDEX
from fswap.hub.space import SPACE_MODEL_VARIABLE, hub_model_metadata, space_checkpoint, space_upload
from fswap.version import __version__

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo

    from fswap.pipeline import FaceSwapPipeline


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
    revision holds exactly the checkpoint's files (see `fswap.hub.read_checkpoint`), `README.md`
    and `LICENSE.md`.

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
    """Publish a swap-detector checkpoint (`fswap.swap_detection`) as the Hub model `repo_id`.

    The revision then holds exactly its config, weights, training record, evaluation and
    training history (`fswap.hub.cards.detector_upload`), with the rendered card and licence;
    `fswap.swap_detection.load_detector(repo_id)` loads it back. Arguments as in `push_model`.
    """
    folder = Path(folder)
    upload = detector_upload(folder, repo_id=repo_id)  # validates before any network call
    message = commit_message or f"Upload fswap swap detector {folder.resolve().name}"
    return _publish_model_repo(upload, repo_id, private, revision, message, token)


def push_checkpoint(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """`push_model` for a face-swap checkpoint (it has `model_index.json`), else `push_detector`
    (which refuses anything but a `SwapDetector` folder). Arguments as in `push_model`."""
    push = push_model if (Path(folder) / MODEL_INDEX).is_file() else push_detector
    return push(folder, repo_id, private=private, revision=revision, commit_message=commit_message, token=token)


class PushToHubMixin:
    """`push_to_hub` for a class whose `save_pretrained(folder)` writes an fswap checkpoint: the
    `FaceSwapPipeline` or the `SwapDetector` (as diffusers' `PushToHubMixin` serves its models
    and pipelines).

    The object is saved into a temporary folder, and the folder published with `push_checkpoint`:
    the card and the licence are rendered from the saved files, and the revision then holds
    exactly that upload. List the mixin first among the bases, so that its `push_to_hub` wins
    over diffusers' `ModelMixin.push_to_hub` (which would upload without fswap's card and licence):

        class SwapDetector(PushToHubMixin, HashedWeightsMixin, ModelMixin, ConfigMixin): ...
    """

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        revision: str | None = None,
        commit_message: str | None = None,
        token: str | None = None,
    ) -> CommitInfo:
        """Save to a temporary folder and publish it as the Hub model `repo_id` with its rendered card.

        Args:
            repo_id: "org/name"; created when missing (`private` sets its visibility then).
            private: create the repo private (an existing repo keeps its visibility).
            revision: the branch to commit to, created from main when missing (default "main").
            commit_message: the commit's title (default "Upload fswap checkpoint <name>").
            token: for Python callers only; default huggingface_hub's (HF_TOKEN or `hf auth login`).

        Returns:
            huggingface_hub's `CommitInfo`; its `.oid` is the commit to pin with `from_pretrained(revision=)`.
        """
        with tempfile.TemporaryDirectory(prefix="fswap-push-") as tmp:
            folder = Path(tmp) / repo_id.split("/")[-1]
            self.save_pretrained(folder)
            return push_checkpoint(
                folder, repo_id, private=private, revision=revision, commit_message=commit_message, token=token
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
    """`PushToHubMixin.push_to_hub` for a pipeline that does not inherit the mixin."""
    return PushToHubMixin.push_to_hub(
        pipeline, repo_id, private=private, revision=revision, commit_message=commit_message, token=token
    )


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
    hub_model = space_checkpoint(root, model) is None
    model_metadata = hub_model_metadata(api, str(model)) if hub_model else None
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
