"""The safe Markdown subset of an edition's prose fields (contract §1).

Paragraphs, emphasis, inline code, lists and links are rendered. Raw HTML outside code spans and
link targets other than http, https and mailto are errors: :func:`check_markdown` raises
``ValueError`` with a message fit for the curator. Rendering never passes raw HTML through, so
even an unchecked string cannot inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    # Imported when first parsed (24 ms): loading an edition whose prose has no "<" or "["
    # never needs the parser (see _problems_in), and `digest send` loads one before each run.
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# Control characters besides tab and line breaks, and the noncharacters U+FFFE/U+FFFF: no text
# needs them and the HTML pipeline (MJML is XML) cannot carry them.
_UNSAFE_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


@lru_cache(maxsize=1)
def _checking_parser() -> MarkdownIt:
    # html=True so raw HTML shows up as html_inline/html_block tokens we can refuse by name;
    # validateLink accepts everything so unsafe targets reach us instead of silently becoming text.
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True, "linkify": False})
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


@lru_cache(maxsize=1)
def rendering_parser() -> MarkdownIt:
    """The parser used to render: raw HTML is escaped, never passed through."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    return md


def iter_tokens(tokens: list[Token]) -> Iterator[Token]:
    """Every token, inline children included, in document order."""
    for token in tokens:
        yield token
        if token.children:
            yield from iter_tokens(token.children)


def link_problem(url: str) -> str | None:
    """Why ``url`` may not be a link target, or None when it may."""
    target = url.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return f"link target {target!r} holds a control character"
    scheme = urlsplit(target).scheme.lower()
    if not scheme:
        return f"link target {target!r} must be an absolute http, https or mailto address"
    if scheme not in SAFE_SCHEMES:
        return f"link target {target!r} uses the scheme {scheme!r}; only http, https and mailto"
    if scheme in ("http", "https") and not urlsplit(target).netloc:
        return f"link target {target!r} has no host"
    return None


class MarkdownProblem(ValueError):
    """An unsafe construct in a Markdown field; ``line`` counts from 0 within the text, so the
    loader can point at the very line of a multi-line block. The first problem of a field is
    raised; ``others`` holds the rest, so that every one is reported at once (a fixed link must
    not reveal an image behind it on the next run)."""

    def __init__(self, message: str, line: int, others: tuple[MarkdownProblem, ...] = ()) -> None:
        super().__init__(message)
        self.line = line
        self.others = others


def _problem_of(token: Token) -> str | None:
    if token.type in ("html_inline", "html_block"):
        snippet = token.content.strip().splitlines()[0][:40] if token.content.strip() else ""
        return f"raw HTML is not allowed ({snippet!r}); write Markdown, or put it in `backticks`"
    if token.type == "image":
        return "images are not supported in Markdown fields"
    if token.type == "link_open":
        return link_problem(str(token.attrGet("href") or ""))
    return None


def check_markdown(text: str) -> str:
    """Return ``text`` unchanged, or raise :class:`MarkdownProblem` naming every unsafe
    construct (the first as the error, the rest in ``others``)."""
    found = list(_problems_in(text))
    if found:
        first, *rest = found
        raise MarkdownProblem(str(first), first.line, tuple(rest))
    return text


def _problems_in(text: str) -> Iterator[MarkdownProblem]:
    if match := _UNSAFE_CHAR.search(text):
        # Nothing else is trustworthy in such a text: this one problem is enough.
        yield MarkdownProblem(
            f"holds a control character (U+{ord(match.group()):04X}); delete it",
            text[: match.start()].count("\n"),
        )
        return
    if "<" not in text and "[" not in text:
        # What can be refused needs one of these: raw HTML and autolinks start with "<";
        # links, images and link definitions with "[" (linkify is off: a bare URL is text).
        return
    for block in _checking_parser().parse(text):
        line = block.map[0] if block.map else 0
        problem = _problem_of(block)
        if problem:
            yield MarkdownProblem(problem, line)
        # Inline children carry no line numbers; count the line breaks before the culprit.
        for child in iter_tokens(block.children or []):
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            problem = _problem_of(child)
            if problem:
                yield MarkdownProblem(problem, line)
