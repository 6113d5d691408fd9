"""``sitemap.xml`` (sitemaps.org 0.9): the front page and every published edition's page.

Drafts and ``latest/`` (a copy whose canonical URL is the edition's own) are left out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC

from digest.site.editions import SiteEdition

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def render_sitemap(site_url: str, editions: Sequence[SiteEdition]) -> bytes:
    ET.register_namespace("", SITEMAP_NS)
    urlset = ET.Element(f"{{{SITEMAP_NS}}}urlset")

    def add(loc: str, lastmod: str | None) -> None:
        url = ET.SubElement(urlset, f"{{{SITEMAP_NS}}}url")
        ET.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = loc
        if lastmod is not None:
            ET.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = lastmod

    published = [item for item in editions if not item.draft and item.date is not None]
    newest = published[0].date if published else None
    add(site_url, f"{newest.astimezone(UTC):%Y-%m-%d}" if newest else None)
    for item in published:
        assert item.date is not None
        add(f"{site_url}{item.slug}/", f"{item.date.astimezone(UTC):%Y-%m-%d}")
    ET.indent(urlset, space="  ")
    return ET.tostring(urlset, encoding="utf-8", xml_declaration=True) + b"\n"


__all__ = ["SITEMAP_NS", "render_sitemap"]
