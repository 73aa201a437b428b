"""How good is a swap? Identity transfer, attribute and background preservation, speed.

Identity is measured with a recogniser that training never sees (`eval_models/`, the
faceplugin 512-D network), never with w600k_mbf, the one the generator was trained against.
Pose and expression come from 2d106det landmarks re-detected on each result.

    fswap eval --model checkpoints/fswap-default --data data/celeba --pairs 60 -o eval/
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fswap.errors import FswapError, ModelNotFoundError
from fswap.faces import Face, FaceAnalyzer, alignment_matrix, region_mask, warp_face
from fswap.faces.align import similarity_transform
from fswap.faces.analyzer import overlapping, session_options
from fswap.faces.pose import head_pose, wrap_degrees
from fswap.fileio import write_atomically
from fswap.hub.records import EVAL_RESULTS, comparison_text

#: Written beside eval.json while `fswap eval` runs (`Journal`), removed when the report is written.
JOURNAL_NAME = "eval_journal.jsonl"
#: The per-pair results beside a summary: eval.json -> eval_pairs.jsonl.gz (`write_pair_results`).
PAIRS_SUFFIX = "_pairs.jsonl.gz"
EVAL_RECOGNISER = Path(__file__).resolve().parent.parent / "eval_models" / "faceplugin_fr_feature.onnx"
EVAL_RECOGNISER_NAME = "faceplugin fr_feature (npm faceplugin-face-recognition-js 0.0.1, MIT)"

EXPRESSION_LANDMARKS = list(range(33, 72)) + list(range(87, 106))  # eyes, brows, mouth


class EvaluationRecogniser:
    """The independent face recogniser: 112-px ArcFace-aligned RGB, (x - 127) / 128 → 512-D."""

    def __init__(self, path: str | Path = EVAL_RECOGNISER):
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"evaluation recogniser not found at {path} (see eval_models/README.md)")
        self.session = onnxruntime.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def embed(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        crop = warp_face(image, alignment_matrix(keypoints, 112), 112).astype(np.float32)
        batch = ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None]
        embedding = self.session.run(None, {self.input_name: batch})[0][0].astype(np.float64)
        return embedding / max(np.linalg.norm(embedding), 1e-12)


def pose_error(swap_landmarks: np.ndarray, target_landmarks: np.ndarray, shape: tuple[int, ...]) -> float:
    """Mean absolute difference of yaw, pitch and roll, degrees."""
    difference = wrap_degrees(head_pose(swap_landmarks, shape) - head_pose(target_landmarks, shape))
    return float(np.mean(np.abs(difference)))


def expression_error(swap_landmarks: np.ndarray, target_landmarks: np.ndarray) -> float:
    """Eye, brow and mouth landmark distance after a similarity alignment of the whole face,
    in units of the target's inter-ocular distance."""
    matrix = similarity_transform(np.asarray(swap_landmarks, float), np.asarray(target_landmarks, float))
    aligned = swap_landmarks @ matrix[:, :2].T + matrix[:, 2]
    eyes = target_landmarks[33:43].mean(axis=0), target_landmarks[87:97].mean(axis=0)
    interocular = max(np.linalg.norm(eyes[1] - eyes[0]), 1e-6)
    distances = np.linalg.norm(aligned[EXPRESSION_LANDMARKS] - target_landmarks[EXPRESSION_LANDMARKS], axis=1)
    return float(distances.mean() / interocular)


def masked_psnr(image: np.ndarray, reference: np.ndarray, where: np.ndarray, cap: float = 100.0) -> float:
    """PSNR of `image` against `reference` (uint8) on the pixels `where` is True, dB, capped at `cap`."""
    mse = float(np.mean((image[where].astype(np.float64) - reference[where]) ** 2))
    return cap if mse == 0 else float(min(cap, 10 * np.log10(255.0**2 / mse)))


def background_psnr(swap: np.ndarray, target: np.ndarray, target_face: Face, cap: float = 100.0) -> float:
    """PSNR outside the target face (its landmark hull grown by 10 % of the face size), dB, capped."""
    hull = region_mask(target_face.landmarks, target.shape, "face")
    grow = int(0.1 * max(target_face.box[2] - target_face.box[0], target_face.box[3] - target_face.box[1])) * 2 + 1
    outside = cv2.dilate(hull, np.ones((grow, grow), np.uint8)) == 0
    return masked_psnr(swap, target, outside, cap)


def face_at(analyzer: FaceAnalyzer, image: np.ndarray, where: Face) -> Face:
    """The face of `image` at `where`'s place (re-detected); else its largest face; else `where`."""
    faces = analyzer.detect(image)
    best = overlapping(where.box, [face.box for face in faces])
    if best is not None:
        return faces[best]
    return faces[0] if faces else where


@dataclass
class PairResult:
    method: str
    source: int
    target: int
    identity_similarity: float
    retrieved: int
    pose_error_deg: float
    expression_error: float
    background_psnr_db: float
    seconds: float


@dataclass
class Evaluation:
    """Every pair's scores per method, and the table over them."""

    results: list[PairResult] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One row per method. Shares and similarities keep 6 decimals, so a table that rounds
        them to 3 rounds once (125 of 141 is 0.887, not 0.8865 rounded again to 0.886)."""
        table = []
        for method in dict.fromkeys(r.method for r in self.results):
            mine = [r for r in self.results if r.method == method]
            table.append({
                "method": method,
                "identity_similarity": round(float(np.mean([r.identity_similarity for r in mine])), 6),
                "identity_top1": round(float(np.mean([r.retrieved == r.source for r in mine])), 6),
                "pose_error_deg": round(float(np.nanmean([r.pose_error_deg for r in mine])), 3),
                "expression_error": round(float(np.mean([r.expression_error for r in mine])), 6),
                "background_psnr_db": round(float(np.mean([r.background_psnr_db for r in mine])), 2),
                "seconds_per_swap": round(float(np.median([r.seconds for r in mine])), 3),
                "pairs": len(mine),
                "failures": self.failures.get(method, 0),
            })
        return table


def paired_comparison(
    evaluation: Evaluation, method: str, reference: str, resamples: int = 2000, seed: int = 0
) -> dict:
    """How sure the difference between two methods on the same pairs is.

    Top-1: the pairs only one of them retrieves, and McNemar's exact two-sided p-value (the
    chance of a split at least this uneven if both were equally good). Identity similarity and
    pose error: the mean difference (`method` minus `reference`) with a 95 % interval from a
    bootstrap over *source photos*, since a source's pairs are not independent of each other.
    Only pairs that both methods completed count.
    """
    from scipy.stats import binomtest

    first = {(r.source, r.target): r for r in evaluation.results if r.method == method}
    second = {(r.source, r.target): r for r in evaluation.results if r.method == reference}
    keys = sorted(first.keys() & second.keys())
    if not keys:
        raise FswapError(f"no pair was completed by both {method!r} and {reference!r}")
    right = np.array([[first[k].retrieved == k[0], second[k].retrieved == k[0]] for k in keys])
    only_method, only_reference = int((right[:, 0] & ~right[:, 1]).sum()), int((~right[:, 0] & right[:, 1]).sum())
    discordant = only_method + only_reference
    p_value = binomtest(only_method, discordant, 0.5).pvalue if discordant else 1.0

    sources = np.array([k[0] for k in keys])

    def difference(field_name: str) -> dict:
        values = np.array([getattr(first[k], field_name) - getattr(second[k], field_name) for k in keys], np.float64)
        return source_bootstrap(values, sources, resamples, seed, digits=6)

    return {
        "method": method, "reference": reference, "pairs": len(keys), "sources": len(np.unique(sources)),
        "top1_only_method": only_method, "top1_only_reference": only_reference,
        "top1_mcnemar_p": float(f"{p_value:.3g}"),
        "identity_similarity_difference": difference("identity_similarity"),
        "pose_error_deg_difference": difference("pose_error_deg"),
    }


def source_bootstrap(values: np.ndarray, sources: np.ndarray, resamples: int = 2000, seed: int = 0,
                     digits: int = 6) -> dict:
    """The mean of per-pair `values` (NaN ignored) and its 95 % interval from a bootstrap over
    *source photos* (`sources`, one per value): a source's pairs are not independent of each
    other. {"mean", "ci95": [low, high]}, rounded to `digits`."""
    values, sources = np.asarray(values, np.float64), np.asarray(sources)
    people = np.unique(sources)
    members = [np.flatnonzero(sources == person) for person in people]
    rng = np.random.default_rng(seed)
    means = [float(np.nanmean(values[np.concatenate([members[i] for i in rng.integers(0, len(people), len(people))])]))
             for _ in range(resamples)]
    low, high = np.nanpercentile(means, [2.5, 97.5])
    return {"mean": round(float(np.nanmean(values)), digits), "ci95": [round(float(low), digits), round(float(high), digits)]}


SwapMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Journal:
    """Every scored pair as one JSON line, written the moment it is scored, so an interrupted
    evaluation resumes where it stopped instead of starting again.

    The first line names the run (model, data, pairs, methods, ...). A journal of another run is
    started afresh; a last line cut off mid-write is ignored.
    """

    def __init__(self, path: Path, run: dict):
        self.path, self.run = Path(path), run

    def read(self) -> tuple[list[PairResult], dict[tuple[str, int, int], bool]]:
        """The results so far, and every (method, source, target) already done (True: it failed)."""
        results: list[PairResult] = []
        done: dict[tuple[str, int, int], bool] = {}
        if not self.path.is_file():
            return results, done
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            header = None
        if header != {"run": self.run}:
            return results, done
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # the run was killed while writing this line
            key = (entry["method"], entry["source"], entry["target"])
            done[key] = bool(entry.get("failed"))
            if not entry.get("failed"):
                results.append(PairResult(**entry))
        return results, done

    def start(self, resume: bool) -> None:
        """Begin a new journal unless `resume` keeps the matching one there."""
        if not resume:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"run": self.run}) + "\n", encoding="utf-8")

    def append(self, entry: dict) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")


def evaluate(
    methods: dict[str, SwapMethod],
    sources: list[np.ndarray],
    targets: list[np.ndarray],
    pairs: list[tuple[int, int]],
    analyzer: FaceAnalyzer,
    recogniser: EvaluationRecogniser,
    progress: bool = True,
    keep_images: int = 0,
    journal: Journal | None = None,
    gallery: list[np.ndarray] | None = None,
) -> tuple[Evaluation, dict[str, list[np.ndarray]]]:
    """Run every method on every (source index, target index) pair and score the results.

    Each method maps (source photo, target photo) to the swapped target photo (largest face).
    Identity: cosine of the result's face to its source photo under the evaluation recogniser,
    and top-1 retrieval among all source photos. A `gallery` of photos replaces the source photos
    there: its first `len(sources)` photos show, in order, each source's person (another photo
    of them), and any further ones are other people. Returns the evaluation and, per method, the
    first `keep_images` results (for a contact sheet). With a `journal`, pairs it already holds
    are not scored again (those among the first `keep_images` are swapped again for their picture).
    """
    from tqdm.auto import tqdm

    source_faces = [analyzer.largest_face(image, name=f"source {i}") for i, image in enumerate(sources)]
    target_faces = [analyzer.largest_face(image, name=f"target {i}") for i, image in enumerate(targets)]
    if gallery is not None and len(gallery) < len(sources):
        raise FswapError(f"the gallery has {len(gallery)} photos; each of the {len(sources)} sources needs one")
    gallery_photos = sources if gallery is None else gallery
    gallery_faces = source_faces if gallery is None else [
        analyzer.largest_face(image, name=f"gallery photo {i}") for i, image in enumerate(gallery_photos)]
    embeddings = np.stack([recogniser.embed(image, face.keypoints)
                           for image, face in zip(gallery_photos, gallery_faces, strict=True)])
    previous, done = journal.read() if journal else ([], {})
    if journal:
        journal.start(resume=bool(done))
        if done and progress:
            print(f"resuming: {len(done)} swaps already scored in {journal.path}", file=sys.stderr)
    evaluation = Evaluation(results=previous)
    for (name, _, _), failed in done.items():
        if failed:
            evaluation.failures[name] = evaluation.failures.get(name, 0) + 1
    kept: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    steps = tqdm(total=len(pairs) * len(methods), initial=len(done), disable=not progress, desc="eval", unit="swap")
    for source_index, target_index in pairs:
        target, target_face = targets[target_index], target_faces[target_index]
        for name, method in methods.items():
            key = (name, source_index, target_index)
            if key in done:
                if len(kept[name]) < keep_images and not done[key]:
                    kept[name].append(method(sources[source_index], target))
                continue
            start = time.perf_counter()
            try:
                result = method(sources[source_index], target)
            except FswapError:
                evaluation.failures[name] = evaluation.failures.get(name, 0) + 1
                if journal:
                    journal.append({"method": name, "source": source_index, "target": target_index, "failed": True})
                steps.update(1)
                continue
            seconds = time.perf_counter() - start
            face = face_at(analyzer, result, target_face)
            embedding = recogniser.embed(result, face.keypoints)
            similarities = embeddings @ embedding
            scored = PairResult(
                method=name, source=source_index, target=target_index,
                identity_similarity=float(similarities[source_index]), retrieved=int(np.argmax(similarities)),
                pose_error_deg=pose_error(face.landmarks, target_face.landmarks, target.shape),
                expression_error=expression_error(face.landmarks, target_face.landmarks),
                background_psnr_db=background_psnr(result, target, target_face), seconds=seconds,
            )
            evaluation.results.append(scored)
            if journal:
                journal.append(asdict(scored))
            if len(kept[name]) < keep_images:
                kept[name].append(result)
            steps.update(1)
    steps.close()
    # In the schedule's order, whatever order the journal and this run scored them in.
    order = {pair: i for i, pair in enumerate(pairs)}
    rank = {name: i for i, name in enumerate(methods)}
    evaluation.results.sort(key=lambda r: (order.get((r.source, r.target), len(order)), rank.get(r.method, len(rank))))
    return evaluation, kept


def contact_sheet(sources: list[np.ndarray], targets: list[np.ndarray], pairs: list[tuple[int, int]],
                  kept: dict[str, list[np.ndarray]], tile: int = 160) -> np.ndarray:
    """Rows of source | target | each method's result, labelled, as one RGB image."""
    def fit(image):
        scale = tile / max(image.shape[:2])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full((tile, tile, 3), 255, np.uint8)
        y, x = (tile - small.shape[0]) // 2, (tile - small.shape[1]) // 2
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        return canvas

    names = list(kept)
    count = min(len(v) for v in kept.values()) if kept else 0
    header = [_label(text, tile) for text in ["source", "target", *names]]
    rows = [np.concatenate(header, axis=1)]
    for k in range(count):
        source_index, target_index = pairs[k]
        tiles = [fit(sources[source_index]), fit(targets[target_index])] + [fit(kept[name][k]) for name in names]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def _label(text: str, width: int) -> np.ndarray:
    canvas = np.full((28, width, 3), 255, np.uint8)
    cv2.putText(canvas, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)
    return canvas


def write_report(folder: Path, evaluation: Evaluation, command: str, pairs: int, sheet: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EVAL_RESULTS
    # Every pair, for re-analysis, goes beside the summary compressed: the summary stays a few
    # kilobytes in a repo and on the Hub (`fswap.hub.model_upload` publishes it alone).
    pairs_file = write_pair_results(path, [asdict(result) for result in evaluation.results])
    report = {
        "command": command, "recogniser": EVAL_RECOGNISER_NAME, "pairs": pairs, "rows": evaluation.rows(),
        "comparisons": comparisons(evaluation), "results_file": pairs_file,
    }
    write_atomically(path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    if sheet is not None:
        # Lossless; level 9 is half the size of the default level.
        _, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        write_atomically(folder / "contact_sheet.png", png.tobytes())
    return path


def write_pair_results(summary: str | Path, results: list[dict]) -> str:
    """Write `results` (one dict per pair) beside the summary file `summary` as gzipped JSON
    lines, and return the file's name, for the summary's "results_file".

    Floats keep 6 decimals, as the rows do: the rows and comparisons recomputed from the file
    are the summary's to the last digit. No time stamp goes into the gzip header, so the same
    results give the same bytes and a rerun leaves git nothing to store.
    """
    summary = Path(summary)
    path = summary.with_name(summary.stem + PAIRS_SUFFIX)
    lines = "".join(
        json.dumps({key: round(value, 6) if isinstance(value, float) else value for key, value in result.items()}) + "\n"
        for result in results
    )
    write_atomically(path, gzip.compress(lines.encode("utf-8"), compresslevel=9, mtime=0))
    return path.name


def read_pair_results(summary: str | Path) -> list[dict]:
    """The per-pair results of a summary that `fswap eval` or a benchmark wrote: the file its
    "results_file" names (`write_pair_results`), or its own "results" (files written before).

    Raises:
        FswapError: the summary names no per-pair results, or the file it names is missing.
    """
    summary = Path(summary)
    data = json.loads(summary.read_text(encoding="utf-8"))
    if "results" in data:
        return data["results"]
    if "results_file" not in data:
        raise FswapError(f"{summary} holds no per-pair results (no 'results' or 'results_file')")
    path = summary.parent / data["results_file"]
    if not path.is_file():
        raise FswapError(f"{summary} keeps its per-pair results in {path.name}, which is not beside it")
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def comparisons(evaluation: Evaluation) -> list[dict]:
    """fswap against the classic swap, when both were run (`paired_comparison`)."""
    methods = {r.method for r in evaluation.results}
    return [paired_comparison(evaluation, "fswap", "classic")] if {"fswap", "classic"} <= methods else []


def markdown_table(rows: list[dict]) -> str:
    columns = ["method", "identity_similarity", "identity_top1", "pose_error_deg", "expression_error",
               "background_psnr_db", "seconds_per_swap", "pairs"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def held_out_photos(data: Path, count: int | None = None, seed: int = 0) -> list[Path]:
    """`count` (default: all) distinct original photos of the validation split of a prepared data
    set (one face each, never trained on), in a seeded random order; the first `count` of a
    larger request are the same photos."""
    photos = []
    for line in (Path(data) / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("split") == "val" and record.get("file") and record.get("origin"):
            photos.append(Path(record["origin"]))
    photos = sorted(dict.fromkeys(p for p in photos if p.is_file()))
    count = len(photos) if count is None else count
    if len(photos) < count:
        raise FswapError(f"{data} has {len(photos)} held-out photos; {count} are needed (lower --pairs)")
    order = np.random.default_rng(seed).permutation(len(photos))[:count]
    return [photos[i] for i in order]


def pair_schedule(people: int, pairs: int) -> list[tuple[int, int]]:
    """`pairs` distinct (source, target) index pairs over `people` sources and `people` targets:
    round r swaps source k onto target (k + r) mod `people`, so every source and every target
    is used equally often. The first round is (0, 0), (1, 1), ..."""
    if people < 1 or not 1 <= pairs <= people * people:
        raise FswapError(f"{people} sources and targets make 1 to {people * people} pairs, not {pairs}")
    return [(k % people, (k % people + k // people) % people) for k in range(pairs)]


def held_out_pairs(data: Path, pairs: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, int]]]:
    """Source photos, target photos and `pairs` (source, target) index pairs from the held-out
    split: up to half the photos are sources and as many others targets; more pairs than that
    swap every source onto several targets (`pair_schedule`)."""
    from fswap.imageio import load_image

    available = held_out_photos(data, seed=seed)
    people = min(pairs, len(available) // 2)
    photos = [load_image(path) for path in available[: 2 * people]]
    return photos[:people], photos[people:], pair_schedule(people, pairs)


def run_evaluation(model: str | None, data: Path, pairs: int, output: Path, seed: int = 0, command: str = "") -> dict:
    """`fswap eval`: fswap, the classic swap and "no swap" on the same held-out pairs (`held_out_pairs`)."""
    from fswap.assets import default_model
    from fswap.baselines.classic import ClassicFaceSwapper
    from fswap.pipeline import FaceSwapPipeline

    sources, targets, index_pairs = held_out_pairs(data, pairs, seed)
    pipeline = FaceSwapPipeline.from_pretrained(model or default_model())
    classic = ClassicFaceSwapper(pipeline.face_analyzer)
    methods = {
        "fswap": lambda source, target: pipeline(source, target).image,
        "classic": lambda source, target: classic(source, target).image,
        "no swap": lambda source, target: target,
    }
    from fswap.version import __version__

    run = {"model": str(model or default_model()), "data": str(Path(data).resolve()), "pairs": pairs, "seed": seed,
           "methods": list(methods), "recogniser": EVAL_RECOGNISER_NAME, "fswap": __version__}
    journal = Journal(Path(output) / JOURNAL_NAME, run)
    evaluation, kept = evaluate(methods, sources, targets, index_pairs, pipeline.face_analyzer,
                                EvaluationRecogniser(), keep_images=8, journal=journal)
    sheet = contact_sheet(sources, targets, index_pairs, kept)
    write_report(output, evaluation, command, pairs, sheet)
    journal.path.unlink()  # the report holds every pair now
    text = "\n".join(comparison_text(c) for c in comparisons(evaluation))
    return {"rows": evaluation.rows(), "table": markdown_table(evaluation.rows()) + ("\n\n" + text if text else "")}
