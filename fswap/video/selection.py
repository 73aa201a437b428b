"""Whose face: which tracked people are swapped, and with which source.

- every face ("all");
- faces *i*, *j*, ... of the first frame that has faces, numbered largest first as `fswap detect`
  numbers a photo's ("largest" is face 0), each followed through the clip by its track;
- by reference: each reference photo names a person, and the tracked face most like it (at least
  `same_person` similar) gets that reference's source. One reference with the sources given is
  `--reference PHOTO`; several are `--map REF=SOURCE` pairs. Frames without them pass untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fswap.errors import NoFaceError
from fswap.video.tracking import Track


class Selection:
    """Decides, frame by frame, which tracks are swapped with which source (an index).

    Args:
        faces: "all", "largest", or a face number (or a list of them) of the first frame with
            faces; ignored when `references` are given.
        references: one L2-normalised embedding per reference person; person *j* gets source *j*.
        same_person: the least similarity for a track to be taken for a reference's person.
    """

    def __init__(self, faces: str | int | Sequence[int] = 0, references: Sequence[np.ndarray] | None = None,
                 same_person: float = 0.35):
        numbers = [faces] if isinstance(faces, (int, np.integer)) else faces
        if isinstance(faces, str):
            if faces not in ("all", "largest"):
                raise ValueError(f'faces must be "all", "largest" or face numbers (0 is the largest face of the first '
                                 f"frame with faces), not {faces!r}")
        elif (isinstance(faces, bool) or not isinstance(numbers, Sequence) or not numbers
              or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in numbers)):
            raise ValueError(f'faces must be "all", "largest" or face numbers from 0 (the largest face of the first '
                             f"frame with faces), not {faces!r}")
        self.faces = faces if faces == "all" else [0] if faces == "largest" else [int(n) for n in numbers]
        self.references = None if references is None else np.stack(list(references))
        self.same_person = same_person
        self.chosen_ids: list[int] | None = None  # the followed tracks, when choosing by number

    @property
    def needs_embeddings(self) -> bool:
        """Whether every track needs an identity embedding from its first frame on."""
        return self.references is not None

    def __call__(self, tracks: list[Track], index: int) -> dict[int, int]:
        """{track id: source index} for the tracks of frame `index` to swap."""
        if self.references is not None:
            # Each reference names one person: its most similar track, most similar pairs first.
            known = [track for track in tracks if track.embedding is not None]
            pairs = sorted(((float(reference @ track.embedding), j, track.id) for track in known
                            for j, reference in enumerate(self.references)), reverse=True)
            chosen: dict[int, int] = {}
            for similarity, j, track_id in pairs:
                if similarity < self.same_person:
                    break
                if track_id not in chosen and j not in chosen.values():
                    chosen[track_id] = j
            return chosen
        if self.faces == "all":
            return {track.id: 0 for track in tracks}
        if self.chosen_ids is None and tracks:
            ranked = sorted(tracks, key=lambda track: track.last_face.area, reverse=True)
            missing = [number for number in self.faces if number >= len(ranked)]
            if missing:
                raise NoFaceError(f"the first frame with faces (frame {index}) has {len(ranked)} face(s), numbered "
                                  f"0 to {len(ranked) - 1}; face {missing[0]} does not exist")
            self.chosen_ids = [ranked[number].id for number in self.faces]
        return {track.id: 0 for track in tracks if track.id in (self.chosen_ids or ())}
