"""Writing files so that nothing is lost: the one output check and the one atomic writer.

Every file fswap writes for a user (a swap, an annotated photo, heat maps, a training state's
record, a prepared crop, a certificate) goes through `write_atomically`: the data goes to a hidden
file beside the destination, which is then renamed over it. A kill at any moment leaves either
the old file or the complete new one, never half of either; hidden files left by a killed
writer are swept away by the next write into the same folder.

`check_output` is asked *before* the work: is the destination a file fswap may write, in a
format it can encode, and not one of the inputs it is about to overwrite?
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from fswap.errors import OutputError

#: Hidden files being written are named `.NAME.fswap-PID-THREAD.partial`.
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.fswap-(?P<pid>\d+)-\d+\.partial$")


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    suffixes: Iterable[str] | None = None,
    default_suffix: str = ".png",
) -> Path:
    """`path` as it will be written (`default_suffix` added when it has none), or `OutputError`.

    Refused: a suffix not in `suffixes`; a destination that is one of `inputs` (the same file,
    through any link); a destination that exists and is not a regular file; a parent that is a
    file, or a folder this process may not write in.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(default_suffix)
    if suffixes is not None:
        allowed = tuple(suffix.lower() for suffix in suffixes)
        if path.suffix.lower() not in allowed:
            raise OutputError(f"cannot write a {path.suffix} file ({path}); use one of {', '.join(allowed)}")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise OutputError(f"{path} exists and is not a regular file; give a file name to write")
        for source in inputs:
            if Path(source).exists() and os.path.samefile(path, source):
                raise OutputError(f"{path} is the input {source}: writing it would destroy the original; "
                                  "give another output name")
    folder = _first_existing(path.parent)
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: no permission to write in {folder}")
    return path


def write_atomically(path: str | os.PathLike, data: bytes, *, mode: int = 0o666) -> Path:
    """Write `data` to `path` whole or not at all (creating its folder), and return `path`.

    `mode` is filtered by the umask as `open` does (0o600 keeps a private key private). An OS
    error (no space, no permission, a read-only file system) becomes `OutputError`.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.fswap-{os.getpid()}-{threading.get_ident()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_partials(path.parent)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from error
    finally:
        if partial.exists():
            partial.unlink(missing_ok=True)
    return path


def sweep_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the hidden files that writers killed mid-write left in `folder`; return them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match and not _alive(int(match["pid"])):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return True


def _first_existing(folder: Path) -> Path:
    """`folder`, or its nearest ancestor that exists (the one the new folders will be made in)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
