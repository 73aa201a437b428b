"""Pictures that explain a swap: faces found, colour-mapped mask overlays with legends, and
labelled grids of the per-face masks and of the generator's control masks at every scale.

Pure drawing on RGB uint8 arrays (numpy, OpenCV, PIL); no gradio, no torch. Full-image views
are rendered straight into a display-sized window around the swapped faces, so a 20-megapixel
photo costs no more to explain than a small one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fswap.faces import Face, mask_to_image
from fswap.faces.draw import annotate_faces

#: Longest side of pictures sent to the browser (the download keeps full resolution).
DISPLAY_MAX_SIDE = 1600
#: Longest side of the zoomed views on the Masks tab.
VIEW_MAX_SIDE = 1024

BACKGROUND = (17, 24, 39)
CELL_BACKGROUND = (31, 41, 55)
TEXT = (243, 244, 246)
MUTED = (156, 163, 175)


@dataclass(frozen=True)
class MaskStyle:
    """How one kind of mask is coloured and what its two ends mean."""

    colormap: int
    low: str  # what 0 means
    high: str  # what 1 means


MASK = MaskStyle(cv2.COLORMAP_VIRIDIS, "0: no", "1: yes")
BLEND = MaskStyle(cv2.COLORMAP_INFERNO, "0: target kept", "1: swapped face pasted")
OCCLUSION = MaskStyle(cv2.COLORMAP_VIRIDIS, "0: occluder, kept from the target", "1: visible skin")
FACE_REGION = MaskStyle(cv2.COLORMAP_VIRIDIS, "0: outside", "1: face region from the 106 landmarks")
OCCLUSION_SHORT = MaskStyle(cv2.COLORMAP_VIRIDIS, "0: occluder", "1: skin")
CONTROL = MaskStyle(
    cv2.COLORMAP_PLASMA, "0: drawn from the source identity", "1: kept the target's attributes"
)


# ---------------------------------------------------------------------- basics
def fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` downscaled (area interpolation) so that its longest side is at most `max_side`."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def display_scale(shape: tuple[int, ...], max_side: int = DISPLAY_MAX_SIDE) -> float:
    """The factor `fit` applies to an image of `shape`."""
    return min(1.0, max_side / max(shape[:2]))


def colourise(mask: np.ndarray, colormap: int) -> np.ndarray:
    """A [H, W] mask in [0, 1] as an RGB picture through an OpenCV colour map."""
    levels = np.clip(np.nan_to_num(mask) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, colormap), cv2.COLOR_BGR2RGB)


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    style: MaskStyle,
    *,
    coverage: np.ndarray | None = None,
    strength: float = 0.62,
) -> np.ndarray:
    """The colour-mapped `mask` over a dimmed, desaturated `image`.

    `coverage` ([H, W] in [0, 1]) limits the colour to where the mask is defined (a face crop's
    footprint); elsewhere the photo is only dimmed.
    """
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    base = (0.45 * image.astype(np.float32) + 0.55 * grey.astype(np.float32)) * 0.7
    alpha = strength * (np.ones(mask.shape, np.float32) if coverage is None else coverage.astype(np.float32))
    heat = colourise(mask, style.colormap).astype(np.float32)
    mixed = base * (1.0 - alpha[..., None]) + heat * alpha[..., None]
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # DejaVu Sans where the system has it (packages.txt installs it on a Space), else Pillow's own.
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _text_width(text: str, size: int) -> int:
    left, _, right, _ = _font(size).getbbox(text)
    return int(right - left)


# ---------------------------------------------------------------------- legends and panels
def colour_bar(width: int, style: MaskStyle, font_size: int) -> np.ndarray:
    """A strip with the colour ramp of `style` and what its ends mean."""
    pad = max(8, font_size // 2)
    bar_height = max(10, font_size * 2 // 3)
    height = pad + bar_height + font_size + 2 * pad
    strip = Image.new("RGB", (width, height), BACKGROUND)
    ramp = colourise(
        np.tile(np.linspace(0.0, 1.0, width - 2 * pad, dtype=np.float32), (bar_height, 1)), style.colormap
    )
    strip.paste(Image.fromarray(ramp), (pad, pad))
    draw = ImageDraw.Draw(strip)
    y = pad + bar_height + pad // 2
    draw.text((pad, y), style.low, fill=MUTED, font=_font(font_size))
    draw.text(
        (width - pad - _text_width(style.high, font_size), y), style.high, fill=MUTED, font=_font(font_size)
    )
    return np.asarray(strip)


def panel(
    image: np.ndarray, title: str, style: MaskStyle | None = None, *, min_width: int = 480
) -> np.ndarray:
    """`image` with a title above and, given a style, its colour bar below, on a dark card."""
    width = max(image.shape[1], min_width)
    font_size = int(np.clip(width / 26, 14, 40))
    pad = font_size // 2
    header = Image.new("RGB", (width, font_size + 2 * pad), BACKGROUND)
    ImageDraw.Draw(header).text((pad, pad), title, fill=TEXT, font=_font(font_size))
    body = np.full((image.shape[0], width, 3), BACKGROUND, np.uint8)
    left = (width - image.shape[1]) // 2
    body[:, left : left + image.shape[1]] = image
    parts = [np.asarray(header), body]
    if style is not None:
        parts.append(colour_bar(width, style, max(12, font_size - 4)))
    return np.concatenate(parts, axis=0)


def labelled_grid(
    cells: list[list[np.ndarray]],
    *,
    title: str,
    column_titles: list[str],
    row_titles: list[str],
    style: MaskStyle | None = None,
    cell_notes: list[list[str]] | None = None,
) -> np.ndarray:
    """Square cells (all the same size) in rows and columns, with titles, notes and a legend."""
    size = cells[0][0].shape[0]
    gap = max(4, size // 28)
    font_size = int(np.clip(size / 9, 12, 20))
    row_label = max(_text_width(text, font_size) for text in row_titles) + 3 * gap
    header = int(font_size * 2.6) + gap
    columns = len(column_titles)
    width = max(row_label + columns * (size + gap) + gap, _text_width(title, font_size + 2) + 4 * gap)
    height = header + len(cells) * (size + gap) + gap
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((gap * 2, gap), title, fill=TEXT, font=_font(font_size + 2))
    for column, text in enumerate(column_titles):
        x = row_label + column * (size + gap) + (size - _text_width(text, font_size)) // 2
        draw.text((x, header - font_size - gap), text, fill=MUTED, font=_font(font_size))
    note_size = max(11, font_size - 3)
    for row, (images, text) in enumerate(zip(cells, row_titles, strict=True)):
        y = header + row * (size + gap)
        draw.text((gap * 2, y + (size - font_size) // 2), text, fill=TEXT, font=_font(font_size))
        for column, cell in enumerate(images):
            x = row_label + column * (size + gap)
            canvas.paste(Image.fromarray(cell), (x, y))
            note = cell_notes[row][column] if cell_notes else ""
            if note:
                box = (x, y + size - note_size - gap, x + size, y + size)
                draw.rectangle(box, fill=BACKGROUND)
                draw.text((x + gap, box[1] + gap // 2), note, fill=TEXT, font=_font(note_size))
    grid = np.asarray(canvas)
    if style is not None:
        grid = np.concatenate([grid, colour_bar(width, style, max(12, font_size - 2))], axis=0)
    return grid


# ---------------------------------------------------------------------- faces
def faces_in_view(faces: list[Face], origin: tuple[float, float], scale: float) -> list[Face]:
    """`faces` in the coordinates of a view that starts at `origin` and is scaled by `scale`."""
    shift = np.asarray(origin, np.float64)

    def to_view(points):
        return None if points is None else (np.asarray(points) - shift) * scale

    return [
        replace(
            face,
            box=(face.box - np.tile(shift, 2)) * scale,
            keypoints=to_view(face.keypoints),
            landmarks=to_view(face.landmarks),
        )
        for face in faces
    ]


def verdicts_in_view(verdicts: list, shape: tuple[int, ...], scale: float) -> list:
    """Swap-detector verdicts (`fswap.swap_detection.FaceVerdict`) on the photo scaled by `scale` to
    `shape` (`fit`), heat maps and all: drawn there, a large photo's are never drawn at full size."""
    to_image = np.diag([1.0 / scale, 1.0 / scale, 1.0])  # view point -> image point
    return [
        replace(verdict, face=faces_in_view([verdict.face], (0.0, 0.0), scale)[0],
                matrix=verdict.matrix @ to_image, image_shape=tuple(shape[:2]))
        for verdict in verdicts
    ]


def face_thumbnail(image: np.ndarray, face: Face, size: int = 256) -> np.ndarray:
    """A square crop around `face` with some context, `size` px."""
    x0, y0, x1, y1 = face.box
    centre_x, centre_y, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
    scale = size / (2 * half)
    matrix = np.array([[scale, 0, (half - centre_x) * scale], [0, scale, (half - centre_y) * scale]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def faces_found(image: np.ndarray, faces: list[Face], *, landmarks: bool = False) -> np.ndarray:
    """The display-sized photo with each face's box, index and keypoints (the Upload tab's view)."""
    scale = display_scale(image.shape)
    return annotate_faces(
        fit(image, DISPLAY_MAX_SIDE), faces_in_view(faces, (0.0, 0.0), scale), landmarks=landmarks
    )


# ---------------------------------------------------------------------- views of the full target
@dataclass(frozen=True)
class View:
    """A display-sized window on a large image: image point p shows at (p - origin) * scale."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return round((self.y1 - self.y0) * self.scale), round((self.x1 - self.x0) * self.scale)

    def cut(self, image: np.ndarray) -> np.ndarray:
        window = image[self.y0 : self.y1, self.x0 : self.x1]
        height, width = self.shape
        return cv2.resize(
            window, (width, height), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        )

    def crop_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The image → crop matrix re-expressed as view → crop."""
        linear, shift = matrix[:, :2], matrix[:, 2]
        return np.concatenate([linear / self.scale, (linear @ (self.x0, self.y0) + shift)[:, None]], axis=1)

    def mask(self, crop_mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """A crop-space mask warped into the view."""
        return mask_to_image(crop_mask, self.crop_matrix(matrix), self.shape)


def view_around(
    boxes: list[np.ndarray], shape: tuple[int, ...], *, pad: float = 0.6, max_side: int = VIEW_MAX_SIDE
) -> View:
    """A window on the image around `boxes`, each widened by `pad` of its size, scaled to fit `max_side`."""
    height, width = shape[:2]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sides = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    low = np.floor((boxes[:, :2] - pad * sides).min(axis=0)).astype(int)
    high = np.ceil((boxes[:, 2:] + pad * sides).max(axis=0)).astype(int)
    # Square where the image allows: the views sit side by side in a gallery.
    side = int((high - low).max())
    low = np.minimum(
        np.maximum((low + high) // 2 - side // 2, 0), np.maximum(np.array([width, height]) - side, 0)
    )
    high = low + side
    x0, y0 = max(int(low[0]), 0), max(int(low[1]), 0)
    x1, y1 = min(int(high[0]), width), min(int(high[1]), height)
    scale = max_side / max(x1 - x0, y1 - y0)
    return View(x0, y0, x1, y1, min(scale, 4.0))


def explain_target(
    output, target: np.ndarray, *, occlusion_aware: bool = True
) -> list[tuple[np.ndarray, str]]:
    """Overlays on the target, zoomed on the swapped faces: what was found and what each mask covers.

    `output` is a `fswap.SwapOutput`; returns (picture, caption) pairs for a gallery. Without
    occlusion-aware blending the pipeline treats the whole crop as visible, and the captions say so.
    """
    view = view_around([swapped.face.box for swapped in output.swapped], target.shape)
    base = view.cut(target)
    height, width = view.shape
    blend = np.zeros((height, width), np.float32)
    visible = np.zeros_like(blend)
    face_region = np.zeros_like(blend)
    footprint = np.zeros_like(blend)
    for swapped in output.swapped:
        ones = np.ones_like(swapped.blend_mask)
        blend = np.maximum(blend, view.mask(swapped.blend_mask, swapped.matrix))
        face_region = np.maximum(face_region, view.mask(swapped.face_mask, swapped.matrix))
        inside = view.mask(ones, swapped.matrix)
        visible = np.where(inside > footprint, view.mask(swapped.occlusion_mask, swapped.matrix), visible)
        footprint = np.maximum(footprint, inside)
    faces = faces_in_view(output.faces, (view.x0, view.y0), view.scale)
    chosen = ", ".join(str(swapped.index) for swapped in output.swapped)
    occlusion = "Occlusion mask" if occlusion_aware else "Occlusion mask: off"
    return [
        (
            panel(annotate_faces(base, faces, landmarks=True), "Faces found"),
            f"Faces found ({len(output.faces)}); swapped: {chosen}",
        ),
        (panel(overlay(base, blend, BLEND), "Blend mask", BLEND), "Blend mask: what was pasted"),
        (panel(overlay(base, visible, OCCLUSION, coverage=footprint), occlusion, OCCLUSION), occlusion),
        (panel(overlay(base, face_region, FACE_REGION), "Face region", FACE_REGION), "Face region"),
    ]


def source_grid(
    source_crops: list[np.ndarray], source_masks: list[np.ndarray], *, occlusion_aware: bool = True
) -> np.ndarray:
    """Each source photo's aligned face and its occlusion mask: the skin the identity is read from."""
    size = cell_size(source_crops[0].shape[0])
    rows = [
        [_cell(crop, size), overlay(_cell(crop, size), _cell(mask, size), OCCLUSION)]
        for crop, mask in zip(source_crops, source_masks, strict=True)
    ]
    return labelled_grid(
        rows,
        title="Source photos",
        column_titles=["aligned face", "occlusion mask" if occlusion_aware else "masks: off"],
        row_titles=[f"photo {number}" for number in range(1, len(rows) + 1)],
        style=OCCLUSION_SHORT,
        cell_notes=[["", f"{mask.mean():.0%} visible"] for mask in source_masks],
    )


# ---------------------------------------------------------------------- per-face grids
def _cell(image: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    interpolation = (
        cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)
    )
    return cv2.resize(image, (size, size), interpolation=interpolation)


def cell_size(crop_size: int) -> int:
    return int(np.clip(crop_size, 144, 192))


def compositing_grid(output) -> np.ndarray:
    """Per swapped face: the target crop, its visible skin, the face region, where the source's own
    occluders land when they are left out (0 there: not pasted; `paste_source_occluders` "inside"
    or "none"), the blend mask made of them, and the generated face (with several source photos, which one
    gave its texture) — how the paste-back was decided."""
    size = cell_size(output.swapped[0].target_crop.shape[0])
    rows, notes = [], []
    several = len(output.source_faces) > 1
    relit = output.swapped[0].trust_map is not None
    for swapped in output.swapped:
        target = _cell(swapped.target_crop, size)
        trust = [overlay(target, _cell(swapped.trust_map, size), MASK)] if relit else []
        rows.append(
            [
                target,
                overlay(target, _cell(swapped.occlusion_mask, size), MASK),
                overlay(target, _cell(swapped.face_mask, size), MASK),
                overlay(target, _cell(1.0 - swapped.source_occluders, size), MASK),
                *trust,
                overlay(target, _cell(swapped.blend_mask, size), MASK),
                _cell(swapped.swapped_crop, size),
            ]
        )
        notes.append(
            [
                "",
                f"{swapped.occlusion_mask.mean():.0%} visible",
                "",
                f"{swapped.source_occluders.mean():.0%} not pasted" if swapped.source_occluders.any()
                else "none left out",
                *([trust_note(swapped)] if relit else []),
                f"{swapped.blend_mask.mean():.0%} pasted",
                texture_note(swapped, several),
            ]
        )
    return labelled_grid(
        rows,
        title="How each face was blended",
        column_titles=["target", "visible skin", "face region", "source's occluders",
                       *(["trust in source"] if relit else []), "blend mask", "rendered" if relit else "generated"],
        row_titles=[f"face {swapped.index}" for swapped in output.swapped],
        style=MASK,
        cell_notes=notes,
    )


def trust_note(swapped) -> str:
    """Under a trust map (relit rendering): how much of the face came from the source's other side."""
    face = swapped.face_mask > 0.5
    share = float((swapped.mirror_filled[face] > 0.5).mean()) if face.any() else 0.0
    return f"{share:.0%} from its mirror side" if share >= 0.005 else "all from the source"


def texture_note(swapped, several: bool) -> str:
    """Under a generated face: which source photo its texture came from (with several), and
    whether in its mirror image."""
    mirrored = " (mirrored)" if swapped.texture_mirrored else ""
    if several:
        return f"from source {swapped.texture_source + 1}{mirrored}"
    return "source mirrored" if mirrored else ""


def control_mask_grid(output) -> np.ndarray:
    """Per swapped face and per generator scale (coarse to fine), the control mask over the target
    crop: where the generator kept the target's attribute features instead of the new identity."""
    size = cell_size(output.swapped[0].target_crop.shape[0])
    scales = [mask.shape[-1] for mask in output.swapped[0].control_masks]
    title = "Generator control masks, coarse to fine" if scales else \
        "No control masks: the relit rendering forms the face without the generator"

    rows, notes = [], []
    for swapped in output.swapped:
        target = _cell(swapped.target_crop, size)
        masks = [
            overlay(target, _cell(mask, size, nearest=True), CONTROL, strength=0.72)
            for mask in swapped.control_masks
        ]
        rows.append([target, _cell(swapped.swapped_crop, size), *masks])
        notes.append(["", "", *(f"mean {mask.mean():.2f}" for mask in swapped.control_masks)])
    return labelled_grid(
        rows,
        title=title,
        column_titles=["target", "generated" if scales else "rendered", *(f"{scale}x{scale}" for scale in scales)],
        row_titles=[f"face {swapped.index}" for swapped in output.swapped],
        style=CONTROL,
        cell_notes=notes,
    )


# ---------------------------------------------------------------------- timings
def timings_html(timings: dict[str, float]) -> str:
    """Per-stage timings as labelled bars (the Swap tab's view of `SwapOutput.timings`)."""
    stages = {stage: seconds for stage, seconds in timings.items() if stage != "total"}
    total = timings.get("total", sum(stages.values()))
    longest = max(stages.values(), default=0.0) or 1.0
    rows = "".join(
        f'<div class="fs-stage"><span class="fs-name">{html.escape(stage)}</span>'
        f'<span class="fs-bar"><span style="width:{100 * seconds / longest:.1f}%"></span></span>'
        f'<span class="fs-ms">{1000 * seconds:,.0f} ms</span></div>'
        for stage, seconds in stages.items()
    )
    return f'<div class="fs-timings"><div class="fs-total">{total:.2f} s in total</div>{rows}</div>'


# ---------------------------------------------------------------------- check
_BADGES = {"good": "#16a34a", "bad": "#dc2626", "unknown": "#6b7280"}


def _badge(kind: str, text: str) -> str:
    return f'<span class="fs-badge" style="background:{_BADGES[kind]}">{html.escape(text)}</span>'


def check_html(report, verdicts: list | None) -> str:
    """The Check tab's verdict: Content Credentials, watermark and the swap detector, one row each.

    `report` is a `fswap.provenance.VerifyReport`; `verdicts` the detector's `FaceVerdict`s, or None
    when no detector is loaded.
    """
    manifest, watermark = report.manifest, report.watermark
    kind = {"valid": "bad", "tampered": "bad", "absent": "unknown"}[manifest.status]
    manifest_text = {
        "valid": "made or edited by fswap, untouched since" if (manifest.software_agent or "").startswith("fswap")
        else "signed, untouched since",
        "tampered": "a manifest is there, but the image changed after it was signed",
        "absent": "no Content Credentials in the file (stripped, or never there)",
    }[manifest.status]
    rows = [("Content Credentials", _badge(kind, manifest.status.upper()), manifest_text, manifest.summary())]
    if watermark.found:
        best = watermark.best
        rows.append(("fswap watermark", _badge("bad", "FOUND"),
                     f"{best.bit_accuracy:.0%} of {best.bits_read} bits match: made by fswap", watermark.summary()))
    else:
        rows.append(("fswap watermark", _badge("unknown", "ABSENT"),
                     "no fswap watermark in any face (other tools leave none)", watermark.summary()))
    if verdicts is None:
        rows.append(("Swap detector", _badge("unknown", "UNAVAILABLE"), "no detector checkpoint is loaded", ""))
    elif not verdicts:
        rows.append(("Swap detector", _badge("unknown", "NO FACE"), "no face to judge", ""))
    else:
        worst = max(verdict.probability for verdict in verdicts)
        swapped = sum(verdict.probability >= 0.5 for verdict in verdicts)
        kind = "bad" if swapped else "good"
        text = (f"{swapped} of {len(verdicts)} face(s) look swapped (highest {worst:.0%})" if swapped
                else f"no face looks swapped (highest {worst:.0%}); the detector knows only fswap and the classic swap")
        rows.append(("Swap detector", _badge(kind, f"{worst:.0%}"), text, ""))
    body = "".join(
        f'<div class="fs-check-row"><span class="fs-name">{html.escape(name)}</span>{badge}'
        f'<span>{html.escape(text)}</span></div>'
        + (f'<pre class="fs-check-detail">{html.escape(detail)}</pre>' if detail else "")
        for name, badge, text, detail in rows
    )
    return f'<div class="fs-check">{body}</div>'
