"""``index.html``: the archive's front page, every edition newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from digest.newsletter import Newsletter
from digest.render.web import FEED_FILE
from digest.site.editions import SiteEdition

INDEX_TEMPLATE = "index.html.j2"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    folder = Path(str(resources.files("digest.site") / "templates"))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _day(moment: datetime) -> str:
    """``31 March 2026`` (in UTC, as the feed and sitemap date it)."""
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y}"


def render_index(newsletter: Newsletter, editions: list[SiteEdition]) -> str:
    """The front page: name, description, subscribe link, and one entry per edition."""
    entries: list[dict[str, Any]] = [
        {
            "href": f"{item.slug}/",
            "label": item.edition.edition,
            "date": _day(item.date) if item.date is not None else None,
            "datetime": item.date.astimezone(UTC).isoformat() if item.date is not None else None,
            "subject": item.edition.subject,
            "preheader": item.edition.preheader,
            "draft": item.draft,
        }
        for item in editions
    ]
    template = _environment().get_template(INDEX_TEMPLATE)
    return template.render(newsletter=newsletter, entries=entries, feed_href=FEED_FILE)


__all__ = ["render_index"]
