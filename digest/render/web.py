"""The web edition: the SAME template as the email, rendered in the web mode and made a web page.

The email template in mode ``"web"`` has no recipient, so the page holds no personal data at
all (no unsubscribe link, token or sample address). This module adds what a page needs and an
email must not have, in Python so that the email templates stay one design:

- in ``<head>``: the meta description, the canonical URL, Open Graph and Twitter card tags, the
  feed's autodiscovery link, ``noindex`` for drafts, and a little CSS for the bar below;
- at the top of ``<body>``: a bar linking back to the archive and to the subscribe page, and a
  visible marker on drafts;
- out: the hidden preheader (and its filler) and Outlook's conditional comments, which only
  mail clients read; a browser, a search engine and a feed reader are better without them.

The page keeps its CSS in ``<style>`` (not inlined: a browser computes the same styles, and
premailer is most of a render's time); the feed's copy is inlined, as feed readers drop
``<style>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markupsafe import escape

from digest.edition.model import Edition
from digest.errors import TemplateError
from digest.newsletter import Newsletter
from digest.render.email import inline_css, newsletter_of, render_web_html

FEED_FILE = "feed.xml"

# mj-preview's hidden block: the first <div style="display:none;..."> right after <body>.
_PREHEADER = re.compile(r'(<body\b[^>]*>\s*)<div style="display:none;[^"]*">.*?</div>\s*', re.S)
# Downlevel-hidden conditionals (<!--[if mso]>...<![endif]-->): comments to a browser anyway.
# The downlevel-revealed form (<!--[if !mso]><!-->...<!--<![endif]-->) shows its content; kept.
_OUTLOOK_ONLY = re.compile(r"<!--\[if [^\]]*\]>(?!<!-->).*?<!\[endif\]-->", re.S)
_BODY_OPEN = re.compile(r"<body\b[^>]*>")
_BODY_CLOSE = "</body>"
_HEAD_CLOSE = "</head>"

# The bar and the draft marker; colours as the template's footer, dark ones as its dark rules.
_WEB_CSS = """
.web-bar { box-sizing: border-box; max-width: 600px; margin: 0 auto; padding: 10px 12px 0;
  display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0 12px;
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial,
  sans-serif; }
.web-bar a { color: #57606a; display: inline-block; padding: 10px 8px; }
.web-draft { box-sizing: border-box; max-width: 600px; margin: 8px auto 0; padding: 10px 16px;
  font: 600 15px/1.5 -apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial,
  sans-serif; color: #3b2300; background-color: #fff8c5; border: 1px solid #d4a72c; }
img { max-width: 100%; height: auto; }
body { overflow-wrap: anywhere; }
@media (prefers-color-scheme: dark) {
  .web-bar a { color: #9da7b3 !important; }
  .web-draft { color: #f2cc60 !important; background-color: #2e2400 !important;
    border-color: #7a5c00 !important; }
}
"""


@dataclass(frozen=True)
class WebEdition:
    """A web edition: ``html`` the whole page; ``feed_content`` (when asked for) the edition
    alone with its CSS inlined, for feed readers, which drop ``<style>``."""

    html: str
    feed_content: str | None = None


def render_web_edition(
    edition: Edition,
    newsletter: Newsletter | None,
    *,
    draft: bool = False,
    archive_href: str = "../",
    templates_dir: Path | None = None,
    feed_content: bool = False,
) -> WebEdition:
    """Render ``edition`` as its web page. ``archive_href`` is the link back to the archive
    (relative: the page lives at ``<slug>/index.html``); ``draft`` adds ``noindex`` and a
    visible marker. Canonical, Open Graph and feed links need ``newsletter.site_url``."""
    identity = newsletter_of(edition, newsletter)
    html = _without_email_only_parts(
        render_web_html(edition, identity, templates_dir=templates_dir)
    )
    opening, closing = _body_bounds(html)
    head = _head_tags(edition, identity, draft=draft)
    bar = _bar(identity, archive_href=archive_href, draft=draft)
    page = (
        html[:opening].replace(_HEAD_CLOSE, head + _HEAD_CLOSE, 1)
        + "\n"
        + bar
        + html[opening:closing].strip("\n")
        + "\n"
        + html[closing:]
    )
    feed = None
    if feed_content:
        inlined = inline_css(html)
        start, end = _body_bounds(inlined)
        feed = inlined[start:end].strip("\n")
    return WebEdition(html=page, feed_content=feed)


def _without_email_only_parts(html: str) -> str:
    return _OUTLOOK_ONLY.sub("", _PREHEADER.sub(r"\1", html, count=1))


def _body_bounds(html: str) -> tuple[int, int]:
    """Where the body's content starts and ends."""
    opening = _BODY_OPEN.search(html)
    closing = html.rfind(_BODY_CLOSE)
    if opening is None or closing < 0 or html.find(_HEAD_CLOSE) < 0:  # an odd custom template
        raise TemplateError("the HTML template's output has no <head> and <body>")
    return opening.end(), closing


def render_web_page(
    edition: Edition,
    newsletter: Newsletter | None,
    *,
    draft: bool = False,
    archive_href: str = "../",
    templates_dir: Path | None = None,
) -> str:
    """The web page of ``edition`` as HTML text (see :func:`render_web_edition`)."""
    return render_web_edition(
        edition, newsletter, draft=draft, archive_href=archive_href, templates_dir=templates_dir
    ).html


def page_description(edition: Edition, newsletter: Newsletter) -> str:
    """What a search result or a shared link shows under the title."""
    return edition.preheader or newsletter.description or edition.subject


def _head_tags(edition: Edition, newsletter: Newsletter, *, draft: bool) -> str:
    description = page_description(edition, newsletter)
    tags = [
        _meta("description", description),
        _property("og:type", "article"),
        _property("og:site_name", newsletter.name),
        _property("og:title", edition.subject),
        _property("og:description", description),
        _property("og:locale", edition.lang.replace("-", "_")),
        _meta("twitter:card", "summary"),
        _meta("twitter:title", edition.subject),
        _meta("twitter:description", description),
    ]
    url = newsletter.edition_url(edition.slug)
    if url is not None and newsletter.site_url is not None:
        tags += [
            f'<link rel="canonical" href="{escape(url)}">',
            _property("og:url", url),
            f'<link rel="alternate" type="application/atom+xml" '
            f'title="{escape(newsletter.name)}" href="{escape(newsletter.site_url + FEED_FILE)}">',
        ]
    if newsletter.logo is not None:
        tags += [
            _property("og:image", newsletter.logo.url),
            _meta("twitter:image", newsletter.logo.url),
        ]
    if edition.send_at is not None:
        tags.append(_property("article:published_time", edition.send_at.isoformat()))
    if draft:
        tags.append(_meta("robots", "noindex"))
    tags.append(f"<style>{_WEB_CSS}</style>")
    return "\n".join(tags) + "\n"


def _bar(newsletter: Newsletter, *, archive_href: str, draft: bool) -> str:
    links = [f'<a href="{escape(archive_href)}">← All editions of {escape(newsletter.name)}</a>']
    if newsletter.subscribe_url:
        links.append(f'<a href="{escape(newsletter.subscribe_url)}">Subscribe</a>')
    bar = f'<nav class="web-bar">{"".join(links)}</nav>\n'
    if draft:
        bar += (
            '<p class="web-draft" role="note">Draft: not published yet. '
            "This page is hidden from search engines and from the feed.</p>\n"
        )
    return bar


def _meta(name: str, content: str) -> str:
    return f'<meta name="{name}" content="{escape(content)}">'


def _property(name: str, content: str) -> str:
    return f'<meta property="{name}" content="{escape(content)}">'


__all__ = ["FEED_FILE", "WebEdition", "page_description", "render_web_edition", "render_web_page"]
