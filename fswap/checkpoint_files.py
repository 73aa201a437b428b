"""The files inside a checkpoint folder: read safely, named safely, and checked for damage.

A checkpoint is untrusted input (downloaded, shared, edited by hand). Everything fswap reads from
one goes through here:

- `read_json`: a settings file that is not a JSON object is a `CheckpointError`, not a traceback;
- `file_inside`: a file name a config gives (`"detector": "scrfd.onnx"`) must stay inside the
  checkpoint's folder: no absolute paths, no `..`;
- `write_hashes` / `check_hashes`: `SHA256SUMS` beside the weights records each weight file's
  SHA-256 when it is saved (the format `sha256sum -c SHA256SUMS` checks), and loading checks it,
  so a flipped byte from a broken download or a tampered file is caught before it is used.

The hashes guard against damage, not against an attacker who rewrites `SHA256SUMS` too; a folder
without one (saved by an older fswap) loads unchecked. Files from the Hub are also checked by
`huggingface_hub` against the SHA-256 the Hub records for them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from fswap.errors import CheckpointError
from fswap.fileio import write_atomically

HASHES_NAME = "SHA256SUMS"
#: The files whose hashes are recorded: the weights, not the configs (which are validated).
WEIGHT_SUFFIXES = (".safetensors", ".onnx")


def read_json(path: str | os.PathLike) -> dict:
    """The JSON object in `path`, or `CheckpointError` saying what is wrong with the file."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} cannot be read: {getattr(error, 'strerror', None) or error}") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error.msg} at line {error.lineno} column "
                              f"{error.colno})") from error
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} holds a JSON {type(value).__name__}, not an object of settings")
    return value


def file_inside(folder: str | os.PathLike, name: str, what: str) -> Path:
    """`folder / name`, refused with `CheckpointError` unless `name` is a relative path without
    `..`: a checkpoint must not make fswap open files elsewhere on disk.

    Links are not resolved: in the Hub cache every file of a snapshot is a link into its `blobs`
    folder, and whoever can put a link in a checkpoint folder can put the file there as well.
    """
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{what} must be a file name inside {folder}, not {name!r}")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or relative.drive:
        raise CheckpointError(f"{what} {name!r} points outside the checkpoint folder {folder}; "
                              "give a file name inside it")
    return Path(folder) / relative


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_hashes(folder: str | os.PathLike, names: Iterable[str] | None = None) -> Path:
    """Write `folder/SHA256SUMS` for `names` (default: every weight file directly in `folder`)."""
    folder = Path(folder)
    if names is None:
        names = sorted(path.name for path in folder.iterdir() if path.suffix in WEIGHT_SUFFIXES and path.is_file())
    lines = [f"{sha256(folder / name)}  {name}\n" for name in names]
    return write_atomically(folder / HASHES_NAME, "".join(lines).encode())


def check_hashes(folder: str | os.PathLike) -> None:
    """Check every file `folder/SHA256SUMS` lists against its hash; `CheckpointError` on the first
    that is missing or differs. Nothing to check when there is no `SHA256SUMS`."""
    folder = Path(folder)
    listing = folder / HASHES_NAME
    if not listing.is_file():
        return
    for number, line in enumerate(listing.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        expected, _, name = line.partition("  ")
        if len(expected) != 64 or not name:
            raise CheckpointError(f"{listing} line {number} is not '<sha256>  <file name>'")
        path = file_inside(folder, name.lstrip("*"), f"{listing} line {number}")
        if not path.is_file():
            raise CheckpointError(f"{listing} lists {name}, which is missing from {folder}")
        if sha256(path) != expected.lower():
            raise CheckpointError(f"{path} is damaged or was changed: its SHA-256 differs from the one recorded in "
                                  f"{listing} (download it again, or save the checkpoint again)")
