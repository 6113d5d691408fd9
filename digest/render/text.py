"""The plain-text twin of the email, built from the model (never scraped from the HTML).

``email_templates/email.txt.j2`` lays the message out; this module gives it the helpers that do the
fiddly parts: Markdown turned into text (emphasis markers dropped, list items as ``- ``, inline code
kept in backticks), wrapping at 78 columns, and links as numbered references (``label [3]``) whose
addresses are listed at the end of each section, or at the end of the message for intro and outro.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from markdown_it.token import Token

from digest.edition.markdown import rendering_parser

WIDTH = 78
# Joins a label to its "[n]" so the wrapper never leaves a reference alone at a line's start.
# A private-use character: textwrap does not break on it and content cannot sensibly hold it.
_GLUE = "\ue000"


def wrap(text: str, indent: str = "", first: str | None = None, width: int = WIDTH) -> str:
    """``text`` as one paragraph wrapped at ``width``; ``first`` prefixes the first line (a
    bullet), ``indent`` the others. Long words (bare URLs) stay whole and may overrun."""
    wrapper = textwrap.TextWrapper(
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    words = " ".join(text.split())
    return wrapper.fill(words).replace(_GLUE, " ") if words else ""


@dataclass
class References:
    """Numbered link references, numbered through the whole message so a number is never reused;
    each scope (a section, or the message) lists its own at its end."""

    counter: int = 0
    pending: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, url: str, scope: str) -> int:
        self.counter += 1
        self.pending.setdefault(scope, []).append((self.counter, url))
        return self.counter

    def flush(self, scope: str) -> str:
        """The listing ``[n] url`` of every reference of ``scope`` so far (one per line)."""
        entries = self.pending.pop(scope, [])
        return "\n".join(f"[{number}] {url}" for number, url in entries)


class TextComposer:
    """The helpers a text template calls; one instance per rendering."""

    def __init__(self) -> None:
        self.references = References()

    # -- helpers exposed to the template ------------------------------------------------------

    def wrap(self, text: str, indent: str = "", first: str | None = None) -> str:
        return wrap(text, indent, first)

    def ref(self, label: str, url: str, scope: str = "section") -> str:
        """``label [n]``, the address kept for the scope's listing; glued so it wraps as one."""
        number = self.references.add(url, scope)
        return f"{label}{_GLUE}[{number}]" if label else f"[{number}]"

    def markdown(self, text: str | None, indent: str = "", scope: str = "section") -> str:
        """Markdown as wrapped plain text; links become ``label [n]`` references of ``scope``."""
        if not text:
            return ""
        tokens = rendering_parser().parse(text)
        parts: list[str] = []
        previous: _Block | None = None
        for block in _MarkdownToText(self, scope).blocks(tokens):
            if previous is not None:
                # Items of a tight list follow each other; everything else is a paragraph apart.
                parts.append("\n" if block.tight and previous.tight else "\n\n")
            parts.append(wrap(block.text, indent + block.indent, indent + block.first))
            previous = block
        return "".join(parts)

    def links(self, links: Iterable[Any], indent: str = "", scope: str = "section") -> str:
        """Extra links (``label``/``url`` pairs) as one wrapped line: ``Code [4] · Data [5]``."""
        return wrap(" · ".join(self.ref(link.label, link.url, scope) for link in links), indent)

    def flush(self, scope: str = "section") -> str:
        return self.references.flush(scope)

    def underline(self, text: str, char: str = "-") -> str:
        return char * min(len(text), WIDTH)


@dataclass
class _Block:
    text: str
    first: str = ""  # prefix of the first line ("- ", "1. ")
    indent: str = ""  # prefix of the following lines
    tight: bool = False  # a paragraph of a tight list item (no blank line around it)


class _MarkdownToText:
    """Walks markdown-it block tokens and turns them into wrappable blocks."""

    def __init__(self, composer: TextComposer, scope: str) -> None:
        self.composer = composer
        self.scope = scope

    def blocks(self, tokens: list[Token]) -> list[_Block]:
        out: list[_Block] = []
        # A stack of open lists: (ordered?, next number); the bullet goes on an item's first block.
        lists: list[list[int | bool]] = []
        bullet: str | None = None
        quote_depth = 0
        tight = False
        for token in tokens:
            kind = token.type
            if kind in ("bullet_list_open", "ordered_list_open"):
                start = int(token.attrGet("start") or 1)
                lists.append([kind == "ordered_list_open", start])
            elif kind in ("bullet_list_close", "ordered_list_close"):
                lists.pop()
            elif kind == "list_item_open":
                ordered, number = lists[-1]
                bullet = f"{number}. " if ordered else "- "
                lists[-1][1] = int(number) + 1
            elif kind == "blockquote_open":
                quote_depth += 1
            elif kind == "blockquote_close":
                quote_depth -= 1
            elif kind == "paragraph_open":
                tight = bool(token.hidden)  # markdown-it hides the <p> of tight list items
            elif kind == "inline":
                text = self.inline(token.children or [])
                self._add(out, text, lists, bullet, quote_depth, tight)
                bullet = None
                tight = False
            elif kind in ("fence", "code_block"):
                # Code blocks keep their lines; they are not re-wrapped.
                lines = token.content.rstrip("\n").splitlines()
                prefix = "  " * (len(lists) + 1)
                for line in lines:
                    out.append(_Block(line.replace(" ", _GLUE), prefix, prefix))
            elif kind == "hr":
                out.append(_Block("-" * 20))
        return out

    def _add(
        self,
        out: list[_Block],
        text: str,
        lists: list[list[int | bool]],
        bullet: str | None,
        quote_depth: int,
        tight: bool,
    ) -> None:
        quote = "> " * quote_depth
        nesting = "  " * max(len(lists) - 1, 0)
        if lists:
            hang = " " * len(bullet or "- ")
            first = quote + nesting + (bullet if bullet is not None else hang)
            out.append(_Block(text, first, quote + nesting + hang, tight))
        else:
            out.append(_Block(text, quote, quote))

    def inline(self, children: Iterable[Token]) -> str:
        parts: list[str] = []
        link_stack: list[tuple[str, int]] = []  # (href, index in parts where its label starts)
        for child in children:
            kind = child.type
            if kind == "text":
                parts.append(child.content)
            elif kind == "code_inline":
                parts.append(f"`{child.content}`")
            elif kind in ("softbreak", "hardbreak"):
                parts.append(" ")
            elif kind == "link_open":
                link_stack.append((str(child.attrGet("href") or ""), len(parts)))
            elif kind == "link_close" and link_stack:
                href, start = link_stack.pop()
                label = "".join(parts[start:]).strip()
                del parts[start:]
                if label in (href, href.removeprefix("mailto:")):
                    parts.append(label)  # an autolink: the address is its own label
                else:
                    parts.append(self.composer.ref(label, href, self.scope))
            # em/strong open/close: markers dropped; the words stay.
        return "".join(parts)


__all__ = [
    "WIDTH",
    "References",
    "TextComposer",
    "wrap",
]
