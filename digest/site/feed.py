"""``feed.xml``: Atom 1.0 (RFC 4287) of the newest published editions, with their full HTML.

Entry ids are ``urn:uuid:`` UUIDs (version 5) of the edition's address: the same on every
rebuild, and unchanged when an edition's text is corrected. ``published`` and ``updated`` are
the edition's date (see :mod:`digest.site.editions`), never the time of the build.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from digest.newsletter import Newsletter
from digest.render.web import FEED_FILE
from digest.site.editions import SiteEdition

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_SIZE = 20
_EMPTY_FEED_DATE = datetime(1970, 1, 1, tzinfo=UTC)  # a feed with no entry still needs one


def entry_id(url: str) -> str:
    """A permanent id for the page at ``url`` (RFC 4287 §4.2.6: never changes)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_feed(
    newsletter: Newsletter, editions: Sequence[tuple[SiteEdition, str]], *, site_url: str
) -> bytes:
    """The Atom document for ``editions`` (published ones, newest first, each with its HTML
    content); only the newest :data:`FEED_SIZE` are kept."""
    ET.register_namespace("", ATOM_NS)

    def add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> None:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attributes)
        element.text = text

    shown = [(item, html) for item, html in editions if not item.draft and item.date][:FEED_SIZE]
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {"xml:lang": newsletter.lang})
    add(feed, "id", entry_id(site_url))
    add(feed, "title", newsletter.name)
    if newsletter.description:
        add(feed, "subtitle", newsletter.description)
    newest = max((item.date for item, _ in shown if item.date), default=_EMPTY_FEED_DATE)
    add(feed, "updated", _stamp(newest))
    add(feed, "link", rel="self", type="application/atom+xml", href=site_url + FEED_FILE)
    add(feed, "link", rel="alternate", type="text/html", href=site_url)
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    add(author, "name", newsletter.name)
    if newsletter.logo is not None:
        add(feed, "icon", newsletter.logo.url)
    for item, html in shown:
        assert item.date is not None
        url = f"{site_url}{item.slug}/"
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        add(entry, "id", entry_id(url))
        add(entry, "title", item.edition.subject)
        add(entry, "link", rel="alternate", type="text/html", href=url)
        add(entry, "published", _stamp(item.date))
        add(entry, "updated", _stamp(item.date))
        if item.edition.preheader:
            add(entry, "summary", item.edition.preheader)
        add(entry, "content", html, type="html")
    ET.indent(feed, space="  ")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


__all__ = ["ATOM_NS", "FEED_SIZE", "entry_id", "render_feed"]
