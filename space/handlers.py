"""What the app's endpoints do: read the uploads safely, run the pipeline, and turn its output into
pictures. The UI (`space/ui.py`) only wires these methods to components.

Uploads. Gradio's own image preprocessing opens files with PIL before any of fswap's limits
apply, and its error for a bad file is a stack-trace string. So the events that take photos run
with `preprocess=False`: each photo arrives as gradio's file record, whose path must lie inside
gradio's upload folder (checked here, whatever the client sent), and is decoded by
`fswap.imageio.load_image`, which enforces the byte and pixel limits and says what is wrong.

Every `fswap.FswapError` becomes a `gr.Error` with the library's message; anything else is a bug
and reaches the log as one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

from fswap.errors import CheckpointError, FswapError, ImageError, ModelNotFoundError, NoFaceError
from fswap.faces import alignment_matrix, warp_face
from fswap.faces.analyzer import face_numbered
from fswap.faces.first_stage import paste_occluders_setting
from fswap.imageio import load_image, load_rgba, with_transparency
from fswap.pipeline import FaceSwapPipeline, SwapOutput
from space import render
from space.model import LazyPipeline, default_settings, load_default_detector, signing_credentials

#: At most this many target faces are swapped in one request (a crowd photo must be narrowed down).
MAX_SWAP_FACES = 20
#: At most this many source photos are averaged into one identity.
MAX_SOURCE_PHOTOS = 8
#: How the target faces are chosen (the `selection` argument of /swap and /masks).
SELECTIONS = {
    "largest": "The largest face",
    "all": "Every face",
    "chosen": "The faces ticked below (or clicked in the picture)",
    "reference": "The face most like a reference photo",
}


class TooManyFacesError(FswapError):
    """More target faces were asked for than one request may swap."""


class OptionError(FswapError):
    """A swap option is out of its range (an API client sent it; the sliders cannot)."""


class ConsentError(FswapError):
    """A swap was asked for before the user confirmed they have the consent of the people shown."""


#: What the user confirms before the first swap (the Upload tab's checkbox, `consent` in the API).
CONSENT_TEXT = (
    "I have the consent of the people in these photos to swap their faces, and I will not use the "
    "result to deceive, harass, defame or impersonate anyone"
)


_TITLES = {
    NoFaceError: "No face found",
    ImageError: "Cannot use this photo",
    TooManyFacesError: "Too many faces",
    ConsentError: "Consent needed",
    OptionError: "Option out of range",
    ModelNotFoundError: "Model not available",
    CheckpointError: "Model not usable",
}


def user_errors(function: Callable) -> Callable:
    """Turn fswap's user-facing errors into `gr.Error` pop-ups (and API errors) with their message."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except FswapError as error:
            title = next((text for kind, text in _TITLES.items() if isinstance(error, kind)), "Cannot swap")
            message = str(error)
            message = message[:1].upper() + message[1:]
            raise gr.Error(html.escape(message), title=title, print_exception=False) from error

    return wrapper


# ---------------------------------------------------------------------- reading requests
def uploaded_path(payload, what: str) -> Path | None:
    """The local path of an uploaded file record, or None when nothing was given.

    Raises `ImageError` unless the file lies in gradio's upload folder: the path in a request is
    user input, and nothing outside that folder may be read because a client named it.
    """
    if payload is None:
        return None
    path = payload.get("path") if isinstance(payload, dict) else None
    if not isinstance(path, str) or not path:
        raise ImageError(f"{what} did not arrive as an uploaded file; upload it again")
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(Path(get_upload_folder()).resolve()):
        raise ImageError(f"{what} was not uploaded to this app; upload it again")
    return resolved


def read_photo(payload, what: str) -> np.ndarray | None:
    path = uploaded_path(payload, what)
    return None if path is None else load_image(path, name=what)


def read_sources(payloads) -> list[np.ndarray]:
    payloads = [] if payloads is None else [payloads] if isinstance(payloads, dict) else list(payloads)
    if not payloads:
        raise ImageError("upload at least one source photo: the person whose face is used")
    if len(payloads) > MAX_SOURCE_PHOTOS:
        raise ImageError(
            f"{len(payloads)} source photos given; use at most {MAX_SOURCE_PHOTOS} of one person"
        )
    return [read_photo(payload, f"source photo {number}") for number, payload in enumerate(payloads, start=1)]


def chosen_indices(chosen) -> list[int]:
    """The ticked face indices as ints (a client may send strings), without repeats, in order."""
    indices = []
    for value in chosen or []:
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise NoFaceError(f"face {value!r} is not a face number; faces are numbered 0, 1, 2, …") from None
        if index not in indices:
            indices.append(index)
    return indices


def source_face_numbers(text, photos: int) -> list[int | None] | None:
    """The "face used from each source photo" field: "" (the largest of each), one number for one
    photo, or one per photo separated by commas, where an empty place keeps that photo's largest
    face ("2," for two photos). Numbers count from 0, largest face first."""
    if text is None or not str(text).strip():
        return None
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) != photos or not all(part.isdigit() or part == "" for part in parts):
        raise OptionError(
            f"the face used from each source photo must be {photos} face number(s) separated by commas "
            f'(0 is the largest face), not {text!r}'
        )
    return [int(part) if part else None for part in parts]


def source_face_text(numbers: list[int | None]) -> str:
    """`source_face_numbers`' input for `numbers`: "" when every photo uses its largest face."""
    return "" if all(number in (None, 0) for number in numbers) else ",".join(
        "" if number is None else str(number) for number in numbers)


@dataclass
class SwapRequest:
    """One validated request of /swap or /masks."""

    sources: list[np.ndarray]
    target: np.ndarray
    target_path: Path  # the uploaded file: the parent ingredient of the result's Content Credentials
    target_faces: str | list[int] | np.ndarray
    appearance_matching: bool
    occlusion_aware: bool
    feather_fraction: float | None  # None: the checkpoint's own setting
    shape_strength: float | None  # None: the checkpoint's own setting
    paste_source_occluders: str = "all"  # `fswap.faces.first_stage.PASTE_OCCLUDERS`
    source_faces: list[int | None] | None = None  # per source photo, its face's number (None: the largest)
    keep_open_mouths: bool = True  # an open target mouth keeps its teeth under a closed source mouth
    mirror_sources: bool = True  # a source turned the other way gives its mirror image (`fswap.faces.mirror`)

    def key(self) -> str:
        """A digest of everything that determines the output (the pipeline is deterministic)."""
        digest = hashlib.blake2b(digest_size=16)
        for image in (*self.sources, self.target):
            digest.update(np.asarray(image.shape).tobytes() + image.tobytes())
        selector = self.target_faces
        digest.update(selector.tobytes() if isinstance(selector, np.ndarray) else repr(selector).encode())
        digest.update(
            repr((self.appearance_matching, self.occlusion_aware, _rounded(self.feather_fraction),
                  _rounded(self.shape_strength),
                  self.paste_source_occluders, self.source_faces, self.keep_open_mouths, self.mirror_sources)).encode()
        )
        return digest.hexdigest()


#: The choices of the "paste what covers the source face" radio: (label, `paste_source_occluders`).
SOURCE_OCCLUDER_CHOICES = [
    ("All of it, as in the photo", "all"),
    ("Over the eyes only: not hair, a hat or a hand from the edge", "inside"),
    ("None: the target's own face shows there", "none"),
]


def source_occluders_setting(value) -> str:
    """The radio's (or an API call's) `paste_source_occluders`: None is the default ("all"),
    True and False (the checkbox it was until 2026-12-01, still sent by older clients) are "all"
    and "none"."""
    if value is None:
        return "all"
    try:
        return paste_occluders_setting(value)
    except ValueError as error:
        raise OptionError(str(error)) from error


def _rounded(setting: float | None) -> float | None:
    return None if setting is None else round(setting, 4)


@dataclass(frozen=True)
class SliderSettings:
    """Where the app's sliders start: the checkpoint's own settings."""

    two_stage: bool  # the proportions slider and the source-cover and teeth boxes act on these only
    shape_strength: float
    feather_fraction: float


def slider_settings(pipeline: LazyPipeline | FaceSwapPipeline) -> SliderSettings:
    """The app's checkpoint's settings: from the pipeline when it is loaded, else from the default
    checkpoint's `model_index.json`, without loading it."""
    if isinstance(pipeline, LazyPipeline) and not pipeline.loaded:
        settings = default_settings()
        return SliderSettings(settings["attribute_input"] == "warped_source", settings["shape_strength"],
                              settings["feather_fraction"])
    loaded = pipeline.get() if isinstance(pipeline, LazyPipeline) else pipeline
    return SliderSettings(loaded.attribute_input == "warped_source", loaded.shape_strength, loaded.feather_fraction)


# ---------------------------------------------------------------------- the app
class FaceSwapApp:
    """The app's behaviour behind its three endpoints, independent of the layout.

    Args:
        pipeline: the pipeline, or a `LazyPipeline` that loads it on first use.
        gpu: decorator for the function that runs the networks (`spaces.GPU` on ZeroGPU).
        recent: how many swap outputs to keep, so the Masks tab does not swap again.
        detector: loads the Check tab's `SwapDetector` on first use (None: there is none).
        credentials: loads the C2PA signer of the results (None: the local test certificate).
    """

    def __init__(
        self,
        pipeline: FaceSwapPipeline | LazyPipeline,
        *,
        gpu: Callable = lambda function: function,
        recent: int = 3,
        detector: Callable = load_default_detector,
        credentials: Callable = signing_credentials,
    ):
        self.pipeline = pipeline if isinstance(pipeline, LazyPipeline) else LazyPipeline(pipeline)
        self._detector = LazyPipeline(detector)
        self._credentials = LazyPipeline(credentials)
        # Only the network call is decorated: on ZeroGPU it runs in another process, so the cache
        # of recent outputs must live outside it.
        self._run_on_gpu = gpu(self._run_pipeline)
        self._recent: OrderedDict[str, SwapOutput] = OrderedDict()
        self._recent_size = recent
        self._lock = threading.Lock()
        self.results_folder = Path(tempfile.mkdtemp(prefix="fswap-results-"))

    # ------------------------------------------------------------------ /detect
    @user_errors
    def detect(self, target) -> tuple[np.ndarray | None, dict | None]:
        """The target photo with its faces boxed and numbered, and the faces as JSON."""
        image = read_photo(target, "target photo")
        if image is None:
            return None, None
        faces = self.pipeline.get().face_analyzer.detect(image, landmarks=False)
        summary = {
            "width": image.shape[1],
            "height": image.shape[0],
            "faces": [
                {
                    "index": index,
                    "box": [round(float(value), 1) for value in face.box],
                    "score": round(face.score, 3),
                    "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in face.keypoints],
                }
                for index, face in enumerate(faces)
            ],
        }
        return render.faces_found(image, faces), summary

    @user_errors
    def preview_sources(self, sources, choice=None, next_face_of: int | None = None) -> tuple[list, str]:
        """Each source photo's face that will be used, captioned with its number when the photo
        shows several, and the "face used from each source photo" field. `next_face_of`: the
        photo (from 0) whose next face, in size order, is taken instead (a click on its picture)."""
        if not sources:
            return [], ""
        photos = read_sources(sources)
        analyzer = self.pipeline.get().face_analyzer
        found = [analyzer.detect(image, landmarks=False) for image in photos]
        numbers = source_face_numbers(choice, len(photos)) or [None] * len(photos)
        if next_face_of is not None and 0 <= next_face_of < len(photos) and len(found[next_face_of]) > 1:
            numbers[next_face_of] = ((numbers[next_face_of] or 0) + 1) % len(found[next_face_of])
        pictures = []
        for number, (image, faces, index) in enumerate(zip(photos, found, numbers, strict=True), start=1):
            face = face_numbered(faces, index, f"source photo {number}")
            caption = f"photo {number}" + (f" · face {index or 0} ({len(faces)} found): click for the next"
                                           if len(faces) > 1 else "")
            pictures.append((render.face_thumbnail(image, face), caption))
        return pictures, source_face_text(numbers)

    @user_errors
    def checkpoint_options(self):
        """The feathering slider, the "source's proportions" slider and the "paste what covers the
        source face", "keep an open mouth's teeth" and "mirror" boxes as the loaded checkpoint sets them, when
        a page opens: all but the first act on two-stage checkpoints only."""
        settings = slider_settings(self.pipeline.get())
        two_stage = settings.two_stage
        return (gr.Slider(value=settings.feather_fraction), gr.Slider(value=settings.shape_strength,
                interactive=two_stage), gr.Radio(interactive=two_stage), gr.Checkbox(interactive=two_stage),
                gr.Checkbox(interactive=two_stage))

    # ------------------------------------------------------------------ /swap and /masks
    def read_request(
        self, consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
        shape_strength=None, paste_source_occluders="all", source_faces=None, keep_open_mouths=True,
        mirror_sources=True,
    ) -> SwapRequest:
        if consent is not True:
            raise ConsentError(
                "tick the consent box on the Upload tab first: swap only faces of people who agreed to it"
            )
        source_images = read_sources(sources)
        target_path = uploaded_path(target, "target photo")
        if target_path is None:
            raise ImageError("upload a target photo: the photo whose face is replaced")
        target_image = load_image(target_path, name="target photo")
        selection = selection or "largest"
        if selection not in SELECTIONS:
            raise NoFaceError(f"selection must be one of {', '.join(SELECTIONS)}, not {selection!r}")
        if selection == "chosen":
            target_faces = chosen_indices(chosen)
            if not target_faces:
                raise NoFaceError("no face ticked: tick the faces to replace, or choose another selection")
        elif selection == "reference":
            target_faces = read_photo(reference, "reference photo")
            if target_faces is None:
                raise ImageError("upload a reference photo of the person to replace")
        else:
            target_faces = selection
        if selection == "all":
            found = len(self.pipeline.get().face_analyzer.detect(target_image, landmarks=False))
            target_faces = list(range(found)) if found else "all"
        if isinstance(target_faces, list) and len(target_faces) > MAX_SWAP_FACES:
            raise TooManyFacesError(
                f"{len(target_faces)} faces asked for; one swap replaces at most {MAX_SWAP_FACES}. "
                "Tick the faces to replace instead."
            )
        if feather is not None and not 0.0 <= float(feather) <= 0.5:
            raise OptionError(f"feathering must be between 0 and 0.5 of the face crop, not {feather}")
        if shape_strength is not None and not 0.0 <= float(shape_strength) <= 1.0:
            raise OptionError(f"the source's proportions must be between 0 and 1, not {shape_strength}")
        return SwapRequest(
            source_images,
            target_image,
            target_path,
            target_faces,
            bool(appearance_matching),
            bool(occlusion_aware),
            None if feather is None else float(feather),
            None if shape_strength is None else float(shape_strength),
            source_occluders_setting(paste_source_occluders),
            source_face_numbers(source_faces, len(source_images)),
            keep_open_mouths is not False,  # None (an API call without it): the default
            mirror_sources is not False,
        )

    def _run_pipeline(self, request: SwapRequest) -> SwapOutput:
        return self.pipeline.get()(
            request.sources,
            request.target,
            target_faces=request.target_faces,
            appearance_matching=request.appearance_matching,
            occlusion_aware=request.occlusion_aware,
            feather_fraction=request.feather_fraction,
            shape_strength=request.shape_strength,
            paste_source_occluders=request.paste_source_occluders,
            source_faces=request.source_faces,
            keep_open_mouths=request.keep_open_mouths,
            mirror_sources=request.mirror_sources,
        )

    def run(self, request: SwapRequest) -> SwapOutput:
        """The pipeline's output for `request`, from the recent outputs when it was just computed."""
        key = request.key()
        with self._lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return self._recent[key]
        start = time.perf_counter()
        output = self._run_on_gpu(request)
        output.timings["total"] = time.perf_counter() - start
        with self._lock:
            self._recent[key] = output
            while len(self._recent) > self._recent_size:
                self._recent.popitem(last=False)
        return output

    @user_errors
    def swap(
        self,
        consent,
        sources,
        target,
        selection,
        chosen,
        reference,
        appearance_matching,
        occlusion_aware,
        feather,
        shape_strength=None,
        paste_source_occluders="all",
        source_faces=None,
        keep_open_mouths=True,
        mirror_sources=True,
        progress=gr.Progress(),
    ):
        """The swapped photo (full-resolution PNG), a before/after pair, the PNG again, and timings."""
        progress(0.0, desc="Reading the photos")
        request = self.read_request(
            consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
            shape_strength, paste_source_occluders, source_faces, keep_open_mouths, mirror_sources,
        )
        faces = len(request.target_faces) if isinstance(request.target_faces, list) else 1
        progress(0.1, desc=f"Swapping {faces} face{'s' * (faces != 1)}")
        output = self.run(request)
        for notice in output.notices:
            gr.Warning(html.escape(notice))  # a toast (rendered as HTML): the swap is made, but this photo holds it back
        progress(0.85, desc="Saving the full-resolution PNG with its Content Credentials")
        path = self._save_result(output.image, request.target_path)
        timings = {stage: round(seconds, 4) for stage, seconds in output.timings.items()}
        comparison = tuple(
            render.fit(image, render.DISPLAY_MAX_SIDE) for image in (request.target, output.image)
        )
        return str(path), comparison, str(path), timings

    @user_errors
    def masks(
        self, consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
        shape_strength=None, paste_source_occluders="all", source_faces=None, keep_open_mouths=True,
        mirror_sources=True,
    ):
        """Overlays on the target, the source photos' occlusion masks, the per-face blending grid and
        the control-mask grid."""
        request = self.read_request(
            consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
            shape_strength, paste_source_occluders, source_faces, keep_open_mouths, mirror_sources,
        )
        output = self.run(request)
        pipeline = self.pipeline.get()
        size = pipeline.crop_size
        source_crops = [
            warp_face(image, alignment_matrix(face.keypoints, size, pipeline.crop_margin), size)
            for image, face in zip(request.sources, output.source_faces, strict=True)
        ]
        folder = self._new_results_folder()
        target_overlays = [
            (str(_write_png(folder / f"target-{number}.png", picture)), caption)
            for number, (picture, caption) in enumerate(
                render.explain_target(output, request.target, occlusion_aware=request.occlusion_aware)
            )
        ]
        grids = {
            "sources.png": render.source_grid(
                source_crops, output.source_occlusion_masks, occlusion_aware=request.occlusion_aware
            ),
            "blending.png": render.compositing_grid(output),
            "control-masks.png": render.control_mask_grid(output),
        }
        return target_overlays, *(str(_write_png(folder / name, grid)) for name, grid in grids.items())

    # ------------------------------------------------------------------ /check
    @user_errors
    def check(self, upload) -> tuple[str, np.ndarray, dict]:
        """Content Credentials, fswap watermark and swap detector on an uploaded image: the verdict
        as HTML, the photo with each face's swap probability and heat map, and the same as JSON."""
        from fswap.detection import detect_swaps, draw_verdicts
        from fswap.provenance import verify

        path = uploaded_path(upload, "image to check")
        if path is None:
            raise ImageError("upload an image to check")
        image = load_image(path, name="image to check")  # the limits and clear errors first
        analyzer = self.pipeline.get().face_analyzer
        report = verify(path, analyzer=analyzer)
        detector = self._detector.get()
        verdicts = None if detector is None else detect_swaps(image, detector, analyzer, max_faces=MAX_SWAP_FACES)
        picture = render.fit(draw_verdicts(image, verdicts or []), render.DISPLAY_MAX_SIDE)
        manifest = report.manifest
        summary = {
            "manifest": {"status": manifest.status, "signer": manifest.signer, "trusted": manifest.trusted,
                         "software_agent": manifest.software_agent, "checkpoint": manifest.checkpoint,
                         "failures": list(manifest.failures)},
            "watermark": {"found": bool(report.watermark.found),
                          "bit_accuracy": None if report.watermark.best is None
                          else round(float(report.watermark.best.bit_accuracy), 4)},
            "faces": None if verdicts is None else [
                {"index": index, "box": [round(float(v), 1) for v in verdict.face.box],
                 "swap_probability": round(verdict.probability, 4)}
                for index, verdict in enumerate(verdicts)
            ],
        }
        return render.check_html(report, verdicts), picture, summary

    # ------------------------------------------------------------------ files
    def _save_result(self, image: np.ndarray, target_path: Path) -> Path:
        """Write the result as a signed PNG in its own folder (so the download is named fswap-result.png),
        transparent where the target photo is."""
        from fswap.provenance.output import write_signed_image

        pipeline = self.pipeline.get()
        image = with_transparency(image, load_rgba(target_path, name="target photo"))
        return write_signed_image(
            self._new_results_folder() / "fswap-result.png", image,
            checkpoint=pipeline.checkpoint_name or "unnamed checkpoint", parent=target_path,
            credentials=self._credentials.get(),
        )

    def _new_results_folder(self) -> Path:
        self._forget_old_results()
        return Path(tempfile.mkdtemp(dir=self.results_folder))

    def _forget_old_results(self, age_seconds: float = 3600.0) -> None:
        # Gradio copies each result into its own cache; ours only has to outlive the response.
        cutoff = time.time() - age_seconds
        for folder in self.results_folder.iterdir():
            with contextlib.suppress(FileNotFoundError):  # another request may have removed it
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)


def _write_png(path: Path, image: np.ndarray) -> Path:
    # Lossless either way; level 1 encodes about 4x faster than PIL's default for 10 % more bytes.
    Image.fromarray(image).save(path, compress_level=1)
    return path


def face_choices(summary: dict | None) -> list[tuple[str, int]]:
    """Checkbox choices for the faces of a /detect summary."""
    faces = (summary or {}).get("faces", [])
    return [(f"face {face['index']}", face["index"]) for face in faces]


def face_at(summary: dict | None, x: float, y: float) -> int | None:
    """The index of the smallest face whose box holds the display-picture point (x, y)."""
    if not summary:
        return None
    scale = render.display_scale((summary["height"], summary["width"]))
    x, y = x / scale, y / scale
    hits = [
        ((x1 - x0) * (y1 - y0), face["index"])
        for face in summary["faces"]
        for x0, y0, x1, y1 in [face["box"]]
        if x0 <= x <= x1 and y0 <= y <= y1
    ]
    return min(hits)[1] if hits else None


def toggle(chosen: Sequence[int] | None, index: int) -> list[int]:
    chosen = list(chosen or [])
    return [value for value in chosen if value != index] if index in chosen else sorted([*chosen, index])
