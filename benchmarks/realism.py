"""Can a swap be told from a real photo? People judging blind, and a fresh classifier.

Three systems, each unwatermarked (`SYSTEMS`): the classic landmark swap, fswap's default
(`rendering="pasted"`, everything that covers the source face pasted along) and its relit
rendering (`rendering="relit"`). The judged records and `realism_two_sample.json` of 2026-12-07
call the last two "previous default" and "new default": the relit rendering was the default
while they were made, and was put back behind the option on what they measured. The classic swap writes no watermark; fswap runs with `watermark=False`, so nothing
but the swap itself can give a photo away.

    # 1. blind spot-the-fake sets, one per system, for people to judge (seconds)
    python benchmarks/realism.py sheets --output runs/realism_sheets
    # 2. after the judges filled in ANSWERS.txt -> benchmarks/results/realism_blind.json
    python benchmarks/realism.py score --output runs/realism_sheets
    # 3. a small real-vs-swap classifier per system -> benchmarks/results/realism_two_sample.json
    #    (about 3 minutes a system on a 2-core CPU once its swaps are made and cached in runs/realism)
    python benchmarks/realism.py two-sample
    # 4. the first 12 pairs of the blind sets, every system -> docs/images/realism_gallery.png
    python benchmarks/realism.py gallery

`--systems classic relit` limits any of them to some systems (`score` reads its systems
from the key).

**Pairs.** `fswap.evaluation.held_out_pairs(data, --pairs, --seed)`: the first `--pairs` (32)
pairs of the fixed held-out list, each source photo onto a different target photo of people
never trained on. Nothing is picked: a pair whose swap fails (no face found) is recorded as
failed in the key and left out of that system's set, never replaced by another pair.

**Blind judging.** `sheets` writes one folder per system, named `set-A`, `set-B`, ... in a
seeded random order, so the name does not tell the system. Each row of a set shows a real
target photo and that system's swap onto it, both 320 px high (a phone's view), the swap on the
left or the right at random (balanced, seeded). A set holds each target once, in 8-row sheets
(`sheet-01.png`, ...), a `README.txt` with the instructions and an `ANSWERS.txt` to fill in
(`3 L`: in row 3 the left photo is the swap; `?`: cannot tell). Which set is which system,
which row is which pair and where the swap is are in `key.json`, outside the set folders: hand
each judge one set folder only, a different judge for each set (all sets show the same real
targets, so a judge of two sets would see each target twice), and keep `key.json` from them.
`score` counts per system the rows where the judge named the swap (spotted), named the real
photo (fooled) or could not tell, and the spotted share with a "?" counted as half (a forced
choice would be a coin flip): 0.5 is a swap people cannot tell from a real photo, 1.0 one they
always spot. The 95 % interval is Wilson's, over the rows.

**Two-sample test.** People are one judge; a classifier is another that sees what people miss.
The held-out photos (`held_out_photos`, in their seeded order) are split into halves A and B.
Each photo of a half is a target of `--per-target` (4) swaps from other photos of its own half
(`pair_schedule` rounds 1 to 4). Every photo, real or swapped, is cut to an aligned face crop
the way the swap detector's data are (`fswap.data.swaps`: the face found again in the photo,
`alignment_matrix` with margin 0.25, `--size` px). A fresh, small `SwapDetector` (no mask head,
base channels 16, `--steps` Adam steps) learns real versus swap on half A with the swap
detector's augmentations (flips, jitter, colour, blur, resizing, JPEG), so PNG-exact pixels do
not decide; then it scores half B's photos against half B's swaps: people, photos and swaps it
has never seen. Half A's 47 photos are few, so `--extra-targets` (200) photos of the data set's
training split (`manifest.jsonl`, split "train": no held-out person) join them, each swapped
once from another training photo. Every training photo is shown both as itself and swapped:
each example draws a photo, then its real crop or one of its swaps, half and half (real photos
that were never swapped would let the classifier learn which photos those are instead of what a
swap looks like). The ROC AUC (0.5: the
classifier cannot tell; 1.0: it always can) comes with a 95 % interval from a bootstrap over
half B's targets (a photo's real crop and its swaps resampled together), and once more with
every test crop re-saved as JPEG quality 75 (the finest cues gone). Swaps are cached per system
in `--work` (default runs/realism): delete it after changing the pipeline.
"""

from __future__ import annotations

import argparse
import inspect
import json
import string
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from common import IMAGES, add_checkpoint_arguments, fit_height, label_strip, markdown_table, write_result

from fswap.errors import FswapError
from fswap.evaluation import held_out_pairs, held_out_photos, pair_schedule

#: name -> keyword arguments of `FaceSwapPipeline.__call__` (None: the classic landmark swap).
SYSTEMS = {"classic": None,
           "pasted (default)": {"rendering": "pasted", "paste_source_occluders": "all"},
           "relit": {"rendering": "relit"}}
SIDES = ("L", "R")
#: px high of each photo in a sheet: about what a phone shows of a photo in a chat.
PHONE_HEIGHT = 320
ROWS_PER_SHEET = 8
GAP = 12
GALLERY_HEIGHT = 200
INSTRUCTIONS = """\
In each row one photo is real and one has had its face swapped by software. Write L or R for the
one you think is swapped, ? if you cannot tell. Judge at the size shown, as if on a phone.

The rows are numbered ({sheets}). Write your answers in ANSWERS.txt, one line per row:
replace the ? after the row's number by L or R (or leave the ?). Do not zoom in, and do not
open any other set or look for other files.
"""
Z95 = 1.959963984540054
BLIND_COLUMNS = ["system", "rows", "spotted", "fooled", "unsure", "spotted_share", "ci95", "failed"]
TWO_SAMPLE_COLUMNS = ["system", "auc", "ci95", "auc_jpeg75", "train_photos", "train_swaps", "test_reals", "test_swaps",
                      "failed"]

SwapFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ------------------------------------------------------------------------------------ systems
def load_pipeline(model: str | None):
    from fswap.assets import default_model
    from fswap.pipeline import FaceSwapPipeline

    return FaceSwapPipeline.from_pretrained(model or default_model())


def swap_function(pipeline, system: str) -> SwapFunction:
    """(source photo, target photo) -> the system's unwatermarked swap of the target's largest face."""
    options = SYSTEMS[system]
    if options is None:
        from fswap.baselines.classic import ClassicFaceSwapper

        classic = ClassicFaceSwapper(pipeline.face_analyzer)
        return lambda source, target: classic(source, target).image
    missing = set(options) - set(inspect.signature(pipeline.__call__).parameters)
    if missing:
        raise SystemExit(f"{system!r} needs FaceSwapPipeline.__call__({', '.join(sorted(missing))}=...), which this "
                         f"checkout does not have; leave it out with --systems")
    return lambda source, target: pipeline(source, target, watermark=False, **options).image


def swap_or_reason(swap: SwapFunction, source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The swap, or None and why it failed (no face found, ...): failed pairs are counted, not replaced."""
    try:
        return swap(source, target), ""
    except FswapError as error:
        return None, str(error)


# ------------------------------------------------------------------------------------ blind sets
def set_labels(systems: list[str], seed: int) -> dict[str, str]:
    """label -> system: set-A, set-B, ... dealt to the systems in a seeded random order."""
    order = np.random.default_rng([seed, len(systems)]).permutation(len(systems))
    return {f"set-{string.ascii_uppercase[i]}": systems[k] for i, k in enumerate(order)}


def swap_sides(rows: int, seed: int, label: str) -> list[str]:
    """The side ("L" or "R") of the swap in each row: as many of each as can be, in a seeded order."""
    sides = [SIDES[k % 2] for k in range(rows)]
    order = np.random.default_rng([seed, zlib.crc32(label.encode())]).permutation(rows)
    return [sides[k] for k in order]


def sheet_row(number: int, real: np.ndarray, swapped: np.ndarray, swap_side: str) -> np.ndarray:
    """Row `number`'s label over the two photos, each PHONE_HEIGHT px high, the swap on `swap_side`."""
    left, right = (swapped, real) if swap_side == "L" else (real, swapped)
    left, right = fit_height(left, PHONE_HEIGHT), fit_height(right, PHONE_HEIGHT)
    photos = np.concatenate([left, np.full((PHONE_HEIGHT, GAP, 3), 255, np.uint8), right], axis=1)
    return np.concatenate([label_strip(str(number), photos.shape[1]), photos])


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Rows one under another on white, GAP px apart, padded to the widest."""
    width = max(row.shape[1] for row in rows)
    padded = []
    for row in rows:
        canvas = np.full((row.shape[0] + GAP, width, 3), 255, np.uint8)
        canvas[: row.shape[0], : row.shape[1]] = row
        padded.append(canvas)
    return np.concatenate(padded)


def write_set(folder: Path, rows: list[np.ndarray]) -> None:
    """`folder`'s sheets (ROWS_PER_SHEET rows each), its README.txt and the blank ANSWERS.txt."""
    from fswap.imageio import save_image

    folder.mkdir(parents=True)
    contents = []
    for first in range(0, len(rows), ROWS_PER_SHEET):
        name = f"sheet-{first // ROWS_PER_SHEET + 1:02d}.png"
        save_image(folder / name, stack_rows(rows[first : first + ROWS_PER_SHEET]))
        contents.append(f"{name}: rows {first + 1}-{min(first + ROWS_PER_SHEET, len(rows))}")
    (folder / "README.txt").write_text(INSTRUCTIONS.format(sheets="; ".join(contents)))
    (folder / "ANSWERS.txt").write_text("".join(f"{number} ?\n" for number in range(1, len(rows) + 1)))


def sheets(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    output = Path(args.output)
    if (output / "key.json").exists():
        raise SystemExit(f"{output} already holds blind sets (key.json); choose another --output")
    sources, targets, pairs = held_out_pairs(Path(args.data), args.pairs, seed=args.seed)
    if len(targets) < len(pairs):
        raise SystemExit(f"{len(targets)} held-out targets: at most that many --pairs, so no judge sees a target twice")
    pipeline = load_pipeline(args.model)
    key = {"seed": args.seed, "pairs": args.pairs, "sets": {}}
    for label, system in set_labels(args.systems, args.seed).items():
        swap = swap_function(pipeline, system)
        images, shown, failed = [], [], []
        for pair, (s, t) in enumerate(tqdm(pairs, desc=label, unit="pair")):
            swapped, reason = swap_or_reason(swap, sources[s], targets[t])
            if swapped is None:
                failed.append({"pair": pair, "source": s, "target": t, "reason": reason})
            else:
                images.append((targets[t], swapped))
                shown.append({"pair": pair, "source": s, "target": t})
        sides = swap_sides(len(shown), args.seed, label)
        rows = [sheet_row(n + 1, real, swapped, side) for n, ((real, swapped), side) in enumerate(zip(images, sides, strict=True))]
        write_set(output / label, rows)
        key["sets"][label] = {"system": system, "failed": failed,
                              "rows": [{"row": n + 1, **row, "swap_side": side}
                                       for n, (row, side) in enumerate(zip(shown, sides, strict=True))]}
    (output / "key.json").write_text(json.dumps(key, indent=2) + "\n")
    print(f"wrote {', '.join(key['sets'])} in {output}; the key is {output / 'key.json'}: keep it from the judges")


# ------------------------------------------------------------------------------------ scoring
def read_answers(path: Path) -> dict[int, str]:
    """row -> "L", "R" or "?" from an ANSWERS.txt (`3 L` per line; a row with no letter is "?")."""
    answers = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        answer = words[1].upper() if len(words) > 1 else "?"
        if not words[0].isdigit() or len(words) > 2 or answer not in (*SIDES, "?"):
            raise ValueError(f"{path}: cannot read {line!r}; write the row number, a space, then L, R or ?")
        answers[int(words[0])] = answer
    return answers


def wilson_interval(successes: float, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a share of `trials` (95 % by default); `successes` may be fractional."""
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    centre = (share + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half_width = z * np.sqrt(share * (1 - share) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    return max(0.0, float(centre - half_width)), min(1.0, float(centre + half_width))


def score_set(answers: dict[int, str], rows: list[dict]) -> dict:
    """Spotted (the swap named), fooled (the real photo named) and unsure rows of one set, and the
    spotted share with "?" counted as half, with its Wilson 95 % interval."""
    missing = [row["row"] for row in rows if row["row"] not in answers]
    unknown = sorted(set(answers) - {row["row"] for row in rows})
    if missing or unknown:
        raise ValueError(f"answers missing for rows {missing}, or given for rows the set does not have {unknown}")
    spotted = sum(answers[row["row"]] == row["swap_side"] for row in rows)
    unsure = sum(answers[row["row"]] == "?" for row in rows)
    credit = spotted + unsure / 2
    low, high = wilson_interval(credit, len(rows))
    return {"rows": len(rows), "spotted": spotted, "fooled": len(rows) - spotted - unsure, "unsure": unsure,
            "spotted_share": round(credit / max(len(rows), 1), 4), "ci95": [round(low, 4), round(high, 4)]}


def score(args: argparse.Namespace) -> None:
    output = Path(args.output)
    key = json.loads((output / "key.json").read_text())
    results = []
    for label, blind_set in key["sets"].items():
        counts = score_set(read_answers(output / label / "ANSWERS.txt"), blind_set["rows"])
        results.append({"system": blind_set["system"], **counts, "failed": len(blind_set["failed"])})
    results.sort(key=lambda row: list(SYSTEMS).index(row["system"]))
    path = write_result("realism_blind", {
        "seed": key["seed"], "pairs": key["pairs"],
        "note": "spotted_share counts '?' as half; 0.5 = people could not tell the swap from the real photo",
        "systems": results})
    print(markdown_table(results, BLIND_COLUMNS))
    print(f"wrote {path}")


# ------------------------------------------------------------------------------------ two-sample
def training_photos(data: Path, count: int, seed: int) -> list[Path]:
    """`count` original photos of the data set's training split (people the held-out split never
    shows), in a seeded random order."""
    photos = []
    for line in (data / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("split") == "train" and record.get("origin"):
            photos.append(Path(record["origin"]))
    photos = sorted(p for p in dict.fromkeys(photos) if p.is_file())
    return [photos[k] for k in np.random.default_rng(seed).permutation(len(photos))[:count]]


def swap_schedule(people: int, per_target: int) -> list[tuple[int, int]]:
    """(source, target) pairs within one group of photos: `per_target` other photos onto each
    (`pair_schedule` rounds 1 to `per_target`; round 0 would swap a photo onto itself)."""
    return pair_schedule(people, people * (per_target + 1))[people:]


def detected_face(analyzer, image: np.ndarray, near=None):
    """The largest face of `image` (the one overlapping face `near`, if given, else `near` itself),
    found as `fswap.data.swaps` finds it; None when there is none."""
    faces = analyzer.detect(image, landmarks=False, max_faces=1, near=None if near is None else [near.box])
    return faces[0] if faces else near


def aligned_crop(image: np.ndarray, face, size: int, margin: float) -> np.ndarray:
    from fswap.faces import alignment_matrix, warp_face

    return warp_face(image, alignment_matrix(face.keypoints, size, margin), size)


def cached_swaps(swap: SwapFunction, folder: Path, settings: dict, photos: list[Path],
                 schedule: list[tuple[int, int]], images: dict[Path, np.ndarray]) -> list[np.ndarray | None]:
    """Each scheduled swap (None where it failed), read from `folder` when made before."""
    from tqdm.auto import tqdm

    from fswap.imageio import load_image, save_image

    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != settings:
        raise SystemExit(f"{folder} holds swaps made with other settings; delete it or choose another --work")
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")
    swaps = []
    for s, t in tqdm(schedule, desc=f"swaps ({settings['system']})", unit="swap"):
        file = folder / f"{photos[t].stem}_{photos[s].stem}.png"
        failure = file.with_suffix(".failed.txt")
        if not file.exists() and not failure.exists():
            swapped, reason = swap_or_reason(swap, images[photos[s]], images[photos[t]])
            if swapped is None:
                failure.write_text(reason + "\n")
            else:
                save_image(file, swapped)
        swaps.append(load_image(file) if file.exists() else None)
    return swaps


#: One photo's aligned face crop and the crops of its swaps.
Example = tuple[np.ndarray, list[np.ndarray]]


def photo_examples(analyzer, swap: SwapFunction, group: list[Path], per_target: int, images: dict[Path, np.ndarray],
                   *, cache_folder: Path, cache_settings: dict, size: int, margin: float) -> tuple[list[Example], int]:
    """Each photo of `group` with a face: its crop, and the crops of `per_target` swaps onto it
    from other photos of the group (the face found again where the photo's was); and how many
    swaps failed."""
    schedule = swap_schedule(len(group), per_target)
    swaps = cached_swaps(swap, cache_folder, cache_settings, group, schedule, images)
    faces = [detected_face(analyzer, images[path]) for path in group]
    examples: list[Example] = [(None if face is None else aligned_crop(images[path], face, size, margin), [])
                               for path, face in zip(group, faces, strict=True)]
    for swapped, (_, t) in zip(swaps, schedule, strict=True):
        if swapped is not None and faces[t] is not None:
            face = detected_face(analyzer, swapped, faces[t])
            examples[t][1].append(aligned_crop(swapped, face, size, margin))
    failed = sum(swapped is None for swapped in swaps)
    return [(real, fakes) for real, fakes in examples if real is not None and fakes], failed


def augmented_batch(examples: list[Example], batch_size: int, rng: np.random.Generator):
    """[B, 3, S, S] crops with the swap detector's augmentations, and their labels [B] (1: swap).
    Each draws a photo, then its real crop or one of its swaps, half and half: which photo it is
    says nothing about the label, so only what a swap looks like can be learnt."""
    import torch

    from fswap.swap_detection import crops_to_tensor
    from fswap.training.train_detector import augment

    images, labels = [], []
    for _ in range(batch_size):
        real, swaps = examples[rng.integers(len(examples))]
        label = int(rng.random() < 0.5)
        crop = swaps[rng.integers(len(swaps))] if label else real
        images.append(augment(crop, np.zeros(crop.shape[:2], np.uint8), rng)[0])
        labels.append(label)
    return crops_to_tensor(images), torch.tensor(labels, dtype=torch.float32)


def train_classifier(examples: list[Example], args: argparse.Namespace, margin: float):
    """A fresh small SwapDetector (no mask head) trained on `examples` for `args.steps` Adam steps."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from fswap.models import SwapDetector
    from fswap.training.common import cosine_schedule

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = SwapDetector(block_out_channels=(16, 32, 64, 128), mask_head=False, sample_size=args.size,
                         norm_num_groups=8, crop_margin=margin)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = cosine_schedule(optimizer, warmup_steps=args.steps // 10 + 1, total_steps=args.steps)
    model.train()
    for _ in (bar := tqdm(range(args.steps), desc="classifier", unit="step")):
        images, labels = augmented_batch(examples, args.batch_size, rng)
        loss = F.binary_cross_entropy_with_logits(model(images).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def target_bootstrap(labels: np.ndarray, scores: np.ndarray, targets: np.ndarray, resamples: int, seed: int
                     ) -> tuple[float, float]:
    """95 % interval of the ROC AUC from a bootstrap over targets: a target's real and its swaps
    are resampled together, since they share a photo."""
    from fswap.swap_detection import roc_auc

    people = np.unique(targets)
    members = [np.flatnonzero(targets == person) for person in people]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        chosen = np.concatenate([members[k] for k in rng.integers(0, len(people), len(people))])
        if 0 < labels[chosen].sum() < len(chosen):
            aucs.append(roc_auc(labels[chosen], scores[chosen]))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def held_out_auc(model, examples: list[Example], seed: int) -> dict:
    """ROC AUC of `model` on the held-out photos against their swaps, its target-bootstrap
    interval, and the AUC again with every crop re-saved as JPEG quality 75."""
    from fswap.swap_detection import jpeg, roc_auc, score_crops

    crops = np.stack([crop for real, fakes in examples for crop in (real, *fakes)])
    labels = np.array([k > 0 for _, fakes in examples for k in range(1 + len(fakes))])
    targets = np.array([t for t, (_, fakes) in enumerate(examples) for _ in range(1 + len(fakes))])
    scores, _ = score_crops(model, crops)
    low, high = target_bootstrap(labels, scores, targets, resamples=1000, seed=seed)
    jpeg_scores, _ = score_crops(model, jpeg(crops, 75))
    return {"auc": round(roc_auc(labels, scores), 4), "ci95": [round(low, 4), round(high, 4)],
            "auc_jpeg75": round(roc_auc(labels, jpeg_scores), 4)}


def measure_system(pipeline, system: str, swap: SwapFunction, groups: dict[str, tuple[list[Path], int]],
                   images: dict[Path, np.ndarray], args: argparse.Namespace, margin: float) -> dict:
    """One system's swaps of each group (photos, swaps per photo), a classifier trained on "half A"
    and "training split", and its AUC on "half B"."""
    from fswap.assets import default_model

    started = time.perf_counter()
    cache_settings = {"system": system, "options": SYSTEMS[system], "model": str(args.model or default_model())}
    made = {name: photo_examples(pipeline.face_analyzer, swap, photos, per_target, images, size=args.size,
                                 margin=margin, cache_folder=Path(args.work) / "swaps" / system.replace(" ", "-"),
                                 cache_settings=cache_settings)
            for name, (photos, per_target) in groups.items() if photos}
    train = made["half A"][0] + made.get("training split", ([], 0))[0]
    test = made["half B"][0]
    model = train_classifier(train, args, margin)
    return {"system": system, **held_out_auc(model, test, args.seed),
            "train_photos": len(train), "train_swaps": sum(len(fakes) for _, fakes in train),
            "test_reals": len(test), "test_swaps": sum(len(fakes) for _, fakes in test),
            "failed": sum(failed for _, failed in made.values()), "seconds": round(time.perf_counter() - started, 1)}


def two_sample(args: argparse.Namespace) -> None:
    import torch

    from fswap.imageio import load_image

    torch.set_num_threads(2)
    margin, data = 0.25, Path(args.data)
    pipeline = load_pipeline(args.model)
    swaps = {system: swap_function(pipeline, system) for system in args.systems}
    held_out = held_out_photos(data, seed=args.seed)
    people = len(held_out) // 2
    groups = {"half A": (held_out[:people], args.per_target), "half B": (held_out[people : 2 * people], args.per_target),
              "training split": (training_photos(data, args.extra_targets, args.seed), 1)}
    images = {path: load_image(path) for photos, _ in groups.values() for path in photos}
    rows = []
    for system, swap in swaps.items():
        rows.append(measure_system(pipeline, system, swap, groups, images, args, margin))
        print(markdown_table(rows[-1:], TWO_SAMPLE_COLUMNS))
    path = write_result("realism_two_sample", {
        "seed": args.seed, "photos_per_half": people, "swaps_per_target": args.per_target,
        "training_split_targets": len(groups["training split"][0]), "crop_size": args.size, "crop_margin": margin,
        "steps": args.steps, "batch_size": args.batch_size,
        "note": "ROC AUC of a fresh classifier trained on half A (+ training-split photos), tested on half B; "
                "0.5 = cannot tell",
        "systems": rows})
    print(markdown_table(rows, TWO_SAMPLE_COLUMNS))
    print(f"wrote {path}")


# ------------------------------------------------------------------------------------ gallery
def fit_cell(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`image` `height` px high, centred on white and cut to `width` px wide."""
    image = fit_height(image, height)
    canvas = np.full((height, max(width, image.shape[1]), 3), 255, np.uint8)
    left = (canvas.shape[1] - image.shape[1]) // 2
    canvas[:, left : left + image.shape[1]] = image
    cut = (canvas.shape[1] - width) // 2
    return canvas[:, cut : cut + width]


def failed_cell(height: int, width: int) -> np.ndarray:
    cell = np.full((height, width, 3), 200, np.uint8)
    cv2.putText(cell, "failed", (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    return cell


def gallery(args: argparse.Namespace) -> None:
    """docs/images/realism_gallery.png: the first `--rows` pairs of the blind sets, as they come
    (no picking); source, target, then each system's swap."""
    from fswap.imageio import save_image

    sources, targets, pairs = held_out_pairs(Path(args.data), args.pairs, seed=args.seed)
    pipeline = load_pipeline(args.model)
    swaps = {system: swap_function(pipeline, system) for system in args.systems}
    height = GALLERY_HEIGHT
    width = round(height * targets[0].shape[1] / targets[0].shape[0])
    rows = []
    for s, t in pairs[: args.rows]:
        cells = [fit_cell(sources[s], height, width), fit_cell(targets[t], height, width)]
        for swap in swaps.values():
            swapped, _ = swap_or_reason(swap, sources[s], targets[t])
            cells.append(failed_cell(height, width) if swapped is None else fit_cell(swapped, height, width))
        rows.append(np.concatenate(cells, axis=1))
    header = np.concatenate([label_strip(text, width) for text in ("source", "target", *swaps)], axis=1)
    print(save_image(IMAGES / "realism_gallery.png", np.concatenate([header, *rows])))


# ------------------------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, swaps: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--seed", type=int, default=0, help="held-out order, set labels, sides, training")
        if swaps:
            add_checkpoint_arguments(sub)
            sub.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS),
                             help="systems to swap with (default: all)")
        return sub

    sub = command("sheets", "blind spot-the-fake sets, one per system, and their key")
    sub.add_argument("--output", type=Path, required=True, help="folder for set-A, set-B, ... and key.json")
    sub.add_argument("--pairs", type=int, default=32, help="the first N held-out pairs")
    sub = command("score", "score the judges' ANSWERS.txt against key.json", swaps=False)
    sub.add_argument("--output", type=Path, required=True, help="the folder `sheets` wrote")
    sub = command("two-sample", "ROC AUC of a fresh real-vs-swap classifier per system")
    sub.add_argument("--work", type=Path, default=Path("runs/realism"), help="where swaps are cached")
    sub.add_argument("--per-target", type=int, default=4, help="swaps onto each held-out photo")
    sub.add_argument("--extra-targets", type=int, default=200,
                     help="training-split photos added to the training half, each swapped once")
    sub.add_argument("--size", type=int, default=96, help="face crop size, px (a multiple of 8)")
    sub.add_argument("--steps", type=int, default=500, help="Adam steps per classifier")
    sub.add_argument("--batch-size", type=int, default=32)
    sub = command("gallery", "docs/images/realism_gallery.png: the first pairs, every system")
    sub.add_argument("--pairs", type=int, default=32, help="the pair list of `sheets --pairs`")
    sub.add_argument("--rows", type=int, default=12, help="the first N of those pairs")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    {"sheets": sheets, "score": score, "two-sample": two_sample, "gallery": gallery}[args.command](args)
    print(f"{args.command}: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
