"""What the app holds while it serves, kept bounded: photos, videos, memory and files on disk.

Photos. A small file can declare a large picture: a 250 KB PNG of one colour declares 8,900 x
8,900 pixels, under `fswap.imageio.MAX_PIXELS`, and decodes to 300 MB. The app works on every
photo at `WORKING_PIXELS` at most (`fswap.imageio.load_image(fit_pixels=...)` shrinks it as it
decodes it) and says so; photos that have to be shrunk are decoded one at a time.

Memory. What a request frees stays in the process's heap unless it is handed back:
`release_memory` asks glibc to (`malloc_trim`) after every request.

Files. The results' folder and, when the app made it (`own_upload_folder`), gradio's upload
folder are kept under a size and an age, and removed when the app exits.

This module does not import gradio: `own_upload_folder` must run before gradio reads
`$GRADIO_TEMP_DIR`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from fswap.imageio import declared_size, load_image, load_rgba

#: Photos are worked on (faces found, swapped, checked) at this many pixels at most: a 16-megapixel
#: photo fits, a larger one is downscaled; `fswap swap` works at full size.
WORKING_PIXELS = 16_000_000
#: Videos the app swaps: at most this long, this many pixels on the longer side (1080p fits) and
#: this many frames (60 s at 30 fps); `fswap swap` takes `VideoOptions`' own, larger limits. The upload
#: itself is at most `fswap.imageio.MAX_FILE_BYTES` (gradio's `max_file_size`, `space.ui.launch_options`).
VIDEO_MAX_SECONDS = 60.0
VIDEO_MAX_SIDE = 1920
VIDEO_MAX_FRAMES = 1800
#: Live camera frames are swapped at this many pixels at most (640x480), and may be this large as sent.
LIVE_PIXELS = 640 * 480
LIVE_FRAME_BYTES = 4 * 2**20
#: Result folders are removed, oldest first, past this many bytes in all; uploads past the second.
RESULTS_MAX_BYTES = 256 * 2**20
UPLOADS_MAX_BYTES = 2 * 2**30
#: Files are removed at this age (gradio's own `delete_cache` age in `space.ui`) ...
MAX_AGE_SECONDS = 3600.0
#: ... but never younger than this, whatever the size: a response may still be reading them, an
#: upload may still wait in the queue for its request.
RESULTS_MIN_AGE_SECONDS = 60.0
UPLOADS_MIN_AGE_SECONDS = 600.0


def megapixels(width: int, height: int) -> str:
    value = width * height / 1e6
    return f"{value:.0f} megapixels" if value >= 10 else f"{value:.1f} megapixels"


class PhotoReader:
    """Reads uploaded photos at `working_pixels` at most. Requests on photos larger than that run
    one at a time: inside `request()` the first such photo takes the one slot for large photos
    until the request ends (outside it, for its decoding only).

    Example:
        >>> from fswap.assets import example_image
        >>> reader = PhotoReader(working_pixels=500_000)
        >>> photo, notice = reader.read(example_image("t1.jpg"), "target photo")  # 1280x886
        >>> photo.shape, notice.startswith("target photo is 1280x886")
        ((588, 849, 3), True)
    """

    def __init__(self, working_pixels: int = WORKING_PIXELS):
        if working_pixels < 1:
            raise ValueError(f"working_pixels must be a positive number of pixels, not {working_pixels}")
        self.working_pixels = working_pixels
        self._large = threading.Semaphore(1)
        self._scope = threading.local()  # per request (gradio runs each in one worker thread): holds the slot?

    @contextlib.contextmanager
    def request(self):
        """The scope of one request: a large photo read in it keeps the large slot until it ends,
        so that its work (a swap at the working size, a check) is not done beside another's."""
        if getattr(self._scope, "holds", None) is not None:  # already in one
            yield
            return
        self._scope.holds = False
        try:
            yield
        finally:
            if self._scope.holds:
                self._large.release()
            del self._scope.holds

    @contextlib.contextmanager
    def _decoding(self, path: Path, what: str):
        """Yields the photo's declared (width, height), in the large slot when it is larger than
        the working size."""
        width, height = declared_size(path, name=what)  # refused here, before any decoding
        holds = getattr(self._scope, "holds", None)  # None: outside a request
        if width * height <= self.working_pixels or holds:
            yield width, height
        elif holds is None:
            with self._large:
                yield width, height
        else:
            self._large.acquire()
            self._scope.holds = True
            yield width, height

    def read(self, path: Path, what: str) -> tuple[np.ndarray, str | None]:
        """The photo (RGB uint8) at the working size at most, and a notice when it was shrunk."""
        with self._decoding(path, what) as (width, height):
            photo = load_image(path, name=what, fit_pixels=self.working_pixels)
        if photo.shape[0] * photo.shape[1] == width * height:
            return photo, None
        if (photo.shape[1] >= photo.shape[0]) != (width >= height):  # turned upright by its EXIF
            width, height = height, width
        return photo, (
            f"{what} is {width}x{height} ({megapixels(width, height)}); the app works on it at "
            f"{photo.shape[1]}x{photo.shape[0]} ({megapixels(photo.shape[1], photo.shape[0])}), the size of "
            "its result. The fswap command line swaps at full size."
        )

    def read_rgba(self, path: Path, what: str) -> np.ndarray | None:
        """The photo with its transparency at the size `read` gives it (`fswap.imageio.load_rgba`)."""
        with self._decoding(path, what):
            return load_rgba(path, name=what, fit_pixels=self.working_pixels)


# ---------------------------------------------------------------------- memory
@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> bool:
    """Hand the heap's free pages back to the system; False where that cannot be done.

    A large request's buffers (PIL allocates an image in blocks of up to 16 MB, which glibc
    serves from its heaps once a block that size has been freed) stay in the process when they are
    freed, spread over the heaps of gradio's worker threads; `malloc_trim(0)` returns them.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


# ---------------------------------------------------------------------- files
class TemporaryFolder:
    """A folder of the app's own, whose entries (files or folders) are removed past `max_age`
    seconds and, oldest first, past `max_bytes` in all, but never before `min_age` seconds
    (`prune`); the folder is removed when this object is collected, at exit, or on `remove`.

    Args:
        folder: the folder (made when missing); None: a new one in the system's temporary folder.
        prefix: the name of the new folder starts with this.
    """

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        *,
        prefix: str = "fswap-",
        max_bytes: int,
        max_age: float = MAX_AGE_SECONDS,
        min_age: float = RESULTS_MIN_AGE_SECONDS,
    ):
        if folder is None:
            self.path = Path(tempfile.mkdtemp(prefix=prefix))
        else:
            self.path = Path(folder)
            self.path.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.max_age, self.min_age = max_bytes, max_age, min_age
        self._remove = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def new_folder(self) -> Path:
        """A new empty folder in this one, after pruning it."""
        self.prune()
        return Path(tempfile.mkdtemp(dir=self.path))

    def prune(self) -> None:
        now = time.time()
        entries = []  # (modified, bytes, path), oldest first
        for entry in self._entries():
            with contextlib.suppress(FileNotFoundError):  # another request may have removed it
                entries.append((entry.stat().st_mtime, _size(entry), entry))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        for modified, size, entry in entries:
            age = now - modified
            if age < self.min_age:
                break  # the rest are younger still
            if age > self.max_age or total > self.max_bytes:
                _delete(entry)
                total -= size

    def size(self) -> int:
        return sum(_size(entry) for entry in self._entries())

    def remove(self) -> None:
        self._remove()

    def _entries(self) -> list[Path]:
        try:
            return list(self.path.iterdir())
        except FileNotFoundError:
            return []


def own_upload_folder() -> TemporaryFolder | None:
    """Point gradio at an upload folder of this process's own (`$GRADIO_TEMP_DIR`), bounded and
    removed at exit, unless `$GRADIO_TEMP_DIR` already names one (None then: gradio's own age
    limit, `delete_cache`, is all that bounds it). Call it before gradio is imported."""
    if os.environ.get("GRADIO_TEMP_DIR"):
        return None
    uploads = TemporaryFolder(prefix="fswap-uploads-", max_bytes=UPLOADS_MAX_BYTES,
                              min_age=UPLOADS_MIN_AGE_SECONDS)
    os.environ["GRADIO_TEMP_DIR"] = str(uploads.path)
    return uploads


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
