"""Render an edition once: Jinja2 -> MJML -> mjml-python -> premailer, plus the plain-text twin.

The result is a :class:`RenderedEdition` whose HTML and text are :class:`MergeTemplate` s: the
per-recipient values (name, address, unsubscribe link, CSV fields) are slots filled later by a
join, so a send of 100 000 messages renders the edition once.

Premailer on MJML output has three known pitfalls, each guarded here (and by a test):
it drops a lower-case ``<!doctype html>`` (put back), strips ``!important`` inside media queries
unless ``strip_important=False`` (the dark-mode rules need it), and fetches remote stylesheets:
``allow_network=False`` covers ``<link>``, and :class:`_OfflinePremailer` refuses ``@import``,
which cssutils would otherwise fetch on its own.

MJML's hidden preheader lacks ``mso-hide:all``, without which Outlook on Windows shows it at the
top of the email; it is added here. Its ``color:#ffffff`` and ``font-size:1px`` are dropped: the
block is hidden anyway (display, height, opacity, mso-hide), and SpamAssassin scores white text
on a light page as HTML_FONT_LOW_CONTRAST and 1 px text as invisible (FONT_INVIS_*).

MJML's own reset block (``#outlook a``, ``table, td``, ``p { display: block; margin: 13px 0 }``)
is left in ``<style>`` rather than inlined: copied into every cell and paragraph it cost ~12 KB
per 100 items, and every client that matters (Outlook's Word engine included) reads it there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import cssutils
import jinja2
import mjml
from markupsafe import Markup
from premailer import Premailer

from digest.edition.markdown import rendering_parser
from digest.edition.model import Edition
from digest.errors import TemplateError
from digest.newsletter import Newsletter
from digest.placeholders import neutralise_html, neutralise_text
from digest.render.locations import (  # re-exported: callers import them from here
    HTML_TEMPLATE,
    TEXT_TEMPLATE,
    default_templates_dir,
    packaged_templates_dir,
)
from digest.render.merge import SlotMarkers, escape_html, escape_text
from digest.render.palette import dark_accent
from digest.render.result import RenderedEdition  # re-exported
from digest.render.sample import sample_values
from digest.render.text import TextComposer
from digest.settings import Settings

SIGNATURE_SEPARATOR = "-- "

_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>\s*", re.IGNORECASE)
# The opening of mj-preview's hidden block, the first <div> right after <body>.
_PREVIEW_DIV = re.compile(r"(<body\b[^>]*>\s*<div style=\")(display:none;)([^\"]*)\"")
_PREVIEW_TEXT_STYLE = re.compile(r"(?:font-size|color):[^;\"]*;?")
# MJML's reset block, marked so that premailer leaves it in <style> instead of inlining it.
_MJML_RESET = re.compile(r'<style type="text/css">(\s*#outlook a \{)')

cssutils.log.setLevel(logging.CRITICAL)  # it logs every vendor property (mso-*) it does not know


def render_edition(
    edition: Edition,
    *,
    newsletter: Newsletter | None = None,
    archive_url: str | None = None,
    templates_dir: Path | None = None,
) -> RenderedEdition:
    """Render ``edition`` into HTML and text merge templates (the email mode).

    ``newsletter`` is the identity from ``digest.toml`` (None: one made of the edition's
    ``newsletter:`` name). ``archive_url`` is the "view in browser" link, the same for every
    recipient: a ``DIGEST_ARCHIVE_URL`` template holding ``{slug}`` is filled with the slug;
    None falls back to the newsletter's ``{site_url}<slug>/`` (see :func:`archive_url_for`).
    Raises :class:`TemplateError` naming the template file and line when a template is broken.
    """
    environment = _environment((templates_dir or default_templates_dir()).resolve())
    archive = archive_url_for(edition, newsletter, archive_url)
    identity = newsletter_of(edition, newsletter)

    html_markers = SlotMarkers()
    mjml_source = _render_template(
        environment,
        HTML_TEMPLATE,
        _context(edition, identity, archive, html_markers, markdown=markdown_html),
    )
    html = _mjml_to_html(mjml_source, environment, HTML_TEMPLATE)
    # Mailgun's batch sending substitutes %recipient.x% (and %unsubscribe_url%-style variables)
    # in the body. Content is never a template: in the HTML the % of such text is written as
    # &#37;, which a mail client shows as "%" but the provider does not recognise. Done after
    # premailer, which would decode the entity again. (The text twin gets a zero-width space.)
    html = neutralise_html(html)
    html_template = html_markers.compile(html, escape=escape_html)

    text_markers = SlotMarkers()
    composer = TextComposer()
    text_context = _context(edition, identity, archive, text_markers, markdown=composer.markdown)
    text_context["text"] = composer
    text = _render_template(environment, TEXT_TEMPLATE, text_context)
    text = neutralise_text(_tidy_text(text))
    text_template = text_markers.compile(text, escape=escape_text)

    # Measured as `digest build` writes it when no settings are given.
    html_bytes = html_template.size_with(sample_values(Settings(), edition.slug))
    return RenderedEdition(
        edition=edition,
        html=html_template,
        text=text_template,
        html_bytes=html_bytes,
    )


def render_web_html(
    edition: Edition, newsletter: Newsletter | None = None, *, templates_dir: Path | None = None
) -> str:
    """The HTML template rendered in the web mode: no recipient, no unsubscribe link, no "view
    in browser" link (the reader is in the browser). :mod:`digest.render.web` makes it a page.

    The CSS is not inlined: a browser applies the ``<style>`` rules (the computed styles are
    the same, light and dark), and premailer is two thirds of a render's time. A copy for
    readers that drop ``<style>`` goes through :func:`inline_css`."""
    environment = _environment((templates_dir or default_templates_dir()).resolve())
    identity = newsletter_of(edition, newsletter)
    context = _context(edition, identity, None, None, markdown=markdown_html)
    return _mjml(_render_template(environment, HTML_TEMPLATE, context), environment, HTML_TEMPLATE)


def archive_url_for(
    edition: Edition, newsletter: Newsletter | None, archive_url: str | None
) -> str | None:
    """The "view in browser" link: ``DIGEST_ARCHIVE_URL`` (with ``{slug}`` filled) when set,
    else the edition's page on the published site, ``{site_url}<slug>/`` (contract §6)."""
    if archive_url:
        return archive_url.replace("{slug}", edition.slug)
    return newsletter.edition_url(edition.slug) if newsletter is not None else None


def markdown_html(text: str | None) -> Markup:
    """A Markdown field as HTML: raw HTML escaped (never passed through), images off."""
    if not text:
        return Markup("")
    # Safe to mark: the rendering parser escapes all text and has raw HTML switched off.
    return Markup(rendering_parser().render(text))


def markdown_inline(text: str | None) -> Markup:
    """A Markdown field as one line of HTML (inline markup only: emphasis, code, links), for
    compact lists; paragraphs and list items are joined by spaces."""
    if not text:
        return Markup("")
    return Markup(rendering_parser().renderInline(" ".join(text.split())))


# -- the template context ---------------------------------------------------------------------


class _Recipient:
    """``recipient`` in a template: every attribute renders the slot filled per recipient."""

    def __init__(self, markers: SlotMarkers) -> None:
        self._markers = markers

    @property
    def email(self) -> str:
        return self._markers.marker("email")

    @property
    def name(self) -> str:
        return self._markers.marker("name")

    def field(self, column: str) -> str:
        """Any other column of the subscribers CSV, e.g. ``recipient.field("company")``."""
        return self._markers.marker(f"field:{column}")


def newsletter_of(edition: Edition, newsletter: Newsletter | None) -> Newsletter:
    """The identity to render with: ``newsletter`` (from digest.toml), else the edition's name."""
    if newsletter is not None:
        return newsletter
    return Newsletter(name=edition.newsletter or edition.edition)


def _context(
    edition: Edition,
    newsletter: Newsletter,
    archive_url: str | None,
    markers: SlotMarkers | None,
    *,
    markdown: Callable[..., Any],
) -> dict[str, Any]:
    """The variables a template sees. ``markers`` None is the web mode: no recipient at all, so
    a template that reaches for personal data outside ``{% if mode == "email" %}`` fails loudly
    (StrictUndefined) instead of publishing a sample reader."""
    context: dict[str, Any] = {
        "edition": edition,
        "newsletter": newsletter,
        "mode": "email" if markers is not None else "web",
        "archive_url": archive_url,
        "markdown": markdown,
        "markdown_inline": markdown_inline,
        "accent_dark": dark_accent(newsletter.accent),
    }
    if markers is not None:
        context["recipient"] = _Recipient(markers)
        context["unsubscribe_url"] = markers.marker("unsubscribe_url")
    return context


# -- Jinja ------------------------------------------------------------------------------------


def _autoescape(name: str | None) -> bool:
    # HTML and MJML templates escape every value; the text template must not (a "&" is a "&").
    return not (name or "").endswith((".txt", ".txt.j2"))


@lru_cache(maxsize=16)
def _environment(templates_dir: Path) -> jinja2.Environment:
    """One environment per templates folder: templates compile once and are cached; a template
    edited on disk is reloaded (the live preview depends on that)."""
    if not (templates_dir / HTML_TEMPLATE).is_file():
        raise TemplateError(
            f"{templates_dir / HTML_TEMPLATE}: template not found",
            hint="`digest templates export email_templates` writes the defaults there to edit",
        )
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # The packaged templates only: one set of files per install, where a cache keyed by
        # every folder of templates ever rendered (each test's, each export) would only grow.
        bytecode_cache=_bytecode_cache() if templates_dir == packaged_templates_dir() else None,
    )


@lru_cache(maxsize=1)
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Templates compiled once per version of their source, not once per process: the first
    render of a send or a build takes 18 ms instead of 42. Jinja's own per-user folder in the
    temp directory (0700, refused when another user owns it); the key holds the template's
    source hash, so a changed template is compiled again."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # no safe folder: compile every time, as before
        return None


def _render_template(environment: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return environment.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = _template_path(environment, exc.name or name)
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template not found: {exc.name}") from None
    except jinja2.TemplateError as exc:  # UndefinedError and friends, raised while rendering
        where, line = _failing_template_line(environment, exc, name)
        raise TemplateError(f"{where}:{line}: {exc.message or exc}") from None
    except TemplateError:
        raise
    except Exception as exc:  # an error inside a filter or helper the template called
        where, line = _failing_template_line(environment, exc, name)
        raise TemplateError(f"{where}:{line}: {type(exc).__name__}: {exc}") from None


def _template_path(environment: jinja2.Environment, name: str) -> str:
    loader = environment.loader
    if isinstance(loader, jinja2.FileSystemLoader) and loader.searchpath:
        return str(Path(loader.searchpath[0]) / name)
    return name


def _failing_template_line(
    environment: jinja2.Environment, exc: BaseException, name: str
) -> tuple[str, int | str]:
    """The template file and line where ``exc`` was raised: Jinja rewrites tracebacks so that
    template frames carry the template's file name and line."""
    where: tuple[str, int | str] = (_template_path(environment, name), "?")
    traceback = exc.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or "email_templates" in filename:
            where = (filename, traceback.tb_lineno)
        traceback = traceback.tb_next
    return where


# -- MJML and premailer -----------------------------------------------------------------------


def _mjml_to_html(source: str, environment: jinja2.Environment, name: str) -> str:
    html = _PREVIEW_DIV.sub(
        lambda m: m[1] + m[2] + "mso-hide:all;" + _PREVIEW_TEXT_STYLE.sub("", m[3]) + '"',
        _mjml(source, environment, name),
        count=1,
    )
    return inline_css(html)


def _mjml(source: str, environment: jinja2.Environment, name: str) -> str:
    try:
        # fonts={}: no Google Fonts <link>/@import; the template names system fonts.
        return str(mjml.mjml2html(source, disable_comments=True, fonts={}))
    except Exception as exc:  # mjml-python raises a bare exception with MRML's message
        raise TemplateError(
            f"{_template_path(environment, name)}: the MJML it produces is invalid: {exc}"
        ) from None


def inline_css(html: str) -> str:
    """Copy the ``<style>`` rules onto the elements (premailer), for readers that drop
    ``<style>``: mail clients, and feed readers (the feed's content)."""
    html = _MJML_RESET.sub(r'<style type="text/css" data-premailer="ignore">\1', html, count=1)
    inlined = _OfflinePremailer(
        html,
        disable_validation=True,
        keep_style_tags=True,
        strip_important=False,
        allow_network=False,
        remove_classes=False,
        session=_NoNetwork(),
    ).transform()
    # lxml writes no doctype for a lower-case one; without it clients render in quirks mode.
    return "<!doctype html>\n" + _DOCTYPE.sub("", inlined)


class _NoNetwork:
    """Premailer's HTTP session: never used while ``allow_network`` is off; refuses if it were."""

    def get(self, url: str, **_: object) -> None:
        raise TemplateError(f"the template asks for a remote stylesheet ({url}); inline it")


def _refuse_fetch(url: str) -> None:
    """cssutils' fetcher for ``@import``: nothing is fetched (None means "not available")."""
    return None


@lru_cache(maxsize=64)
def _parse_css_offline(css_body: str, validate: bool) -> cssutils.css.CSSStyleSheet:
    return cssutils.CSSParser(fetcher=_refuse_fetch, validate=validate).parseString(css_body)


class _OfflinePremailer(Premailer):  # type: ignore[misc]
    """Premailer whose CSS parser never fetches an ``@import`` (cssutils would, by itself)."""

    def _parse_css_string(self, css_body: str, validate: bool = True) -> Any:
        return _parse_css_offline(css_body, validate)


# -- text ------------------------------------------------------------------------


def _tidy_text(text: str) -> str:
    """No trailing blanks, at most one empty line in a row, one final newline. The signature
    separator "-- " keeps its blank (RFC 3676: mail clients recognise the footer by it)."""
    lines = [line if line == SIGNATURE_SEPARATOR else line.rstrip() for line in text.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if not line and (not tidy or not tidy[-1]):
            continue
        tidy.append(line)
    return "\n".join(tidy).strip("\n") + "\n"


__all__ = [
    "RenderedEdition",
    "archive_url_for",
    "default_templates_dir",
    "inline_css",
    "markdown_html",
    "markdown_inline",
    "newsletter_of",
    "packaged_templates_dir",
    "render_edition",
    "render_web_html",
]
