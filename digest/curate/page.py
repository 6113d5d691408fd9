"""What a web page says about itself: title, site name and description, from Open Graph, then
the Twitter card, then ``<meta name=description>`` and ``<title>``, in that order.

The page is untrusted: it is parsed with the standard library's tolerant HTML parser, read only
up to the end of its ``<head>``, and every value is reduced to plain text (see :mod:`.text`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from digest.curate.text import plain_text

# Where each field is looked for, best first (attribute values are compared lower-cased).
_TITLE_KEYS = ("og:title", "twitter:title")
_DESCRIPTION_KEYS = ("og:description", "twitter:description", "description")
_SITE_KEYS = ("og:site_name", "application-name")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_SNIFF_BYTES = 4096  # HTML asks for the <meta charset> within the first 1024 bytes; be lenient


@dataclass(frozen=True)
class PageInfo:
    """The plain-text facts of a page; None where the page says nothing."""

    title: str | None
    site_name: str | None
    description: str | None


class _EndOfHead(Exception):
    """Everything needed is in the head: stop parsing the (possibly huge) body."""


class _HeadReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title_parts: list[str] = []
        self._in_title = False
        self._title_done = False
        self._in_svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            raise _EndOfHead
        if tag == "svg":  # an inline <svg><title> names a picture, not the page
            self._in_svg += 1
        elif tag == "title" and not self._title_done and not self._in_svg:
            self._in_title = True
        elif tag == "meta":
            values = {name.lower(): value or "" for name, value in attrs}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content")
            if key and content is not None and key not in self.meta:
                self.meta[key] = content  # the first of duplicates wins, as with browsers

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise _EndOfHead
        if tag == "svg" and self._in_svg:
            self._in_svg -= 1
        elif tag == "title" and self._in_title:
            self._in_title = False
            self._title_done = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)

    def first(self, keys: tuple[str, ...]) -> str | None:
        for key in keys:
            value = plain_text(self.meta.get(key, ""))
            if value:
                return value
        return None


def charset_of(body: bytes, content_type: str | None) -> str:
    """The page's encoding: the Content-Type header's charset, else a ``<meta>`` near the top,
    else UTF-8. A name Python does not know counts as absent."""
    candidates: list[str] = []
    if content_type:
        match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.I)
        if match:
            candidates.append(match.group(1))
    meta = _META_CHARSET.search(body[:_SNIFF_BYTES])
    if meta:
        candidates.append(meta.group(1).decode("ascii"))
    for name in candidates:
        try:
            codec = codecs.lookup(name)
        except LookupError:
            continue
        # As browsers do (WHATWG Encoding): latin-1 labels mean windows-1252.
        return "cp1252" if codec.name in ("latin-1", "iso8859-1", "ascii") else codec.name
    return "utf-8"


def decode(body: bytes, content_type: str | None) -> str:
    charset = charset_of(body, content_type)
    try:
        return body.decode(charset)
    except UnicodeDecodeError:
        if charset == "utf-8":
            # No charset said and not UTF-8: the older web's default.
            return body.decode("cp1252", errors="replace")
        return body.decode(charset, errors="replace")


def read_page(body: bytes, content_type: str | None) -> PageInfo:
    """The title, site name and description of an HTML page given as bytes."""
    reader = _HeadReader()
    try:
        reader.feed(decode(body, content_type))
        reader.close()
    except _EndOfHead:
        pass
    title = reader.first(_TITLE_KEYS) or plain_text(" ".join(reader.title_parts)) or None
    return PageInfo(
        title=title,
        site_name=reader.first(_SITE_KEYS),
        description=reader.first(_DESCRIPTION_KEYS),
    )


__all__ = ["PageInfo", "charset_of", "decode", "read_page"]
