"""Training data: offline photo sources and their preparation into aligned face crops."""

from fswap.data.prepare import PrepareSummary, SourceCounts, prepare_dataset
from fswap.data.sources import NAMED_SOURCES, FaceSource, ImageRecord, open_source

__all__ = [
    "NAMED_SOURCES",
    "FaceSource",
    "ImageRecord",
    "PrepareSummary",
    "SourceCounts",
    "open_source",
    "prepare_dataset",
]
