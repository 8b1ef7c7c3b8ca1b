"""Every relative link in README.md and docs/*.md resolves, and every guide is reachable."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# CommonMark plus GitHub's tables: a link inside a table cell is a link there too.
_PARSER = MarkdownIt("commonmark").enable("table")


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _targets(document: Path) -> list[str]:
    """Return the target of every link and image in `document`, code blocks and spans excluded."""
    tokens = _PARSER.parse(document.read_text(encoding="utf-8"))
    found = []
    for token in _walk(tokens):
        if token.type == "link_open":
            found.append(str(token.attrs["href"]))
        elif token.type == "image":
            found.append(str(token.attrs["src"]))
    return found


def _slug(heading: str) -> str:
    """Return the anchor GitHub gives a heading: lower case, punctuation dropped, '-' for ' '."""
    kept = (
        c
        for c in heading.strip().lower()
        if c.isalnum() or c in " -_" or unicodedata.category(c).startswith("M")
    )
    return "".join(kept).replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    tokens = _PARSER.parse(document.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    for opening, inline in pairwise(tokens):
        if opening.type != "heading_open":
            continue
        text = "".join(child.content for child in inline.children or [])
        slug, n = _slug(text), 1
        anchor = slug
        while anchor in anchors:
            anchor, n = f"{slug}-{n}", n + 1
        anchors.add(anchor)
    return anchors


def broken_links(document: Path) -> list[str]:
    """Return each relative link of `document` that names no file (or no heading), with why."""
    problems = []
    for target in _targets(document):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # a web address: not ours to check offline
        path = document if not parts.path else (document.parent / unquote(parts.path)).resolve()
        if not path.exists():
            problems.append(f"{target}: no file {path}")
        elif parts.fragment and path.suffix == ".md" and parts.fragment not in _anchors(path):
            problems.append(f"{target}: no heading #{parts.fragment} in {path.name}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    assert broken_links(document) == []


def test_every_guide_is_reachable_from_the_readme() -> None:
    seen, todo = set(), [ROOT / "README.md"]
    while todo:
        document = todo.pop()
        if document in seen:
            continue
        seen.add(document)
        for target in _targets(document):
            parts = urlsplit(target)
            path = (document.parent / unquote(parts.path)).resolve()
            if not (parts.scheme or parts.netloc) and path.suffix == ".md" and path.exists():
                todo.append(path)
    unreachable = [p.name for p in DOCUMENTS if p not in seen]
    assert unreachable == [], f"docs not linked from README.md (directly or not): {unreachable}"


def test_a_broken_link_a_missing_image_and_a_missing_heading_are_reported(
    tmp_path: Path,
) -> None:
    (tmp_path / "guide.md").write_text("# The guide\n\n## Set up (`edge-provision`)\n")
    document = tmp_path / "README.md"
    document.write_text(
        "# Title\n\n"
        "[fine](guide.md#set-up-edge-provision) and [web](https://example.org/missing.md)\n\n"
        "`[in code](nowhere.md)`\n\n"
        "| a | b |\n| --- | --- |\n| [cell](gone.md) | x |\n\n"
        "![plot](missing.png) [moved](guide.md#install) [self](#title) [none](#nowhere)\n",
        encoding="utf-8",
    )
    assert [problem.split(":")[0] for problem in broken_links(document)] == [
        "gone.md",
        "missing.png",
        "guide.md#install",
        "#nowhere",
    ]
