"""Face toolkit: detection, landmarks, alignment, masks, paste-back, colour matching."""

from fswap.faces.align import (
    alignment_matrix,
    face_template,
    feather,
    invert_matrix,
    mask_to_image,
    paste_back,
    transform_points,
    warp_face,
)
from fswap.faces.analyzer import Face, FaceAnalyzer, FaceAnalyzerConfig, select_faces
from fswap.faces.color import match_appearance
from fswap.faces.masks import LANDMARK_GROUPS, REGIONS, region_mask

__all__ = [
    "LANDMARK_GROUPS",
    "REGIONS",
    "Face",
    "FaceAnalyzer",
    "FaceAnalyzerConfig",
    "alignment_matrix",
    "face_template",
    "feather",
    "invert_matrix",
    "mask_to_image",
    "match_appearance",
    "paste_back",
    "region_mask",
    "select_faces",
    "transform_points",
    "warp_face",
]
