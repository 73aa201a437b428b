"""SIGKILL while writing (issue #28): every writer leaves the old file or the new one, whole.

Each writer runs in a child process that rewrites one file in a loop, two contents in turn; the
child is killed at random moments. After every kill the file must read back as exactly one of the
two contents, and the next write into the folder must sweep away the hidden partial file a killed
writer may have left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fswap.assets import example_image
from fswap.fileio import write_atomically
from fswap.imageio import load_image

#: The child's loop, per writer: `make(i)` is content i (0 or 1), `write(path, content)` writes it.
WRITERS = {
    "save_image": """
from fswap.imageio import save_image as write
def make(i): return np.random.default_rng(i).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
""",
    "write_signed_image": """
from fswap.provenance.output import write_signed_image
def write(path, image): write_signed_image(path, image, checkpoint="kill-test")
def make(i): return np.random.default_rng(i).integers(0, 256, (900, 900, 3), dtype=np.uint8)
""",
    "training write_json": """
from fswap.training.common import write_json as write
def make(i): return {"step": i, "rows": [[i] * 50 for _ in range(20000)]}
""",
    "write_atomically": """
from fswap.fileio import write_atomically as write
def make(i): return bytes([i]) * (40 << 20)
""",
}

CHILD = """
import sys
import numpy as np
{writer}
path = sys.argv[1]
contents = [make(0), make(1)]
print("ready", flush=True)
i = 1
while True:
    write(path, contents[i])
    i = 1 - i
"""


def _read(name: str, path: Path):
    if name in ("save_image", "write_signed_image"):
        return load_image(path)
    if name == "training write_json":
        return json.loads(path.read_text())
    return path.read_bytes()


def _content(name: str, index: int):
    namespace = {"np": np}
    exec(WRITERS[name], namespace)
    return namespace["make"](index)


def _same(a, b) -> bool:
    return np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_killed_writer_leaves_the_old_file_or_the_new_one(name, tmp_path):
    path = tmp_path / ("result.json" if "json" in name else "result.png" if "image" in name else "result.bin")
    contents = [_content(name, 0), _content(name, 1)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(writer=WRITERS[name]), str(path)],
                                 stdout=subprocess.PIPE, env=env, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.3, 1.2))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if path.exists():  # absent only if killed before the first write finished
            found = _read(name, path)
            assert _same(found, contents[0]) or _same(found, contents[1])
    assert path.exists()
    write_atomically(tmp_path / "next.bin", b"x")  # the next write into the folder sweeps partials
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "next.bin"])


def test_a_killed_swap_leaves_the_previous_result(tmp_path):
    """`fswap swap -o out.png` killed at random moments: out.png stays the previous, whole result."""
    output = tmp_path / "out.png"
    previous = np.full((64, 64, 3), 200, np.uint8)
    from fswap.imageio import save_image

    save_image(output, previous)
    command = [sys.executable, "-m", "fswap.cli", "swap", str(example_image("yaoming.jpg")),
               str(example_image("t1.jpg")), "-o", str(output), "--method", "classic", "--no-provenance"]
    rng = random.Random(1)
    for _ in range(3):
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 4.0))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        found = load_image(output)
        assert np.array_equal(found, previous) or found.shape == (886, 1280, 3)
    write_atomically(tmp_path / "next.bin", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next.bin", "out.png"]
