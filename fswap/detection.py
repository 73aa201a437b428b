"""Deprecated: the swap detector's module is `fswap.swap_detection` (this name read as face detection).

Kept for one release (fswap 0.1.x) so that old imports keep working; it warns once on import and
gives the very same objects. The detector's cards moved to `fswap.hub.cards`.

    from fswap.detection import detect_swaps          # before
    from fswap.swap_detection import detect_swaps     # now
"""

import warnings

from fswap.hub.cards import (
    DETECTOR_FILES,
    detector_cards,
    detector_upload,
    render_detector_card,
    write_detector_cards,
)
from fswap.swap_detection import (
    DEFAULT_DETECTOR,
    HEAT_COLOUR,
    FaceVerdict,
    SwapDetector,
    align_faces,
    crops_to_tensor,
    detect_swaps,
    draw_verdicts,
    evaluate_detector,
    jpeg,
    load_detector,
    roc_auc,
    score_crops,
)

warnings.warn(
    "fswap.detection is deprecated and will be removed after fswap 0.1: import from fswap.swap_detection "
    "(detecting swaps) and fswap.hub.cards (the detector's cards) instead",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTOR_FILES",
    "HEAT_COLOUR",
    "FaceVerdict",
    "SwapDetector",
    "align_faces",
    "crops_to_tensor",
    "detect_swaps",
    "detector_cards",
    "detector_upload",
    "draw_verdicts",
    "evaluate_detector",
    "jpeg",
    "load_detector",
    "render_detector_card",
    "roc_auc",
    "score_crops",
    "write_detector_cards",
]
