"""The app's API against bad input: the API part of issue #28's bad-input corpus.

Each entry of `CASES` sends one bad value (or file) to one endpoint of the launched app, the other
values good, and names the one-line error expected in the answer, or checks the correct answer.
Every case also asserts: no traceback in the answer nor in the server's output, the message plain
text (not HTML-escaped), the uploaded files unchanged, and no file left behind by the app but the
uploads themselves.

Requests go over plain HTTP (`/gradio_api/upload`, then `/gradio_api/call/<endpoint>`), as any
client's would: `gradio_client` checks or rewrites some of these values before sending them.
The pipeline is the small untrained one of `test_app.py`; the photos are real ones.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from test_app import launched_app, tiny_checkpoint  # noqa: F401  (the same launched app as the API tests)

from fswap.assets import example_image
from space.resources import WORKING_PIXELS


# ---------------------------------------------------------------------- the files sent
def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a decompression bomb past the limit)."""
    data = bytearray(_png(Image.new("L", (32, 32))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _no_face() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / "coffee.png"  # a real photo: a cup of coffee


#: name -> the file's bytes (made once per module, in a temporary folder).
FILES: dict[str, Callable[[], bytes]] = {
    "t1.jpg": lambda: example_image("t1.jpg").read_bytes(),
    "yaoming.jpg": lambda: example_image("yaoming.jpg").read_bytes(),
    "coffee.png": lambda: _no_face().read_bytes(),
    "text.jpg": lambda: b"these are my holiday notes, not a photo\n" * 20,
    "empty.jpg": lambda: b"",
    "cut.jpg": lambda: example_image("t1.jpg").read_bytes()[:20_000],
    "bomb.png": lambda: _declaring(30_000, 30_000),  # past PIL's own limit
    "over.png": lambda: _declaring(9_100, 9_100),  # 83 megapixels: past fswap's limit only
    "tiny.png": lambda: _png(Image.new("RGB", (8, 8), (200, 150, 120))),
    # About 250 KB declaring 8,900 x 8,900 pixels, under the limit: decoded, it is worked on downscaled.
    "large.png": lambda: _png(Image.new("RGB", (8900, 8900), (128, 128, 128))),
}


@dataclass(frozen=True)
class Upload:
    """A file of `FILES`, uploaded to the app; sent as the record gradio's upload answered."""

    name: str


@dataclass(frozen=True)
class RawPath:
    """A file record whose path the client wrote itself (`{upload}`: the app's upload folder)."""

    path: str


# ---------------------------------------------------------------------- the corpus
GOOD = {
    "detect": {"target": Upload("t1.jpg")},
    "check": {"upload": Upload("t1.jpg")},
    "swap": {
        "consent": True,
        "sources": [Upload("yaoming.jpg")],
        "target": Upload("t1.jpg"),
        "selection": "largest",
        "chosen": [],
        "reference": None,
        "appearance_matching": True,
        "occlusion_aware": False,
        "feather": 0.04,
        "shape_strength": 0.0,
        "paste_source_occluders": "all",
        "source_faces": "",
        "keep_open_mouths": True,
        "mirror_sources": True,
        "rendering": "pasted",
    },
}
GOOD["masks"] = GOOD["swap"]


@dataclass(frozen=True)
class Case:
    """`endpoint` called with its good values but `changes`; `error`: the substring of the one-line
    error expected, or None when the call must answer (and `answer`, given, checks the answer)."""

    name: str
    endpoint: str
    changes: dict
    error: str | None
    answer: Callable[[list], None] | None = field(default=None, compare=False)


def _worked_on_at_the_working_size(answer: list) -> None:
    _, summary = answer
    assert summary["width"] * summary["height"] <= WORKING_PIXELS
    assert summary["width"] == summary["height"] == 4000 and summary["faces"] == []
    assert summary["notice"].startswith("target photo is 8900x8900 (79 megapixels); the app works on it at 4000x4000")


def _no_face_found(answer: list) -> None:
    assert answer[1]["faces"] == [] and answer[1]["notice"] is None


CASES = [
    # /detect: the target photo
    Case("text named .jpg", "detect", {"target": Upload("text.jpg")}, "not an image fswap can read"),
    Case("zero-byte file", "detect", {"target": Upload("empty.jpg")}, "is empty (0 bytes)"),
    Case("truncated JPEG", "detect", {"target": Upload("cut.jpg")}, "damaged or truncated"),
    Case("900-megapixel bomb", "detect", {"target": Upload("bomb.png")}, "too large to decode safely"),
    Case("83-megapixel PNG", "detect", {"target": Upload("over.png")}, "the limit is 80 megapixels"),
    Case("8x8 photo", "detect", {"target": Upload("tiny.png")}, "at least 16 px on each side"),
    Case("8,900 x 8,900 PNG under the limit", "detect", {"target": Upload("large.png")}, None,
         _worked_on_at_the_working_size),
    Case("photo without a face", "detect", {"target": Upload("coffee.png")}, None, _no_face_found),
    Case("path string", "detect", {"target": "/etc/passwd"}, "parameter target must be an uploaded file"),
    Case("number for a file", "detect", {"target": 5}, "parameter target must be an uploaded file"),
    Case("record without meta", "detect", {"target": {"path": "/etc/hostname"}}, "parameter target must be an uploaded file"),
    Case("record outside the uploads", "detect", {"target": RawPath("/etc/hostname")},
         "was not uploaded to this app"),
    Case("record climbing out of the uploads", "detect", {"target": RawPath("{upload}/../../../../etc/hostname")},
         "was not uploaded to this app"),
    Case("record of the upload folder itself", "detect", {"target": RawPath("{upload}")}, "not uploaded to this app"),
    # /swap: every option
    Case("feather as a word", "swap", {"feather": "abc"}, "feathering must be a number between 0 and 0.5"),
    Case("feather out of range", "swap", {"feather": 0.9}, "feathering must be between 0 and 0.5"),
    Case("feather not a number", "swap", {"feather": math.nan}, "feathering must be a number"),
    Case("feather as a boolean", "swap", {"feather": True}, "feathering must be a number"),
    Case("proportions as a numeric string", "swap", {"shape_strength": "1"}, "proportions must be a number"),
    Case("proportions negative", "swap", {"shape_strength": -0.5}, "proportions must be between 0 and 1"),
    Case("appearance matching as a word", "swap", {"appearance_matching": "yes"},
         "appearance_matching must be true or false"),
    Case("occlusion-aware as a number", "swap", {"occlusion_aware": 1}, "occlusion_aware must be true or false"),
    Case("keep mouths as a string", "swap", {"keep_open_mouths": "false"}, "keep_open_mouths must be true or false"),
    Case("mirror as a list", "swap", {"mirror_sources": [True]}, "mirror_sources must be true or false"),
    Case("unknown selection", "swap", {"selection": "everyone"}, "selection must be one of largest, all"),
    Case("selection as a list", "swap", {"selection": ["all"]}, "selection must be one of"),
    Case("chosen as a string", "swap", {"selection": "chosen", "chosen": "0,1"}, "chosen must be a list"),
    Case("chosen negative", "swap", {"selection": "chosen", "chosen": [-1]}, "face -1 is not a face number"),
    Case("chosen as a path", "swap", {"selection": "chosen", "chosen": ["../1"]}, "is not a face number"),
    Case("chosen past the last face", "swap", {"selection": "chosen", "chosen": [99]}, "face 99 does not exist"),
    Case("nothing chosen", "swap", {"selection": "chosen", "chosen": []}, "no face ticked"),
    Case("no consent", "swap", {"consent": False}, "tick the consent box"),
    Case("consent as a string", "swap", {"consent": "true"}, "tick the consent box"),
    Case("no source photo", "swap", {"sources": []}, "upload at least one source photo"),
    Case("nine source photos", "swap", {"sources": [Upload("yaoming.jpg")] * 9}, "use at most 8"),
    Case("sources as a path", "swap", {"sources": "/etc/passwd"}, "parameter sources must be a list of uploaded files"),
    Case("source not an image", "swap", {"sources": [Upload("text.jpg")]}, "source photo 1 is not an image"),
    Case("source without a face", "swap", {"sources": [Upload("coffee.png")]}, "no face found in source photo 1"),
    Case("source face list with a semicolon", "swap", {"source_faces": "1;2"}, "must be 1 face number(s)"),
    Case("source face as a superscript digit", "swap", {"source_faces": "\u00b2"}, "must be 1 face number(s)"),
    Case("source face past the last", "swap", {"source_faces": "3"}, "face 3 does not exist"),
    Case("unknown source-cover choice", "swap", {"paste_source_occluders": "half"},
         "must be one of all, inside, none"),
    Case("no target", "swap", {"target": None}, "upload a target photo"),
    Case("target without a face", "swap", {"target": Upload("coffee.png")}, "no face found in target photo"),
    Case("target a bomb", "swap", {"target": Upload("bomb.png")}, "too large to decode safely"),
    Case("reference missing", "swap", {"selection": "reference"}, "upload a reference photo"),
    Case("reference a zero-byte file", "swap", {"selection": "reference", "reference": Upload("empty.jpg")},
         "reference photo is empty"),
    Case("too few values", "swap", dict.fromkeys(["feather", "shape_strength", "paste_source_occluders", "source_faces",
                                                  "keep_open_mouths", "mirror_sources", "rendering"], ...),
         "/swap takes 15 values"),
    Case("an older client's values, without the rendering", "swap", {"rendering": ...}, None),
    Case("unknown rendering", "swap", {"rendering": "painted"}, "rendering must be one of pasted, relit"),
    # /masks takes /swap's values and checks them alike
    Case("masks: feather as a word", "masks", {"feather": "abc"}, "feathering must be a number"),
    Case("masks: no consent", "masks", {"consent": None}, "tick the consent box"),
    # /check
    Case("check: text file", "check", {"upload": Upload("text.jpg")}, "not an image fswap can read"),
    Case("check: 83 megapixels", "check", {"upload": Upload("over.png")}, "the limit is 80 megapixels"),
    Case("check: nothing", "check", {"upload": None}, "upload an image to check"),
    Case("check: path string", "check", {"upload": "../../etc/passwd"}, "parameter upload must be an uploaded file"),
]


# ---------------------------------------------------------------------- the app and its client
@pytest.fixture(scope="module")
def app_files(tmp_path_factory) -> Path:
    """The app's own temporary folder: `tempfile`'s while it runs, so every file it makes is here."""
    return tmp_path_factory.mktemp("app-temporary-files")


@pytest.fixture(scope="module")
def served(tiny_checkpoint, tmp_path_factory, app_files):  # noqa: F811
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(app_files))
        with launched_app(tiny_checkpoint, tmp_path_factory.mktemp("c2pa")) as (url, _):
            yield url


class Api:
    """A bare HTTP client of the app's API."""

    def __init__(self, url: str, files: Path):
        self.url, self.files = url, files
        self.http = httpx.Client(base_url=url + "gradio_api/", timeout=300)
        self._uploads: dict[str, str] = {}

    def upload(self, name: str) -> str:
        if name not in self._uploads:
            local = self.files / name
            local.write_bytes(FILES[name]())
            with local.open("rb") as file:
                response = self.http.post("upload", files=[("files", (name, file))])
            response.raise_for_status()
            self._uploads[name] = response.json()[0]
        return self._uploads[name]

    def value(self, value):
        if isinstance(value, Upload):
            return {"path": self.upload(value.name), "meta": {"_type": "gradio.FileData"}}
        if isinstance(value, RawPath):
            return {"path": value.path.format(upload=self.upload_folder()), "meta": {"_type": "gradio.FileData"}}
        return [self.value(item) for item in value] if isinstance(value, list) else value

    def upload_folder(self) -> str:
        return str(Path(self.upload("t1.jpg")).parent.parent)

    def call(self, endpoint: str, values: list) -> tuple[str, object, str]:
        """The last event of the answer ("complete" or "error"), its data, and the whole answer."""
        body = json.dumps({"data": values})  # NaN as JSON's NaN token, as a careless client sends it
        response = self.http.post(f"call/{endpoint}", content=body, headers={"content-type": "application/json"})
        response.raise_for_status()
        answer = self.http.get(f"call/{endpoint}/{response.json()['event_id']}").text
        events = [line.removeprefix("event: ") for line in answer.splitlines() if line.startswith("event: ")]
        data = [line.removeprefix("data: ") for line in answer.splitlines() if line.startswith("data: ")]
        return events[-1], json.loads(data[-1]), answer


@pytest.fixture(scope="module")
def api(served, tmp_path_factory) -> Api:
    return Api(served, tmp_path_factory.mktemp("sent"))


def _left(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------- the test
def test_the_corpus_is_large_and_reaches_every_endpoint():
    assert len(CASES) >= 20 and len({case.name for case in CASES}) == len(CASES)
    assert {case.endpoint for case in CASES} == {"detect", "swap", "masks", "check"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, api: Api, app_files: Path, capfd):
    values = {name: api.value(value) for name, value in (GOOD[case.endpoint] | case.changes).items()
              if value is not ...}
    uploads = {record["path"] for value in values.values()
               for record in (value if isinstance(value, list) else [value])
               if isinstance(record, dict) and Path(str(record.get("path"))).is_file()
               and str(record["path"]).startswith(api.upload_folder())}
    before = {path: _digest(path) for path in uploads}
    results = next(app_files.glob("fswap-results-*"))
    results_before = _left(results)
    capfd.readouterr()

    event, data, answer = api.call(case.endpoint, list(values.values()))

    server_output = capfd.readouterr()
    assert "Traceback" not in answer and "Traceback" not in server_output.err + server_output.out
    if case.error is None:
        assert event == "complete", answer
        if case.answer:
            case.answer(data)
    else:
        assert event == "error", answer
        message = data["error"]
        assert message is not None and case.error.lower() in message.lower(), message
        assert "\n" not in message and "&#x27;" not in message and "&lt;" not in message and "&quot;" not in message
        assert data["title"]
        assert _left(results) == results_before  # an error leaves no result behind
    assert {path: _digest(path) for path in uploads} == before  # the uploads are untouched
    stray = [path for path in _left(app_files) if not path.is_relative_to(Path(api.upload_folder()))
             and not path.is_relative_to(results)]
    assert stray == [] and not [path for path in _left(app_files) if path.name.endswith(".partial")]


def test_an_error_message_comes_back_as_plain_text(api):
    """Gradio renders an error in its toast as HTML (through its sanitiser); the API's JSON carries it
    as it was written: `'abc'`, not `&#x27;abc&#x27;`."""
    values = GOOD["swap"] | {"feather": "<b>'abc'</b> & more"}
    event, data, _ = api.call("swap", [api.value(value) for value in values.values()])
    assert event == "error"
    assert data["error"] == "Feathering must be a number between 0 and 0.5 of the face crop, not \"<b>'abc'</b> & more\""


def test_a_good_swap_still_answers(api):
    """The corpus' good values are good: the same call without a change answers a swap."""
    event, data, answer = api.call("swap", [api.value(value) for value in GOOD["swap"].values()])
    assert event == "complete", answer
    assert np.asarray(Image.open(data[0]["path"])).shape[:2] == (886, 1280)
