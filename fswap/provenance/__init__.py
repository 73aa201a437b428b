"""Provenance for fswap outputs: Content Credentials (C2PA) and an invisible face watermark.

Two signals with different jobs. The C2PA manifest is a signed statement inside the file
("a composite made with trained algorithmic media, by fswap 0.1.0, checkpoint X") that
validates while the pixels are untouched and reports "tampered" when they change; it is lost
when a platform strips metadata or re-encodes. The watermark lives in the pixels of each
swapped face and survives JPEG, resizing, cropping and colour edits, but says only "made by
fswap" plus a 16-bit tag.

Example:
    ```python
    >>> from fswap import FaceSwapPipeline
    >>> from fswap.provenance import embed_watermark, sign_image, verify
    >>> pipe = FaceSwapPipeline.from_pretrained("checkpoints/fswap-default")
    >>> out = pipe("source.jpg", "target.jpg")
    >>> marked = embed_watermark(out.image, [s.face for s in out.swapped],
    ...                          checkpoint="fswap-default", analyzer=pipe.face_analyzer)
    >>> signed = sign_image(marked, checkpoint="fswap-default", format="png")  # local test certificate
    >>> open("swapped.png", "wb").write(signed)
    >>> print(verify("swapped.png").summary())
    Content Credentials: VALID
      signed by: fswap local test certificate — not trusted (fswap), signer not on a trust list
      ...
    Watermark: FOUND (fswap-face-v1 on 1 of 1 face(s); p ≤ 2e-70, 112 magic bits read, 100% match; ...)
    ```

A video (`fswap.video.swap_video`) carries the watermark in every swapped face of every frame and,
in mp4, m4v or mov, a signed manifest (`sign_video`); `verify_video` reports the manifest and the
share of frames with a face where the watermark is found.
"""

from fswap.provenance.c2pa_manifest import (
    C2paCredentials,
    ManifestReport,
    ProvenanceError,
    credentials_dir,
    local_test_ca_certificate,
    local_test_credentials,
    read_manifest,
    read_video_manifest,
    sign_image,
    sign_video,
)
from fswap.provenance.verify import FrameCheck, VerifyReport, VideoVerifyReport, verify, verify_video
from fswap.provenance.watermark import (
    FaceMark,
    WatermarkReport,
    detect_watermark,
    embed_watermark,
    payload_tag,
)

__all__ = [
    "C2paCredentials",
    "FaceMark",
    "FrameCheck",
    "ManifestReport",
    "ProvenanceError",
    "VerifyReport",
    "VideoVerifyReport",
    "WatermarkReport",
    "credentials_dir",
    "detect_watermark",
    "embed_watermark",
    "payload_tag",
    "read_manifest",
    "read_video_manifest",
    "sign_image",
    "sign_video",
    "local_test_ca_certificate",
    "local_test_credentials",
    "verify",
    "verify_video",
]
