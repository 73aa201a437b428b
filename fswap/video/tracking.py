"""Tracking: one id per person through a clip, from detection boxes and identity embeddings.

On a frame where the detector runs on the whole frame, each face is matched to the track whose
box, moved on by its speed, it overlaps most (intersection over union); where that is ambiguous
(two people close together) or a face matches no box (it came back after turning away, being covered or leaving
the frame, or after a cut), the face recogniser's embedding decides: a face as similar as
`same_person` to a track seen before resumes it, else it starts a new one. Between whole-frame
runs (`VideoOptions.detect_every`) each face is looked for only in the region around where it was,
shown to the detector small (`find_near`: 33 ms against 56 for the whole 720p frame in one
measurement, landmarks included); a face not found there sends the frame to the whole-frame detector, so a face that
left is never followed into the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from fswap.faces import Face, FaceAnalyzer
from fswap.faces.analyzer import box_iou, overlapping

#: A detection continues a track when its box overlaps the track's moved-on box this much.
MATCH_IOU = 0.3
#: A track missed by the detector for up to this many frames is still matched by its box.
RECENT_FRAMES = 10
#: Two faces whose embeddings are less similar than this are not one person, however they overlap.
DIFFERENT_PERSON = 0.1
#: A track's embedding is refreshed this often (frames) while it is matched by its box alone.
EMBED_EVERY = 30
#: A track's embedding is the mean of at most this many of its faces': it follows a slow change.
EMBEDDING_MEMORY = 10
#: Between detector runs on the whole frame, each face is looked for in the region around where it
#: was (its box grown by this share of its size on each side), shown to the detector at this size.
FOLLOW_MARGIN = 0.5
FOLLOW_SIZE = 320


@dataclass
class Track:
    """One person followed through the clip."""

    id: int
    last_face: Face  # as last seen (raw landmarks, not smoothed)
    last_seen: int  # frame index
    first_seen: int
    embedding: np.ndarray | None = None  # mean identity embedding, L2-normalised
    embeddings: int = 0
    embedded_at: int = -1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # the box centre's, px per frame
    detected: bool = False  # this frame's face came from the detector (always, as the tracker runs it)
    resumed: bool = True  # this frame continues nothing smooth: the track is new, or came back
    state: dict = field(default_factory=dict)  # what the swapper keeps per track (smoothers, masks)

    def seen_in(self, index: int) -> bool:
        return self.last_seen == index

    def add_embedding(self, embedding: np.ndarray, index: int) -> None:
        weight = min(self.embeddings, EMBEDDING_MEMORY - 1)
        mean = embedding if self.embedding is None else self.embedding * weight + embedding
        self.embedding = mean / max(np.linalg.norm(mean), 1e-12)
        self.embeddings += 1
        self.embedded_at = index


class FaceTracker:
    """Keeps the tracks of a clip: call `detected` on frames the detector ran on, `follow` between.

    Args:
        analyzer: the face analyzer whose recogniser gives the embeddings and whose landmark
            model follows faces between detections.
        same_person: embedding similarity from which an unmatched face resumes an old track.
    """

    def __init__(self, analyzer: FaceAnalyzer, same_person: float = 0.35):
        self.analyzer = analyzer
        self.same_person = same_person
        self.tracks: list[Track] = []
        self._next_id = 0
        self._continuous = True  # whether the frame before is of the same shot

    def cut(self) -> None:
        """The next frame begins a new shot: boxes say nothing there, embeddings alone match."""
        self._continuous = False

    def in_frame(self, index: int) -> list[Track]:
        """The tracks seen in frame `index`, by id."""
        return [track for track in self.tracks if track.seen_in(index)]

    # ------------------------------------------------------------------ detector frames
    def detected(self, image: np.ndarray, index: int, faces: list[Face], *, embeddings: bool = False) -> list[Track]:
        """Match the faces the detector found in frame `index` to tracks; return the frame's tracks.
        `embeddings`: make sure every track has an embedding (to choose people by a reference)."""
        recent = [track for track in self.tracks if self._continuous and index - track.last_seen <= RECENT_FRAMES]
        predicted = [_moved_box(track, index) for track in recent]
        ambiguous = len(faces) > 1 or len(recent) > 1
        face_embeddings: dict[int, np.ndarray] = {}

        def embedding_of(d: int) -> np.ndarray:
            if d not in face_embeddings:
                face_embeddings[d] = self.analyzer.embed(image, faces[d])
            return face_embeddings[d]

        if ambiguous:
            for d in range(len(faces)):
                embedding_of(d)
        pairs = sorted(((box_iou(box, face.box), t, d) for t, box in enumerate(predicted)
                        for d, face in enumerate(faces)), reverse=True)
        matched: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, t, d in pairs:
            if overlap < MATCH_IOU:
                break
            if t in used or d in matched:
                continue
            track = recent[t]
            if ambiguous and track.embedding is not None and float(track.embedding @ embedding_of(d)) < DIFFERENT_PERSON:
                continue
            matched[d] = track
            used.add(t)
        for d, face in enumerate(faces):
            track = matched.get(d)
            if track is not None:
                self._update(track, face, index, detected=True, resumed=False)
            else:
                track = self._resume_or_start(face, embedding_of(d), index)
                matched[d] = track
            if d in face_embeddings:
                track.add_embedding(face_embeddings[d], index)
            elif (track.embedding is None or index - track.embedded_at >= EMBED_EVERY
                  or (embeddings and track.embeddings < 3)):
                track.add_embedding(embedding_of(d), index)
        self._continuous = True
        return self.in_frame(index)

    def _resume_or_start(self, face: Face, embedding: np.ndarray, index: int) -> Track:
        """The track not seen in this frame that is this person, or a new one."""
        candidates = [track for track in self.tracks if not track.seen_in(index) and track.embedding is not None]
        similarities = [float(track.embedding @ embedding) for track in candidates]
        if similarities and max(similarities) >= self.same_person:
            track = candidates[int(np.argmax(similarities))]
            self._update(track, face, index, detected=True, resumed=True)
            return track
        track = Track(id=self._next_id, last_face=face, last_seen=index, first_seen=index, detected=True,
                      resumed=True)
        self._next_id += 1
        self.tracks.append(track)
        return track

    def _update(self, track: Track, face: Face, index: int, *, detected: bool, resumed: bool) -> None:
        if not resumed and track.last_seen == index - 1:
            shift = _centre(face.box) - _centre(track.last_face.box)
            track.velocity = 0.5 * track.velocity + 0.5 * shift
        else:
            track.velocity = np.zeros(2)
        track.last_face, track.last_seen = face, index
        track.detected, track.resumed = detected, resumed

    # ------------------------------------------------------------------ between detections
    def follow(self, image: np.ndarray, index: int) -> list[Track] | None:
        """Follow the faces seen in the frame before into frame `index`, each found again by the
        detector in a small copy of the region around where it was; None when there is nothing to
        follow or a face was not found there (then run the detector on the whole frame)."""
        previous = [track for track in self.tracks if track.last_seen == index - 1] if self._continuous else []
        if not previous:
            return None
        followed = []
        for track in previous:
            box = _moved_box(track, index)
            face = find_near(self.analyzer, image, box)
            if face is None:
                return None
            followed.append((track, face))
        for track, face in followed:
            self._update(track, face, index, detected=True, resumed=False)
        return self.in_frame(index)


def find_near(analyzer: FaceAnalyzer, image: np.ndarray, box: np.ndarray) -> Face | None:
    """The face overlapping `box` most (IoU at least `MATCH_IOU`), found by the detector in the
    region around it (`FOLLOW_MARGIN`) shown at `FOLLOW_SIZE` px, with its landmarks; or None."""
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    pad = FOLLOW_MARGIN * max(x1 - x0, y1 - y0)
    left, top = max(0, int(x0 - pad)), max(0, int(y0 - pad))
    right, bottom = min(image.shape[1], int(np.ceil(x1 + pad))), min(image.shape[0], int(np.ceil(y1 + pad)))
    if right - left < 16 or bottom - top < 16:
        return None
    offset = np.array([left, top], np.float64)
    faces = [replace(face, box=face.box + np.tile(offset, 2), keypoints=face.keypoints + offset,
                     landmarks=face.landmarks + offset)
             for face in find_faces(analyzer, np.ascontiguousarray(image[top:bottom, left:right]), FOLLOW_SIZE)]
    best = overlapping(box, [face.box for face in faces], MATCH_IOU)
    return None if best is None else faces[best]


def find_faces(analyzer: FaceAnalyzer, image: np.ndarray, detection_size: int | None = None) -> list[Face]:
    """Every face of a frame with landmarks, largest first; with `detection_size`, the detector
    looks at a copy that many pixels on its longer side and the landmarks are read at full size."""
    side = max(image.shape[:2])
    if detection_size is None or side <= detection_size:
        return analyzer.detect(image)
    scale = detection_size / side
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    faces = []
    for face in analyzer.detect(small, landmarks=False):
        face = replace(face, box=face.box / scale, keypoints=face.keypoints / scale)
        faces.append(replace(face, landmarks=landmarks_in_box(analyzer, bgr, face.box)))
    return faces


def landmarks_in_box(analyzer: FaceAnalyzer, bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The 106 landmarks [106, 2] the analyzer's landmark model reads for a face in `box` of a
    BGR frame: what it does after the detector, without the detector."""
    from insightface.app.common import Face as InsightFace

    record = InsightFace(bbox=np.asarray(box, np.float32)[:4], kps=None, det_score=1.0)
    # The analyzer's landmark model (2d106det) reads a face from its box alone.
    return analyzer._landmarker.get(bgr, record).astype(np.float64)


def _moved_box(track: Track, index: int) -> np.ndarray:
    """The track's last box moved on by its speed to frame `index`."""
    shift = track.velocity * (index - track.last_seen)
    return np.asarray(track.last_face.box, np.float64) + np.concatenate([shift, shift])


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])


def _size(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1], 1e-6))
