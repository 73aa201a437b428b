"""The README is a front door and the docs hold the rest: every relative link and image in README.md,
docs/*.md and CHANGELOG.md resolves to a file in the repository (and its #anchor to a heading
there), the README stays within 300 lines and opens with the two commands, and CI runs the
README's test command."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 300
PAGES = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
INLINE_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\(\s*<?(?P<target>[^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(?P<target>[^\s>]+)>?", re.M)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"'](?P<target>[^\"']+)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<[a-z]+\b[^>]*?\b(?:id|name)\s*=\s*[\"'](?P<anchor>[^\"']+)[\"']", re.I)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(?P<title>.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, protocol-relative


def _prose(text: str) -> str:
    """The Markdown with code blocks, code spans and HTML comments blanked: links there are not links."""
    text = HTML_COMMENT.sub("", text)
    text = FENCE.sub(lambda match: "\n" * match.group(0).count("\n"), text)
    return CODE_SPAN.sub("", text)


def link_targets(text: str) -> list[str]:
    """Every link and image target in a Markdown text, in order: inline, reference-style and HTML."""
    prose = _prose(text)
    found = [
        (m.start(), m["target"])
        for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_LINK)
        for m in pattern.finditer(prose)
    ]
    return [target for _, target in sorted(found)]


def github_slug(title: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, punctuation dropped, spaces as hyphens."""
    title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading keeps its text
    title = re.sub(r"<[^>]+>", "", title)
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors a Markdown page offers: its headings' slugs (repeats numbered -1, -2, ...) and HTML ids."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(HTML_COMMENT.sub("", FENCE.sub("", text))):
        slug = github_slug(match["title"])
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found | {match["anchor"] for match in HTML_ANCHOR.finditer(text)}


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each relative link of `page`: a missing file, a path out of `root`, an unknown anchor."""
    problems = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if not target or EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        resolved = (page.parent / path_part).resolve() if path_part else page
        if path_part:
            if not resolved.is_relative_to(root.resolve()):
                problems.append(f"{target}: outside the repository (a reader cannot open it)")
                continue
            if not resolved.is_file():
                problems.append(f"{target}: no such file")
                continue
        if (
            anchor
            and resolved.suffix == ".md"
            and anchor not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root.resolve())}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_and_images_resolve(page):
    assert broken_links(page) == []


def test_the_pages_checked_include_the_docs_and_the_changelog():
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    assert {"README.md", "CHANGELOG.md", "docs/README.md"} <= names
    assert (ROOT / "CHANGELOG.md").is_file() and (ROOT / "docs" / "README.md").is_file()


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_opens_with_the_two_commands_and_ci_runs_its_test_command():
    text = README.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", _prose(text), re.M)
    assert sections[0] == "The two commands"
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    app_command, test_command = (block.strip() for block in blocks[:2])
    assert "\n" not in app_command and app_command.endswith("python app.py")
    assert "\n" not in test_command and "pytest" in test_command
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_commands, "`.ci/run` must run exactly the README's test command"


def test_the_checker_finds_what_is_broken(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Its part: one\n", encoding="utf-8")
    (tmp_path / "docs" / "picture.png").write_bytes(b"")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n## The part\n\n"
        "[fine](docs/page.md#its-part-one) ![fine](docs/picture.png) [fine](#the-part) "
        "[fine](https://example.org/missing.md) `[code](missing.md)`\n"
        "```\n[code block](missing.md)\n```\n"
        "[no file](docs/gone.md) ![no image](docs/gone.png) [no heading](docs/page.md#nowhere) "
        "[not here](#nowhere) [outside](../shared/seeds/003.txt)\n"
        '<img src="docs/gone.jpg">\n\n[ref]: docs/gone.txt\n',
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "docs/gone.md: no such file",
        "docs/gone.png: no such file",
        "docs/page.md#nowhere: no heading #nowhere in docs/page.md",
        "#nowhere: no heading #nowhere in README.md",
        "../shared/seeds/003.txt: outside the repository (a reader cannot open it)",
        "docs/gone.jpg: no such file",
        "docs/gone.txt: no such file",
    ]


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("The source's proportions (`shape_strength`)", "the-sources-proportions-shape_strength"),
        ("Why 2,209 pairs", "why-2209-pairs"),
        ("Realism, judged blind", "realism-judged-blind"),
        ("A source turned the other way: its mirror image", "a-source-turned-the-other-way-its-mirror-image"),
    ],
)
def test_github_slugs(title, slug):
    assert github_slug(title) == slug
