"""Notices in plain words about source photos that make a poor swap.

Some source photos hurt a swap whatever the model does, and a user cannot tell why from the
result alone:
- a face turned far from the target face's pose: the side turned away from the camera is
  stretched from a few pixels (and the near side squeezed);
- a face largely covered (hair, a hat, sunglasses, a hand): what covers it is pasted with the
  face (or, as `paste_source_occluders` says, only what covers its eyes, or nothing: the
  target's own skin and features show there, and less of the source comes through);
- a face much smaller in its photo than the target face: its pixels are enlarged to cover the
  target face, and the swap looks soft next to the sharp photo around it;
- a face cut off by the photo's edge: the photo has no pixels of that part, so the target's own
  face shows there;
- a photo of several people about as large as each other: the largest face is used unless
  another is chosen, and it may not be the person meant;
- a black-and-white photo for a colour target: the face is recoloured to the target skin's
  average, so the lips, eyes and cheeks have no colour of their own;
- a face turned the other way from the target face: the swap takes it in its mirror image, and
  what is on one side only changes sides.

The swap still runs. The notices (`SwapOutput.notices`, toasts in the app, `note:` lines from
`fswap swap`) say what went wrong and which photo would do better. The limits are set so that
about one CelebA training photo in twenty (turn, against a frontal target) or fifty (cover)
would get a notice.
"""

from __future__ import annotations

import math

#: Degrees of head turn (yaw) between a source face and the target face beyond which the source
#: texture is stretched visibly. 95 % of the CelebA training photos are turned less than 44°.
TURN_LIMIT = 45.0
#: Share of a source face's region its segmenter finds covered, beyond which much of the target
#: shows through. 98 % of the CelebA training photos have less than 21 % covered.
COVER_LIMIT = 0.2
#: Share of a source face's region outside its photo beyond which the swap visibly shows the
#: target's own face there (a chin or a cheek's edge cut off is common in close-ups and shows little).
CUT_OFF_LIMIT = 0.1
#: How many times larger (across, in pixels) than the source face the target face may be before
#: the swap looks soft: enlarged twice, a photo's finest detail (eyelashes, pores) is gone.
ENLARGE_LIMIT = 2.0
#: Another face in a source photo at least this large, across, against the largest face may be
#: the person meant (a face in the background is smaller and is not).
RIVAL_SIZE = 0.7


#: What a swap does with what covers a source face, per `paste_source_occluders` setting.
COVERED_CONSEQUENCES = {
    "all": "The swap shows what covers it, on the target's face",
    "inside": "The swap shows what covers its eyes on the target's face; where hair, a hat or a hand reaches in "
              "from the edge, the target's own face shows, and less of this person comes through",
    "none": "fswap does not paste what covers it, so the target's own skin shows there (relit, the face's other "
            "side where that is clean) and less of this person comes through",
}


def covered_notice(name: str, covered_share: float, pasted: str = "all") -> str | None:
    """A notice when `covered_share` of the source face `name` is hidden, else None. `pasted`:
    what of what covers it is pasted with the face (`paste_source_occluders`: "all", "inside" or "none")."""
    if not covered_share > COVER_LIMIT:
        return None
    consequence = COVERED_CONSEQUENCES[pasted]
    return (
        f"{name}: about {covered_share:.0%} of the face is covered (hair, a hat, glasses or a hand). "
        f"{consequence}. A photo with the face uncovered swaps better."
    )


def cut_off_notice(name: str, outside_share: float) -> str | None:
    """A notice when `outside_share` of the source face `name` lies outside its photo, else None."""
    if not outside_share > CUT_OFF_LIMIT:
        return None
    return (
        f"{name}: about {outside_share:.0%} of the face is outside the photo, and the swap shows the target's own "
        "face where the photo has none of it. A photo with the whole face in it swaps better."
    )


def mirrored_notice(name: str) -> str:
    """What the swap did with the source face `name`, turned the other way from the target face:
    it took its mirror image (`fswap.faces.mirror`)."""
    return (
        f"{name}: the face is turned the other way from the target face, so the swap takes it in its mirror image, "
        "turned like the target. Anything on one side only (a parting, a mole) is on the other side. A photo "
        "turned like the target face keeps it where it is."
    )


def turn_notice(name: str, source_yaw: float, target_yaw: float) -> str | None:
    """A notice when the source face `name` is turned more than `TURN_LIMIT` degrees from the
    target face (yaw in degrees, from `fswap.faces.pose.head_pose`), else None."""
    turn = abs(source_yaw - target_yaw)
    if math.isnan(turn) or turn <= TURN_LIMIT:
        return None
    return (
        f"{name}: the face is turned about {turn:.0f}° away from the target face's pose, so the side "
        "turned away is stretched from a few pixels. A photo turned like the target face swaps better."
    )


def enlarged_notice(name: str, source_size: float, target_size: float) -> str | None:
    """A notice when the target face is more than `ENLARGE_LIMIT` times as large as the source
    face `name` (sizes across, in pixels of their photos), else None."""
    if not source_size > 0 or not target_size / source_size > ENLARGE_LIMIT:
        return None
    return (
        f"{name}: the face is about {source_size:.0f} px across and the target face {target_size:.0f} px, so the "
        f"swap enlarges it about {target_size / source_size:.0f} times and looks soft. A larger, sharper photo "
        "of the face swaps better."
    )


def several_faces_notice(name: str, sizes: list[float]) -> str | None:
    """A notice when the source photo `name` has other faces nearly as large as its largest one
    (`sizes` across, in pixels, largest first), else None."""
    rivals = sum(size >= RIVAL_SIZE * sizes[0] for size in sizes[1:]) if sizes else 0
    if not rivals:
        return None
    return (
        f"{name}: {rivals + 1} faces in it are about as large as each other, and the largest is used. If that is "
        "not the person meant, choose their face: in the app, click the source face for the next one; "
        "otherwise --source-faces or source_faces= with its number, largest face first from 0."
    )


def colourless_notice(name: str, source_colourless: bool, target_colourless: bool) -> str | None:
    """A notice when the source face `name` is black and white and the target face is not, else None."""
    if not source_colourless or target_colourless:
        return None
    return (
        f"{name}: the photo is black and white, so the swapped face takes the target skin's average colour, "
        "and its lips, eyes and cheeks have no colour of their own. A colour photo swaps better."
    )
