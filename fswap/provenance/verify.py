"""`verify`: read both provenance signals of a file, the C2PA manifest and the face watermark."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fswap.faces import FaceAnalyzer
from fswap.imageio import load_image
from fswap.provenance.c2pa_manifest import ManifestReport, read_manifest
from fswap.provenance.watermark import WatermarkReport, detect_watermark, payload_tag


@dataclass
class VerifyReport:
    """The manifest (valid, tampered or absent) and the watermark (found or absent) of one image."""

    manifest: ManifestReport
    watermark: WatermarkReport
    checkpoint: str | None = None  # the checkpoint the caller asked about, if any

    @property
    def tag_matches_manifest(self) -> bool | None:
        """Whether the watermark's tag is the one fswap writes for the manifest's version and
        checkpoint; None when either side is missing."""
        best = self.watermark.best
        agent = self.manifest.software_agent or ""
        if not self.watermark.found or best is None or best.tag is None or not agent.startswith("fswap "):
            return None
        return best.tag == payload_tag(self.manifest.checkpoint, agent.removeprefix("fswap "))

    def summary(self) -> str:
        lines = [self.manifest.summary(), self.watermark.summary()]
        if self.tag_matches_manifest is not None:
            lines.append(
                "  the watermark's tag " + ("matches" if self.tag_matches_manifest else "does NOT match")
                + " the manifest's fswap version and checkpoint"
            )
        best = self.watermark.best
        if self.checkpoint is not None and self.watermark.found and best is not None and best.tag is not None:
            verdict = "matches" if best.tag_matches(self.checkpoint) else "does not match"
            lines.append(f"  the watermark's tag {verdict} checkpoint {self.checkpoint!r} with this fswap version")
        return "\n".join(lines)


def verify(
    source: bytes | str | os.PathLike | np.ndarray,
    *,
    analyzer: FaceAnalyzer | None = None,
    trust_anchors: bytes | str | None = None,
    checkpoint: str | None = None,
) -> VerifyReport:
    """Check an image for fswap's Content Credentials and its face watermark, offline.

    Args:
        source: the file (path or bytes), or decoded RGB pixels (which carry no manifest).
        analyzer: the face analyzer for the watermark (default: the registry-shipped models).
        trust_anchors: PEM root certificate(s) whose signers count as trusted (see `read_manifest`).
        checkpoint: also say whether the watermark's tag matches this checkpoint name.

    Raises:
        fswap.ImageError: `source` cannot be read as an image.
        fswap.provenance.ProvenanceError: `trust_anchors` holds no PEM certificate.
    """
    if isinstance(source, np.ndarray):
        manifest = ManifestReport(status="absent")
        pixels = load_image(source)
    else:
        pixels = load_image(source)  # first: a file that is not a readable image is refused here
        manifest = read_manifest(source, trust_anchors=trust_anchors)
    return VerifyReport(manifest, detect_watermark(pixels, analyzer=analyzer), checkpoint)
