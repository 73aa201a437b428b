"""An invisible watermark anchored to each face: it survives JPEG, resizing, cropping and colour
changes because it is written and read in the face's own frame.

Scheme v1, in one paragraph. Each marked face defines a 64x64 *frame*: the similarity transform
that maps its inner 73 landmarks onto a fixed mean face shape (`landmark_template.py`). Cropping
and scaling the photo move the face, and the frame with it, so the reader re-detects the face
and looks in the same place. Inside an ellipse over the face the frame is
cut into 2x2-px cells; a cell's value is its luminance minus the mean of its 8 neighbours. Cells
are grouped into 2x2 tiles and each tile carries one bit by spread-transform dither modulation
(STDM): the key-signed sum of its cells' values, divided by the face's mean |cell value| (so
contrast changes cancel), is quantised to the even or odd half of a key-dithered lattice of
step `STEP` (a photo) or `VIDEO_STEP` (a video's frames, twice as strong). The payload is
128 bits: 112 fixed "magic" bits drawn from the key ("fswap face watermark v1"), which say
"made by fswap", and a 16-bit tag hashing fswap's version and the checkpoint.

Reading, and the false-positive bound. The reader aligns each detected face, then refines the
alignment on a fixed grid of small shifts, scalings and rotations (50,625 points), each read with
both lattice steps (K = 101,250 trials), to the one whose magic bits agree best. For each bit it
computes cos(2π phase), where the phase is the bit's distance from the lattice in steps.
Without a watermark the key's dither makes every phase uniform and independent, so the score S = Σ ±cos over the n magic bits read is a sum of n
independent arcsine variables, and Chernoff's bound gives P(S ≥ s) ≤ min_λ exp(-λ s) I0(λ)^n
exactly, whatever the photo. The reported p-value is that bound times K times the number of
faces checked (a union bound over every alignment, step and face tried); a watermark is reported
when it is below 1e-6.

This is provenance, not security: the key is public, so anyone with fswap can read the mark,
and anyone who tries can remove or forge it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import i0e

from fswap.errors import NoFaceError
from fswap.faces import Face, FaceAnalyzer, invert_matrix, mask_to_image, transform_points
from fswap.faces.align import similarity_transform
from fswap.faces.analyzer import overlapping
from fswap.imageio import ImageInput, load_image
from fswap.provenance.landmark_template import MEAN_SHAPE_106
from fswap.version import __version__

SCHEME = "fswap-face-v1"
KEY = b"fswap face watermark v1"
FRAME_SIZE = 64
FRAME_MARGIN = 0.3  # the frame shows the face plus 30 % context, like `face_template(size, 0.3)`
GRID = 32  # cells per frame side: 2x2-px cells
TILE = 2  # cells per tile side: one tile carries one bit
ELLIPSE = (0.40, 0.47)  # semi-axes of the marked region, as fractions of the frame
MAGIC_BITS = 112
TAG_BITS = 16
PAYLOAD_BITS = MAGIC_BITS + TAG_BITS
#: Lattice step, in percent of the face's mean |cell value|. Larger is more robust and more visible:
#: 100 gives a PSNR of 45 dB (SSIM 0.995) on 178x218 CelebA swaps; see benchmarks/watermark_robustness.py.
STEP = 100.0
#: The step of a video frame's mark. A frame's mark changes with its face from frame to frame, which
#: a re-encode at CRF 28 treats as noise to drop: at `STEP` a 720p clip's frames lost it at half
#: size, at twice the step they keep it (benchmarks/video_watermark.py), for 5 dB of PSNR on the face.
VIDEO_STEP = 200.0
#: Every step a mark may be written with; the reader tries each.
STEPS = (STEP, VIDEO_STEP)
MIN_CONTRAST = 2.0  # grey levels; floor of the contrast normaliser on very flat faces
EMBED_ITERATIONS = 6
#: Alignment refinement grid: shifts in 1/8 frame px, scales in 0.5 %, rotations in 0.25 degrees.
SEARCH_UNITS = (0.125, 0.005, math.radians(0.25))
SEARCH_LIMITS = (12, 4, 4)  # ±1.5 px, ±2 %, ±1 degree
SEARCH_POINTS = (2 * SEARCH_LIMITS[0] + 1) ** 2 * (2 * SEARCH_LIMITS[1] + 1) * (2 * SEARCH_LIMITS[2] + 1)
#: Trials the false-alarm bound counts per face: every alignment of the search grid, read with every step.
TRIALS = SEARCH_POINTS * len(STEPS)
DEFAULT_THRESHOLD = 1e-6
#: A face whose cells would be smaller than this (in image pixels) is too small to carry the mark.
MIN_CELL_PIXELS = 1.0
#: Cells at least this many pixels wide (a face about 70 px across) keep the mark when the picture
#: is halved (`benchmarks/watermark_robustness.py`: 60 px faces lost it in some photos, 40 px faces
#: more often); a face marked with smaller cells gets a notice.
RESIZE_SAFE_CELL_PIXELS = 4.0
BORDER_FRACTION = 0.1  # grey border added around a photo before finding its faces
INNER_LANDMARKS = slice(33, 106)  # 2d106det: 0-32 are the jaw line
_VIEW_SCALE = 0.85  # read large faces from a copy block-averaged to about 0.85 frame px per pixel
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Layout:
    """The key-derived geometry of the mark: which cells carry which bit, with which sign."""

    cells: np.ndarray  # [C] flat indices into the GRID x GRID cell grid, inside the ellipse
    centres: np.ndarray  # [C, 2] cell centres in frame coordinates
    bit_of: np.ndarray  # [C] the payload bit each cell carries
    sign: np.ndarray  # [C] ±1 spreading signs
    dither: np.ndarray  # [PAYLOAD_BITS] lattice offsets in [0, 1)
    magic: np.ndarray  # [MAGIC_BITS] 0/1, the fixed first bits of every payload
    cells_per_bit: np.ndarray  # [PAYLOAD_BITS]


@functools.cache
def layout(key: bytes = KEY) -> Layout:
    """The cell layout for `key` (the public fswap key unless you pass your own)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    rows, columns = np.divmod(np.arange(GRID * GRID), GRID)
    x, y = (columns + 0.5) / GRID - 0.5, (rows + 0.5) / GRID - 0.5
    cells = np.flatnonzero((x / ELLIPSE[0]) ** 2 + (y / ELLIPSE[1]) ** 2 <= 1.0)
    tile_of_cell = (rows[cells] // TILE) * (GRID // TILE) + columns[cells] // TILE
    tiles, tile_index = np.unique(tile_of_cell, return_inverse=True)
    assert len(tiles) >= 2 * TAG_BITS + MAGIC_BITS, "the ellipse holds too few tiles for the payload"
    # The tag bits get two tiles each (they are read without a known value to check against);
    # the magic bits share the rest. The order is key-shuffled, so a crop or an occluder takes
    # out bits scattered over the payload rather than a run of them.
    order = rng.permutation(len(tiles))
    tile_bit = np.empty(len(tiles), np.int64)
    tile_bit[order[: 2 * TAG_BITS]] = MAGIC_BITS + np.arange(2 * TAG_BITS) % TAG_BITS
    tile_bit[order[2 * TAG_BITS :]] = np.arange(len(tiles) - 2 * TAG_BITS) % MAGIC_BITS
    bit_of = tile_bit[tile_index]
    centres = np.stack([columns[cells] + 0.5, rows[cells] + 0.5], axis=1) * (FRAME_SIZE / GRID)
    return Layout(
        cells=cells,
        centres=centres,
        bit_of=bit_of,
        sign=rng.choice(np.array([-1.0, 1.0]), len(cells)),
        dither=rng.uniform(0.0, 1.0, PAYLOAD_BITS),
        magic=rng.integers(0, 2, MAGIC_BITS),
        cells_per_bit=np.bincount(bit_of, minlength=PAYLOAD_BITS).astype(np.float64),
    )


def payload_tag(checkpoint: str | None = None, version: str = __version__) -> int:
    """The 16-bit tag written with the mark: a hash of fswap's version and the checkpoint name."""
    digest = hashlib.sha256(f"fswap {version}\n{checkpoint or ''}".encode()).digest()
    return int.from_bytes(digest[:2], "big")


def payload_bits(tag: int, key: bytes = KEY) -> np.ndarray:
    """The 128 payload bits (0/1): the magic bits, then `tag` most significant bit first."""
    if not 0 <= int(tag) < 2**TAG_BITS:
        raise ValueError(f"tag must fit in {TAG_BITS} bits, got {tag}")
    tag_bits = (int(tag) >> np.arange(TAG_BITS - 1, -1, -1)) & 1
    return np.concatenate([layout(key).magic, tag_bits]).astype(np.int64)


def frame_matrix(landmarks: np.ndarray) -> np.ndarray:
    """The 2x3 similarity taking image coordinates to the 64-px watermark frame of a face.

    It is fitted to the 73 inner landmarks (brows, eyes, nose, mouth), not the jaw line, which
    the landmark model guesses when a crop cuts the chin.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (106, 2):
        raise ValueError(f"the watermark frame needs the 106 face landmarks, got an array of shape {landmarks.shape}")
    template = (0.5 + (MEAN_SHAPE_106 - 0.5) / (1.0 + FRAME_MARGIN)) * FRAME_SIZE
    return similarity_transform(landmarks[INNER_LANDMARKS], template[INNER_LANDMARKS])


# ---------------------------------------------------------------------------------------- reading
@dataclass
class FaceView:
    """The luminance around one face, downscaled when the face is large, and how to map into it."""

    luma: np.ndarray  # [h, w] float32
    image_to_view: np.ndarray  # 2x3
    image_shape: tuple[int, int]

    @classmethod
    def around(cls, image: np.ndarray, matrix: np.ndarray, pad: float = 4.0) -> FaceView:
        """Cut the frame's footprint (plus `pad` frame px for the alignment search) out of `image`.

        A large face is block-averaged by an integer factor k on a grid anchored at the image's
        origin, so the same pixels give the same view whatever window they were cut from.
        """
        block = view_block(matrix)
        x0, y0, x1, y1 = footprint(matrix, image.shape, pad)
        x0, y0 = x0 - x0 % block, y0 - y0 % block
        x1, y1 = x1 - (x1 - x0) % block, y1 - (y1 - y0) % block
        if x1 <= x0 or y1 <= y0:
            raise ValueError("the face lies outside the image")
        window = image[y0:y1, x0:x1]
        luma = window.astype(np.float32) @ _LUMA if window.ndim == 3 else window.astype(np.float32)
        if block > 1:
            height, width = luma.shape
            luma = luma.reshape(height // block, block, width // block, block).mean(axis=(1, 3))
        # View pixel j averages image pixels [x0 + j k, x0 + (j + 1) k): its centre is x0 + j k + (k - 1) / 2.
        offset = (block - 1) / 2.0
        to_view = np.array([[1.0 / block, 0.0, -(x0 + offset) / block], [0.0, 1.0 / block, -(y0 + offset) / block]])
        return cls(luma, to_view, image.shape[:2])

    def frame(self, matrix: np.ndarray) -> np.ndarray:
        """The [FRAME_SIZE, FRAME_SIZE] luminance frame for the image → frame `matrix`."""
        view_matrix = compose(matrix, invert_matrix(self.image_to_view))
        return cv2.warpAffine(
            self.luma, view_matrix, (FRAME_SIZE, FRAME_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )

    def valid_cells(self, matrix: np.ndarray, key: bytes = KEY) -> np.ndarray:
        return valid_cells(matrix, self.image_shape, key)


def valid_cells(matrix: np.ndarray, image_shape: tuple[int, ...], key: bytes = KEY) -> np.ndarray:
    """[C] bool: cells whose neighbourhood lies inside the image (the rest were cropped away)."""
    centres = transform_points(layout(key).centres, invert_matrix(matrix))
    pad = 1.5 * (FRAME_SIZE / GRID) / matrix_scale(matrix)
    height, width = image_shape[:2]
    inside_x = (centres[:, 0] > pad - 0.5) & (centres[:, 0] < width - 0.5 - pad)
    inside_y = (centres[:, 1] > pad - 0.5) & (centres[:, 1] < height - 0.5 - pad)
    return inside_x & inside_y


def footprint(matrix: np.ndarray, image_shape: tuple[int, ...], pad: float) -> tuple[int, int, int, int]:
    """The image rectangle x0, y0, x1, y1 under the frame grown by `pad` frame px, clipped to the image."""
    low, high = -pad, FRAME_SIZE + pad
    corners = transform_points(np.array([[low, low], [high, low], [low, high], [high, high]]), invert_matrix(matrix))
    height, width = image_shape[:2]
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, [width, height])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, [width, height])
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError("the face lies outside the image")
    return int(x0), int(y0), int(x1), int(y1)


def cell_values(frame: np.ndarray, key: bytes = KEY) -> np.ndarray:
    """[C] each marked cell's mean luminance minus the mean of its 8 neighbours."""
    cells = cv2.resize(frame, (GRID, GRID), interpolation=cv2.INTER_AREA)  # [G, G]
    neighbours = (cv2.boxFilter(cells, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT) - cells) / 8.0
    return (cells - neighbours).ravel()[layout(key).cells]


def projections(values: np.ndarray, valid: np.ndarray, key: bytes = KEY) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-bit STDM projections in percent of the contrast, which bits are readable, and the contrast.

    values: [C] cell values; valid: [C] bool. Returns p [B], readable [B] bool, contrast (grey levels).
    """
    lay = layout(key)
    contrast = max(float(np.abs(values[valid]).mean()) if valid.any() else 0.0, MIN_CONTRAST)
    signed_sum = np.bincount(lay.bit_of, lay.sign * values, minlength=PAYLOAD_BITS)
    projection = signed_sum / np.sqrt(lay.cells_per_bit) / contrast * 100.0
    readable = np.bincount(lay.bit_of, ~valid, minlength=PAYLOAD_BITS) == 0
    return projection, readable, contrast


def soft_bits(projection: np.ndarray, key: bytes = KEY, step: float = STEP) -> np.ndarray:
    """cos(2π · lattice phase): +1 on a bit-0 lattice point, -1 on a bit-1 point."""
    return np.cos(2.0 * np.pi * (projection / step - layout(key).dither))


def log10_false_alarm(score: float, bits: int, trials: int = 1) -> float:
    """log10 of the bound on P(magic score ≥ `score` | no watermark) over `trials` independent tries.

    Without a watermark each of the `bits` terms is cos of a uniform phase (E exp(λ cos) = I0(λ)),
    so P(S ≥ s) ≤ min_λ exp(-λ s) I0(λ)^bits (Chernoff); the union bound multiplies by `trials`.
    """
    if bits == 0 or score <= 0:
        return 0.0

    def log_bound(lam: float) -> float:
        return -lam * score + bits * (math.log(i0e(lam)) + lam)

    best = minimize_scalar(log_bound, bounds=(1e-6, 200.0), method="bounded").fun
    return min(0.0, (best + math.log(trials)) / math.log(10.0))


@dataclass
class FaceMark:
    """What the reader found on one face."""

    box: np.ndarray  # [4] x0, y0, x1, y1 of the face
    log10_p: float  # log10 bound on the chance of this score without a watermark (alignment search included)
    bit_accuracy: float  # fraction of the readable magic bits that match
    bits_read: int  # magic bits inside the image (a crop can cut some away)
    bits: np.ndarray = field(repr=False)  # [PAYLOAD_BITS] 0/1, as decoded (cut-away bits are guesses)
    tag: int | None = None  # the 16-bit payload tag, None when some of its bits were cut away

    def tag_matches(self, checkpoint: str | None, version: str = __version__) -> bool:
        return self.tag is not None and self.tag == payload_tag(checkpoint, version)


@dataclass
class WatermarkReport:
    """The result of `detect_watermark`: `found` when some face's mark is beyond chance."""

    found: bool
    log10_p: float | None  # image-level bound (the best face's, times the faces checked); None: no face
    faces: list[FaceMark] = field(default_factory=list)  # every face checked, largest first
    threshold: float = DEFAULT_THRESHOLD
    note: str = ""

    @property
    def best(self) -> FaceMark | None:
        return min(self.faces, key=lambda face: face.log10_p) if self.faces else None

    def summary(self) -> str:
        best = self.best
        if best is None:
            return f"Watermark: absent ({self.note or 'no face to read'})"
        if not self.found:
            return f"Watermark: absent ({len(self.faces)} face(s) read, best {format_p(self.log10_p)})"
        evidence = f"{format_p(self.log10_p)}, {best.bits_read} magic bits read, {best.bit_accuracy:.0%} match"
        tag = f"; payload tag {best.tag:04x}" if best.tag is not None else ""
        return f"Watermark: FOUND ({SCHEME} on {sum(f.log10_p < math.log10(self.threshold) for f in self.faces)} of {len(self.faces)} face(s); {evidence}{tag})"


def format_p(log10_p: float) -> str:
    """A false-alarm bound for people: "p ≤ 5e-58", "p ≈ 0.3"."""
    if log10_p > -3:
        return f"p ≈ {10**log10_p:.2g}"
    exponent = math.floor(log10_p)
    return f"p ≤ {math.ceil(10 ** (log10_p - exponent))}e{exponent}"


def read_face(view: FaceView, matrix: np.ndarray, key: bytes = KEY) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Refine the alignment on the search grid and read the payload, with whichever of `STEPS`
    its magic bits agree with best.

    Returns the refined matrix, the magic score, the soft bits [B] and the readable mask [B].
    """
    lay = layout(key)
    magic_sign = 1.0 - 2.0 * lay.magic
    seen: dict[tuple[int, int, int, int], tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate(point: tuple[int, int, int, int]):
        if point not in seen:
            candidate = perturb(matrix, *point)
            valid = view.valid_cells(candidate, key)
            projection, readable, _ = projections(cell_values(view.frame(candidate), key), valid, key)
            readings = []
            for step in STEPS:
                soft = soft_bits(projection, key, step)
                readings.append((float(np.sum((soft[:MAGIC_BITS] * magic_sign)[readable[:MAGIC_BITS]])), soft))
            score, soft = max(readings, key=lambda reading: reading[0])
            seen[point] = (score, candidate, soft, readable)
        return seen[point][0]

    def search(centre, offsets):
        candidates = [tuple(int(c + o) for c, o in zip(centre, offset, strict=True)) for offset in offsets]
        limits = (SEARCH_LIMITS[0], SEARCH_LIMITS[0], SEARCH_LIMITS[1], SEARCH_LIMITS[2])
        candidates = [p for p in candidates if all(abs(v) <= limit for v, limit in zip(p, limits, strict=True))]
        return max(candidates, key=evaluate)

    shift = SEARCH_LIMITS[0]
    # Coarse to fine: shifts on a 0.5-px grid, then scale and rotation, then two joint refinements.
    shifts = range(-shift, shift + 1, 4)
    best = search((0, 0, 0, 0), [(dx, dy, 0, 0) for dx in shifts for dy in shifts])
    best = search(best, [(0, 0, ds, da) for ds in range(-4, 5, 2) for da in range(-4, 5, 2)])
    for step in (2, 1):
        moves = (-step, 0, step)
        best = search(best, [(dx, dy, ds, da) for dx in moves for dy in moves for ds in (-1, 0, 1) for da in (-1, 0, 1)])
    score, refined, soft, readable = seen[best]
    return refined, score, soft, readable


def detect_watermark(
    image: ImageInput,
    *,
    analyzer: FaceAnalyzer | None = None,
    faces: list[Face] | None = None,
    max_faces: int = 8,
    threshold: float = DEFAULT_THRESHOLD,
    key: bytes = KEY,
) -> WatermarkReport:
    """Look for the fswap watermark on the faces of an image.

    Args:
        image: an RGB uint8 array [H, W, 3], or anything `fswap.imageio.load_image` reads.
        analyzer: the face analyzer (default: the registry-shipped models).
        faces: faces already detected in `image` with landmarks (skips detection).
        max_faces: read at most this many faces, largest first.
        threshold: report a watermark when the image-level false-alarm bound is below this.

    Raises:
        fswap.ImageError: `image` cannot be read.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold is a probability in (0, 1), got {threshold}")
    image = load_image(image)
    if faces is None:
        faces = find_faces(image, analyzer or default_analyzer())
    faces = [face for face in faces if face.landmarks is not None][:max_faces]
    if not faces:
        return WatermarkReport(found=False, log10_p=None, threshold=threshold, note="no face found")
    marks = []
    for face in faces:
        matrix = frame_matrix(face.landmarks)
        try:
            view = FaceView.around(image, matrix)
        except ValueError:
            continue
        _, score, soft, readable = read_face(view, matrix, key)
        magic_readable = readable[:MAGIC_BITS]
        bits = (soft < 0).astype(np.int64)
        lay = layout(key)
        matches = bits[:MAGIC_BITS][magic_readable] == lay.magic[magic_readable]
        tag_bits = bits[MAGIC_BITS:]
        tag = int("".join(map(str, tag_bits)), 2) if readable[MAGIC_BITS:].all() else None
        marks.append(
            FaceMark(
                box=face.box,
                log10_p=log10_false_alarm(score, int(magic_readable.sum()), TRIALS),
                bit_accuracy=float(matches.mean()) if matches.size else 0.0,
                bits_read=int(magic_readable.sum()),
                bits=bits,
                tag=tag,
            )
        )
    if not marks:
        return WatermarkReport(found=False, log10_p=None, threshold=threshold, note="no face inside the image")
    log10_p = min(0.0, min(mark.log10_p for mark in marks) + math.log10(len(marks)))
    return WatermarkReport(found=log10_p < math.log10(threshold), log10_p=log10_p, faces=marks, threshold=threshold)


# ---------------------------------------------------------------------------------------- writing
def embed_watermark(
    image: ImageInput,
    faces: list[Face] | None = None,
    *,
    checkpoint: str | None = None,
    analyzer: FaceAnalyzer | None = None,
    key: bytes = KEY,
    unmarked: list[str] | None = None,
) -> np.ndarray:
    """Write the fswap watermark into faces of an RGB uint8 image; return the marked copy.

    The faces are found again in `image` itself, so the mark is aligned the way a reader will
    see it. `faces` (e.g. the swapped faces of a `SwapOutput`) chooses which faces to mark: each is
    matched to the re-detected face it overlaps most. Only luminance changes, by a few grey
    levels, inside an ellipse over each face. A face under about 20 px across is skipped with a
    warning (or a line in `unmarked`); a face must be about 70 px across for its mark to survive
    halving the image, and a smaller one is marked with a notice saying so.

    Args:
        image: an RGB uint8 array [H, W, 3], or anything `fswap.imageio.load_image` reads.
        faces: the faces to mark; None marks every face found.
        checkpoint: the model that made the image, hashed into the payload's 16-bit tag.
        analyzer: the face analyzer (default: the registry-shipped models).
        unmarked: given, each face that cannot be marked (or whose mark will not survive shrinking
            the picture) is told here, in plain words for the user, instead of by a warning.

    Raises:
        fswap.ImageError: `image` cannot be read.
        fswap.NoFaceError: there is no face in `image` to mark.
    """
    image = load_image(image)
    near = None if faces is None else [face.box for face in faces]
    found = find_faces(image, analyzer or default_analyzer(), near=near)
    if not found and not faces:
        raise NoFaceError("no face found to watermark; the fswap watermark is written into faces")
    targets = found if faces is None else [_match(face, found) for face in faces]
    bits = payload_bits(payload_tag(checkpoint), key)
    marked = image.copy()
    for face in targets:
        where = f"the face at {np.round(face.box).astype(int).tolist()}"
        if face.landmarks is None:
            reason = f"{where} was not found again in the result, so it carries no invisible watermark"
        else:
            matrix = frame_matrix(face.landmarks)
            cell_pixels = (FRAME_SIZE / GRID) / matrix_scale(matrix)
            if cell_pixels >= MIN_CELL_PIXELS:
                mark_face(marked, matrix, bits, key)
                if cell_pixels < RESIZE_SAFE_CELL_PIXELS:
                    (unmarked.append if unmarked is not None else _warn)(
                        f"{where} is small (under about 70 px across): it carries fswap's invisible watermark, but "
                        "the mark may not survive the picture being shrunk (halving it can lose it); then only the file's "
                        "Content Credentials then say that it was swapped")
                continue
            reason = f"{where} is too small (under about 20 px across) to carry fswap's invisible watermark"
        message = (f"{reason}: only the file's Content Credentials say that it was swapped, and saving the "
                   "picture again loses them")
        (unmarked.append if unmarked is not None else _warn)(message)
    return marked


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def mark_face(image: np.ndarray, matrix: np.ndarray, bits: np.ndarray, key: bytes = KEY, step: float = STEP) -> None:
    """Mark one face (image → frame `matrix`) of `image`, in place, with the 0/1 `bits`, by
    closed-loop STDM on the lattice of `step` (one of `STEPS`). Only the face's window is
    touched, so marking faces one by one never copies the whole photo.

    Each pass reads the bits as the reader would (after rounding to uint8), moves every bit's
    projection to the nearest lattice point of its value, spreads the change over the bit's
    cells with the key signs, and paints the cell changes back into the image.
    """
    assert step in STEPS, f"a mark written with step {step} would not be read"
    lay = layout(key)
    x0, y0, x1, y1 = footprint(matrix, image.shape, pad=1.0)
    block = view_block(matrix)  # keep the reader's block-averaging grid: anchor the window on it
    x0, y0 = x0 - x0 % block, y0 - y0 % block
    local = compose(matrix, np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))  # window → frame
    valid = valid_cells(matrix, image.shape, key)
    base = image[y0:y1, x0:x1].astype(np.float32)
    current = image[y0:y1, x0:x1]
    delta_cells = np.zeros(GRID * GRID, np.float32)
    for _ in range(EMBED_ITERATIONS):
        frame = FaceView.around(current, local, pad=1.0).frame(local)
        projection, readable, contrast = projections(cell_values(frame, key), valid, key)
        phase = projection / step - lay.dither - bits / 2.0
        target = (np.round(phase) + lay.dither + bits / 2.0) * step
        change = np.where(readable, target - projection, 0.0) * contrast / 100.0 / np.sqrt(lay.cells_per_bit)
        delta_cells[lay.cells] += (lay.sign * change[lay.bit_of]).astype(np.float32)
        delta_frame = cv2.resize(delta_cells.reshape(GRID, GRID), (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_CUBIC)
        delta = mask_to_image(delta_frame, local, base.shape)
        current = np.clip(base + delta[..., None], 0, 255).round().astype(np.uint8)
    image[y0:y1, x0:x1] = current


# ---------------------------------------------------------------------------------------- helpers
def matrix_scale(matrix: np.ndarray) -> float:
    """Frame pixels per image pixel of a similarity matrix."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def view_block(matrix: np.ndarray) -> int:
    """The integer block-averaging factor that brings a face to about `_VIEW_SCALE` frame px per pixel."""
    return max(1, round(_VIEW_SCALE / matrix_scale(matrix)))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine `outer ∘ inner`."""
    result = np.empty((2, 3))
    result[:, :2] = outer[:, :2] @ inner[:, :2]
    result[:, 2] = outer[:, :2] @ inner[:, 2] + outer[:, 2]
    return result


def perturb(matrix: np.ndarray, dx: int, dy: int, ds: int, da: int) -> np.ndarray:
    """`matrix` followed by a small similarity about the frame centre, in `SEARCH_UNITS` steps."""
    shift_unit, scale_unit, angle_unit = SEARCH_UNITS
    scale, angle = 1.0 + ds * scale_unit, da * angle_unit
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = np.full(2, FRAME_SIZE / 2.0)
    local = np.empty((2, 3))
    local[:, :2] = rotation
    local[:, 2] = centre - rotation @ centre + np.array([dx, dy]) * shift_unit
    return compose(local, matrix)


def find_faces(image: np.ndarray, analyzer: FaceAnalyzer, near: list[np.ndarray] | None = None) -> list[Face]:
    """Faces with landmarks, found in the photo framed by a grey border of 10 % of its longer side.

    The border keeps faces cut by the image edge (after a crop) in the detector's view, which
    steadies their landmarks; writer and reader both look this way. `near` (boxes) keeps only the
    faces overlapping them, so the writer does not predict landmarks for faces it leaves alone.
    """
    return analyzer.detect(image, landmarks=True, border=BORDER_FRACTION, near=near)


@functools.cache
def default_analyzer() -> FaceAnalyzer:
    """The registry-shipped face analyzer, loaded once."""
    return FaceAnalyzer.from_pretrained()


def _match(face: Face, found: list[Face]) -> Face:
    """The re-detected face that overlaps `face` most (IoU ≥ 0.3), else `face` itself."""
    best = overlapping(face.box, [candidate.box for candidate in found])
    return face if best is None else found[best]
