"""Edits of an edition file that keep everything the curator wrote: comments, key order,
quoting, line folding and indentation (ruamel.yaml's round-trip mode). Only the appended
items' lines are new; every other line stays byte for byte."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

_WIDTH = 4096  # never re-wrap a long plain value (a URL) that the file has on one line
_FOLD_AT = 80  # new summaries are folded to lines of about this many characters


@dataclass(frozen=True)
class NewItem:
    title: str
    url: str
    source: str | None = None
    summary: str | None = None  # Markdown, already made safe
    links: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (label, url)


class PlaceError(ValueError):
    """No section or group of that title (the message lists the ones there are)."""


@dataclass(frozen=True)
class Place:
    """Where new items go: the items list of a section or of one of its groups."""

    holder: CommentedMap  # the section or group mapping
    label: str  # "Research Papers", "Research Papers / Speech & Audio"


class EditionDocument:
    """An edition file loaded for editing."""

    def __init__(self, text: str) -> None:
        data, indent, offset = load_yaml_guess_indent(text)
        self._yaml = YAML()  # round-trip mode
        self._yaml.preserve_quotes = True
        self._yaml.width = _WIDTH
        indent = indent or 2
        offset = offset or 0
        self._yaml.indent(mapping=max(2, indent - offset), sequence=indent, offset=offset)
        self.data: Any = self._yaml.load(text)
        del data  # the guesser's own load; ours keeps quotes

    @classmethod
    def parse(cls, text: str) -> EditionDocument:
        """Raise :class:`ValueError` when ``text`` is not a YAML mapping ruamel can edit."""
        try:
            document = cls(text)
        except YAMLError as exc:
            raise ValueError(f"the file cannot be edited as YAML ({exc})") from None
        if not isinstance(document.data, CommentedMap):
            raise ValueError("the top level is not a mapping of keys")
        return document

    def place(self, section: str | None, group: str | None) -> Place:
        """The section titled ``section`` (default: the last), and in it the group titled
        ``group``; without ``--group``, a section that has groups but no items of its own
        takes new items into its last group."""
        sections = [s for s in self.data.get("sections") or [] if isinstance(s, CommentedMap)]
        if not sections:
            raise PlaceError("the edition has no sections to add to")
        chosen = sections[-1] if section is None else _titled(sections, section, "section")
        groups = [g for g in chosen.get("groups") or [] if isinstance(g, CommentedMap)]
        title = str(chosen.get("title"))
        if group is not None:
            found = _titled(groups, group, f"group of section {title!r}")
            return Place(found, f"{title} / {found.get('title')}")
        if groups and not chosen.get("items"):
            return Place(groups[-1], f"{title} / {groups[-1].get('title')}")
        return Place(chosen, title)

    def append(self, place: Place, items: Sequence[NewItem]) -> None:
        current = place.holder.get("items")
        if not isinstance(current, CommentedSeq) or not current:
            # `items: []` of a fresh edition (flow style) or no key yet: a block list.
            current = CommentedSeq()
            if "items" in place.holder:
                place.holder["items"] = current
            else:
                place.holder.insert(_after_title(place.holder), "items", current)
        for item in items:
            current.append(_as_mapping(item))

    def dump(self) -> str:
        stream = io.StringIO()
        self._yaml.dump(self.data, stream)
        return stream.getvalue()


def _titled(entries: list[CommentedMap], wanted: str, what: str) -> CommentedMap:
    for entry in entries:
        if str(entry.get("title", "")).strip().casefold() == wanted.strip().casefold():
            return entry
    known = ", ".join(repr(str(entry.get("title"))) for entry in entries) or "none"
    raise PlaceError(f"no {what} titled {wanted!r} (there are: {known})")


def _after_title(holder: CommentedMap) -> int:
    keys = list(holder)
    return keys.index("title") + 1 if "title" in keys else len(keys)


def _as_mapping(item: NewItem) -> CommentedMap:
    mapping = CommentedMap()
    mapping["title"] = item.title
    mapping["url"] = item.url
    if item.source:
        mapping["source"] = item.source
    if item.summary:
        mapping["summary"] = _folded(item.summary)
    if item.links:
        links = CommentedSeq()
        for label, url in item.links:
            link = CommentedMap()
            link["label"] = label
            link["url"] = url
            links.append(link)
        mapping["links"] = links
    return mapping


def _folded(text: str) -> str:
    """A long summary as a folded block (``>-``) broken at spaces, like hand-written ones."""
    if len(text) <= _FOLD_AT:
        return text
    folded = FoldedScalarString(text)
    positions = []
    line_start = 0
    last_space = -1
    for index, char in enumerate(text):
        if char == " " and 0 < index < len(text) - 1 and text[index + 1] != " ":
            if index - line_start > _FOLD_AT and last_space > line_start:
                positions.append(last_space)
                line_start = last_space + 1
            last_space = index
    if len(text) - line_start > _FOLD_AT and last_space > line_start:
        positions.append(last_space)
    folded.fold_pos = positions  # type: ignore[attr-defined]
    return folded


__all__ = ["EditionDocument", "NewItem", "Place", "PlaceError"]
