"""Text taken from fetched pages, made fit for an edition: entities decoded,
whitespace collapsed, summaries cut at a sentence end, Markdown escaped so that nothing a page
says can become markup (the edition's validation refuses raw HTML, and rightly)."""

from __future__ import annotations

import html
import re

SUMMARY_TARGET = 300  # characters: about three lines of an email, what the contract asks
_SUMMARY_SLACK = 100  # a sentence may end up to this much past the target
_SUMMARY_SHORTEST = 120  # ... or before it, but not so early that most of the text is lost
TITLE_MAX = 500  # LongPlainText's limit in the edition model
SOURCE_MAX = 80  # a site name; the model allows 300, but a source is a short label

_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
# A sentence ends at . ! ? (maybe closed by a quote or bracket) followed by a space.
_SENTENCE_END = re.compile(r"[.!?][\"'’”)\]]?(?=\s)")
# Characters that carry Markdown meaning anywhere in a line (CommonMark lets a backslash escape
# every ASCII punctuation character, so escaping these is always safe).
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>])")
_ENTITY_LIKE = re.compile(r"&(?=#?\w+;)")
# What starts a block (heading, quote, list, rule) when it opens the text.
_MARKDOWN_BLOCK_START = re.compile(r"^(\d*)([#>+=-]|(?<=\d)[.)])")


def plain_text(value: str) -> str:
    """One line of text: entities decoded (twice-encoded ones too: many sites escape their meta
    tags twice), controls removed, whitespace collapsed. Text that looks like markup stays text
    (``x < y`` in an abstract is no tag); :func:`markdown_literal` makes it safe."""
    if "&" in value:
        value = html.unescape(value)
    value = _CONTROL.sub(" ", value)
    return _SPACES.sub(" ", value).strip()


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"


def cut_summary(text: str, target: int = SUMMARY_TARGET) -> str:
    """``text`` ending at the sentence end nearest ``target`` characters; whole when short.

    The last sentence end up to ``target`` wins, else the first one a little past it, else the
    text is cut at a word with an ellipsis."""
    if len(text) <= target:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text + " ")]
    before = [end for end in ends if _SUMMARY_SHORTEST <= end <= target]
    if before:
        return text[: before[-1]]
    after = [end for end in ends if target < end <= target + _SUMMARY_SLACK]
    if after:
        return text[: after[0]]
    return shorten(text, target)


def markdown_literal(text: str) -> str:
    """``text`` as Markdown that renders as exactly that text: no emphasis, link, code or HTML."""
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", text)
    escaped = _ENTITY_LIKE.sub(r"\\&", escaped)
    return _MARKDOWN_BLOCK_START.sub(r"\1\\\2", escaped)


__all__ = ["SUMMARY_TARGET", "cut_summary", "markdown_literal", "plain_text", "shorten"]
