"""Content Credentials (C2PA) for fswap outputs: sign a file with a manifest that declares it a
composite made with trained algorithmic media, and read such a manifest back.

The manifest holds one `c2pa.actions` assertion: `c2pa.created` (or `c2pa.opened` + `c2pa.edited`
when the target photo is given as the parent ingredient) with
digitalSourceType `compositeWithTrainedAlgorithmicMedia`, softwareAgent fswap and its version,
and the checkpoint in the action's parameters. Signing needs an X.509 certificate chain and its
private key: the user's own, or a local test credential that `local_test_credentials` makes on
first use and that no validator trusts. Nothing here touches the network: no timestamp
authority unless one is named, no OCSP, no remote manifests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fswap.errors import FswapError, ImageError
from fswap.fileio import write_atomically
from fswap.version import __version__

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
#: IPTC's "mix or composite of several elements": what the classic landmark swap makes, whose
#: pixels are the two photos' own, warped and blended, with no trained model drawing any of them.
COMPOSITE_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/composite"
#: The label in the subject of the generated certificates: validators show it as the signer.
TEST_CERTIFICATE_NAME = "fswap local test certificate — not trusted"
TEST_CA_NAME = "fswap local test CA — not trusted"
ENV_DIR = "FSWAP_C2PA_DIR"
TEST_FILES = {"chain": "test-chain.pem", "key": "test-key.pem", "ca": "test-ca.pem"}
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
#: The formats fswap writes signed files in.
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}
#: The formats a parent ingredient or a checked file may come in: every photo fswap reads
#: (`fswap.imageio.READ_FORMATS`). A phone's JPEG often opens as MPO (a JPEG with its other
#: pictures appended); BMP carries no manifest, so a checked BMP has none.
READ_MIME_TYPES = {**MIME_TYPES, "MPO": "image/jpeg", "GIF": "image/gif", "BMP": "image/bmp", "AVIF": "image/avif"}
#: Video containers a manifest can be written into, by suffix: ISO BMFF. c2pa has no Matroska
#: (mkv, webm) support, so an mkv output carries the watermark alone.
VIDEO_MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime"}
#: Video containers c2pa reads (for a manifest, or an ingredient's own manifest).
VIDEO_INGREDIENT_TYPES = (*VIDEO_MIME_TYPES.values(), "video/x-msvideo", "image/gif")
_UNTRUSTED = "signingCredential.untrusted"
#: Offline reading: never fetch a remote manifest or a certificate's OCSP status.
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


class ProvenanceError(FswapError):
    """Signing or reading Content Credentials failed (bad credentials, unsupported file)."""


@dataclass(frozen=True)
class C2paCredentials:
    """What signs a manifest: a PEM certificate chain (signing certificate first, then its
    intermediate CAs; the root may be left out) and the PEM private key of the signing certificate.

    The signing certificate must suit C2PA: X.509 v3, not a CA, key usage digitalSignature and an
    extended key usage such as emailProtection or documentSigning. Algorithm names follow C2PA
    ("es256" for an ECDSA P-256 key, "ps256" for RSA-PSS, "ed25519", ...).
    `timestamp_url` names an RFC 3161 timestamp authority; None (the default) signs offline.
    """

    certificate_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    algorithm: str = "es256"
    timestamp_url: str | None = None

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ProvenanceError(f"unknown signing algorithm {self.algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        if b"-----BEGIN CERTIFICATE-----" not in self.certificate_chain:
            raise ProvenanceError("the certificate chain is not PEM (no '-----BEGIN CERTIFICATE-----' block)")
        if b"PRIVATE KEY-----" not in self.private_key:
            raise ProvenanceError("the private key is not PEM (no '-----BEGIN ... PRIVATE KEY-----' block)")

    @classmethod
    def from_files(
        cls,
        certificate_chain: str | os.PathLike,
        private_key: str | os.PathLike,
        *,
        algorithm: str = "es256",
        timestamp_url: str | None = None,
    ) -> C2paCredentials:
        """Read the chain and key from PEM files."""
        return cls(_read(certificate_chain, "certificate chain"), _read(private_key, "private key"), algorithm, timestamp_url)

    @property
    def signer_name(self) -> str:
        """The common name of the signing certificate (the first in the chain)."""
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        certificate = x509.load_pem_x509_certificate(self.certificate_chain)
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else certificate.subject.rfc4514_string()


def credentials_dir(folder: str | os.PathLike | None = None) -> Path:
    """Where the local test credential lives: `folder`, else `$FSWAP_C2PA_DIR`, else ~/.cache/fswap/c2pa."""
    if folder is not None:
        return Path(folder)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    return Path.home() / ".cache" / "fswap" / "c2pa"


def local_test_credentials(folder: str | os.PathLike | None = None) -> C2paCredentials:
    """The local test credential, made on first use (or when it has expired) in `credentials_dir(folder)`.

    It is an ECDSA P-256 end-entity certificate, subject "fswap local test certificate — not
    trusted", issued by a CA made alongside it ("fswap local test CA — not trusted",
    `test-ca.pem`). Files signed with it validate but are reported as from an untrusted signer,
    unless a reader adds `test-ca.pem` to its trust anchors. Use your own certificate for
    anything you publish.
    """
    folder = credentials_dir(folder)
    paths = {name: folder / file_name for name, file_name in TEST_FILES.items()}
    if not all(path.is_file() for path in paths.values()) or _expires_soon(paths["chain"]):
        _write_test_credentials(folder, paths)
    return C2paCredentials.from_files(paths["chain"], paths["key"], algorithm="es256")


def local_test_ca_certificate(folder: str | os.PathLike | None = None) -> bytes:
    """The PEM root of the local test credential: pass it as `trust_anchors` to trust your own test files."""
    local_test_credentials(folder)
    return (credentials_dir(folder) / TEST_FILES["ca"]).read_bytes()


@dataclass
class ManifestReport:
    """What the Content Credentials of a file say.

    `status` is "valid" (the signature and the hash of the pixels check out), "tampered" (a
    manifest is there but does not validate: the pixels changed after signing, or the claim or
    signature is damaged; `failures` says which) or "absent" (no manifest).
    `trusted` is True only when the signer chains to a trust anchor the reader was given.
    """

    status: str
    trusted: bool = False
    signer: str | None = None
    issuer: str | None = None
    software_agent: str | None = None
    checkpoint: str | None = None
    actions: list[str] = field(default_factory=list)
    digital_source_type: str | None = None
    claim_generator: str | None = None
    failures: list[str] = field(default_factory=list)  # validation failure codes (signer trust excluded)
    manifest: dict | None = field(default=None, repr=False)  # the active manifest as c2pa reports it

    def summary(self) -> str:
        if self.status == "absent":
            return "Content Credentials: none (no C2PA manifest in the file)"
        trust = "trusted signer" if self.trusted else "signer not on a trust list"
        lines = [
            f"Content Credentials: {self.status.upper()}"
            + (f" ({', '.join(self.failures)})" if self.failures else "")
        ]
        if self.signer:
            lines.append(f"  signed by: {self.signer}{f' ({self.issuer})' if self.issuer else ''}, {trust}")
        if self.actions:
            lines.append(f"  actions: {', '.join(self.actions)}")
        if self.digital_source_type:
            lines.append(f"  digital source type: {self.digital_source_type.rsplit('/', 1)[-1]}")
        if self.software_agent:
            lines.append(f"  software agent: {self.software_agent}")
        if self.checkpoint:
            lines.append(f"  checkpoint: {self.checkpoint}")
        return "\n".join(lines)


def sign_image(
    image: bytes | str | os.PathLike | np.ndarray,
    *,
    checkpoint: str,
    credentials: C2paCredentials | None = None,
    format: str | None = None,
    parent: bytes | str | os.PathLike | None = None,
    title: str | None = None,
    credentials_folder: str | os.PathLike | None = None,
    digital_source_type: str = DIGITAL_SOURCE_TYPE,
) -> bytes:
    """Return the image file with an embedded, signed C2PA manifest.

    Args:
        image: the encoded file (bytes or a path; PNG, JPEG, WebP or TIFF), or an RGB(A) uint8
            array, which is encoded as `format` (PNG by default; JPEG and WebP at quality 95).
        checkpoint: the model that made the swap (a Hub id or folder name), recorded in the claim.
        credentials: the signer; None uses `local_test_credentials(credentials_folder)`.
        format: "png", "jpeg", "webp", "tiff" or a MIME type; detected from the bytes when None.
        parent: the target photo the swap edited (any format fswap reads, `READ_MIME_TYPES`).
            Given, it becomes the parent ingredient and the actions are `c2pa.opened` +
            `c2pa.edited`; otherwise the action is `c2pa.created`.
        title: the asset's title in the manifest.
        digital_source_type: the IPTC digital source type of the result: `DIGITAL_SOURCE_TYPE`
            (composite with trained algorithmic media) for fswap's networks,
            `COMPOSITE_SOURCE_TYPE` for the classic swap.

    Raises:
        fswap.ImageError: `image` or `parent` is not an image file c2pa can sign.
        ProvenanceError: the credentials are rejected or signing fails.
    """
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ValueError("checkpoint must name the model that made the image (a Hub id or folder name)")
    data, mime = _encoded(image, format, "image")
    ingredient = None
    if parent is not None:
        parent_data, parent_mime = _encoded(parent, None, "parent image", READ_MIME_TYPES)
        ingredient = (_title(parent), parent_mime, io.BytesIO(parent_data))
    output = io.BytesIO()
    _sign(io.BytesIO(data), output, mime, checkpoint=checkpoint, credentials=credentials, parent=ingredient,
          title=title, credentials_folder=credentials_folder, digital_source_type=digital_source_type)
    return output.getvalue()


def sign_video(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    format: str,
    checkpoint: str,
    credentials: C2paCredentials | None = None,
    parent: str | os.PathLike | None = None,
    parent_format: str | None = None,
    title: str | None = None,
    credentials_folder: str | os.PathLike | None = None,
    digital_source_type: str = DIGITAL_SOURCE_TYPE,
) -> None:
    """Write the video file `source` to `destination` with a signed C2PA manifest in it, as
    `sign_image` does for a photo; the file is streamed, never held in memory.

    The manifest's hard binding is a BMFF hash (`c2pa.hash.bmff`) over every box but its own: a
    changed byte of the frames or the sound makes it report "tampered".

    Args:
        source, destination: the files to read and to write (different files).
        format: the container's MIME type or suffix, one of `VIDEO_MIME_TYPES` (ISO BMFF: mp4,
            m4v, mov); c2pa cannot sign Matroska (mkv, webm).
        checkpoint, credentials, title, credentials_folder, digital_source_type: as in `sign_image`.
        parent: the video the swap edited, and `parent_format` its MIME type: it becomes the
            parent ingredient and the actions are `c2pa.opened` + `c2pa.edited`. A container c2pa
            reads (`VIDEO_INGREDIENT_TYPES`) is read for a manifest of its own, which the new one
            then carries; any other (mkv, webm) is named by its title and format alone.

    Raises:
        ProvenanceError: the format cannot carry a manifest, the credentials are rejected or
            signing fails (a damaged file).
    """
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ValueError("checkpoint must name the model that made the video (a Hub id or folder name)")
    mime = VIDEO_MIME_TYPES.get("." + format.lower().lstrip("."), format.lower())
    if mime not in VIDEO_MIME_TYPES.values():
        raise ProvenanceError(f"Content Credentials cannot be written into a {format} video; c2pa signs "
                              f"{', '.join(VIDEO_MIME_TYPES)} files")
    with contextlib.ExitStack() as files:
        ingredient = None
        if parent is not None:
            parent_format = parent_format or "application/octet-stream"
            stream = files.enter_context(open(parent, "rb")) if parent_format in VIDEO_INGREDIENT_TYPES else None
            ingredient = (_title(parent), parent_format, stream)
        reader = files.enter_context(open(source, "rb"))
        writer = files.enter_context(open(destination, "w+b"))
        _sign(reader, writer, mime, checkpoint=checkpoint, credentials=credentials, parent=ingredient,
              title=title, credentials_folder=credentials_folder, digital_source_type=digital_source_type)


def _sign(source, destination, mime: str, *, checkpoint: str, credentials: C2paCredentials | None,
          parent: tuple[str, str, object] | None, title: str | None, credentials_folder, digital_source_type: str) -> None:
    """Sign the stream `source` (of type `mime`) into `destination`; `parent` is (title, MIME type,
    stream) of the edited original (the stream None: a format c2pa cannot read, named only), or None."""
    import c2pa

    credentials = credentials or local_test_credentials(credentials_folder)
    action = {
        "action": "c2pa.edited" if parent is not None else "c2pa.created",
        "digitalSourceType": digital_source_type,
        "softwareAgent": {"name": "fswap", "version": __version__},
        "description": f"Face swapped by fswap {__version__} with checkpoint {checkpoint}",
        "parameters": {"checkpoint": checkpoint},
    }
    definition = {
        "claim_generator_info": [{"name": "fswap", "version": __version__}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }
    if title:
        definition["title"] = title
    if parent is not None and parent[2] is None:
        definition["ingredients"] = [{"title": parent[0], "format": parent[1], "relationship": "parentOf"}]
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(
                credentials.algorithm, credentials.certificate_chain, credentials.private_key, credentials.timestamp_url
            )
        )
    except c2pa.C2paError as error:
        raise ProvenanceError(f"c2pa rejected the signing credentials: {error}") from error
    # No thumbnail: it would add a JPEG copy of the image (tens to hundreds of kB) to every file.
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}, **_READ_SETTINGS})
    try:
        with c2pa.Builder(definition, context=context) as builder:
            if parent is not None:
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            if parent is not None and parent[2] is not None:
                parent_title, parent_mime, parent_stream = parent
                builder.add_ingredient({"title": parent_title, "relationship": "parentOf"}, parent_mime, parent_stream)
            builder.sign(signer, mime, source, destination)
    except c2pa.C2paError as error:
        raise ProvenanceError(f"C2PA signing failed: {error}") from error
    finally:
        signer.close()


def read_manifest(
    source: bytes | str | os.PathLike,
    *,
    format: str | None = None,
    trust_anchors: bytes | str | None = None,
) -> ManifestReport:
    """Validate the C2PA manifest of a file (offline) and pull out what fswap wrote in it.

    Args:
        source: the file's bytes or path.
        format: as in `sign_image`; detected from the bytes when None.
        trust_anchors: PEM root certificate(s) to trust, e.g. `local_test_ca_certificate()` or your
            organisation's CA. Without them no signer is `trusted`, but `status` is unaffected.

    Raises:
        fswap.ImageError: `source` is missing or not an image file.
    """
    data, mime = _encoded(source, format, "image", READ_MIME_TYPES)
    return _read_store(io.BytesIO(data), mime, trust_anchors)


def read_video_manifest(
    path: str | os.PathLike,
    *,
    format: str,
    trust_anchors: bytes | str | None = None,
) -> ManifestReport:
    """Validate the C2PA manifest of a video file (offline), reading it as a stream.

    Args:
        path: the video file.
        format: its MIME type as c2pa names it ("video/mp4" for any ISO BMFF file: mp4, m4v, mov;
            "video/x-msvideo" for AVI). Validation hashes the whole file.
        trust_anchors: as in `read_manifest`.
    """
    with open(path, "rb") as stream:
        return _read_store(stream, format, trust_anchors)


def _read_store(stream, mime: str, trust_anchors: bytes | str | None) -> ManifestReport:
    """The `ManifestReport` of the file in `stream`, of type `mime`."""
    import json

    import c2pa

    settings = dict(_READ_SETTINGS)
    if trust_anchors:
        settings["trust"] = {"trust_anchors": _pem_certificates(trust_anchors)}
    try:
        with c2pa.Context.from_dict(settings) as context:
            try:
                reader = c2pa.Reader.try_create(mime, stream, None, context)
            except c2pa.C2paError.NotSupported:  # a format that cannot carry a manifest (BMP)
                reader = None
            if reader is None:
                return ManifestReport(status="absent")
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as error:
        # A manifest store is there but cannot even be parsed: damaged after signing.
        return ManifestReport(status="tampered", failures=[f"unreadable manifest: {error}"])
    return _report(store)


def _pem_certificates(anchors: bytes | str) -> str:
    """`anchors` as PEM text, or `ProvenanceError` when it holds no certificate: a trust file that
    is not one must not turn a valid signature into a "tampered" verdict."""
    from cryptography import x509

    text = anchors.decode("utf-8", errors="replace") if isinstance(anchors, bytes) else anchors
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as error:
        raise ProvenanceError("the trust anchors are not PEM certificates (a file of one or more "
                              "-----BEGIN CERTIFICATE----- blocks is expected)") from error
    return text


def _report(store: dict) -> ManifestReport:
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [item["code"] for item in results.get("failure", []) if item.get("code") != _UNTRUSTED]
    state = store.get("validation_state", "Invalid")
    status = "valid" if state in ("Valid", "Trusted") and not failures else "tampered"
    actions, agent, checkpoint, source_type = [], None, None, None
    for assertion in manifest.get("assertions", []):
        if not assertion.get("label", "").startswith("c2pa.actions"):
            continue
        for action in assertion.get("data", {}).get("actions", []):
            actions.append(action.get("action", "?"))
            software = action.get("softwareAgent")
            if isinstance(software, dict):
                agent = " ".join(str(software[key]) for key in ("name", "version") if software.get(key)) or agent
            elif isinstance(software, str):
                agent = software
            checkpoint = (action.get("parameters") or {}).get("checkpoint", checkpoint)
            source_type = action.get("digitalSourceType", source_type)
    generator = manifest.get("claim_generator_info") or [{}]
    signature = manifest.get("signature_info") or {}
    return ManifestReport(
        status=status,
        trusted=state == "Trusted",
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        software_agent=agent,
        checkpoint=checkpoint,
        actions=actions,
        digital_source_type=source_type,
        claim_generator=" ".join(str(generator[0][key]) for key in ("name", "version") if generator[0].get(key)) or None,
        failures=failures,
        manifest=manifest,
    )


def _encoded(image, format: str | None, label: str,
             mime_types: dict[str, str] = MIME_TYPES) -> tuple[bytes, str]:
    """The file bytes and MIME type of a path, bytes or RGB(A) array; a file must be in one of
    `mime_types` (PIL format name -> MIME type). An RGBA array keeps its transparency in PNG, WebP
    and TIFF, and is seen on white in JPEG."""
    if isinstance(image, np.ndarray):
        from fswap.imageio import load_image, load_rgba

        pil_format = _pil_format(format or "png")
        pixels = load_image(image, name=label)
        if pil_format != "JPEG" and image.ndim == 3 and image.shape[2] == 4:
            rgba = load_rgba(image, name=label)
            pixels = pixels if rgba is None else rgba
        buffer = io.BytesIO()
        options = {"quality": 95} if pil_format in ("JPEG", "WEBP") else {}
        Image.fromarray(pixels).save(buffer, pil_format, **options)
        return buffer.getvalue(), MIME_TYPES[pil_format]
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"{label}: no such file ({path})")
        data = path.read_bytes()
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    else:
        raise ImageError(f"cannot read {label} from a {type(image).__name__}; give a path, the file's bytes or an array")
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    try:
        detected = Image.open(io.BytesIO(data)).format
    except Image.DecompressionBombError as error:
        raise ImageError(f"{label} is too large to decode safely ({error})") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(f"{label} is not an image file ({_names(mime_types)})") from error
    pil_format = _pil_format(format) if format else detected
    if pil_format not in mime_types:
        raise ImageError(f"{label} is {detected}; Content Credentials go with {_names(mime_types)} files")
    return data, mime_types[pil_format]


def _names(mime_types: dict[str, str]) -> str:
    names = sorted({"WEBP": "WebP"}.get(name, name) for name in mime_types if name != "MPO")
    return ", ".join(names[:-1]) + " or " + names[-1]


def _pil_format(format: str) -> str:
    name = format.lower().removeprefix("image/").removeprefix(".")
    name = {"jpg": "jpeg", "tif": "tiff"}.get(name, name).upper()
    if name not in MIME_TYPES:
        raise ImageError(f"format {format!r} is not one of png, jpeg, webp, tiff")
    return name


def _title(image) -> str:
    return Path(image).name if isinstance(image, (str, os.PathLike)) else "target image"


def _read(path: str | os.PathLike, label: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"{label} file not found: {path}")
    return path.read_bytes()


def _expires_soon(chain_path: Path) -> bool:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(chain_path.read_bytes())
    except ValueError:
        return True
    return certificate.not_valid_after_utc < dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)


def _write_test_credentials(folder: Path, paths: dict[str, Path]) -> None:
    """An ECDSA P-256 CA and an end-entity certificate with the extensions C2PA validators require."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fswap")]
        )

    def key_usage(**flags) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{flag: flags.get(flag, False) for flag in names})

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key, signing_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name(TEST_CA_NAME))
        .issuer_name(name(TEST_CA_NAME))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # C2PA rejects self-signed signing certificates, CA certificates, and ones without
    # digitalSignature or a suitable extended key usage: hence a CA and a separate leaf.
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(TEST_CERTIFICATE_NAME))
        .issuer_name(ca.subject)
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signing_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = signing_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(paths["key"], key_pem, mode=0o600)
    write_atomically(paths["ca"], ca.public_bytes(pem))
    write_atomically(paths["chain"], leaf.public_bytes(pem) + ca.public_bytes(pem))
