"""Reading user images so that nothing surprises: every mistake becomes one `ImageError`.

All of fswap works on RGB `uint8` arrays of shape [H, W, 3]. `load_image` accepts a path,
raw bytes, a PIL image or a numpy array and handles EXIF orientation, alpha, palettes,
greyscale, 16-bit and float data, animated files (first frame), decompression bombs,
truncated, zero-byte and non-image files.

Transparent pixels are seen on white, as viewers show them. `load_rgba` reads a photo with its
transparency, so that a swap of a cut-out portrait can be written back with it
(`with_transparency`, `save_image`).

A server that works on photos at a bounded size reads them with `fit_pixels`: the photo comes
back downscaled, and is never held at full size as an array (a JPEG is even decoded at a reduced
scale). `declared_size` reads only a file's header, to know what decoding it will cost.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from fswap.errors import ImageError
from fswap.fileio import check_output, write_atomically

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

#: Upload and decode limits; large enough for any camera, small enough to refuse bombs.
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 80_000_000
MIN_SIDE = 16

#: The file formats fswap decodes (PIL's names), and how to name them to users. Only these: PIL
#: opens dozens more, through decoders few photos ever reach (and some with a record of
#: security bugs), and a swap's parent photo must be one its Content Credentials can record
#: (`fswap.provenance.c2pa_manifest.READ_MIME_TYPES`). A phone's JPEG may open as MPO (a JPEG with
#: its other pictures appended), through the JPEG decoder.
READ_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "BMP", "TIFF", "GIF")
READ_FORMAT_NAMES = "JPEG, PNG, WebP, AVIF, BMP, TIFF or GIF"

#: PIL modes with an alpha channel, and the file suffixes whose formats keep one.
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
#: The modes PIL resizes with an area filter; others are converted first (`_resizable`).
RESIZABLE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F")
#: How to stand a photo upright, by its EXIF orientation.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: The suffixes `save_image` writes, and PIL's name for each format.
WRITE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".bmp": "BMP"}


def is_single_image(value) -> bool:
    """Whether `value` is one image (`ImageInput`), not a list of them."""
    return isinstance(value, (str, os.PathLike, bytes, bytearray, np.ndarray)) or hasattr(value, "getpixel")


def image_name(image: ImageInput, fallback: str) -> str:
    """How messages name `image`: its file name, else `fallback` ("source photo 2")."""
    return Path(image).name if isinstance(image, (str, os.PathLike)) else fallback


def load_image(
    image: ImageInput,
    *,
    name: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
    fit_pixels: int | None = None,
) -> np.ndarray:
    """Return `image` as an RGB uint8 array [H, W, 3], or raise `ImageError` saying why not.

    Args:
        image: a file path, the file's bytes, a PIL image, or an array ([H,W], [H,W,1|3|4];
            uint8, uint16, or float in [0, 1]). Arrays are taken as RGB(A).
        name: how to call the image in error messages (defaults to the file name).
        max_bytes: refuse files larger than this.
        max_pixels: refuse images with more pixels than this (decompression bombs).
        fit_pixels: give an image with more pixels than this downscaled (area average, its
            aspect kept) to `fitted_size`; it is shrunk before it becomes an array, and a JPEG is
            decoded at the smallest scale still larger. None: the full size.
    """
    if isinstance(image, np.ndarray):
        return _fitted_array(_from_array(image, name or "image", max_pixels), fit_pixels)
    pil, label = _open(image, name, max_bytes, max_pixels, decode=fit_pixels is None)
    _check_pixels(pil.size, label, max_pixels)  # before turning a PIL image given as it is
    if fit_pixels is None:
        pil = _upright(pil)
    else:
        pil = _decoded_within(pil, label, fit_pixels, owned=not isinstance(image, Image.Image))
    return _from_pil(pil, label, max_pixels)


def load_rgba(
    image: ImageInput,
    *,
    name: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
    fit_pixels: int | None = None,
) -> np.ndarray | None:
    """`image` with its transparency, RGBA uint8 [H, W, 4], turned (and sized, `fit_pixels`) as
    `load_image` turns it and its colours not seen on white; None when every pixel is opaque or
    the format has no alpha. Arguments and errors as in `load_image`.
    """
    if isinstance(image, np.ndarray):
        load_image(image, name=name, max_pixels=max_pixels)  # the same checks and errors
        rgba = _to_uint8(image, name or "image") if image.ndim == 3 and image.shape[2] == 4 else None
        rgba = None if rgba is None else _fitted_array(rgba, fit_pixels)
    else:
        # The header says whether there is an alpha channel: an opaque photo is not decoded again.
        pil, label = _open(image, name, max_bytes, max_pixels, decode=False)
        if not (pil.mode in ALPHA_MODES or (pil.mode == "P" and "transparency" in pil.info)):
            return None
        _check_pixels(pil.size, label, max_pixels)
        if fit_pixels is None:
            with _decoding(label):
                pil.load()
            pil = _upright(pil)
        else:
            pil = _decoded_within(pil, label, fit_pixels, owned=not isinstance(image, Image.Image))
        rgba = np.array(pil.convert("RGBA"), dtype=np.uint8)
    return None if rgba is None or rgba[..., 3].min() == 255 else np.ascontiguousarray(rgba)


def declared_size(
    image: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int]:
    """The (width, height) a file's header declares, as stored (before its EXIF orientation),
    read without decoding its pixels: what decoding it will cost. Refused, with `load_image`'s
    error, when `load_image` would refuse it before decoding (missing, empty, too many bytes or
    pixels, not an image)."""
    pil, _ = _open(image, name, max_bytes, max_pixels, decode=False)
    return pil.size


def fitted_size(size: tuple[int, int], fit_pixels: int) -> tuple[int, int]:
    """The (width, height) that `load_image(..., fit_pixels=fit_pixels)` gives an image of
    `size`: `size` itself when it has at most `fit_pixels` pixels, else scaled down, its aspect
    kept, to at most `fit_pixels` (and no side under `MIN_SIDE` that was not already)."""
    width, height = size
    if width * height <= fit_pixels:
        return width, height
    scale = (fit_pixels / (width * height)) ** 0.5
    return (max(int(width * scale), min(width, MIN_SIDE)), max(int(height * scale), min(height, MIN_SIDE)))


def with_transparency(result: np.ndarray, original: np.ndarray | None) -> np.ndarray:
    """`result`, an RGB edit of a transparent photo (`load_image` of it, seen on white), given
    back the photo's transparency: RGBA where the opaque pixels are `result`'s and the others
    `original`'s (`load_rgba`), colours and all. `result` itself when `original` is None."""
    if original is None:
        return result
    if original.shape[:2] != result.shape[:2]:
        raise ImageError(f"the transparent photo is {original.shape[1]}x{original.shape[0]} and the result "
                         f"{result.shape[1]}x{result.shape[0]}; they must match")
    rgba = np.dstack([result[..., :3], original[..., 3]]).astype(np.uint8)
    see_through = original[..., 3] < 255
    rgba[see_through] = original[see_through]
    return rgba


def _open(image: ImageInput, name: str | None, max_bytes: int, max_pixels: int,
          decode: bool = True) -> tuple[Image.Image, str]:
    """`image` (a path, bytes or PIL image) opened within the limits, and its label; decoded, or
    with only its header read (`decode=False`)."""
    if isinstance(image, Image.Image):
        return image, name or "image"
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        label = name or "uploaded image"
    elif isinstance(image, (str, os.PathLike)):
        data, label = _read_file(Path(image), name, max_bytes)
    else:
        raise ImageError(f"cannot read an image from a {type(image).__name__}; give a path, bytes or an array")
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"{label} is {len(data) / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    return _decode(data, label, max_pixels, decode), label


def keeps_alpha(path: str | os.PathLike) -> bool:
    """Whether a file written to `path` (its suffix; PNG when it has none) keeps transparency."""
    return (Path(path).suffix.lower() or ".png") in ALPHA_SUFFIXES


def save_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB or RGBA uint8 array atomically (`fswap.fileio.write_atomically`); the format
    follows the suffix (PNG when there is none). A format without transparency (JPEG, BMP) gets
    RGBA seen on white.

    Raises:
        fswap.OutputError: the suffix is not one of `WRITE_SUFFIXES`, or the file cannot be written.
    """
    path = check_output(path, suffixes=WRITE_SUFFIXES)
    if image.ndim == 3 and image.shape[2] == 4 and not keeps_alpha(path):
        image = load_image(image)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format=WRITE_SUFFIXES[path.suffix.lower()])
    return write_atomically(path, buffer.getvalue())


def _read_file(path: Path, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    label = name or path.name
    if not path.exists():
        raise ImageError(f"{label}: no such file ({path})")
    if not path.is_file():
        raise ImageError(f"{label} is not a file ({path})")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"{label} is {size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    try:
        return path.read_bytes(), label
    except OSError as error:
        raise ImageError(f"{label} cannot be read: {error.strerror or error}") from error


def _decode(data: bytes, label: str, max_pixels: int, decode: bool = True) -> Image.Image:
    with _decoding(label):
        pil = Image.open(io.BytesIO(data), formats=READ_FORMATS)
        # The header is read now, the pixels only on load(): check size before decoding.
        _check_pixels(pil.size, label, max_pixels)
        if decode:
            pil.load()
    return pil


@contextlib.contextmanager
def _decoding(label: str):
    """Whatever goes wrong opening or decoding image `label` becomes one `ImageError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"{label} is too large to decode safely ({error})") from error
    except UnidentifiedImageError as error:
        raise ImageError(f"{label} is not an image fswap can read ({READ_FORMAT_NAMES})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{label} is damaged or truncated and cannot be decoded ({error})") from error


def _check_pixels(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{label} is {width}x{height} = {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels. Downscale it first."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{label} is {width}x{height}; images must be at least {MIN_SIDE} px on each side")


def _from_pil(pil: Image.Image, label: str, max_pixels: int) -> np.ndarray:
    """An upright image as RGB uint8."""
    _check_pixels(pil.size, label, max_pixels)
    if pil.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _from_array(np.asarray(pil), label, max_pixels)
    if pil.mode == "P" and "transparency" in pil.info:
        pil = pil.convert("RGBA")
    if pil.mode in ALPHA_MODES:
        pil = _flatten_alpha(pil.convert("RGBA"))
    return np.array(pil.convert("RGB"), dtype=np.uint8)  # a writeable copy, never a view of PIL memory


def _upright(pil: Image.Image) -> Image.Image:
    """The first frame, turned by its EXIF orientation."""
    if getattr(pil, "n_frames", 1) > 1:
        pil.seek(0)
    # A broken EXIF block must not make a readable photo unreadable.
    with contextlib.suppress(Exception):
        pil = ImageOps.exif_transpose(pil)
    return pil


def _decoded_within(pil: Image.Image, label: str, fit_pixels: int, *, owned: bool = True) -> Image.Image:
    """An opened image decoded and downscaled to `fitted_size` of its size, upright: a JPEG at
    the smallest decoding scale still larger (`Image.draft`), any other format at full size,
    reduced by whole-number box averages and that full-size copy closed (`owned`: `pil` is not
    the caller's) before the last, fractional step and before anything is converted or copied."""
    if fit_pixels < 1:
        raise ValueError(f"fit_pixels must be a positive number of pixels, not {fit_pixels}")
    if getattr(pil, "n_frames", 1) > 1:
        pil.seek(0)
    size = fitted_size(pil.size, fit_pixels)
    with _decoding(label):
        if size != pil.size and pil.format in ("JPEG", "MPO"):
            pil.draft(None, size)
        pil.load()
        turn = _upright_turn(pil)
        if size != pil.size:
            full = [pil, resizable := _resizable(pil)]
            factors = (resizable.width // size[0], resizable.height // size[1])
            reduced = resizable.reduce(factors) if max(factors) > 1 else resizable
            if owned and reduced is not resizable:
                for image in full:
                    image.close()  # frees its pixels now, whoever else holds the object
            pil = reduced.resize(size, Image.Resampling.BOX)
    return pil if turn is None else pil.transpose(turn)


def _upright_turn(pil: Image.Image) -> Image.Transpose | None:
    """How to stand a decoded image upright by its EXIF orientation; None: it is (or its EXIF
    cannot be read, which must not make a readable photo unreadable)."""
    try:
        return UPRIGHT.get(pil.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:
        return None


def _resizable(pil: Image.Image) -> Image.Image:
    """`pil` in a mode PIL resizes by area average (`RESIZABLE_MODES`), its transparency kept."""
    if pil.mode in RESIZABLE_MODES:
        return pil
    if pil.mode in ALPHA_MODES or (pil.mode == "P" and "transparency" in pil.info):
        return pil.convert("RGBA")
    if pil.mode.startswith("I;16"):
        return pil.convert("I")
    return pil.convert("L" if pil.mode == "1" else "RGB")


def _fitted_array(array: np.ndarray, fit_pixels: int | None) -> np.ndarray:
    if fit_pixels is None:
        return array
    width, height = fitted_size((array.shape[1], array.shape[0]), fit_pixels)
    if (width, height) == (array.shape[1], array.shape[0]):
        return array
    return np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.BOX))


def _flatten_alpha(pil: Image.Image) -> Image.Image:
    """Composite transparent pixels on white, as viewers show them."""
    background = Image.new("RGBA", pil.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, pil).convert("RGB")


def _from_array(array: np.ndarray, label: str, max_pixels: int) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{label} has shape {array.shape}; expected [H, W], [H, W, 3] or [H, W, 4]")
    _check_pixels((array.shape[1], array.shape[0]), label, max_pixels)
    array = _to_uint8(array, label)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[..., 3:].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageError(f"{label} contains NaN or infinite values")
        high = 1.0 if array.max(initial=0.0) <= 1.0 else 255.0
        return (np.clip(array / high, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.min(initial=0) < 0:
            raise ImageError(f"{label} has negative pixel values")
        high = 255 if array.max(initial=0) <= 255 else 65535
        return (array.astype(np.float64) * (255.0 / high)).round().astype(np.uint8)
    raise ImageError(f"{label} has pixel type {array.dtype}, which is not an image type")
