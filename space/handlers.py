"""What the app's endpoints do: read the uploads safely, run the pipeline, and turn its output into
pictures. The UI (`space/ui.py`) only wires these methods to components.

Uploads. Gradio's own image preprocessing opens files with PIL before any of fswap's limits
apply, and its error for a bad file is a stack-trace string. So the events that take photos run
with `preprocess=False`: each photo arrives as gradio's file record, whose path must lie inside
gradio's upload folder (checked here, whatever the client sent), and is decoded by
`fswap.imageio.load_image`, which enforces the byte and pixel limits and says what is wrong, at
the app's working size at most (`space.resources.PhotoReader`).

Options. With `preprocess=False` gradio passes an API call's values as the client sent them, so
every option is checked here (`flag`, `number`, ...): a string for a number or a list for a
choice is an `OptionError` naming the option, not a crash.

Every `fswap.FswapError` becomes a `gr.Error` with the library's message, as plain text (API
clients read it as it is; the page renders it through gradio's sanitiser); anything else is a bug
and reaches the log as one. After every request the memory it freed goes back to the system and
the app's temporary files are pruned (`endpoint`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import math
import reprlib
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
from fswap.imageio import with_transparency
from fswap.options import OptionError, SwapOptions
from fswap.pipeline import FaceSwapPipeline, SwapOutput
from fswap.video.probe import VideoError
from space import render
from space.model import LazyPipeline, default_settings, load_default_detector, signing_credentials
from space.resources import (
    RESULTS_MAX_BYTES,
    WORKING_PIXELS,
    PhotoReader,
    TemporaryFolder,
    release_memory,
)

#: At most this many target faces are swapped in one request (a crowd photo must be narrowed down).
MAX_SWAP_FACES = 20
#: At most this many source photos are averaged into one identity.
MAX_SOURCE_PHOTOS = 8
#: The recent outputs kept (`FaceSwapApp.run`) hold at most this many bytes of pictures, the newest
#: always: three of a 1-megapixel photo, one at the working size.
RECENT_MAX_BYTES = 64 * 2**20
#: How the target faces are chosen (the `selection` argument of /swap and /masks).
SELECTIONS = {
    "largest": "The largest face",
    "all": "Every face",
    "chosen": "The faces ticked below (or clicked in the picture)",
    "reference": "The face most like a reference photo",
}


class TooManyFacesError(FswapError):
    """More target faces were asked for than one request may swap."""


class ConsentError(FswapError):
    """A swap was asked for before the user confirmed they have the consent of the people shown."""


#: What the user confirms before the first swap (the Upload tab's checkbox, `consent` in the API).
CONSENT_TEXT = (
    "I have the consent of the people in these photos, videos or camera pictures to swap their faces, and "
    "I will not use the result to deceive, harass, defame or impersonate anyone"
)


_TITLES = {
    NoFaceError: "No face found",
    ImageError: "Cannot use this photo",
    VideoError: "Cannot use this video",
    TooManyFacesError: "Too many faces",
    ConsentError: "Consent needed",
    OptionError: "Option not valid",
    ModelNotFoundError: "Model not available",
    CheckpointError: "Model not usable",
}


def endpoint(method: Callable) -> Callable:
    """A `FaceSwapApp` method that answers a request: fswap's user-facing errors become `gr.Error`
    pop-ups (and API errors) with their message in plain text; the app's temporary files are pruned
    before it and the memory it freed goes back to the system after it."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self.prune_files()
        try:
            with self.photos.request():
                return method(self, *args, **kwargs)
        except FswapError as error:
            raise user_error(error) from error
        finally:
            release_memory()

    return wrapper


def user_error(error: FswapError) -> gr.Error:
    """fswap's user-facing error as the pop-up (and API error) that says it, in plain text."""
    title = next((text for kind, text in _TITLES.items() if isinstance(error, kind)), "Cannot swap")
    message = str(error)
    return gr.Error(message[:1].upper() + message[1:], title=title, print_exception=False)


# ---------------------------------------------------------------------- reading requests
_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 40, 40, 4, 4


def shown(value) -> str:
    """`value` as an error message quotes what a client sent: its repr, cut short."""
    return _SHOWN.repr(value)


def uploaded_path(payload, what: str, error: type[FswapError] = ImageError) -> Path | None:
    """The local path of an uploaded file record, or None when nothing was given.

    Raises `error` (an `ImageError` unless told) unless the file lies in gradio's upload folder:
    the path in a request is user input, and nothing outside that folder may be read because a
    client named it.
    """
    if payload is None:
        return None
    path = payload.get("path") if isinstance(payload, dict) else None
    if not isinstance(path, str) or not path:
        raise error(f"{what} did not arrive as an uploaded file; upload it again")
    resolved, folder = Path(path).resolve(), Path(get_upload_folder()).resolve()
    if resolved == folder or not resolved.is_relative_to(folder):
        raise error(f"{what} was not uploaded to this app; upload it again")
    if not resolved.is_file():  # pruned since (`space.resources`), or a folder of the uploads
        raise error(f"{what} is no longer on this app (uploads are kept for a while only); upload it again")
    return resolved


def source_payloads(payloads) -> list:
    """The source photos' file records: one record or a list of them (None: none)."""
    payloads = [] if payloads is None else [payloads] if isinstance(payloads, dict) else payloads
    if not isinstance(payloads, (list, tuple)):
        raise ImageError("the source photos did not arrive as uploaded files; upload them again")
    if not payloads:
        raise ImageError("upload at least one source photo: the person whose face is used")
    if len(payloads) > MAX_SOURCE_PHOTOS:
        raise ImageError(
            f"{len(payloads)} source photos given; use at most {MAX_SOURCE_PHOTOS} of one person"
        )
    return list(payloads)


def flag(value, name: str, default: bool) -> bool:
    """A checkbox's value from a request: true or false (None, an API call without it: `default`)."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise OptionError(f"the option {name} must be true or false, not {shown(value)}")
    return value


def number(value, name: str, low: float, high: float, unit: str = "") -> float | None:
    """A slider's value from a request: a number from `low` to `high` (None: the checkpoint's own)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{name} must be a number between {low:g} and {high:g}{unit}, not {shown(value)}")
    if not low <= value <= high:
        raise OptionError(f"{name} must be between {low:g} and {high:g}{unit}, not {value:g}")
    return float(value)


def selection_setting(value) -> str:
    """The "which faces" radio's value (None: "largest")."""
    if value is None or value == "":
        return "largest"
    if not isinstance(value, str) or value not in SELECTIONS:
        raise OptionError(f"the option selection must be one of {', '.join(SELECTIONS)}, not {shown(value)}")
    return value


def chosen_indices(chosen) -> list[int]:
    """The ticked face indices as ints (a client may send numbers as strings), without repeats, in order."""
    if chosen is None:
        return []
    if not isinstance(chosen, (list, tuple)):
        raise OptionError(f"the option chosen must be a list of face numbers, not {shown(chosen)}")
    indices = {}
    for value in chosen:
        text = value.strip() if isinstance(value, str) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            indices[value] = None
        elif text and text.isascii() and text.isdigit():
            indices[int(text)] = None
        else:
            raise OptionError(f"face {shown(value)} is not a face number; faces are numbered 0, 1, 2, …")
    return list(indices)


def source_face_numbers(text, photos: int) -> list[int | None] | None:
    """The "face used from each source photo" field: "" (the largest of each), one number for one
    photo, or one per photo separated by commas, where an empty place keeps that photo's largest
    face ("2," for two photos). Numbers count from 0, largest face first."""
    if text is None or not str(text).strip():
        return None
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) != photos or not all((part.isascii() and part.isdigit()) or part == "" for part in parts):
        raise OptionError(
            f"the face used from each source photo must be {photos} face number(s) separated by commas "
            f'(0 is the largest face), not {shown(text)}'
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
    options: SwapOptions  # validated by the library, as every caller's are
    source_faces: list[int | None] | None = None  # per source photo, its face's number (None: the largest)
    notices: tuple[str, ...] = ()  # what the user is told about the photos (one was shrunk); not in `key`

    def key(self) -> str:
        """A digest of everything that determines the output (the pipeline is deterministic)."""
        digest = hashlib.blake2b(digest_size=16)
        for image in (*self.sources, self.target):
            digest.update(np.asarray(image.shape).tobytes() + image.tobytes())
        selector = self.target_faces
        digest.update(selector.tobytes() if isinstance(selector, np.ndarray) else repr(selector).encode())
        rounded = self.options.replace(feather_fraction=_rounded(self.options.feather_fraction),
                                       shape_strength=_rounded(self.options.shape_strength))
        digest.update(repr((rounded, self.source_faces)).encode())
        return digest.hexdigest()


#: `SwapOptions` the app does not offer, and why: a test checks that every other option is an API parameter.
FIXED_OPTIONS = {
    "refine": "an ablation for research, not a choice for users",
    "full_resolution": "an ablation for research, not a choice for users",
    "jaw_feather_share": "the checkpoint's setting; the feathering slider scales it",
    "watermark": "every result of the app is marked and signed",
}


#: The choices of the "paste what covers the source face" radio: (label, `paste_source_occluders`).
SOURCE_OCCLUDER_CHOICES = [
    ("All of it, as in the photo", "all"),
    ("Over the eyes only: not hair, a hat or a hand from the edge", "inside"),
    ("None: the target's own face shows there", "none"),
]


#: The choices of the "how the face is formed" radio: (label, `rendering`).
RENDERING_CHOICES = [
    ("Pasted: the source photo's face, recoloured (the default)", "pasted"),
    ("Relit to the target's light", "relit"),
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
        raise OptionError(f"the option {error}") from error


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
        working_pixels: photos are worked on at this many pixels at most (`space.resources`).
        uploads: gradio's upload folder, when the app owns it (`space.resources.own_upload_folder`):
            kept under its size and age along with the results.
    """

    def __init__(
        self,
        pipeline: FaceSwapPipeline | LazyPipeline,
        *,
        gpu: Callable = lambda function: function,
        recent: int = 3,
        detector: Callable = load_default_detector,
        credentials: Callable = signing_credentials,
        working_pixels: int = WORKING_PIXELS,
        uploads: TemporaryFolder | None = None,
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
        self.photos = PhotoReader(working_pixels)
        # Gradio copies each result into its own cache; ours only has to outlive the response.
        self.results = TemporaryFolder(prefix="fswap-results-", max_bytes=RESULTS_MAX_BYTES)
        self.uploads = uploads

    def signing_credentials(self):
        """Who signs the results' Content Credentials (None: the local test certificate)."""
        return self._credentials.get()

    # ------------------------------------------------------------------ reading requests
    def read_photo(self, payload, what: str, notices: list[str]) -> np.ndarray | None:
        """The uploaded photo at the working size (None when there is none); a notice added when
        it had to be shrunk."""
        path = uploaded_path(payload, what)
        if path is None:
            return None
        photo, notice = self.photos.read(path, what)
        if notice:
            notices.append(notice)
        return photo

    def read_sources(self, payloads, notices: list[str]) -> list[np.ndarray]:
        return [self.read_photo(payload, f"source photo {number}", notices)
                for number, payload in enumerate(source_payloads(payloads), start=1)]

    # ------------------------------------------------------------------ /detect
    @endpoint
    def detect(self, target) -> tuple[np.ndarray | None, dict | None]:
        """The target photo with its faces boxed and numbered, and the faces as JSON: where they
        are in the photo the app works on (`width` x `height`, the photo's own size unless it was
        larger than the working size: `notice` then says so)."""
        notices = []
        image = self.read_photo(target, "target photo", notices)
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
            "notice": notices[0] if notices else None,
        }
        _warn(notices)
        return render.faces_found(image, faces), summary

    @endpoint
    def preview_sources(self, sources, choice=None, next_face_of: int | None = None) -> tuple[list, str]:
        """Each source photo's face that will be used, captioned with its number when the photo
        shows several, and the "face used from each source photo" field. `next_face_of`: the
        photo (from 0) whose next face, in size order, is taken instead (a click on its picture)."""
        if not sources:
            return [], ""
        photos = self.read_sources(sources, [])  # a source is shrunk unsaid: only its face is used
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

    @endpoint
    def checkpoint_options(self):
        """The feathering slider, the "source's proportions" slider, the "paste what covers the
        source face", "keep an open mouth's teeth" and "mirror" boxes and the rendering radio as the loaded
        checkpoint sets them, when a page opens: all but the first act on two-stage checkpoints only."""
        settings = slider_settings(self.pipeline.get())
        two_stage = settings.two_stage
        return (gr.Slider(value=settings.feather_fraction), gr.Slider(value=settings.shape_strength,
                interactive=two_stage), gr.Radio(interactive=two_stage), gr.Checkbox(interactive=two_stage),
                gr.Checkbox(interactive=two_stage), gr.Radio(interactive=two_stage))

    # ------------------------------------------------------------------ /swap and /masks
    def read_request(
        self, consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
        shape_strength=None, paste_source_occluders="all", source_faces=None, keep_open_mouths=True,
        mirror_sources=True, rendering="pasted",
    ) -> SwapRequest:
        """The request checked, every option before any photo is decoded."""
        if consent is not True:
            raise ConsentError(
                "tick the consent box on the Upload tab first: swap only faces of people who agreed to it"
            )
        source_files = source_payloads(sources)
        selection = selection_setting(selection)
        target_faces = chosen_indices(chosen) if selection == "chosen" else selection
        if selection == "chosen" and not target_faces:
            raise NoFaceError("no face ticked: tick the faces to replace, or choose another selection")
        options = SwapOptions(
            appearance_matching=flag(appearance_matching, "appearance_matching", True),
            occlusion_aware=flag(occlusion_aware, "occlusion_aware", True),
            feather_fraction=number(feather, "feathering", 0.0, 0.5, " of the face crop"),
            shape_strength=number(shape_strength, "the source's proportions", 0.0, 1.0),
            paste_source_occluders=source_occluders_setting(paste_source_occluders),
            keep_open_mouths=flag(keep_open_mouths, "keep_open_mouths", True),
            mirror_sources=flag(mirror_sources, "mirror_sources", True),
            rendering="pasted" if rendering is None else rendering,
        )
        chosen_source_faces = source_face_numbers(source_faces, len(source_files))
        notices = []
        source_images = self.read_sources(source_files, notices)
        target_path = uploaded_path(target, "target photo")
        if target_path is None:
            raise ImageError("upload a target photo: the photo whose face is replaced")
        target_image = self.read_photo(target, "target photo", notices)
        if selection == "reference":
            target_faces = self.read_photo(reference, "reference photo", [])
            if target_faces is None:
                raise ImageError("upload a reference photo of the person to replace")
        if selection == "all":
            found = len(self.pipeline.get().face_analyzer.detect(target_image, landmarks=False))
            target_faces = list(range(found)) if found else "all"
        if isinstance(target_faces, list) and len(target_faces) > MAX_SWAP_FACES:
            raise TooManyFacesError(
                f"{len(target_faces)} faces asked for; one swap replaces at most {MAX_SWAP_FACES}. "
                "Tick the faces to replace instead."
            )
        return SwapRequest(source_images, target_image, target_path, target_faces, options,
                           source_faces=chosen_source_faces, notices=tuple(notices))

    def _run_pipeline(self, request: SwapRequest) -> SwapOutput:
        return self.pipeline.get()(request.sources, request.target, target_faces=request.target_faces,
                                   source_faces=request.source_faces, options=request.options)

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
            while len(self._recent) > min(self._recent_size, max(1, self._fitting_recent())):
                self._recent.popitem(last=False)
        return output

    def _fitting_recent(self) -> int:
        """How many of the newest recent outputs fit in `RECENT_MAX_BYTES`."""
        total = 0
        for count, output in enumerate(reversed(self._recent.values())):
            total += output.image.nbytes
            if total > RECENT_MAX_BYTES:
                return count
        return len(self._recent)

    @endpoint
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
        rendering="pasted",
        progress=gr.Progress(),
    ):
        """The swapped photo (full-resolution PNG), a before/after pair, the PNG again, and timings."""
        progress(0.0, desc="Reading the photos")
        request = self.read_request(
            consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
            shape_strength, paste_source_occluders, source_faces, keep_open_mouths, mirror_sources, rendering,
        )
        faces = len(request.target_faces) if isinstance(request.target_faces, list) else 1
        progress(0.1, desc=f"Swapping {faces} face{'s' * (faces != 1)}")
        output = self.run(request)
        _warn([*request.notices, *output.notices])
        progress(0.85, desc="Saving the full-resolution PNG with its Content Credentials")
        path = self._save_result(output.image, request.target_path)
        timings = {stage: round(seconds, 4) for stage, seconds in output.timings.items()}
        comparison = tuple(
            render.fit(image, render.DISPLAY_MAX_SIDE) for image in (request.target, output.image)
        )
        return str(path), comparison, str(path), timings

    @endpoint
    def masks(
        self, consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
        shape_strength=None, paste_source_occluders="all", source_faces=None, keep_open_mouths=True,
        mirror_sources=True, rendering="pasted",
    ):
        """Overlays on the target, the source photos' occlusion masks, the per-face blending grid and
        the control-mask grid."""
        request = self.read_request(
            consent, sources, target, selection, chosen, reference, appearance_matching, occlusion_aware, feather,
            shape_strength, paste_source_occluders, source_faces, keep_open_mouths, mirror_sources, rendering,
        )
        output = self.run(request)
        pipeline = self.pipeline.get()
        size = pipeline.crop_size
        source_crops = [
            warp_face(image, alignment_matrix(face.keypoints, size, pipeline.crop_margin), size)
            for image, face in zip(request.sources, output.source_faces, strict=True)
        ]
        folder = self.results.new_folder()
        target_overlays = [
            (str(_write_png(folder / f"target-{number}.png", picture)), caption)
            for number, (picture, caption) in enumerate(
                render.explain_target(output, request.target, occlusion_aware=request.options.occlusion_aware)
            )
        ]
        grids = {
            "sources.png": render.source_grid(
                source_crops, output.source_occlusion_masks, occlusion_aware=request.options.occlusion_aware
            ),
            "blending.png": render.compositing_grid(output),
            "control-masks.png": render.control_mask_grid(output),
        }
        return target_overlays, *(str(_write_png(folder / name, grid)) for name, grid in grids.items())

    # ------------------------------------------------------------------ /check
    @endpoint
    def check(self, upload) -> tuple[str, np.ndarray, dict]:
        """Content Credentials, fswap watermark and swap detector on an uploaded image: the verdict
        as HTML, the photo with each face's swap probability and heat map, and the same as JSON.
        The credentials are read from the file as it is; the watermark and the detector look at
        the image at the working size (`notice` says when that is smaller)."""
        from fswap.provenance import VerifyReport, detect_watermark, read_manifest
        from fswap.swap_detection import detect_swaps, draw_verdicts

        path = uploaded_path(upload, "image to check")
        if path is None:
            raise ImageError("upload an image to check")
        notices = []
        image = self.read_photo(upload, "image to check", notices)  # the limits and clear errors first
        analyzer = self.pipeline.get().face_analyzer
        report = VerifyReport(read_manifest(path), detect_watermark(image, analyzer=analyzer))
        detector = self._detector.get()
        verdicts = None if detector is None else detect_swaps(image, detector, analyzer, max_faces=MAX_SWAP_FACES)
        view = render.fit(image, render.DISPLAY_MAX_SIDE)
        scale = render.display_scale(image.shape)
        picture = draw_verdicts(view, render.verdicts_in_view(verdicts or [], view.shape, scale))
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
            "notice": notices[0] if notices else None,
        }
        _warn(notices)
        return render.check_html(report, verdicts), picture, summary

    # ------------------------------------------------------------------ files
    def prune_files(self) -> None:
        """Keep the results (and the uploads, when the app owns their folder) under their size and age."""
        for folder in (self.results, self.uploads):
            if folder is not None:
                folder.prune()

    def _save_result(self, image: np.ndarray, target_path: Path) -> Path:
        """Write the result as a signed PNG in its own folder (so the download is named fswap-result.png),
        transparent where the target photo is."""
        from fswap.provenance.output import write_signed_image

        pipeline = self.pipeline.get()
        image = with_transparency(image, self.photos.read_rgba(target_path, "target photo"))
        return write_signed_image(
            self.results.new_folder() / "fswap-result.png", image,
            checkpoint=pipeline.checkpoint_name or "unnamed checkpoint", parent=target_path,
            credentials=self._credentials.get(),
        )


def _warn(notices) -> None:
    """Each notice as a toast (rendered as HTML, so escaped): the answer is given, but the user should know."""
    for notice in notices:
        gr.Warning(html.escape(notice))


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
