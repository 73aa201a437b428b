"""Arrows one way (#26): no import circle in fswap, the Hub layer below the models, the app, CLI and
benchmarks on public names only, and the swap detector's old module path as a deprecation shim."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
#: Own packages whose private names (`_name`) other modules must not use.
OWN_PACKAGES = ("fswap", "space")
#: Files that may only use the public names of fswap's modules, of `space/` and of other benchmarks.
CALLERS = [REPO / "app.py", REPO / "fswap" / "cli.py", *sorted((REPO / "space").rglob("*.py")),
           *sorted((REPO / "benchmarks").glob("*.py"))]
BENCHMARK_MODULES = tuple(path.stem for path in (REPO / "benchmarks").glob("*.py"))


# ------------------------------------------------------------------------------ import circles
def import_circles(graph) -> list[str]:
    """One circle per strongly connected group of modules, as 'a -> b -> ... -> a' with the line of
    each import (Tarjan's algorithm over the direct imports, function-local ones included)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)

    circles = []
    for group in groups:
        first, second = group[0], group[1]
        chain = [*graph.find_shortest_chain(first, second), *graph.find_shortest_chain(second, first)[1:]]
        hops = []
        for importer, imported in zip(chain[:-1], chain[1:], strict=True):
            detail = graph.get_import_details(importer=importer, imported=imported)
            where = f" (line {detail[0]['line_number']}: {detail[0]['line_contents'].strip()})" if detail else ""
            hops.append(f"{importer} -> {imported}{where}")
        circles.append(f"{' -> '.join(chain)} [the whole group: {', '.join(group)}]\n    " + "\n    ".join(hops))
    return circles


def fswap_graph():
    # No cache: the graph is built fresh from the files and nothing is written into the checkout.
    return grimp.build_graph("fswap", exclude_type_checking_imports=True, cache_dir=None)


def test_fswap_has_no_import_circle():
    """Function-local imports count: deferring an import hides a circle from Python, not from readers."""
    circles = import_circles(fswap_graph())
    assert not circles, "import circles in fswap (break each by moving what both sides need below both):\n" + \
        "\n".join(circles)


def test_the_circle_finder_sees_function_local_imports_and_skips_type_checking_ones(tmp_path, monkeypatch):
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circled import b\n")
    (package / "b.py").write_text("def late():\n    from circled.c import value\n    return value\n")
    (package / "c.py").write_text("import circled.a\nvalue = 1\n")
    # d and e would be a second circle, but d imports e only for type checkers.
    (package / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circled import e\n")
    (package / "e.py").write_text("from circled import d\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circled", exclude_type_checking_imports=True, cache_dir=None)
    circles = import_circles(graph)
    assert len(circles) == 1 and circles[0].startswith("circled.a -> circled.b -> circled.c -> circled.a")
    assert "line 2: from circled.c import value" in circles[0]  # named where it hides


def test_the_hub_layer_reaches_no_model_pipeline_or_detector():
    """`PushToHubMixin` is for the pipeline and `SwapDetector` to inherit: anything the Hub layer
    imports from above it would close a circle the moment they do."""
    graph = fswap_graph()
    for above in ("fswap.pipeline", "fswap.models", "fswap.swap_detection", "fswap.detection", "fswap.evaluation",
                  "fswap.data", "fswap.training", "fswap.faces", "fswap.cli"):
        chain = graph.find_shortest_chain("fswap.hub", above, as_packages=True)
        assert chain is None, f"fswap.hub reaches {above}: {' -> '.join(chain)}"
    code = "import sys, fswap.hub; print(sorted({'torch', 'numpy', 'huggingface_hub'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert loaded.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ public names only
def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str, filename: str, own: tuple[str, ...]) -> list[str]:
    """Where `source` imports a private name from one of the `own` top-level modules, or reaches a
    private attribute of something imported from them (`module._helper(...)`, `Class._method`)."""
    tree = ast.parse(source, filename)
    imported: dict[str, str] = {}  # local name -> what it is, dotted
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in own:
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{filename}:{node.lineno}: from {node.module} import {alias.name}")
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in own:
                    if alias.asname:
                        imported[alias.asname] = alias.name
                    else:
                        imported[alias.name.split(".")[0]] = alias.name.split(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            parts, value = [], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in imported:
                dotted = ".".join([imported[value.id], *reversed(parts), node.attr])
                found.append(f"{filename}:{node.lineno}: {dotted}")
    return found


def test_the_app_cli_and_benchmarks_use_public_names_only():
    found = []
    for path in CALLERS:
        own = OWN_PACKAGES + (BENCHMARK_MODULES if path.parent.name == "benchmarks" else ())
        found += private_uses(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)), own)
    assert not found, "private names used from another module (make them public where they are, or move them):\n" + \
        "\n".join(found)


def test_the_private_name_check_finds_each_kind_of_use():
    source = textwrap.dedent("""
        import numpy as np
        import fswap.pipeline
        import fswap.faces.analyzer as analyzer_module
        from common import _median, write_result
        from fswap import hub
        from fswap.data.prepare import _read_jsonl
        from fswap.pipeline import FaceSwapPipeline

        np._NoValue, write_result.__name__, hub.push_model  # not ours, dunder, public: fine
        analyzer_module._session()
        hub._environment()
        fswap.pipeline._as_batch
        FaceSwapPipeline._settings
    """)
    found = private_uses(source, "x.py", ("fswap", "common"))
    assert sorted(line.split(": ", 1)[1] for line in found) == [
        "from common import _median",
        "from fswap.data.prepare import _read_jsonl",
        "fswap.faces.analyzer._session",
        "fswap.hub._environment",
        "fswap.pipeline.FaceSwapPipeline._settings",
        "fswap.pipeline._as_batch",
    ]


# ------------------------------------------------------------------------------ the renamed module
#: Every public name of `fswap/detection.py` before it became `fswap/swap_detection.py`.
OLD_DETECTION_NAMES = (
    "DEFAULT_DETECTOR", "DETECTOR_FILES", "HEAT_COLOUR", "FaceVerdict", "SwapDetector", "align_faces",
    "crops_to_tensor", "detect_swaps", "detector_cards", "detector_upload", "draw_verdicts", "evaluate_detector",
    "jpeg", "load_detector", "render_detector_card", "roc_auc", "score_crops", "write_detector_cards",
)


def test_the_old_detection_module_warns_and_gives_the_same_objects(monkeypatch):
    import fswap.hub.cards
    import fswap.swap_detection

    monkeypatch.delitem(sys.modules, "fswap.detection", raising=False)  # imported afresh, put back after
    with pytest.warns(DeprecationWarning, match=r"fswap\.detection is deprecated.*fswap\.swap_detection"):
        old = importlib.import_module("fswap.detection")
    for name in OLD_DETECTION_NAMES:
        new = vars(fswap.swap_detection)[name] if name in vars(fswap.swap_detection) else vars(fswap.hub.cards)[name]
        assert getattr(old, name) is new, name
    assert set(old.__all__) == set(OLD_DETECTION_NAMES)
