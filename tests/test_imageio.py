"""Image input that never surprises: odd formats work, bad files give one clear ImageError."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fswap.errors import FswapError, ImageError, NoFaceError
from fswap.imageio import keeps_alpha, load_image, load_rgba, save_image, with_transparency


def _png_bytes(pil: Image.Image) -> bytes:
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    data = bytearray(_png_bytes(Image.new("L", (32, 32))))
    ihdr = bytearray(data[16:29])  # width, height, depth, colour type, ...
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


@pytest.fixture(scope="module")
def portrait_jpeg(t1_image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(t1_image).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


# ---------------------------------------------------------------- the bad-input corpus
BAD_INPUTS = {
    "zero_byte_file": lambda tmp, jpeg: _write(tmp / "empty.jpg", b""),
    "missing_file": lambda tmp, jpeg: tmp / "does_not_exist.jpg",
    "directory": lambda tmp, jpeg: tmp,
    "text_named_jpg": lambda tmp, jpeg: _write(tmp / "notes.jpg", b"hello, this is not a photo\n" * 20),
    "html_page": lambda tmp, jpeg: _write(tmp / "page.png", b"<!doctype html><html><body>404</body></html>"),
    "truncated_jpeg": lambda tmp, jpeg: _write(tmp / "cut.jpg", jpeg[: len(jpeg) // 3]),
    "corrupted_png": lambda tmp, jpeg: _write(tmp / "bad.png", _corrupt_middle(_png_bytes(Image.open(io.BytesIO(jpeg))))),
    "decompression_bomb": lambda tmp, jpeg: _write(tmp / "bomb.png", _bomb_png(30000, 30000)),
    "tiny_image": lambda tmp, jpeg: _write(tmp / "tiny.png", _png_bytes(Image.new("RGB", (8, 8)))),
    "array_two_channels": lambda tmp, jpeg: np.zeros((64, 64, 2), np.uint8),
    "array_nan": lambda tmp, jpeg: np.full((64, 64, 3), np.nan, np.float32),
    "array_negative": lambda tmp, jpeg: np.full((64, 64, 3), -5, np.int32),
    "array_4d_batch": lambda tmp, jpeg: np.zeros((2, 64, 64, 3), np.uint8),
    "wrong_python_type": lambda tmp, jpeg: 12345,
    "raw_bytes_garbage": lambda tmp, jpeg: b"\x89PNG\r\n\x1a\n" + b"\xff" * 100,
}


def _corrupt_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    garbage = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return data[:middle] + garbage + data[middle + 4096 :]


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_error(kind, tmp_path, portrait_jpeg):
    bad = BAD_INPUTS[kind](tmp_path, portrait_jpeg)
    with pytest.raises(ImageError) as raised:
        load_image(bad)
    message = str(raised.value)
    assert len(message) > 15 and "Traceback" not in message
    if isinstance(bad, type(tmp_path)) and bad.is_file():
        assert bad.name in message  # the user is told which file


def test_oversized_file_is_refused_before_reading(tmp_path, portrait_jpeg):
    path = _write(tmp_path / "big.jpg", portrait_jpeg)
    with pytest.raises(ImageError, match="limit"):
        load_image(path, max_bytes=len(portrait_jpeg) - 1)


def test_no_face_is_reported_with_the_file_name(analyzer):
    sky = np.full((300, 400, 3), (120, 170, 230), np.uint8)
    with pytest.raises(NoFaceError, match="no face found in sky.png"):
        analyzer.largest_face(load_image(sky), name="sky.png")
    assert issubclass(NoFaceError, FswapError) and issubclass(ImageError, FswapError)


# ---------------------------------------------------------------- odd but valid inputs
def test_exif_orientation_is_applied(tmp_path, t1_image):
    pil = Image.fromarray(t1_image).rotate(90, expand=True)  # stored turned 90 degrees anticlockwise ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and tagged "rotate 90 degrees clockwise to view"
    path = tmp_path / "rotated.jpg"
    pil.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.shape == t1_image.shape
    assert np.abs(loaded.astype(int) - t1_image).mean() < 6


@pytest.mark.parametrize(
    "mode", ["RGBA", "LA", "L", "P", "PA", "CMYK", "1", "I;16", "I", "F"]
)
def test_every_pil_mode_becomes_rgb_uint8(mode, tmp_path, t1_image):
    pil = Image.fromarray(t1_image[:200, :300])
    if mode in ("I;16", "I", "F"):
        grey = np.asarray(pil.convert("L"), dtype=np.float32)
        pil = Image.fromarray((grey * 257).astype(np.uint16 if mode == "I;16" else np.int32)) if mode != "F" \
            else Image.fromarray(grey / 255.0)
    else:
        pil = pil.convert(mode)
    loaded = load_image(pil)
    assert loaded.dtype == np.uint8 and loaded.shape == (200, 300, 3)
    assert loaded.std() > 10  # still a picture, not a flat fill


def test_sixteen_bit_png_file(tmp_path, t1_image):
    grey = (np.asarray(Image.fromarray(t1_image).convert("L"), dtype=np.uint16) * 257)
    path = tmp_path / "deep.png"
    Image.fromarray(grey).save(path)
    loaded = load_image(path)
    assert np.abs(loaded[..., 0].astype(int) - grey // 257).max() <= 1


def test_transparent_pixels_become_white():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 3] = 0
    assert (load_image(rgba) == 255).all()


def cut_out(photo: np.ndarray) -> np.ndarray:
    """`photo` as a cut-out portrait: clear around an ellipse, half clear on a ring around it, and
    coloured where it is clear (as editors leave it), so that seeing it on white changes pixels."""
    height, width = photo.shape[:2]
    rows, columns = np.mgrid[:height, :width]
    distance = ((columns - width / 2) / (0.45 * width)) ** 2 + ((rows - height / 2) / (0.48 * height)) ** 2
    alpha = np.where(distance < 0.8, 255, np.where(distance < 1.0, 128, 0)).astype(np.uint8)
    colours = photo.copy()
    colours[alpha == 0] = (0, 90, 0)
    return np.dstack([colours, alpha])


def test_a_transparent_photo_is_seen_on_white_and_its_transparency_read_apart(tmp_path, t1_image):
    rgba = cut_out(t1_image)
    path = tmp_path / "cut_out.png"
    Image.fromarray(rgba).save(path)
    assert np.array_equal(load_rgba(path), rgba)
    seen = load_image(path)
    assert (seen[rgba[..., 3] == 0] == 255).all()
    assert np.array_equal(seen[rgba[..., 3] == 255], t1_image[rgba[..., 3] == 255])
    # Opaque photos, and formats without alpha, have no transparency to keep.
    Image.fromarray(t1_image).convert("RGBA").save(tmp_path / "opaque.png")
    assert load_rgba(tmp_path / "opaque.png") is None
    assert load_rgba(_png_bytes(Image.fromarray(t1_image))) is None
    assert load_rgba(t1_image) is None
    # A palette with a clear colour, and grey with alpha.
    palette = Image.fromarray(t1_image).convert("P")
    palette.info["transparency"] = 0
    assert load_rgba(palette) is not None
    assert np.array_equal(load_rgba(Image.fromarray(rgba).convert("LA"))[..., 3], rgba[..., 3])


def test_transparency_is_turned_with_the_pixels(tmp_path, t1_image):
    rgba = cut_out(t1_image)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "turned.png"
    Image.fromarray(rgba).save(path, exif=exif)
    assert load_rgba(path).shape[:2] == load_image(path).shape[:2] == (t1_image.shape[1], t1_image.shape[0])
    assert np.array_equal(load_rgba(path), np.rot90(rgba, k=-1))


def test_an_edit_of_a_transparent_photo_gets_its_transparency_back(tmp_path, t1_image):
    rgba = cut_out(t1_image)
    edited = load_image(rgba).copy()
    edited[200:300, 500:700] = (250, 10, 10)  # inside the opaque ellipse
    edited[0:20, 0:20] = (10, 10, 250)  # in the clear corner: not kept
    result = with_transparency(edited, rgba)
    assert result.shape == rgba.shape
    opaque = rgba[..., 3] == 255
    assert np.array_equal(result[opaque][..., :3], edited[opaque])
    assert np.array_equal(result[~opaque], rgba[~opaque])  # colours under the clear pixels too
    assert with_transparency(edited, None) is edited
    with pytest.raises(ImageError, match="must match"):
        with_transparency(edited[:100], rgba)
    # PNG, WebP and TIFF keep it; JPEG shows it on white.
    assert keeps_alpha("a.png") and keeps_alpha("a.WEBP") and keeps_alpha("a") and not keeps_alpha("a.jpg")
    assert np.array_equal(load_rgba(save_image(tmp_path / "result.png", result)), result)
    assert np.array_equal(load_rgba(save_image(tmp_path / "result.tif", result)), result)
    as_jpeg = load_image(save_image(tmp_path / "result.jpg", result))
    assert load_rgba(tmp_path / "result.jpg") is None and as_jpeg[5, 5].min() > 240


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP", "AVIF", "BMP", "TIFF", "GIF"])
def test_every_format_fswap_names_is_read(format, t1_image):
    buffer = io.BytesIO()
    Image.fromarray(t1_image).save(buffer, format)
    assert load_image(buffer.getvalue()).shape == t1_image.shape


@pytest.mark.parametrize("format", ["PPM", "TGA", "ICO", "PCX", "SGI", "JPEG2000"])
def test_formats_outside_the_list_are_refused_before_decoding(format, t1_image):
    """PIL opens dozens of formats; fswap decodes only those it names (the parent photo of a swap
    in, say, PPM was swapped and then refused by the Content Credentials)."""
    buffer = io.BytesIO()
    Image.fromarray(t1_image[:200, :200]).save(buffer, format)
    assert Image.open(io.BytesIO(buffer.getvalue())).format == format  # PIL would read it
    with pytest.raises(ImageError, match=r"not an image fswap can read \(JPEG, PNG, WebP, AVIF, BMP, TIFF or GIF\)"):
        load_image(buffer.getvalue())


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((200, 0, 0), (0, 200, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = load_image(path)
    assert loaded[0, 0, 0] > 150 and loaded[0, 0, 1] < 50


def test_float_and_sixteen_bit_arrays():
    ramp = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    assert load_image(ramp).max() == 255
    assert load_image((ramp * 65535).astype(np.uint16)).max() == 255


def test_save_image_round_trip(tmp_path, t1_image):
    path = save_image(tmp_path / "out", t1_image)
    assert path.suffix == ".png"
    assert np.array_equal(load_image(path), t1_image)
