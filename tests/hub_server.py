"""A local stand-in for the Hugging Face Hub's HTTP API, so the real `huggingface_hub` client can
push and pull in tests. A test fixture, not a feature: in-memory, one process, gone at exit.

It speaks what `huggingface_hub` 2.4 sends for `create_repo`, `create_branch`, `create_commit`
/ `upload_folder` (the preupload call, the LFS batch API with basic transfer, the NDJSON commit),
`repo_info` / `model_info` / `space_info`, `list_repo_tree`, `list_repo_refs`, `whoami`,
`add_space_variable`, the README metadata check, and `hf_hub_download` / `snapshot_download`
(`/resolve/` with the ETag, X-Repo-Commit and X-Linked-* headers). It never advertises Xet;
the client must also run with HF_HUB_DISABLE_XET=1, or it uploads to a Xet CAS server that
is not here.

Like the Hub: repos start with a `.gitattributes` commit; private repos answer 401/404
"RepoNotFound" to anyone but their owner; writes need the namespace owner's token; regular
files are committed inline (base64) and binary, large or LFS-pattern files go through LFS.

    with HubServer() as hub:                      # 127.0.0.1, a free port, a background thread
        token = hub.add_user("alice")
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1"}

Not implemented: pull requests, tags, deletions of repos, Xet, multipart LFS, branch names
with "/", pagination (every listing fits one page).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MAX_BODY_BYTES = 256 * 1024 * 1024  # one request
MAX_STORED_BYTES = 1024 * 1024 * 1024  # everything the server holds
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub sends files this large through LFS whatever their name
REPO_KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle",
    "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tflite", "*.tgz", "*.wasm",
    "*.xz", "*.zip", "*.zst", "*tfevents*", "*.png", "*.jpg", "*.jpeg", "*.webp",
)
GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
KNOWN_LICENSES = {
    "apache-2.0", "mit", "openrail", "openrail++", "creativeml-openrail-m", "bsd-3-clause", "cc-by-4.0",
    "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "gpl-3.0", "agpl-3.0",
    "unknown", "other",
}
PIPELINE_TAGS = {"image-to-image", "image-classification", "image-segmentation", "object-detection",
                 "text-to-image", "image-feature-extraction", "unconditional-image-generation"}


# ---------------------------------------------------------------------------------------- state
def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class StoredFile:
    sha256: str  # key into HubState.blobs
    size: int
    lfs: bool
    git_oid: str

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    tree: dict[str, StoredFile]
    date: datetime


@dataclass
class Repo:
    kind: str  # model, dataset, space
    repo_id: str
    private: bool
    sdk: str | None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]


class HubError(Exception):
    """An error answered the way the Hub answers it (status, X-Error-Code, JSON body)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = body or {}


class HubState:
    def __init__(self):
        self.lock = threading.RLock()
        self.tokens: dict[str, str] = {}  # token -> user name
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> content
        self.stored_bytes = 0
        self.secret = secrets.token_bytes(16)  # signs LFS upload tickets, like a presigned URL
        self.requests: deque[tuple[str, str]] = deque(maxlen=100_000)  # (method, path), for protocol checks

    def add_user(self, name: str) -> str:
        token = f"hf_{name}_{secrets.token_hex(8)}"
        self.tokens[token] = name
        return token

    def store(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        with self.lock:
            if sha256 not in self.blobs:
                if self.stored_bytes + len(content) > MAX_STORED_BYTES:
                    raise HubError(507, "the test Hub is full")
                self.blobs[sha256] = content
                self.stored_bytes += len(content)
        return sha256

    def ticket(self, oid: str, size: int) -> str:
        return hmac.new(self.secret, f"{oid}:{size}".encode(), "sha256").hexdigest()

    # ------------------------------------------------------------------ repos and revisions
    def repo(self, kind: str, repo_id: str, user: str | None, *, write: bool = False) -> Repo:
        repo = self.repos.get((kind, repo_id))
        if repo is None or (repo.private and user != repo.owner):
            # The Hub does not tell strangers that a private repo exists.
            raise HubError(401 if user is None else 404, f"Repository {repo_id} not found", "RepoNotFound")
        if write and user != repo.owner:
            raise HubError(403 if user else 401, f"You don't have the rights to write to {repo_id}")
        return repo

    @staticmethod
    def resolve(repo: Repo, revision: str) -> Commit:
        oid = repo.branches.get(revision, revision)
        if oid not in repo.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def commit(self, repo: Repo, branch: str, title: str, tree: dict[str, StoredFile], parent: str | None) -> Commit:
        seed = json.dumps([parent, title, sorted((p, f.git_oid) for p, f in tree.items()), time.time_ns()])
        oid = hashlib.sha1(seed.encode()).hexdigest()
        commit = Commit(oid, parent, title, tree, datetime.now(timezone.utc))
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def add_file(self, content: bytes, *, lfs: bool) -> StoredFile:
        sha256 = self.store(content)
        oid = git_blob_oid(lfs_pointer(sha256, len(content)) if lfs else content)
        return StoredFile(sha256, len(content), lfs, oid)


# ------------------------------------------------------------------------------------- helpers
def _iso(date: datetime) -> str:
    return date.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _error_response(error: HubError) -> JSONResponse:
    headers = {"X-Error-Message": error.message, **error.headers}
    if error.code:
        headers["X-Error-Code"] = error.code
    return JSONResponse({"error": error.message, **error.body}, status_code=error.status, headers=headers)


def _check_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise HubError(400, f"invalid path in repo: {path!r}")
    return path


def _wants_lfs(path: str, size: int, sample: bytes) -> bool:
    name = path.rsplit("/", 1)[-1]
    return size >= LFS_MIN_SIZE or b"\0" in sample or any(fnmatch.fnmatch(name, p) for p in LFS_PATTERNS)


def _front_matter(content: str) -> dict:
    match = re.match(r"^\s*---[\r\n]+(.*?)[\r\n]+---[\r\n]", content, re.DOTALL)
    if not match:
        return {}
    data = yaml.safe_load(match.group(1))
    if data is not None and not isinstance(data, dict):
        raise HubError(400, "the YAML metadata must be a mapping")
    return data or {}


def _metadata_errors(data: dict, kind: str) -> list[str]:
    """A few of the Hub's metadata rules, enough to catch a card that the Hub would reject."""
    errors = []
    licence = data.get("license")
    if licence is not None:
        if not isinstance(licence, str) or licence not in KNOWN_LICENSES:
            errors.append(f'"license" must be one of the Hub licence ids (or "other"), got {licence!r}')
        if licence == "other":
            name = data.get("license_name")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-.]*", name):
                errors.append('"license: other" needs a "license_name" made of lowercase letters, digits, "-" and "."')
            if not isinstance(data.get("license_link"), str):
                errors.append('"license: other" needs a "license_link" (a URL or a file in the repo)')
    for key in ("tags", "datasets", "models"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
            errors.append(f'"{key}" must be a list of strings')
    if "base_model" in data:
        values = data["base_model"] if isinstance(data["base_model"], list) else [data["base_model"]]
        if not all(isinstance(v, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", v) for v in values):
            errors.append('"base_model" must be Hub model ids ("org/name")')
    if kind == "model" and "pipeline_tag" in data and data["pipeline_tag"] not in PIPELINE_TAGS:
        errors.append(f'"pipeline_tag" {data["pipeline_tag"]!r} is not a Hub task')
    if kind == "space":
        if data.get("sdk") not in ("gradio", "streamlit", "docker", "static"):
            errors.append('a Space needs "sdk": gradio, streamlit, docker or static')
        if "app_file" in data and not isinstance(data["app_file"], str):
            errors.append('"app_file" must be a path')
    return errors


def _tree_listing(commit: Commit, prefix: str, recursive: bool) -> list[dict]:
    prefix = prefix.strip("/")
    base = f"{prefix}/" if prefix else ""
    entries, folders = [], set()
    for path, stored in sorted(commit.tree.items()):
        if not path.startswith(base):
            continue
        rest = path[len(base):]
        parents = rest.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            if recursive or depth == 1:
                folders.add(base + "/".join(parents[:depth]))
        if not recursive and parents:
            continue
        entry = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": path}
        if stored.lfs:
            pointer = lfs_pointer(stored.sha256, stored.size)
            entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": len(pointer)}
        entries.append(entry)
    if prefix and not entries and not folders:
        raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
    dirs = [{"type": "directory", "oid": hashlib.sha1(p.encode()).hexdigest(), "size": 0, "path": p} for p in sorted(folders)]
    return dirs + entries


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > MAX_BODY_BYTES:
        raise HubError(413, "request body too large for the test Hub")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HubError(413, "request body too large for the test Hub")
        chunks.append(chunk)
    return b"".join(chunks)


# ----------------------------------------------------------------------------------------- app
def create_app(state: HubState) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(HubError)
    async def hub_error(request: Request, error: HubError):
        return _error_response(error)

    @app.middleware("http")
    async def record(request: Request, call_next):
        state.requests.append((request.method, request.url.path))
        return await call_next(request)

    def user_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header:
            return None
        token = header.removeprefix("Bearer ").strip()
        if token not in state.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return state.tokens[token]

    def base_url(request: Request) -> str:
        return str(request.base_url)  # ends with "/"

    def kind_of(kinds: str) -> str:
        if kinds not in REPO_KINDS:
            raise HubError(404, f"unknown repo type {kinds}")
        return REPO_KINDS[kinds]

    # ------------------------------------------------------------------ account
    @app.get("/api/whoami-v2")
    def whoami(request: Request):
        user = user_of(request)
        if user is None:
            raise HubError(401, "You must be authenticated to access this endpoint")
        return {"type": "user", "id": user, "name": user, "fullname": user, "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}}}

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        payload = json.loads(await _body(request))
        try:
            data = _front_matter(payload.get("content", ""))
        except yaml.YAMLError as error:
            return JSONResponse({"errors": [{"message": f"invalid YAML: {error}"}]}, status_code=400)
        errors = _metadata_errors(data, payload.get("repoType", "model"))
        if errors:
            return JSONResponse({"errors": [{"message": message} for message in errors]}, status_code=400)
        return {"errors": [], "warnings": []}

    # ------------------------------------------------------------------ repos
    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        user = user_of(request)
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        payload = json.loads(await _body(request))
        namespace, name = payload.get("organization") or user, payload["name"]
        kind = payload.get("type") or "model"
        if namespace != user:
            raise HubError(403, f"You cannot create repos in the namespace {namespace}")
        if kind == "space" and payload.get("sdk") not in ("gradio", "streamlit", "docker", "static"):
            raise HubError(400, "a Space needs an sdk")
        repo_id = f"{namespace}/{name}"
        url = f"{base_url(request)}{URL_PREFIXES[kind]}{repo_id}"
        with state.lock:
            if (kind, repo_id) in state.repos:
                # Like the Hub, a conflict still says where the repo is (create_repo(exist_ok=True) reads it).
                raise HubError(409, "You already created this repo", body={"url": url})
            repo = Repo(kind, repo_id, payload.get("visibility") == "private" or bool(payload.get("private")),
                        payload.get("sdk"))
            gitattributes = state.add_file(GITATTRIBUTES.encode(), lfs=False)
            state.commit(repo, "main", "initial commit", {".gitattributes": gitattributes}, None)
            state.repos[(kind, repo_id)] = repo
        return {"url": url, "name": repo_id, "id": repo_id}

    def info(request: Request, kinds: str, namespace: str, name: str, revision: str):
        kind = kind_of(kinds)
        repo = state.repo(kind, f"{namespace}/{name}", user_of(request))
        commit = state.resolve(repo, revision)
        body = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id, "author": repo.owner,
            "sha": commit.oid, "private": repo.private, "disabled": False, "gated": False,
            "lastModified": _iso(commit.date), "createdAt": _iso(repo.created), "downloads": 0, "likes": 0,
            "tags": [], "siblings": [{"rfilename": path} for path in sorted(commit.tree)],
        }
        if "README.md" in commit.tree:
            card = _front_matter(state.blobs[commit.tree["README.md"].sha256].decode())
            body["cardData"] = card
            body["tags"] = list(card.get("tags") or [])
            for key in ("library_name", "pipeline_tag"):
                if key in card:
                    body[key] = card[key]
        if kind == "space":
            body["sdk"] = repo.sdk
        return body

    @app.get("/api/{kinds}/{namespace}/{name}/revision/{revision}")
    def repo_info_at(request: Request, kinds: str, namespace: str, name: str, revision: str):
        return info(request, kinds, namespace, name, revision)

    @app.get("/api/{kinds}/{namespace}/{name}")
    def repo_info(request: Request, kinds: str, namespace: str, name: str):
        return info(request, kinds, namespace, name, "main")

    @app.get("/api/{kinds}/{namespace}/{name}/tree/{revision}")
    @app.get("/api/{kinds}/{namespace}/{name}/tree/{revision}/{path:path}")
    def tree(request: Request, kinds: str, namespace: str, name: str, revision: str, path: str = ""):
        repo = state.repo(kind_of(kinds), f"{namespace}/{name}", user_of(request))
        recursive = request.query_params.get("recursive", "false").lower() in ("true", "1")
        return _tree_listing(state.resolve(repo, revision), path, recursive)

    @app.get("/api/{kinds}/{namespace}/{name}/refs")
    def refs(request: Request, kinds: str, namespace: str, name: str):
        repo = state.repo(kind_of(kinds), f"{namespace}/{name}", user_of(request))
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in sorted(repo.branches.items())]
        return {"branches": branches, "converts": [], "tags": []}

    @app.post("/api/{kinds}/{namespace}/{name}/branch/{branch}")
    async def create_branch(request: Request, kinds: str, namespace: str, name: str, branch: str):
        repo = state.repo(kind_of(kinds), f"{namespace}/{name}", user_of(request), write=True)
        payload = json.loads(await _body(request) or b"{}")
        if not re.fullmatch(r"[\w.-]+", branch) or re.fullmatch(r"[0-9a-f]{40}", branch):
            raise HubError(400, f"invalid branch name {branch!r}")
        with state.lock:
            if branch in repo.branches:
                raise HubError(409, f"Branch {branch} already exists")
            start = state.resolve(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.oid
        return {}

    @app.post("/api/{kinds}/{namespace}/{name}/preupload/{revision}")
    async def preupload(request: Request, kinds: str, namespace: str, name: str, revision: str):
        repo = state.repo(kind_of(kinds), f"{namespace}/{name}", user_of(request), write=True)
        commit = state.resolve(repo, revision)
        files = []
        for item in json.loads(await _body(request))["files"]:
            path = _check_path(item["path"])
            lfs = _wants_lfs(path, int(item["size"]), base64.b64decode(item.get("sample", "")))
            existing = commit.tree.get(path)
            # The oid the client compares with its own to skip unchanged files: sha256 for LFS, git sha1 else.
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid)
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return {"files": files, "commitOid": commit.oid}

    @app.post("/api/{kinds}/{namespace}/{name}/commit/{revision}")
    async def commit(request: Request, kinds: str, namespace: str, name: str, revision: str):
        repo = state.repo(kind_of(kinds), f"{namespace}/{name}", user_of(request), write=True)
        if request.query_params.get("create_pr"):
            raise HubError(400, "the test Hub does not do pull requests")
        lines = [json.loads(line) for line in (await _body(request)).splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with its header line")
        header = lines[0]["value"]
        with state.lock:
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(head.tree)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = _check_path(value["path"].strip("/") if key == "deletedFolder" else value["path"])
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, "inline files must be base64")
                    tree[path] = state.add_file(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    if value["oid"] not in state.blobs:
                        raise HubError(422, f"LFS object {value['oid']} of {path} was never uploaded")
                    content = state.blobs[value["oid"]]
                    if "size" in value and value["size"] != len(content):
                        raise HubError(422, f"LFS object {value['oid']} has another size")
                    tree[path] = state.add_file(content, lfs=True)
                elif key == "deletedFile":
                    if tree.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    doomed = [p for p in tree if p.startswith(path + "/")]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del tree[p]
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            new = state.commit(repo, revision, header.get("summary", ""), tree, head.oid)
        url = f"{base_url(request)}{URL_PREFIXES[repo.kind]}{repo.repo_id}/commit/{new.oid}"
        return {"success": True, "commitOid": new.oid, "commitUrl": url, "commitMessage": new.title,
                "pullRequestUrl": None}

    @app.get("/api/spaces/{namespace}/{name}/variables")
    def space_variables(request: Request, namespace: str, name: str):
        return state.repo("space", f"{namespace}/{name}", user_of(request), write=True).variables

    @app.post("/api/spaces/{namespace}/{name}/variables")
    async def add_space_variable(request: Request, namespace: str, name: str):
        repo = state.repo("space", f"{namespace}/{name}", user_of(request), write=True)
        payload = json.loads(await _body(request))
        repo.variables[payload["key"]] = {"value": payload["value"], "description": payload.get("description"),
                                          "updatedAt": _iso(datetime.now(timezone.utc))}
        return repo.variables

    @app.delete("/api/spaces/{namespace}/{name}/variables")
    async def delete_space_variable(request: Request, namespace: str, name: str):
        repo = state.repo("space", f"{namespace}/{name}", user_of(request), write=True)
        repo.variables.pop(json.loads(await _body(request))["key"], None)
        return repo.variables

    # ------------------------------------------------------------------ LFS (basic transfer)
    async def lfs_batch(request: Request, kind: str, namespace: str, name: str):
        repo = state.repo(kind, f"{namespace}/{name}", user_of(request), write=True)
        payload = json.loads(await _body(request))
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "the test Hub only takes basic LFS uploads")
        if "ref" in payload and payload["ref"]["name"] not in repo.branches:
            raise HubError(404, f"Invalid rev id: {payload['ref']['name']}", "RevisionNotFound")
        objects = []
        for item in payload["objects"]:
            oid, size = item["oid"], int(item["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if oid not in state.blobs:
                href = f"{base_url(request)}_lfs/{oid}?size={size}&ticket={state.ticket(oid, size)}"
                entry["actions"] = {"upload": {"href": href}, "verify": {"href": f"{base_url(request)}_lfs/{oid}/verify"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    @app.post("/spaces/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch_space(request: Request, namespace: str, name: str):
        return await lfs_batch(request, "space", namespace, name)

    @app.post("/datasets/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch_dataset(request: Request, namespace: str, name: str):
        return await lfs_batch(request, "dataset", namespace, name)

    @app.post("/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch_model(request: Request, namespace: str, name: str):
        return await lfs_batch(request, "model", namespace, name)

    @app.put("/_lfs/{oid}")
    async def lfs_put(request: Request, oid: str):
        # Stands in for a presigned storage URL: authorised by the ticket, not by a token.
        size = int(request.query_params.get("size", -1))
        if not hmac.compare_digest(request.query_params.get("ticket", ""), state.ticket(oid, size)):
            raise HubError(403, "bad or missing upload ticket")
        content = await _body(request)
        if len(content) != size or hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its oid and size")
        state.store(content)
        return Response(status_code=200, headers={"ETag": f'"{oid}"'})

    @app.post("/_lfs/{oid}/verify")
    async def lfs_verify(request: Request, oid: str):
        payload = json.loads(await _body(request))
        if payload.get("oid") != oid or oid not in state.blobs or len(state.blobs[oid]) != payload.get("size"):
            raise HubError(404, f"LFS object {oid} not found")
        return {}

    # ------------------------------------------------------------------ file resolution
    def resolve_file(request: Request, kind: str, namespace: str, name: str, revision: str, path: str):
        repo = state.repo(kind, f"{namespace}/{name}", user_of(request))
        commit = state.resolve(repo, revision)
        stored = commit.tree.get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        content = state.blobs[stored.sha256]
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{stored.etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if stored.lfs:
            headers |= {"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": str(stored.size)}
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
        if match and int(match.group(1)) < len(content):
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        status = 206 if start else 200
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(content) - start)
            return Response(status_code=status, headers=headers)
        return Response(content[start:], status_code=status, headers=headers)

    @app.api_route("/spaces/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve_space(request: Request, namespace: str, name: str, revision: str, path: str):
        return resolve_file(request, "space", namespace, name, revision, path)

    @app.api_route("/datasets/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve_dataset(request: Request, namespace: str, name: str, revision: str, path: str):
        return resolve_file(request, "dataset", namespace, name, revision, path)

    @app.api_route("/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve_model(request: Request, namespace: str, name: str, revision: str, path: str):
        return resolve_file(request, "model", namespace, name, revision, path)

    return app


# -------------------------------------------------------------------------------------- server
class HubServer:
    """The app above on 127.0.0.1 at a free port, served by uvicorn in a daemon thread."""

    def __init__(self, start_timeout: float = 20.0):
        self.state = HubState()
        self.tokens: dict[str, str] = {}  # user name -> token
        self.start_timeout = start_timeout
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def add_user(self, name: str) -> str:
        """Register `name` and return a token that acts as that user (also in `tokens`)."""
        self.tokens[name] = self.state.add_user(name)
        return self.tokens[name]

    def start(self) -> HubServer:
        # Binding port 0 ourselves and handing uvicorn the socket avoids a find-a-port race.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        host, port = self._socket.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(create_app(self.state), log_level="warning", lifespan="off",
                                limit_concurrency=64, timeout_keep_alive=5, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="test-hub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the test Hub server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
