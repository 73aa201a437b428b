"""The package as `pip install fswap` gives it: a wheel in a fresh environment, no checkout on the path.

The wheel is built from this checkout and installed, without its dependencies, into a new venv
that sees the installed dependencies (`--system-site-packages`) but runs from an empty folder, so
the checkout's own files (its embedded checkpoint, `hub_cards/`, the editable install) cannot help.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    folder = tmp_path_factory.mktemp("wheel")
    # From a clean copy of the tracked files, as a release build would be (no stray build/ folder).
    source = folder / "source"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, (file.decode() for file in files)):
        if name.startswith(("checkpoints/", "docs/images/", "benchmarks/results/")):
            continue
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():  # fswap/hub_cards -> ../hub_cards
            (source / name).symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--disable-pip-version-check", "-w", str(folder / "dist"), str(source)], check=True)
    return next((folder / "dist").glob("fswap-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The venv's python, with the wheel installed."""
    environment = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(environment)
    python = environment / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    "--disable-pip-version-check", str(wheel)], check=True)
    return python


def _run(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "FSWAP_MODEL")}
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HOME"] = str(cwd / "hf-home")  # an empty cache
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_holds_the_package_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "fswap/training/configs/swap_default.json" in names
    assert any(name.startswith("fswap/hub_cards/") and name.endswith(".j2") for name in names)
    assert not any(name.startswith(("tests/", "checkpoints/", "space/")) for name in names)


def test_an_installed_wheel_swaps_with_a_local_model_and_renders_its_card(installed, tmp_path):
    code = """
import json, fswap, pathlib
from fswap.assets import example_image
from fswap.building import build_untrained_pipeline
from fswap.cli import main
assert "site-packages" in fswap.__file__, fswap.__file__
folder = build_untrained_pipeline(crop_size=64, base_channels=8, segmenter_channels=8, seed=0).save_pretrained("tiny")
code = main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", "out.png",
             "--model", "tiny"])
from fswap.hub import render_model_card
card = render_model_card(folder)
print(json.dumps({"code": code, "file": fswap.__file__, "card": len(card)}))
"""
    result = _run(installed, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0 and (tmp_path / "out.png").is_file() and report["card"] > 500
    assert not report["file"].startswith(str(ROOT))


def test_an_installed_wheel_without_a_model_says_where_it_looked(installed, tmp_path):
    code = """
from fswap.assets import example_image
from fswap.cli import main
main(["swap", str(example_image("yaoming.jpg")), str(example_image("t1.jpg")), "-o", "out.png"])
"""
    result = _run(installed, code, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "fswap/fswap-default" in result.stderr and "local cache" in result.stderr, result.stderr
